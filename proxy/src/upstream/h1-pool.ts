// Upstream HTTP/1.1 connections, pooled per endpoint and expected identity (the h2 pool's keys).
// Node's ClientRequest still writes each request and parses each response (llhttp, strict); this
// pool only hands it connections: LIFO idle lists, bounded per endpoint, closed when idle too long,
// when their endpoint is pruned, or when they say anything while idle.
import type * as http from 'node:http';
import type { Socket } from 'node:net';
import { logger, nodeHttp } from '@tsmesh/common';
import { poolKey } from '../h2/pool.js';
import { armConnectTimeout, plainDialer, type Dialer } from './dial.js';
import type { ConnectionGate } from './limits.js';
import type { UpstreamEndpoint } from './selector.js';

const log = logger('upstream.h1-pool');

export interface H1PoolOptions {
  readonly connectTimeoutMs: number;
  /** A connection idle that long is closed; one with a request in flight never is. */
  readonly idleTimeoutMs: number;
  /** Idle connections kept per endpoint; a connection released beyond it is closed. */
  readonly maxIdlePerEndpoint?: number;
}

export interface H1EndpointStats {
  /** `poolKey(endpoint)`: endpoint, local address and expected identity. */
  readonly key: string;
  readonly open: number;
  readonly idle: number;
  readonly inUse: number;
}

/** What a request through the pool says; host, port and agent come from the endpoint and the pool. */
export type H1RequestOptions = Omit<http.RequestOptions, 'agent' | 'createConnection' | 'host' | 'hostname' | 'port' | 'localAddress' | 'socketPath'>;

const DEFAULT_MAX_IDLE = 256;
const TCP_KEEPALIVE_MS = 30_000;
/** A server's `Keep-Alive: timeout=N` hint is trusted minus this, so we never reuse what it is closing. */
const SERVER_HINT_MARGIN_MS = 1000;
const ENDPOINT = Symbol('tsmesh.h1.endpoint');
const CONNECTION = Symbol('tsmesh.h1.connection');
const GATE = Symbol('tsmesh.h1.gate');

/** The error of a request that found its cluster at maxConnections when it had to dial after all. */
export const CONNECTION_LIMIT = 'TSMESH_CONNECTION_LIMIT';

/** busy: a request owns it; idle: in its endpoint's idle list; closing: destroyed, its 'close' not seen yet. */
type State = 'busy' | 'idle' | 'closing' | 'closed';

class PooledConnection {
  state: State = 'busy';
  /** When an idle connection is closed (ms since epoch). */
  deadline = 0;
  /** The cluster connection slot it holds (given back when it closes). */
  gate: ConnectionGate | undefined;

  constructor(
    readonly socket: Socket,
    readonly entry: EndpointConnections,
  ) {}
}

class EndpointConnections {
  /** Idle connections, oldest first; the newest is reused first (LIFO). */
  readonly idle: PooledConnection[] = [];
  open = 0;
  inUse = 0;
  /** Pruned: takes no requests; its connections close as soon as they are idle. */
  retired = false;

  constructor(
    readonly key: string,
    /** The endpoint's `ip:port` (the pool key adds local address and identity). */
    readonly endpointKey: string,
    readonly pool: H1UpstreamPool,
  ) {}
}

type PooledSocket = Socket & { [CONNECTION]?: PooledConnection; _httpMessage?: (http.ClientRequest & { res?: http.IncomingMessage | null }) | null };
type AgentOptions = { [ENDPOINT]: UpstreamEndpoint; [GATE]?: { readonly gate: ConnectionGate; taken: boolean } };
type RequestInternals = http.ClientRequest & { onSocket(socket: Socket | null, error?: Error): void };

export class H1UpstreamPool {
  private readonly entries = new Map<string, EndpointConnections>();
  /** Every open connection, pruned endpoints' included (for close()). */
  private readonly all = new Set<PooledConnection>();
  private readonly maxIdle: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;
  /**
   * The agent ClientRequest sees: keep-alive (so requests say `Connection: keep-alive` and a
   * connection is freed only after a complete keep-alive response), sockets from this pool.
   */
  private readonly agent = {
    keepAlive: true,
    maxSockets: Infinity,
    protocol: 'http:',
    defaultPort: 80,
    options: {},
    addRequest: (req: http.ClientRequest, options: AgentOptions): void => this.assign(req as RequestInternals, options[ENDPOINT], options[GATE]),
  };

  constructor(
    private readonly options: H1PoolOptions,
    private readonly dial: Dialer = plainDialer,
  ) {
    this.maxIdle = options.maxIdlePerEndpoint ?? DEFAULT_MAX_IDLE;
  }

