// HTTP/1.1 forwarding as a lean relay (`--http1-engine relay`), the same behaviour and answers as
// H1Forwarder (http/h1.ts) without node:http's per-request objects: per client connection one
// llhttp REQUEST parser (connection.ts; llhttp.ts says why Node's parser is driven directly), per
// request one Exchange (exchange.ts) on a pooled raw upstream connection (pool.ts).
import type { Socket } from 'node:net';
import type { H1Deps, H1Options } from '../http/h1.js';
import { plainDialer, type Dialer } from '../upstream/dial.js';
import { metricsRecorder, plainCalls, type CallFactory } from '../upstream/call.js';
import { H1UpstreamPool } from '../upstream/h1-pool.js';
import { h1MirrorSender, type MirrorCounter, type MirrorSender } from '../http/mirror.js';
import type { RequestTelemetry } from '../telemetry/index.js';
import { ClientConnection } from './connection.js';
import { H1Pool } from './pool.js';

export class H1Relay {
  readonly telemetry: RequestTelemetry;
  readonly dial: Dialer;
  /** Makes each request's upstream call (the upstream layer's, with its cluster limits). */
  readonly calls: CallFactory;
  readonly pool: H1Pool;
  readonly connections = new Set<ClientConnection>();
  /** RequestMirror copies: sent on node:http connections of their own (made on the first copy). */
  readonly mirrors: MirrorSender;
  readonly countMirror: MirrorCounter;
  private mirrorPool: H1UpstreamPool | undefined;
  draining = false;

  constructor(
    readonly options: H1Options,
    deps: H1Deps,
  ) {
    this.telemetry = deps.telemetry;
    this.dial = deps.dial ?? plainDialer;
    this.calls = deps.calls ?? plainCalls(metricsRecorder(deps.telemetry.metrics));
    this.pool = new H1Pool(this.dial, options.connectTimeoutMs, options.keepAliveTimeoutMs, options.maxHeaderBytes);
    this.countMirror = (cluster, result) => deps.telemetry.metrics.routeMirror(cluster, result);
    const mirrorPool = (): H1UpstreamPool => (this.mirrorPool ??= new H1UpstreamPool({ connectTimeoutMs: options.connectTimeoutMs, idleTimeoutMs: options.keepAliveTimeoutMs }, this.dial));
    this.mirrors = h1MirrorSender(mirrorPool, this.calls, this.countMirror);
  }

  /** Takes a detected HTTP/1 connection (with its context attached) and serves it. */
  accept(socket: Socket): void {
    const conn = new ClientConnection(this, socket);
    this.connections.add(conn);
    socket.resume();
  }

  /**
   * Graceful drain: idle keep-alive connections close now; a request in flight or arriving on an
   * open connection is answered with `Connection: close`, so its connection ends after it.
   */
  drain(): void {
    this.draining = true;
    for (const conn of this.connections) conn.drain();
  }

  close(): void {
    for (const conn of [...this.connections]) conn.destroy();
    this.pool.close();
    this.mirrorPool?.close();
  }
}
