// ControlPlaneSource: the sidecar's mesh, streamed from the control plane. Each snapshot is checked
// whole (over the size or depth limit, or any invalid object: NACK, and the last good snapshot stays
// in force) and acknowledged once applied; a large one is parsed in a worker thread, so the data path
// keeps serving meanwhile. A lost connection is retried with jittered exponential backoff while the
// sidecar keeps serving its last snapshot; the control plane sends its whole current snapshot on
// every connect.
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate, type SecureContext } from 'node:tls';
import {
  DEFAULT_MAX_SNAPSHOT_BYTES,
  DEFAULT_MESH_LIMITS,
  DEFAULT_PARSE_BUDGET,
  buildSnapshotInSlices,
  err,
  formatBytes,
  logger,
  ok,
  SnapshotListeners,
  type Logger,
  type MeshProvider,
  type MeshSnapshot,
  type Result,
  type TsmeshError,
} from '@tsmesh/common';
import { retryDelayMs, type BackoffOptions } from '../identity/backoff.js';
import { parseSpiffeId, peerIdentityFromCertificate } from '../identity/spiffe.js';
import { RateLimitedLog } from '../telemetry/log-limit.js';
import type { CheckedSnapshot } from './apply.js';
import { decodeSnapshotLine, type SnapshotDecodeLimits } from './decode.js';
import { DISCOVERY_ERRORS, DiscoveryError } from '../errors.js';
import { ControlStream, type StreamTarget } from './stream.js';

/** Where the workload certificate comes from (WorkloadIdentityManager fits). */
export interface ControlTlsSource {
  /** TLS 1.3 client context: the workload certificate and key, and the trust bundle. undefined before the first certificate. */
  clientContext(): SecureContext | undefined;
  /** Optional: calls `listener` on every new certificate (a source waiting to retry then connects at once). */
  onChange?(listener: () => void): () => void;
}

export interface ControlPlaneSourceOptions {
  /** `host:port` or `[v6]:port` (TSMESH_CONTROL_ADDR). */
  readonly controlAddr: string;
  readonly tlsSource: ControlTlsSource;
  /** SNI and the name verified on the control plane's certificate; default: the host of controlAddr. */
  readonly serverName?: string;
  /**
   * The control plane's SPIFFE ID (when its certificate comes from the tsmesh CA, it has no host name):
   * verified instead of the host name.
   */
  readonly serverIdentity?: string;
  /** Sent in the `tsmesh-pod-name` header, shown by the control plane's debug endpoint. */
  readonly podName?: string;
  /** start() fails when no snapshot was applied by then (default 30 s). */
  readonly startTimeoutMs?: number;
  /** One attempt (TLS and the stream's answer) fails after this long (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** PING interval; one unanswered by the next drops the connection (default 15 s; 0: none). */
  readonly keepaliveMs?: number;
  /** Reconnect delays: jittered, doubling from baseMs to maxMs (default 0.5 s to 30 s). */
  readonly backoff?: Partial<BackoffOptions>;
  /** Longest snapshot line accepted (default 64 MiB); a longer one is skipped unread and NACKed. */
  readonly maxMessageBytes?: number;
  /**
   * Deepest nesting inside a snapshot's objects (default 64, as for mesh files), checked before the
   * line is parsed; lines up to `inlineBytes` (default 256 KiB) are parsed on the event loop, longer
   * ones in a worker with `workerMemoryMb` of heap (256) for `timeoutMs` (30 s) at most.
   */
  readonly decode?: Partial<SnapshotDecodeLimits>;
  readonly log?: Logger;
  /** Injected for tests: the jitter source. */
  readonly random?: () => number;
}

/** For the admin endpoint and readiness. */
export interface ControlPlaneStatus {
  readonly connected: boolean;
  readonly lastAppliedVersion: string | undefined;
  /** The last snapshot refused (NACKed) and why. */
  readonly lastRejected: { readonly version: string; readonly reason: string; readonly at: string } | undefined;
  /** The last connection failure or refusal; cleared by the next snapshot received. */
  readonly lastError: { readonly code: string; readonly message: string; readonly at: string } | undefined;
  readonly consecutiveFailures: number;
  /** When the next connection attempt is due, while disconnected. */
  readonly nextAttemptAt: string | undefined;
}

