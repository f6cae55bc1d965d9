// Upstream HTTP/2 connections per endpoint (h2c, or mesh mTLS with ALPN tsmesh/h2), shared by every
// client stream sent there. A new connection is opened when the pooled ones are at the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS; one that received GOAWAY takes no new streams.
import { logger } from '@tsmesh/common';
import { plainDialer, type Dialer } from '../upstream/dial.js';
import type { ConnectionGate } from '../upstream/limits.js';
import type { UpstreamEndpoint } from '../upstream/selector.js';
import { H2Connection, type H2ConnectionOwner } from './connection.js';
import { NO_COUNTERS, type H2Counters, type H2Limits } from './limits.js';

const log = logger('h2.pool');

/** Called with a connection that can open one stream now, or the connect error. */
export type Acquired = (error: NodeJS.ErrnoException | undefined, conn: H2Connection | undefined) => void;

/** The error code an acquire fails with when the cluster is at maxConnections: the caller waits for a slot (`gate.wait`) or fails. */
export const CONNECTION_LIMIT = 'TSMESH_CONNECTION_LIMIT';

/** Streams a connection is assumed to take before its peer's SETTINGS say (nghttp2 assumes 100 too). */
const ASSUMED_STREAMS = 100;

class EndpointConnections implements H2ConnectionOwner {
  readonly conns: H2Connection[] = [];
  readonly waiters: Acquired[] = [];
  connecting = 0;
  /** The cluster connection slots its connections take (the last caller's cluster). */
  gate: ConnectionGate | undefined;
  /** The slot each connection holds, given back when it closes. */
  readonly slots = new Map<H2Connection, ConnectionGate>();
  /** Since when each connection with an idle timer has had no stream (performance.now()). */
  private readonly idleSince = new Map<H2Connection, number>();

  constructor(
    readonly key: string,
    private readonly pool: H2UpstreamPool,
    readonly endpoint: UpstreamEndpoint,
  ) {}

  /** A connection with room for one more stream. */
  usable(): H2Connection | undefined {
    for (const conn of this.conns) if (conn.canOpen) return conn;
    return undefined;
  }

  serveWaiters(): void {
    while (this.waiters.length > 0) {
      const conn = this.usable();
      if (!conn) break;
      this.waiters.shift()!(undefined, conn);
    }
    if (this.waiters.length > this.connecting * ASSUMED_STREAMS) this.pool.connect(this);
  }

  onStreamClosed(conn: H2Connection): void {
    if (this.waiters.length > 0) this.serveWaiters();
    const gate = this.slots.get(conn) ?? this.gate;
    const idleMs = gate?.idleTimeoutMs;
    if (idleMs && conn.activeStreams === 0) this.idleFrom(conn, idleMs);
    // Requests wait for a connection slot of its cluster: an idle connection gives its slot up.
    if (gate !== undefined && gate.pending > 0) {
      setImmediate(() => {
        if (conn.activeStreams === 0 && gate.pending > 0) conn.goaway(0);
      });
    }
  }

  /** The cluster's connectionPool.idleTimeout: a connection without a stream that long goes away. */
  private idleFrom(conn: H2Connection, idleMs: number): void {
    const armed = this.idleSince.has(conn);
    this.idleSince.set(conn, performance.now());
    if (armed) return;
    const check = (): void => {
      const since = this.idleSince.get(conn);
      if (since === undefined) return; // closed, or busy again
      if (conn.activeStreams > 0) return void this.idleSince.delete(conn); // re-armed when its streams end
      const left = since + idleMs - performance.now();
      if (left > 0) return void setTimeout(check, left).unref();
      this.idleSince.delete(conn);
      log.debug({ upstream: this.key, idleMs }, 'upstream connection idle; going away');
      conn.goaway(0);
    };
    setTimeout(check, idleMs).unref();
  }

  onSettings(): void {
    if (this.waiters.length > 0) this.serveWaiters();
  }

  onGoaway(conn: H2Connection): void {
    log.debug({ upstream: this.key, reason: conn.closeReason }, 'upstream connection going away');
  }

  onClose(conn: H2Connection): void {
    this.idleSince.delete(conn);
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    const gate = this.slots.get(conn);
    if (gate !== undefined) {
      this.slots.delete(conn);
      gate.closed();
    }
    this.pool.forgetIfEmpty(this);
  }
}

export class H2UpstreamPool {
  private readonly endpoints = new Map<string, EndpointConnections>();