  /**
   * Starts a request to `endpoint` on an idle pooled connection (the newest) or a new one.
   * The ClientRequest behaves as usual; its `reusedSocket` says whether the connection was pooled.
   * The connection returns to the pool only after a complete response with keep-alive on both sides.
   */
  request(endpoint: UpstreamEndpoint, options: H1RequestOptions): http.ClientRequest;
  /**
   * With `gate` (the cluster's connection slots): undefined, and nothing sent, when the request
   * would need a new connection and the cluster is at maxConnections; the caller waits for a slot.
   */
  request(endpoint: UpstreamEndpoint, options: H1RequestOptions, gate: ConnectionGate | undefined): http.ClientRequest | undefined;
  request(endpoint: UpstreamEndpoint, options: H1RequestOptions, gate?: ConnectionGate): http.ClientRequest | undefined {
    let slot: AgentOptions[typeof GATE];
    if (gate) {
      const idle = this.entries.get(poolKey(endpoint))?.idle.some((c) => c.socket.writable) === true;
      if (!idle && !gate.open()) return undefined;
      slot = { gate, taken: !idle };
    }
    return nodeHttp.request({ ...options, host: endpoint.address, port: endpoint.port, localAddress: endpoint.localAddress, agent: this.agent as unknown as http.Agent, [ENDPOINT]: endpoint, [GATE]: slot } as http.RequestOptions);
  }

  /** ConnectionPool: the upstream layer prunes with the pool keys still wanted. */
  retain(keep: ReadonlySet<string>): void {
    this.prune(keep);
  }

  /** ConnectionPool: open connections per endpoint key (`ip:port`), those of pruned endpoints still closing included. */
  connections(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const conn of this.all) {
      if (conn.state === 'closed') continue;
      const key = conn.entry.endpointKey;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  }

  /** Closes the idle connections of endpoints whose pool key is not in `wanted`; busy ones close when their request ends. */
  prune(wanted: ReadonlySet<string>): void {
    for (const [key, entry] of this.entries) {
      if (wanted.has(key)) continue;
      entry.retired = true;
      this.entries.delete(key);
      for (const conn of entry.idle.splice(0)) closeIdle(conn);
    }
  }

  /** Closes every connection, busy ones included; requests after this fail. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) {
      entry.retired = true;
      for (const conn of entry.idle.splice(0)) closeIdle(conn);
    }
    for (const conn of this.all) conn.socket.destroy();
    this.all.clear();
  }

  /** Open, idle and busy connections per endpoint (for /clusters and tests). */
  stats(): H1EndpointStats[] {
    return [...this.entries.values()].map((e) => ({ key: e.key, open: e.open, idle: e.idle.length, inUse: e.inUse }));
  }

  /** Open connections in all. */
  get size(): number {
    let n = 0;
    for (const entry of this.entries.values()) n += entry.open;
    return n;
  }