export const DEFAULT_START_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_KEEPALIVE_MS = 15_000;
export const DEFAULT_CONTROL_BACKOFF: BackoffOptions = Object.freeze({ baseMs: 500, maxMs: 30_000 });
export const DEFAULT_SNAPSHOT_DECODE: SnapshotDecodeLimits = Object.freeze({
  maxDepth: DEFAULT_MESH_LIMITS.maxDepth,
  inlineBytes: 256 * 1024,
  workerMemoryMb: DEFAULT_PARSE_BUDGET.workerMemoryMb,
  timeoutMs: DEFAULT_PARSE_BUDGET.timeoutMs,
});

/** host and port of `host:port` / `[v6]:port`. */
export function parseControlAddr(value: string): Result<{ host: string; port: number }, DiscoveryError> {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !(port > 0 && port <= 65535)) {
    return err(new DiscoveryError(DISCOVERY_ERRORS.CONTROL_ADDR, `control plane address "${value}" is not host:port (e.g. tsmesh-control.tsmesh-system.svc:15010)`));
  }
  return ok({ host, port });
}

export class ControlPlaneSource implements MeshProvider {
  readonly controlAddr: string;
  private readonly options: ControlPlaneSourceOptions;
  private readonly target: Result<StreamTarget, DiscoveryError>;
  private readonly log: Logger;
  private readonly failureLog: RateLimitedLog;
  private readonly backoff: BackoffOptions;
  private readonly decodeLimits: SnapshotDecodeLimits;
  /** Lines are decoded and answered one at a time, in order; close() cancels a parse under way. */
  private decoding: Promise<void> = Promise.resolve();
  /**
   * The newest line not yet decoded. A line arriving while another is parsed replaces one still
   * waiting (every snapshot replaces the last; the one skipped is never answered), so at most two
   * lines are held however fast they come.
   */
  private waiting: Buffer | undefined;
  private readonly cancel = new AbortController();
  private readonly listeners = new SnapshotListeners();
  private snapshot: MeshSnapshot | undefined;
  private stream: ControlStream | undefined;
  private connected = false;
  private failures = 0;
  private lastError: ControlPlaneStatus['lastError'];
  private lastRejected: ControlPlaneStatus['lastRejected'];
  private timer: NodeJS.Timeout | undefined;
  private nextAttemptAt: number | undefined;
  private startTimer: NodeJS.Timeout | undefined;
  private starting: Promise<Result<MeshSnapshot, TsmeshError>> | undefined;
  private settleStart: ((result: Result<MeshSnapshot, TsmeshError>) => void) | undefined;
  private unsubscribeTls: (() => void) | undefined;
  private closed = false;

  constructor(options: ControlPlaneSourceOptions) {
    this.options = options;
    this.controlAddr = options.controlAddr;
    this.log = (options.log ?? logger('discovery.control')).child({ controlAddr: options.controlAddr });
    this.failureLog = new RateLimitedLog(this.log, 30_000);
    this.backoff = { ...DEFAULT_CONTROL_BACKOFF, ...options.backoff };
    this.decodeLimits = Object.freeze({ ...DEFAULT_SNAPSHOT_DECODE, ...options.decode });
    this.target = this.buildTarget();
  }

  /**
   * Connects and resolves with the first snapshot applied. Fails with TSMESH_ERR_CONTROL_ADDR for a bad
   * address, or TSMESH_ERR_CONTROL_START_TIMEOUT (naming the last failure) when none was applied in
   * time; a failed start closes the source.
   */
  start(): Promise<Result<MeshSnapshot, TsmeshError>> {
    if (this.snapshot !== undefined) return Promise.resolve(ok(this.snapshot));
    if (!this.target.ok) return Promise.resolve(this.target);
    if (this.closed) return Promise.resolve(err(closedError()));
    this.starting ??= new Promise((resolve) => {
      this.settleStart = resolve;
      const timeoutMs = this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
      this.startTimer = setTimeout(() => {
        const why = this.lastRejected?.reason ?? this.lastError?.message;
        const error = new DiscoveryError(
          DISCOVERY_ERRORS.CONTROL_START_TIMEOUT,
          `no mesh snapshot from the control plane at ${this.controlAddr} within ${timeoutMs / 1000}s${why === undefined ? '' : `; last error: ${why}`}`,
        );
        this.settle(err(error));
        void this.close();
      }, timeoutMs);
      this.unsubscribeTls = this.options.tlsSource.onChange?.(() => this.certificateChanged());
      this.connect();
    });
    return this.starting;
  }