  constructor(
    private readonly connectTimeoutMs: number,
    private readonly dial: Dialer = plainDialer,
    private readonly limits: H2Limits,
    private readonly counters: H2Counters = NO_COUNTERS,
  ) {}

  /**
   * Hands `done` a connection to `endpoint` with room for a stream: at once when one is pooled. A
   * new connection takes a slot of `gate` (the cluster's maxConnections); with none free, `done`
   * gets an error with code CONNECTION_LIMIT.
   */
  acquire(endpoint: UpstreamEndpoint, done: Acquired, gate?: ConnectionGate): void {
    const key = poolKey(endpoint);
    let entry = this.endpoints.get(key);
    if (!entry) {
      entry = new EndpointConnections(key, this, endpoint);
      this.endpoints.set(key, entry);
    }
    if (gate) entry.gate = gate;
    const conn = entry.usable();
    if (conn) return done(undefined, conn);
    entry.waiters.push(done);
    entry.serveWaiters();
  }

  /** Number of open upstream connections (for /clusters). */
  get size(): number {
    let n = 0;
    for (const entry of this.endpoints.values()) n += entry.conns.length;
    return n;
  }

  /** Open upstream connections per endpoint key (`ip:port`), for /clusters. */
  connections(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const entry of this.endpoints.values()) {
      if (entry.conns.length > 0) counts.set(entry.endpoint.key, (counts.get(entry.endpoint.key) ?? 0) + entry.conns.length);
    }
    return counts;
  }

  /** Closes connections to endpoints no longer wanted (in-flight streams finish first). */
  retain(keep: ReadonlySet<string>): void {
    for (const [key, entry] of this.endpoints) {
      if (keep.has(key)) continue;
      for (const conn of entry.conns) conn.goaway(0);
    }
  }

  close(): void {
    for (const entry of this.endpoints.values()) for (const conn of [...entry.conns]) conn.destroy('pool closed');
    this.endpoints.clear();
  }

  /** @internal */
  forgetIfEmpty(entry: EndpointConnections): void {
    if (entry.conns.length === 0 && entry.connecting === 0 && entry.waiters.length === 0 && this.endpoints.get(entry.key) === entry) this.endpoints.delete(entry.key);
  }

  /** @internal Opens one more connection for `entry`'s waiters. */
  connect(entry: EndpointConnections): void {
    const gate = entry.gate;
    if (gate && !gate.open()) {
      // The waiters a new connection was for wait for a slot of the cluster; the others wait on.
      const error = Object.assign(new Error('the cluster is at its maxConnections'), { code: CONNECTION_LIMIT });
      const held = entry.waiters.splice(0, Math.max(0, entry.waiters.length - entry.connecting * ASSUMED_STREAMS));
      for (const waiter of held) waiter(error, undefined);
      this.forgetIfEmpty(entry);
      return;
    }
    entry.connecting++;
    const dialed = this.dial(entry.endpoint, 'http2');
    const socket = dialed.socket;
    const conn = new H2Connection(socket, 'client', this.limits, entry, this.counters);
    let settled = false;
    const timer = setTimeout(() => {
      fail(Object.assign(new Error(`connect timeout after ${this.connectTimeoutMs} ms`), { code: 'ECONNECTTIMEOUT' }));
      socket.destroy();
    }, this.connectTimeoutMs);
    const fail = (error: NodeJS.ErrnoException): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      entry.connecting--;
      gate?.closed();
      log.debug({ upstream: entry.key, err: error.message }, 'upstream connect failed');
      // The waiters this connection was for fail over to another endpoint; others wait on.
      const failed = entry.waiters.splice(0, Math.max(0, entry.waiters.length - entry.connecting * ASSUMED_STREAMS));
      for (const waiter of failed) waiter(error, undefined);
      this.forgetIfEmpty(entry);
    };
    socket.once('error', fail);
    socket.once('close', () => fail(Object.assign(new Error('connection closed before it was ready'), { code: 'ECONNRESET' })));
    socket.once(dialed.readyEvent, () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      entry.connecting--;
      socket.setNoDelay(true);
      // Idle pooled connections must not keep the process alive on shutdown.
      socket.unref();
      conn.start();
      if (gate) entry.slots.set(conn, gate);
      entry.conns.push(conn);
      entry.serveWaiters();
    });
  }
}

export function poolKey(endpoint: UpstreamEndpoint): string {
  const base = endpoint.localAddress ? `${endpoint.key}@${endpoint.localAddress}` : endpoint.key;
  return endpoint.identity ? `${base}#${endpoint.identity}` : base;
}
