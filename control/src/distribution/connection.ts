// One sidecar's stream: what was sent, acknowledged and refused, and the writing of snapshots with
// backpressure (a sidecar that reads slowly gets the newest snapshot once it catches up, never a
// queue of stale ones).
import type { ServerHttp2Stream } from 'node:http2';
import { LineDecoder, MAX_CLIENT_MESSAGE_BYTES, parseClientMessage, type ClientMessage, type Logger } from '@tsmesh/common';
import type { ScopedView, WorkloadIdentity } from './views.js';

export interface VersionMark {
  readonly version: string;
  /** RFC 3339. */
  readonly at: string;
}

export interface NackMark extends VersionMark {
  readonly error: string;
}

/** The state of one stream, as `GET /debug/connections` shows it. */
export interface ConnectionStatus {
  readonly id: number;
  readonly spiffeId: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** From the `tsmesh-pod-name` header: what the sidecar says, not verified. */
  readonly pod: string | undefined;
  readonly remoteAddress: string | undefined;
  readonly connectedAt: string;
  /** The last time the sidecar said anything (an ACK or NACK), else when it connected. RFC 3339. */
  readonly lastSeen: string;
  /** When the client certificate the sidecar connected with expires (RFC 3339), if known. */
  readonly certificateExpiresAt: string | undefined;
  readonly lastSent: VersionMark | undefined;
  readonly lastAcked: VersionMark | undefined;
  readonly lastNacked: NackMark | undefined;
  readonly sent: number;
  readonly acked: number;
  readonly nacked: number;
  /** A newer snapshot waits for the sidecar to read the last one. */
  readonly pending: boolean;
}

export interface SidecarConnectionOptions {
  readonly id: number;
  readonly identity: WorkloadIdentity;
  readonly pod: string | undefined;
  readonly remoteAddress: string | undefined;
  /** When the sidecar's client certificate expires. */
  readonly certificateExpiresAt?: Date | undefined;
  readonly log: Logger;
  readonly now?: () => Date;
  readonly onMessage?: (connection: SidecarConnection, message: ClientMessage) => void;
  /** A snapshot was written to the stream; `forced` on the first one of a stream (metrics). */
  readonly onSent?: (connection: SidecarConnection, view: ScopedView, forced: boolean) => void;
}

export class SidecarConnection {
  readonly id: number;
  readonly identity: WorkloadIdentity;
  private readonly stream: ServerHttp2Stream;
  private readonly options: SidecarConnectionOptions;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly decoder = new LineDecoder(MAX_CLIENT_MESSAGE_BYTES);
  private readonly connectedAt: string;
  private lastSeen: string;
  private lastSent: VersionMark | undefined;
  private lastAcked: VersionMark | undefined;
  private lastNacked: NackMark | undefined;
  private counts = { sent: 0, acked: 0, nacked: 0 };
  private blocked = false;
  private pending: ScopedView | undefined;

  constructor(stream: ServerHttp2Stream, options: SidecarConnectionOptions) {
    this.stream = stream;
    this.options = options;
    this.id = options.id;
    this.identity = options.identity;
    this.now = options.now ?? (() => new Date());
    this.connectedAt = this.now().toISOString();
    this.lastSeen = this.connectedAt;
    this.log = options.log.child({ connection: options.id, spiffeId: options.identity.spiffeId, ...(options.pod === undefined ? {} : { pod: options.pod }) });
    stream.on('data', (chunk: Buffer) => this.read(chunk));
  }

  /**
   * Sends `view` unless it is the version last sent (`force`: send it anyway, as on a new stream).
   * While the sidecar has not read the last snapshot, only the newest offered is kept, and sent on drain.
   */
  offer(view: ScopedView, force = false): void {
    if (this.stream.destroyed || this.stream.closed) return;
    if (this.blocked) {
      this.pending = view;
      return;
    }
    if (!force && view.version === this.lastSent?.version) return;
    this.pending = undefined;
    let flushed = true;
    for (const part of view.parts) flushed = this.stream.write(part);
    this.lastSent = { version: view.version, at: this.now().toISOString() };
    this.counts.sent++;
    this.log.debug({ version: view.version, objects: view.objectCount }, 'snapshot sent');
    this.options.onSent?.(this, view, force);
    if (!flushed) {
      this.blocked = true;
      this.stream.once('drain', () => {
        this.blocked = false;
        const next = this.pending;
        if (next !== undefined) this.offer(next);
      });
    }
  }

  status(): ConnectionStatus {
    return {
      id: this.id,
      spiffeId: this.identity.spiffeId,
      namespace: this.identity.namespace,
      serviceAccount: this.identity.serviceAccount,
      pod: this.options.pod,
      remoteAddress: this.options.remoteAddress,
      connectedAt: this.connectedAt,
      lastSeen: this.lastSeen,
      certificateExpiresAt: this.options.certificateExpiresAt?.toISOString(),
      lastSent: this.lastSent,
      lastAcked: this.lastAcked,
      lastNacked: this.lastNacked,
      ...this.counts,
      pending: this.pending !== undefined,
    };
  }

  /** Ends the stream (the sidecar reconnects, to this server or another replica). */
  end(): void {
    if (!this.stream.destroyed && !this.stream.closed) this.stream.end();
  }

  private read(chunk: Buffer): void {
    const lines = this.decoder.push(chunk);
    if (!lines.ok) {
      this.log.warn({ code: lines.error.code, reason: lines.error.message }, 'closing a sidecar stream: its message is too long');
      this.stream.close();
      return;
    }
    for (const line of lines.value) {
      const message = parseClientMessage(line);
      if (!message.ok) {
        this.log.warn({ code: message.error.code, reason: message.error.message }, 'ignoring a message the sidecar sent');
        continue;
      }
      this.record(message.value);
      this.options.onMessage?.(this, message.value);
    }
  }

  private record(message: ClientMessage): void {
    const at = this.now().toISOString();
    this.lastSeen = at;
    if (message.type === 'ack') {
      this.lastAcked = { version: message.version, at };
      this.counts.acked++;
      this.log.debug({ version: message.version }, 'snapshot acknowledged');
    } else {
      this.lastNacked = { version: message.version, error: message.error, at };
      this.counts.nacked++;
      this.log.warn({ version: message.version, reason: message.error }, 'a sidecar refused a snapshot; it keeps its last good one');
    }
  }
}