  current(): MeshSnapshot | undefined {
    return this.snapshot;
  }

  subscribe(listener: (snapshot: MeshSnapshot) => void): () => void {
    return this.listeners.add(listener);
  }

  status(): ControlPlaneStatus {
    return {
      connected: this.connected,
      lastAppliedVersion: this.snapshot?.version,
      lastRejected: this.lastRejected,
      lastError: this.lastError,
      consecutiveFailures: this.failures,
      nextAttemptAt: this.nextAttemptAt === undefined ? undefined : new Date(this.nextAttemptAt).toISOString(),
    };
  }

  /** Disconnects and stops reconnecting; no snapshot is delivered after it resolves. */
  async close(): Promise<void> {
    this.closed = true;
    this.cancel.abort();
    this.waiting = undefined;
    clearTimeout(this.timer);
    clearTimeout(this.startTimer);
    this.timer = undefined;
    this.nextAttemptAt = undefined;
    this.unsubscribeTls?.();
    this.unsubscribeTls = undefined;
    this.settle(err(closedError()));
    this.connected = false;
    const stream = this.stream;
    this.stream = undefined;
    await stream?.close();
  }

  private buildTarget(): Result<StreamTarget, DiscoveryError> {
    const address = parseControlAddr(this.options.controlAddr);
    if (!address.ok) return address;
    const { host, port } = address.value;
    const name = this.options.serverName ?? host;
    let check: StreamTarget['checkServerIdentity'] = (_host, cert) => checkServerIdentity(name, cert);
    const expected = this.options.serverIdentity;
    if (expected !== undefined) {
      const parsed = parseSpiffeId(expected);
      if (!parsed.ok) return err(new DiscoveryError(DISCOVERY_ERRORS.CONTROL_ADDR, `expected control plane identity: ${parsed.error.message}`));
      check = (_host: string, cert: PeerCertificate) => {
        const peer = peerIdentityFromCertificate(cert, parsed.value.trustDomain);
        if (!peer.ok) return new Error(`the control plane's certificate: ${peer.error.message}`);
        return peer.value.spiffeId === expected ? undefined : new Error(`the control plane presented ${peer.value.spiffeId}, expected ${expected}`);
      };
    }
    return ok({
      host,
      port,
      servername: isIP(name) === 0 ? name : undefined,
      checkServerIdentity: check,
      podName: this.options.podName,
      connectTimeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      keepaliveMs: this.options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS,
      maxMessageBytes: this.options.maxMessageBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES,
      shareAboveBytes: this.decodeLimits.inlineBytes,
    });
  }

  private connect(): void {
    this.timer = undefined;
    this.nextAttemptAt = undefined;
    if (this.closed || this.stream !== undefined || !this.target.ok) return;
    const context = this.options.tlsSource.clientContext();
    if (context === undefined) {
      this.lost(new DiscoveryError(DISCOVERY_ERRORS.CONTROL_NO_IDENTITY, 'no workload certificate yet: the control plane accepts mTLS connections only'));
      return;
    }
    const stream: ControlStream = new ControlStream(this.target.value, {
      established: () => {
        if (this.stream !== stream) return;
        this.connected = true;
        this.log.info({ failures: this.failures }, 'connected to the control plane');
      },
      line: (bytes) => {
        if (this.stream === stream) this.receive(stream, bytes);
      },
      oversized: (bytes, version) => {
        if (this.stream === stream) this.oversized(stream, bytes, version);
      },
      lost: (error) => {
        if (this.stream === stream) this.lost(error);
      },
    });
    this.stream = stream;
    stream.open(context);
  }

