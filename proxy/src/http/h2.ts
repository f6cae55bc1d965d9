// HTTP/2 and gRPC forwarding on tsmesh's own codec (../h2): every client stream picks its own
// endpoint and is relayed onto a pooled upstream connection (h2c, or mesh mTLS), frame by frame.
// Bodies cross as views of the bytes read; each side's window is granted back only as the other
// side takes the bytes, so a slow reader holds its own stream and nobody else's. The proxy's own
// answers carry x-tsmesh-proxy-error.
import type { Socket } from 'node:net';
import { logger } from '@tsmesh/common';
import { H2Connection, type H2ConnectionOwner } from '../h2/connection.js';
import { ErrorCode } from '../h2/frame.js';
import { h2Limits, type H2Counters, type H2Limits } from '../h2/limits.js';
import { H2UpstreamPool } from '../h2/pool.js';
import type { H2Stream } from '../h2/stream.js';
import type { RequestHead } from '../h2/validate.js';
import { plainDialer, type Dialer } from '../upstream/dial.js';
import { metricsRecorder, plainCalls, type CallFactory } from '../upstream/call.js';
import { hostPort } from '../upstream/selector.js';
import type { RequestTelemetry } from '../telemetry/index.js';
import { httpContextOf, type HttpConnectionContext } from './context.js';
import { H2Exchange } from './h2-exchange.js';
import { h2MirrorSender, type MirrorCounter, type MirrorSender } from './mirror.js';

const log = logger('http.h2');

export interface H2Options {
  readonly connectTimeoutMs: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients (overrides `limits`). */
  readonly maxConcurrentStreams?: number;
  readonly limits?: Partial<H2Limits>;
}

export interface H2Deps {
  readonly telemetry: RequestTelemetry;
  readonly dial?: Dialer;
  /** Counts what the codec's protections did (tsmesh_h2_protection_total). */
  readonly counters?: H2Counters;
  /** Makes each stream's upstream call (the upstream layer's, with its cluster limits); default: plain calls counted in the metrics. */
  readonly calls?: CallFactory;
}

export class H2Forwarder implements H2ConnectionOwner {
  readonly pool: H2UpstreamPool;
  readonly limits: H2Limits;
  /** @internal for H2Exchange */
  readonly telemetry: RequestTelemetry;
  /** @internal for H2Exchange */
  readonly dial: Dialer;
  /** @internal for H2Exchange */
  readonly calls: CallFactory;
  /** @internal for H2Exchange: RequestMirror copies, on the same upstream pool. */
  readonly mirrors: MirrorSender;
  /** @internal for H2Exchange */
  readonly countMirror: MirrorCounter;
  private readonly counters: H2Counters | undefined;
  private readonly connections = new Set<H2Connection>();
  private draining = false;

  constructor(options: H2Options, deps: H2Deps) {
    this.telemetry = deps.telemetry;
    this.dial = deps.dial ?? plainDialer;
    this.calls = deps.calls ?? plainCalls(metricsRecorder(deps.telemetry.metrics));
    this.counters = deps.counters;
    this.limits = h2Limits({ ...(options.maxConcurrentStreams ? { maxConcurrentStreams: options.maxConcurrentStreams } : {}), ...options.limits });
    this.pool = new H2UpstreamPool(options.connectTimeoutMs, this.dial, this.limits, this.counters);
    this.countMirror = (cluster, result) => deps.telemetry.metrics.routeMirror(cluster, result);
    this.mirrors = h2MirrorSender(this.pool, this.calls, this.countMirror);
  }

  /** Serves a client connection that has an HTTP context attached (see context.ts). */
  accept(socket: Socket): void {
    const conn = new H2Connection(socket, 'server', this.limits, this, this.counters);
    conn.userData = httpContextOf(socket);
    this.connections.add(conn);
    conn.start();
    socket.resume();
    if (this.draining) conn.goaway(ErrorCode.NO_ERROR);
  }

  /** Client connections being served now. */
  get clientConnections(): number {
    return this.connections.size;
  }

  /**
   * Graceful drain: every client connection gets GOAWAY (NO_ERROR, last stream id = the last it
   * opened), its streams in flight finish, then it closes; new connections are sent GOAWAY at once.
   */
  drain(): void {
    this.draining = true;
    for (const conn of this.connections) conn.goaway(ErrorCode.NO_ERROR);
  }

  close(): void {
    this.pool.close();
    for (const conn of this.connections) conn.destroy('forwarder closed');
    this.connections.clear();
  }

  onStream(stream: H2Stream, head: RequestHead, fields: string[], endStream: boolean): void {
    const conn = stream.conn;
    const ctx = conn.userData as HttpConnectionContext | undefined;
    const socket = conn.socket;
    new H2Exchange(this, stream, head, fields, endStream, ctx, hostPort(socket.remoteAddress, socket.remotePort)).start();
  }

  onRejectedStream(stream: H2Stream, reason: string): void {
    log.debug({ stream: stream.id, peer: stream.conn.socket.remoteAddress, reason }, 'request refused by the codec');
  }

  onClose(conn: H2Connection): void {
    this.connections.delete(conn);
    if (conn.closeReason && conn.closeReason !== 'socket closed') log.debug({ reason: conn.closeReason }, 'client connection closed');
  }
}

export { ErrorCode };