  private assign(req: RequestInternals, endpoint: UpstreamEndpoint, slot?: { readonly gate: ConnectionGate; taken: boolean }): void {
    // A slot taken for a dial that turns out not to be needed goes back.
    const giveBack = (): void => {
      if (slot?.taken) slot.gate.closed();
    };
    if (this.closed) {
      giveBack();
      return req.onSocket(null, Object.assign(new Error('upstream pool closed'), { code: 'ECONNABORTED' }));
    }
    const key = poolKey(endpoint);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = new EndpointConnections(key, endpoint.key, this);
      this.entries.set(key, entry);
    }
    let conn: PooledConnection | undefined;
    while ((conn = entry.idle.pop()) !== undefined && !conn.socket.writable) this.forget(conn);
    if (conn) {
      conn.state = 'busy';
      entry.inUse++;
      conn.socket.ref();
      req.reusedSocket = true;
      giveBack();
      return req.onSocket(conn.socket);
    }
    if (slot && !slot.taken && !slot.gate.open()) {
      return req.onSocket(null, Object.assign(new Error('the cluster is at its maxConnections'), { code: CONNECTION_LIMIT }));
    }
    // Forgetting dead idle connections may have dropped the (then empty) entry.
    if (this.entries.get(key) !== entry) this.entries.set(key, entry);
    const dialed = this.dial(endpoint, 'http1');
    armConnectTimeout(dialed, this.options.connectTimeoutMs);
    const socket = dialed.socket as PooledSocket;
    // TCP keep-alive probes find a peer that vanished while its connection sat idle (as http.Agent did).
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    const fresh = new PooledConnection(socket, entry);
    fresh.gate = slot?.gate;
    socket[CONNECTION] = fresh;
    entry.open++;
    entry.inUse++;
    this.all.add(fresh);
    socket.on('free', onFree);
    socket.on('close', onClose);
    socket.on('error', onError);
    socket.on('data', onData);
    socket.on('agentRemove', onRemove);
    req.onSocket(socket);
  }

  /** @internal ClientRequest freed the socket: its response ended cleanly (or it never used it). */
  release(conn: PooledConnection, reusable: boolean, idleMs: number): void {
    if (conn.state !== 'busy') return;
    const { entry, socket } = conn;
    entry.inUse--;
    // Requests waiting for a connection slot of its cluster are worth more than an idle connection.
    if (!reusable || this.closed || entry.retired || entry.idle.length >= this.maxIdle || !socket.writable || (conn.gate !== undefined && conn.gate.pending > 0)) {
      conn.state = 'closing';
      socket.destroy();
      return;
    }
    conn.state = 'idle';
    conn.deadline = Date.now() + idleMs;
    socket.unref();
    entry.idle.push(conn);
    if (conn.deadline < this.timerAt) this.arm(conn.deadline);
  }

  /** @internal The socket closed (or left the pool): forget it. */
  forget(conn: PooledConnection): void {
    if (conn.state === 'closed') return;
    const { entry } = conn;
    if (conn.state === 'busy') entry.inUse--;
    else if (conn.state === 'idle') {
      const i = entry.idle.indexOf(conn);
      if (i >= 0) entry.idle.splice(i, 1);
    }
    conn.state = 'closed';
    this.all.delete(conn);
    const gate = conn.gate;
    conn.gate = undefined;
    gate?.closed();
    entry.open--;
    if (entry.open === 0 && this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
  }

  /** @internal Idle timeout for a response: ours, or shorter when the server announced a shorter one. */
  idleMsFor(res: http.IncomingMessage | null | undefined, gate?: ConnectionGate): number {
    // The cluster's connectionPool.idleTimeout, when its TrafficPolicy sets one, replaces ours.
    const ours = gate?.idleTimeoutMs || this.options.idleTimeoutMs;
    const raw = res?.headers['keep-alive'];
    if (raw === undefined) return ours;
    const hint = Array.isArray(raw) ? raw.join(',') : raw;
    const seconds = /(?:^|[\s,])timeout\s*=\s*(\d+)/i.exec(hint)?.[1];
    if (seconds === undefined) return ours;
    return Math.min(ours, Number(seconds) * 1000 - SERVER_HINT_MARGIN_MS);
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  /** Closes idle connections past their deadline; re-arms for the next one. */
  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    const expired: PooledConnection[] = [];
    for (const entry of this.entries.values()) {
      for (const conn of entry.idle) {
        if (conn.deadline <= now) expired.push(conn);
        else if (conn.deadline < next) next = conn.deadline;
      }
    }
    for (const conn of expired) {
      log.debug({ upstream: conn.entry.key }, 'idle upstream connection closed');
      this.forget(conn);
      conn.socket.destroy();
    }
    if (next !== Infinity) this.arm(next);
  }
}

/** Closes a connection already taken out of its idle list. */
function closeIdle(conn: PooledConnection): void {
  conn.state = 'closing';
  conn.socket.destroy();
}

// Socket listeners are shared functions (no closure per connection); `this` is the socket.
function onFree(this: PooledSocket): void {
  const conn = this[CONNECTION];
  if (!conn) return;
  const pool = conn.entry.pool;
  const req = this._httpMessage;
  this._httpMessage = null;
  // Node frees a socket after a complete response when both sides kept the connection alive,
  // or when its request was destroyed before anything was written.
  const idleMs = pool.idleMsFor(req?.res, conn.gate);
  pool.release(conn, req?.shouldKeepAlive === true && idleMs > 0, idleMs);
}

function onClose(this: PooledSocket): void {
  const conn = this[CONNECTION];
  if (conn) conn.entry.pool.forget(conn);
}

function onError(this: PooledSocket, error: Error): void {
  // A busy connection's request sees the error itself; an idle one leaves the pool at once.
  const conn = this[CONNECTION];
  if (conn?.state !== 'idle') return;
  log.debug({ upstream: conn.entry.key, err: error.message }, 'idle upstream connection failed');
  conn.entry.pool.forget(conn);
}

function onData(this: PooledSocket): void {
  // An idle connection has nothing to say: bytes now would be read as the next request's answer.
  if (this[CONNECTION]?.state === 'idle') this.destroy();
}

function onRemove(this: PooledSocket): void {
  // Upgraded (101): the connection is the caller's now.
  const conn = this[CONNECTION];
  if (conn) conn.entry.pool.forget(conn);
  this[CONNECTION] = undefined;
  this.removeListener('free', onFree);
  this.removeListener('close', onClose);
  this.removeListener('error', onError);
  this.removeListener('data', onData);
  this.removeListener('agentRemove', onRemove);
}
