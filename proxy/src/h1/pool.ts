// Keep-alive upstream connections of the HTTP/1.1 relay: raw sockets from the Dialer (plain or
// mesh mTLS), one llhttp RESPONSE parser each, pooled per endpoint and expected identity. An idle
// pooled connection closes after the idle timeout or when the endpoint closes or speaks out of turn.
import type { Socket } from 'node:net';
import { poolKey } from '../h2/pool.js';
import { armConnectTimeout, type Dialer } from '../upstream/dial.js';
import type { ConnectionGate } from '../upstream/limits.js';
import type { ConnectionPool } from '../upstream/manager.js';
import type { UpstreamEndpoint } from '../upstream/selector.js';
import { HTTPParser, isParseError, newParser, type LlhttpParser, type ParseError } from './llhttp.js';

/** The exchange using a connection: it receives the response and the connection's fate. */
export interface ResponseSink {
  /** Corked while a read is parsed, so that a head and the body at hand leave in one write. */
  readonly downstream: Socket;
  onReady(): void;
  /** A response head; return 1 when no body follows (HEAD, 1xx, 204/304). */
  onHead(status: number, statusMessage: string, rawHeaders: string[], keepAlive: boolean): number;
  onBody(chunk: Buffer): void;
  onComplete(trailers: string[] | undefined): void;
  /** The connection broke (socket error, early close, unparsable response): never reused. */
  onBroken(error: NodeJS.ErrnoException): void;
  onDrain(): void;
}

const MAX_IDLE_PER_KEY = 256;

export class UpstreamConnection {
  readonly socket: Socket;
  readonly parser: LlhttpParser;
  sink: ResponseSink | null = null;
  /** Whether it served a request before (a reset on it may be the endpoint's idle close). */
  reused = false;
  ready = false;
  broken = false;
  /** The cluster connection slot it holds (given back when it closes). */
  gate: ConnectionGate | undefined;
  /** Released while its parser was running: back to the pool only once the read is parsed to its end. */
  releasePending = false;
  executing = false;
  private headers: string[] = [];
  private inBody = false;

  constructor(
    /** The pool key (endpoint, local address, expected identity) and the endpoint's `ip:port`. */
    readonly key: string,
    readonly endpointKey: string,
    socket: Socket,
    readyEvent: string,
    maxHeaderBytes: number,
    private readonly pool: H1Pool,
  ) {
    this.socket = socket;
    this.parser = newParser(HTTPParser.RESPONSE, maxHeaderBytes, {
      onHeaders: (raw) => {
        for (const h of raw) this.headers.push(h);
      },
      onHeadersComplete: (_maj, _min, raw, _m, _u, status, message, _upgrade, keepAlive) => {
        const rawHeaders = raw ?? this.headers;
        this.headers = [];
        const sink = this.sink;
        if (!sink) {
          this.fail(Object.assign(new Error('response without a request'), { code: 'EPROTO' }));
          return 1;
        }
        const skip = sink.onHead(status ?? 0, message ?? '', rawHeaders, keepAlive);
        if ((status ?? 0) >= 200) this.inBody = true;
        return skip;
      },
      onBody: (chunk) => this.sink?.onBody(chunk),
      onMessageComplete: () => {
        if (!this.inBody) return; // a 1xx: the final response follows
        this.inBody = false;
        const trailers = this.headers.length > 0 ? this.headers : undefined;
        this.headers = [];
        this.sink?.onComplete(trailers);
      },
    });
    socket.once(readyEvent, () => {
      this.ready = true;
      this.sink?.onReady();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.sink?.onDrain());
    socket.on('end', () => this.onEnd());
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(error));
    socket.on('close', () => {
      this.pool.forget(this);
      this.fail(Object.assign(new Error('upstream connection closed'), { code: 'ECONNRESET' }));
    });
    socket.on('timeout', () => {
      // Idle in the pool that long; a connection in use is never timed out here.
      if (!this.sink) socket.destroy();
    });
  }

  private onData(chunk: Buffer): void {
    const sink = this.sink;
    if (!sink) {
      this.socket.destroy(); // an idle connection has nothing to say
      return;
    }
    const downstream = sink.downstream;
    downstream.cork();
    this.executing = true;
    const result = this.parser.execute(chunk);
    this.executing = false;
    downstream.uncork();
    if (isParseError(result)) this.fail(parseFailure(result));
    // Bytes after a complete response in the same read (a response that lied about its length)
    // met no exchange and broke the connection above; only a clean one goes back to the pool.
    if (this.releasePending) {
      this.releasePending = false;
      this.pool.release(this);
    }
  }

  private onEnd(): void {
    // A close-delimited body ends here; a response cut short is an error.
    const result = this.parser.finish();
    if (isParseError(result)) this.fail(parseFailure(result));
    this.fail(Object.assign(new Error('upstream closed the connection'), { code: 'ECONNRESET' }));
  }

