// MeshDistributor: serves the mesh to sidecars. Authenticates each stream by its client certificate,
// sends the workload's view of the current snapshot at once, then a new view whenever the provider's
// snapshot changes (debounced), and records what every sidecar acknowledged or refused.
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import {
  DEFAULT_ROOT_NAMESPACE,
  DISTRIBUTION_ERRORS,
  MESH_STREAM_PATH,
  NDJSON_CONTENT_TYPE,
  POD_NAME_HEADER,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  logger,
  MaxDelayDebounce,
  type DistributionErrorBody,
  type ClientMessage,
  type Logger,
  type MeshProvider,
  type MeshSnapshot,
} from '@tsmesh/common';
import { SidecarConnection, type ConnectionStatus } from './connection.js';
import { CONTROL_DISTRIBUTION_ERRORS } from '../errors.js';
import { workloadOf } from './identity.js';
import { SnapshotViews, type ScopedView } from './views.js';

export const DEFAULT_DISTRIBUTION_DEBOUNCE_MS = 100;
export const DEFAULT_DISTRIBUTION_MAX_DELAY_MS = 1000;
export { DEFAULT_ROOT_NAMESPACE };
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

export interface MeshDistributorOptions {
  /** Client certificates must carry a SPIFFE ID of this trust domain (default cluster.local). */
  readonly trustDomain?: string;
  /** Where mesh-wide PeerAuthentications live; every workload receives them (default tsmesh-system). */
  readonly rootNamespace?: string;
  /** Quiet time after a provider change before sidecars are sent the new snapshot (default 100 ms). */
  readonly debounceMs?: number;
  /** The longest a change waits under continuous churn (default 1 s). */
  readonly maxDelayMs?: number;
  readonly log?: Logger;
  /** Told of every push and every ACK/NACK (the control plane's metrics). */
  readonly observer?: DistributionObserver;
}

/** What the control plane's metrics hear from the distributor. */
export interface DistributionObserver {
  /**
   * A snapshot was written to a sidecar's stream: `connect` the first one of a new stream (seconds
   * since the stream opened), `change` a new snapshot (seconds since the provider's change arrived).
   */
  pushed(trigger: 'connect' | 'change', seconds: number): void;
  /** A sidecar acknowledged or refused a snapshot. */
  answered(message: ClientMessage): void;
}

/** Counters and the snapshot in force, for the debug endpoint. */
export interface DistributorStatus {
  readonly sourceVersion: string | undefined;
  /** Provider snapshots turned into views for sidecars (after debouncing). */
  readonly publishes: number;
  readonly connections: readonly ConnectionStatus[];
}

export class MeshDistributor {
  readonly trustDomain: string;
  readonly rootNamespace: string;
  private readonly provider: MeshProvider;
  private readonly log: Logger;
  private readonly active = new Map<number, SidecarConnection>();
  private views: SnapshotViews | undefined;
  private latest: MeshSnapshot | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Publishes of a new snapshot, debounced with a ceiling. */
  private readonly pendingPublish: MaxDelayDebounce;
  private nextId = 1;
  private publishes = 0;
  private readonly observer: DistributionObserver | undefined;
  /** When the first provider change not yet published arrived (push latency starts there). */
  private changedAt: number | undefined;
  /** When the change behind the views in force arrived. */
  private viewsChangedAt = performance.now();
  /** When each open stream started, until its first snapshot is written. */
  private readonly openedAt = new Map<number, number>();
  private closed = false;

  constructor(provider: MeshProvider, options: MeshDistributorOptions = {}) {
    this.provider = provider;
    this.trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
    this.pendingPublish = new MaxDelayDebounce(() => this.publish(), {
      debounceMs: options.debounceMs ?? DEFAULT_DISTRIBUTION_DEBOUNCE_MS,
      maxDelayMs: options.maxDelayMs ?? DEFAULT_DISTRIBUTION_MAX_DELAY_MS,
    });
    this.log = options.log ?? logger('control.distribution');
    this.observer = options.observer;
  }

  /** Follows the provider, which must have started (its current snapshot is served at once). */
  start(): void {
    if (this.unsubscribe !== undefined || this.closed) return;
    this.latest = this.provider.current();
    if (this.latest !== undefined) this.publish();
    this.unsubscribe = this.provider.subscribe((snapshot) => {
      this.latest = snapshot;
      this.changedAt ??= performance.now();
      this.schedule();
    });
  }

