// One connection attempt to the control plane: TLS 1.3 with the workload certificate, one HTTP/2
// stream `POST /v1/mesh/stream`, snapshot lines in (bounded, not yet parsed), ack/nack lines out,
// PINGs to notice a dead peer. It reports exactly once that it is gone (and why); the source decides
// when to try again.
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import { createRequire } from 'node:module';
import { connect as connectTls, type PeerCertificate, type SecureContext } from 'node:tls';
import {
  MESH_STREAM_PATH,
  NDJSON_CONTENT_TYPE,
  POD_NAME_HEADER,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  encodeMessage,
  type ClientMessage,
} from '@tsmesh/common';
import { DISCOVERY_ERRORS, DiscoveryError } from '../errors.js';
import { SnapshotLineReader, versionOf } from './lines.js';

/** node:http2 (6 MiB of RSS) is loaded by the first control-plane stream, not by a sidecar run from a mesh file. */
const loadHttp2 = (): typeof import('node:http2') => createRequire(import.meta.url)('node:http2') as typeof import('node:http2');

/** Where and how to connect. */
export interface StreamTarget {
  readonly host: string;
  readonly port: number;
  /** SNI; undefined for an IP address. */
  readonly servername: string | undefined;
  /** Verifies the control plane's certificate (host name or SPIFFE ID): undefined when acceptable. */
  readonly checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
  readonly podName: string | undefined;
  readonly connectTimeoutMs: number;
  readonly keepaliveMs: number;
  readonly maxMessageBytes: number;
  /** Lines longer than this are assembled in shared memory, for a parse worker. */
  readonly shareAboveBytes: number;
}

export interface StreamEvents {
  /** The control plane accepted the stream (200). */
  established(): void;
  /** One line (a snapshot, unparsed) within the size limit. */
  line(bytes: Buffer): void;
  /** A line over the size limit, skipped unread: its size, and the version its first bytes name. */
  oversized(bytes: number, version: string | undefined): void;
  /** Called once, when the attempt fails or the connection is lost. */
  lost(error: DiscoveryError): void;
}

const MAX_ERROR_BODY = 4096;

function unreachable(message: string, cause?: unknown): DiscoveryError {
  return new DiscoveryError(DISCOVERY_ERRORS.CONTROL_UNREACHABLE, message, cause === undefined ? undefined : { cause });
}

export class ControlStream {
  private readonly target: StreamTarget;
  private readonly events: StreamEvents;
  private readonly reader: SnapshotLineReader;
  private session: ClientHttp2Session | undefined;
  private stream: ClientHttp2Stream | undefined;
  private status: number | undefined;
  private errorBody = '';
  private done = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(target: StreamTarget, events: StreamEvents) {
    this.target = target;
    this.events = events;
    this.reader = new SnapshotLineReader(target.maxMessageBytes, target.shareAboveBytes);
  }

  open(context: SecureContext): void {
    const { host, port, servername } = this.target;
    const authority = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const session = loadHttp2().connect(authority, {
      createConnection: () =>
        connectTls({
          host,
          port,
          secureContext: context,
          ...(servername === undefined ? {} : { servername }),
          ALPNProtocols: ['h2'],
          checkServerIdentity: this.target.checkServerIdentity,
        }),
    });
    this.session = session;
    session.on('error', (error) => this.fail(unreachable(`cannot reach the control plane at ${host}:${port}: ${error.message}`, error)));
    session.on('close', () => this.fail(unreachable(`the connection to the control plane at ${host}:${port} closed`)));
    this.connectTimer = setTimeout(
      () => this.fail(unreachable(`the control plane at ${host}:${port} did not answer within ${this.target.connectTimeoutMs} ms`)),
      this.target.connectTimeoutMs,
    );
    const stream = session.request(
      {
        ':method': 'POST',
        ':path': MESH_STREAM_PATH,
        'content-type': NDJSON_CONTENT_TYPE,
        [PROTOCOL_HEADER]: PROTOCOL_VERSION,
        ...(this.target.podName === undefined ? {} : { [POD_NAME_HEADER]: this.target.podName }),
      },
      { endStream: false },
    );
    this.stream = stream;
    stream.on('response', (headers) => {
      clearTimeout(this.connectTimer);
      this.status = Number(headers[':status']);
      if (this.status === 200) {
        this.keepAlive();
        this.events.established();
      }
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.status === 200) this.read(chunk);
      else if (this.errorBody.length < MAX_ERROR_BODY) this.errorBody += chunk.toString('utf8').slice(0, MAX_ERROR_BODY - this.errorBody.length);
    });
    stream.on('end', () => this.fail(this.status === 200 ? unreachable('the control plane ended the stream') : this.refusal()));
    stream.on('error', (error) => this.fail(unreachable(`the stream to the control plane failed: ${error.message}`, error)));
    stream.on('close', () => this.fail(this.status === undefined || this.status === 200 ? unreachable('the stream to the control plane closed') : this.refusal()));
  }

  send(message: ClientMessage): void {
    const stream = this.stream;
    if (this.done || stream === undefined || stream.destroyed || !stream.writable) return;
    stream.write(encodeMessage(message));
  }

  /** Closes the connection without reporting it lost; resolves once the session is gone. */
  close(): Promise<void> {
    this.done = true;
    this.stopTimers();
    const session = this.session;
    if (session === undefined || session.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      session.once('close', () => resolve());
      session.destroy();
    });
  }

  /** Drops the connection for `error` (a message that is not the protocol): reported as lost. */
  drop(error: DiscoveryError): void {
    this.fail(error);
  }

  private read(chunk: Buffer): void {
    for (const line of this.reader.push(chunk)) {
      if (this.done) return;
      if (line.kind === 'too-large') this.events.oversized(line.bytes, versionOf(line.prefix));
      else this.events.line(line.bytes);
    }
  }

  private refusal(): DiscoveryError {
    let detail = this.errorBody.trim();
    try {
      const body = JSON.parse(detail) as { error?: { code?: unknown; message?: unknown } };
      if (typeof body.error?.message === 'string') detail = `${String(body.error.code)}: ${body.error.message}`;
    } catch {
      // Not our JSON error body (a proxy in between?): show it as it came.
    }
    return new DiscoveryError(DISCOVERY_ERRORS.CONTROL_REFUSED, `the control plane refused the stream (HTTP ${this.status})${detail === '' ? '' : `: ${detail}`}`);
  }

  /** A PING per interval; one still unanswered at the next tick means the control plane is gone. */
  private keepAlive(): void {
    if (this.target.keepaliveMs <= 0) return;
    let waiting = false;
    this.pingTimer = setInterval(() => {
      const session = this.session;
      if (session === undefined || session.destroyed) return;
      if (waiting) return this.fail(unreachable(`the control plane did not answer a PING within ${this.target.keepaliveMs} ms`));
      waiting = true;
      const sent = session.ping((error) => {
        if (error === null) waiting = false;
      });
      if (!sent) waiting = false;
    }, this.target.keepaliveMs);
    this.pingTimer.unref();
  }

  private stopTimers(): void {
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
  }

  private fail(error: DiscoveryError): void {
    if (this.done) return;
    this.done = true;
    this.stopTimers();
    this.session?.destroy();
    this.events.lost(error);
  }
}