  private fail(error: NodeJS.ErrnoException): void {
    if (this.broken) return;
    this.broken = true;
    const sink = this.sink;
    this.sink = null;
    this.socket.destroy();
    sink?.onBroken(error);
  }

  /** Ends this connection's use by an exchange that could not finish cleanly. */
  destroy(): void {
    this.sink = null;
    this.fail(Object.assign(new Error('destroyed'), { code: 'ECANCELED' }));
  }
}

function parseFailure(error: ParseError): NodeJS.ErrnoException {
  return Object.assign(new Error(`upstream sent an invalid response: ${error.code}`), { code: error.code === 'HPE_INVALID_EOF_STATE' ? 'ECONNRESET' : 'EPROTO', cause: error });
}

/** Keep-alive connections per endpoint and expected identity, most recently used first. */
export class H1Pool implements ConnectionPool {
  private readonly idle = new Map<string, UpstreamConnection[]>();
  private readonly all = new Set<UpstreamConnection>();
  /** Pool keys of endpoints gone from the mesh: their connections close instead of going back. */
  private retired = new Set<string>();

  constructor(
    private readonly dial: Dialer,
    private readonly connectTimeoutMs: number,
    private readonly idleTimeoutMs: number,
    private readonly maxHeaderBytes: number,
  ) {}

  /**
   * A pooled connection to `endpoint`, or a new one (its sink gets `onReady` when it is usable).
   * A new one takes a slot of `gate` (the cluster's maxConnections); undefined when it has none
   * free: the caller waits for one (`gate.wait`) or fails.
   */
  acquire(endpoint: UpstreamEndpoint, sink: ResponseSink, gate?: ConnectionGate): UpstreamConnection | undefined {
    const key = poolKey(endpoint);
    this.retired.delete(key);
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const conn = list.pop() as UpstreamConnection;
      if (conn.broken || conn.socket.destroyed) continue;
      conn.sink = sink;
      conn.reused = true;
      conn.socket.setTimeout(0);
      return conn;
    }
    if (gate && !gate.open()) return undefined;
    const dialed = this.dial(endpoint, 'http1');
    armConnectTimeout(dialed, this.connectTimeoutMs);
    const conn = new UpstreamConnection(key, endpoint.key, dialed.socket, dialed.readyEvent, this.maxHeaderBytes, this);
    conn.sink = sink;
    conn.gate = gate;
    this.all.add(conn);
    return conn;
  }

  /** Back to the pool after a complete exchange (the caller checked keep-alive on both sides). */
  release(conn: UpstreamConnection): void {
    conn.sink = null;
    if (conn.broken || conn.socket.destroyed) return;
    if (conn.executing) {
      // Not reusable before the rest of this read is parsed: it could be a forged response that the
      // next exchange, started from the completion callback, would take for its own.
      conn.releasePending = true;
      return;
    }
    // Requests wait for a connection slot of its cluster: the slot is worth more than an idle connection.
    if (this.retired.has(conn.key) || (conn.gate !== undefined && conn.gate.pending > 0)) {
      conn.destroy();
      return;
    }
    let list = this.idle.get(conn.key);
    if (!list) this.idle.set(conn.key, (list = []));
    if (list.length >= MAX_IDLE_PER_KEY) {
      conn.destroy();
      return;
    }
    // Paused by the last exchange's backpressure maybe: an idle connection reads (to see a close), a reused one must.
    conn.socket.resume();
    // The cluster's connectionPool.idleTimeout, when its TrafficPolicy sets one, replaces ours.
    conn.socket.setTimeout(conn.gate?.idleTimeoutMs || this.idleTimeoutMs);
    list.push(conn);
  }

  forget(conn: UpstreamConnection): void {
    this.all.delete(conn);
    const gate = conn.gate;
    conn.gate = undefined;
    gate?.closed();
    const list = this.idle.get(conn.key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(conn.key);
  }

  /** Closes idle connections to endpoints not in `keep`; those in use close when their exchange ends. */
  retain(keep: ReadonlySet<string>): void {
    const retired = new Set<string>();
    for (const conn of this.all) if (!keep.has(conn.key)) retired.add(conn.key);
    this.retired = retired;
    for (const key of retired) for (const conn of [...(this.idle.get(key) ?? [])]) conn.destroy();
  }

  /** Open connections (in use and idle) per endpoint `ip:port`. */
  connections(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const conn of this.all) counts.set(conn.endpointKey, (counts.get(conn.endpointKey) ?? 0) + 1);
    return counts;
  }

  close(): void {
    for (const conn of [...this.all]) conn.destroy();
    this.idle.clear();
  }
}