  /** The `stream` handler of the HTTP/2 server: `POST /v1/mesh/stream` from an authenticated sidecar. */
  handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', (error) => this.log.debug({ err: error }, 'sidecar stream error'));
    if (headers[':path'] !== MESH_STREAM_PATH) return refuse(stream, 404, DISTRIBUTION_ERRORS.NOT_FOUND, `no such path; sidecars use POST ${MESH_STREAM_PATH}`);
    if (headers[':method'] !== 'POST') return refuse(stream, 405, DISTRIBUTION_ERRORS.METHOD, `${MESH_STREAM_PATH} takes POST`);
    const socket = stream.session?.socket as TLSSocket | undefined;
    if (socket === undefined) return refuse(stream, 500, DISTRIBUTION_ERRORS.INTERNAL, 'the connection is gone');
    const identity = workloadOf(socket, this.trustDomain);
    if (!identity.ok) {
      const status = identity.error.code === CONTROL_DISTRIBUTION_ERRORS.UNAUTHENTICATED ? 401 : 403;
      this.log.warn({ remoteAddress: socket.remoteAddress, code: identity.error.code, reason: identity.error.message }, 'sidecar stream refused');
      return refuse(stream, status, identity.error.code, identity.error.message);
    }
    const protocol = headers[PROTOCOL_HEADER];
    if (protocol !== undefined && protocol !== PROTOCOL_VERSION) {
      return refuse(stream, 400, DISTRIBUTION_ERRORS.PROTOCOL, `protocol ${String(protocol)} is not spoken here (this control plane speaks ${PROTOCOL_VERSION})`);
    }
    if (this.closed || this.views === undefined) return refuse(stream, 503, DISTRIBUTION_ERRORS.UNAVAILABLE, 'the control plane has no mesh snapshot yet');
    const pod = headers[POD_NAME_HEADER];
    const connection = new SidecarConnection(stream, {
      id: this.nextId++,
      identity: identity.value,
      pod: typeof pod === 'string' && pod !== '' ? pod.slice(0, 253) : undefined,
      remoteAddress: socket.remoteAddress,
      certificateExpiresAt: peerCertificateExpiry(socket),
      log: this.log,
      ...(this.observer === undefined ? {} : { onSent: (c, _view, forced) => this.sent(c, forced), onMessage: (_c, message) => this.observer?.answered(message) }),
    });
    this.active.set(connection.id, connection);
    if (this.observer !== undefined) this.openedAt.set(connection.id, performance.now());
    stream.once('close', () => {
      this.active.delete(connection.id);
      this.openedAt.delete(connection.id);
      this.log.info({ connection: connection.id, spiffeId: identity.value.spiffeId }, 'sidecar disconnected');
    });
    stream.respond({ ':status': 200, 'content-type': NDJSON_CONTENT_TYPE, [PROTOCOL_HEADER]: PROTOCOL_VERSION });
    this.log.info({ connection: connection.id, spiffeId: identity.value.spiffeId, pod: connection.status().pod }, 'sidecar connected');
    // Every (re)connect starts with the whole current snapshot.
    connection.offer(this.viewFor(connection), true);
  }

  /** Every open stream, oldest first. */
  connections(): ConnectionStatus[] {
    return [...this.active.values()].map((c) => c.status());
  }

  status(): DistributorStatus {
    return { sourceVersion: this.views?.sourceVersion, publishes: this.publishes, connections: this.connections() };
  }

  /** What a workload of `namespace` is sent for the current snapshot (undefined before the first). */
  viewForNamespace(namespace: string): ScopedView | undefined {
    return this.views?.forNamespace(namespace);
  }

  /** Sends a pending change now instead of at the end of the debounce. */
  flush(): void {
    this.pendingPublish.flush();
  }

  /** Stops following the provider and ends every stream (sidecars keep their snapshot and reconnect). */
  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    this.pendingPublish.cancel();
    for (const connection of this.active.values()) connection.end();
  }

  private viewFor(connection: SidecarConnection): ScopedView {
    return (this.views as SnapshotViews).forNamespace(connection.identity.namespace);
  }

  /** A publish `debounceMs` after the last change, and at most `maxDelayMs` after the first. */
  private schedule(): void {
    if (this.closed) return;
    this.pendingPublish.schedule();
  }

  private publish(): void {
    this.pendingPublish.cancel();
    const snapshot = this.latest;
    const changedAt = this.changedAt ?? performance.now();
    this.changedAt = undefined;
    if (this.closed || snapshot === undefined || snapshot.version === this.views?.sourceVersion) return;
    this.views = new SnapshotViews(snapshot, this.rootNamespace);
    this.viewsChangedAt = changedAt;
    this.publishes++;
    this.log.info({ version: snapshot.version, sidecars: this.active.size }, 'distributing a new mesh snapshot');
    for (const connection of this.active.values()) connection.offer(this.viewFor(connection));
  }

  private sent(connection: SidecarConnection, forced: boolean): void {
    const opened = this.openedAt.get(connection.id);
    this.openedAt.delete(connection.id);
    const from = forced && opened !== undefined ? opened : this.viewsChangedAt;
    this.observer?.pushed(forced ? 'connect' : 'change', (performance.now() - from) / 1000);
  }
}

/** When the peer's certificate expires; undefined when the socket does not say. */
function peerCertificateExpiry(socket: TLSSocket): Date | undefined {
  const validTo = socket.getPeerCertificate?.()?.valid_to;
  if (typeof validTo !== 'string' || validTo === '') return undefined;
  const at = new Date(validTo);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

function refuse(stream: ServerHttp2Stream, status: number, code: string, message: string): void {
  if (stream.destroyed || stream.closed) return;
  const body: DistributionErrorBody = { error: { code, message } };
  stream.respond({ ':status': status, 'content-type': 'application/json' });
  stream.end(JSON.stringify(body));
}