  private receive(stream: ControlStream, bytes: Buffer): void {
    // The control plane speaks: whatever went wrong before is over, and the next loss retries quickly.
    this.failures = 0;
    this.lastError = undefined;
    this.waiting = bytes;
    this.inOrder(stream, async () => {
      const line = this.waiting;
      this.waiting = undefined;
      if (line === undefined) return;
      const decoded = await decodeSnapshotLine(line, this.decodeLimits, this.cancel.signal);
      if (this.stream !== stream || this.closed) return;
      if (decoded.ok) return await this.apply(stream, decoded.value);
      if (decoded.error.kind === 'rejected') return this.reject(stream, decoded.error.version, decoded.error.error);
      stream.drop(decoded.error.error);
    });
  }

  /** A line over the size limit: NACKed, unread, for the version it names; without one, not the protocol. */
  private oversized(stream: ControlStream, bytes: number, version: string | undefined): void {
    const limit = this.options.maxMessageBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES;
    const size = `${formatBytes(bytes)} (${bytes} bytes), over the size limit of ${formatBytes(limit)}`;
    this.waiting = undefined;
    this.inOrder(stream, () => {
      if (version === undefined) return stream.drop(new DiscoveryError(DISCOVERY_ERRORS.CONTROL_PROTOCOL, `the control plane sent a message of ${size}, naming no snapshot version`));
      this.reject(stream, version, new DiscoveryError(DISCOVERY_ERRORS.SNAPSHOT_TOO_LARGE, `snapshot ${version}: ${size}`));
    });
  }

  /** Runs `step` after the lines before it were answered, unless the stream is gone by then. */
  private inOrder(stream: ControlStream, step: () => void | Promise<void>): void {
    this.decoding = this.decoding
      .then(() => (this.stream === stream && !this.closed ? step() : undefined))
      .catch((cause: unknown) => this.log.error({ err: cause }, 'handling a mesh snapshot failed'));
  }

  private reject(stream: ControlStream, version: string, error: DiscoveryError): void {
    this.lastRejected = { version, reason: error.message, at: new Date().toISOString() };
    stream.send({ type: 'nack', version, error: error.message });
    this.log.error({ version, code: error.code, reason: error.message, keeping: this.snapshot?.version }, 'mesh snapshot refused; the last good mesh stays in force');
  }

  private async apply(stream: ControlStream, checked: CheckedSnapshot): Promise<void> {
    const snapshot = await buildSnapshotInSlices(checked.objects, checked.version);
    if (this.closed) return;
    stream.send({ type: 'ack', version: snapshot.version });
    if (snapshot.version === this.snapshot?.version) return;
    this.snapshot = snapshot;
    this.log.info({ version: snapshot.version, services: snapshot.services.length, pods: snapshot.pods.length }, 'mesh snapshot applied');
    if (this.settle(ok(snapshot))) return;
    this.listeners.deliver(snapshot, this.log);
  }

  private lost(error: DiscoveryError): void {
    this.stream = undefined;
    this.waiting = undefined;
    const wasConnected = this.connected;
    this.connected = false;
    if (this.closed) return;
    this.failures++;
    this.lastError = { code: error.code, message: error.message, at: new Date().toISOString() };
    const delay = retryDelayMs(this.failures, this.backoff, this.options.random ?? Math.random);
    this.nextAttemptAt = Date.now() + delay;
    this.timer = setTimeout(() => this.connect(), delay);
    const fields = { code: error.code, reason: error.message, failures: this.failures, retryInMs: delay, keeping: this.snapshot?.version };
    if (wasConnected) this.log.warn(fields, 'lost the control plane; serving the last mesh until it is back');
    else this.failureLog.warn(fields, 'cannot stream the mesh from the control plane; retrying');
  }

  /** A new certificate while waiting to retry: try now (it may be what the control plane wanted). */
  private certificateChanged(): void {
    if (this.closed || this.stream !== undefined || this.timer === undefined) return;
    clearTimeout(this.timer);
    this.connect();
  }

  /** Resolves a pending start(); true when there was one. */
  private settle(result: Result<MeshSnapshot, TsmeshError>): boolean {
    const settle = this.settleStart;
    if (settle === undefined) return false;
    this.settleStart = undefined;
    clearTimeout(this.startTimer);
    settle(result);
    return true;
  }
}

function closedError(): DiscoveryError {
  return new DiscoveryError(DISCOVERY_ERRORS.CONTROL_CLOSED, 'the control-plane source was closed');
}
