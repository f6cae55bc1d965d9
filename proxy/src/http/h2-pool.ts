// Upstream HTTP/2 sessions, one multiplexed connection per endpoint, shared by every stream
// sent there. A session that closes, errors or receives GOAWAY leaves the pool at once.
import http2, { type ClientHttp2Session } from 'node:http2';
import type net from 'node:net';
import { plainDialer, type Dialer } from '../upstream/dial.js';
import { logger } from '@tsmesh/common';
import type { UpstreamEndpoint } from '../upstream/selector.js';

const log = logger('http.h2.pool');

export class H2SessionPool {
  private readonly sessions = new Map<string, Promise<ClientHttp2Session>>();

  constructor(
    private readonly connectTimeoutMs: number,
    private readonly dial: Dialer = plainDialer,
  ) {}

  /** A connected session to `endpoint`; rejects with a connect error (code set) when it cannot be reached. */
  get(endpoint: UpstreamEndpoint): Promise<ClientHttp2Session> {
    const key = poolKey(endpoint);
    const existing = this.sessions.get(key);
    if (existing) return existing;
    const created: Promise<ClientHttp2Session> = this.connect(endpoint, key, () => {
      if (this.sessions.get(key) === created) this.sessions.delete(key);
    });
    this.sessions.set(key, created);
    return created;
  }

  /** Number of open upstream sessions (for /clusters). */
  get size(): number {
    return this.sessions.size;
  }

  /** Closes sessions to endpoints that are no longer wanted (in-flight streams finish first). */
  retain(keep: ReadonlySet<string>): void {
    for (const [key, promise] of this.sessions) {
      if (keep.has(key)) continue;
      this.sessions.delete(key);
      promise.then((s) => s.close(), () => undefined);
    }
  }

  close(): void {
    for (const promise of this.sessions.values()) promise.then((s) => s.destroy(), () => undefined);
    this.sessions.clear();
  }

  private connect(endpoint: UpstreamEndpoint, key: string, forget: () => void): Promise<ClientHttp2Session> {
    return new Promise((resolve, reject) => {
      const host = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
      let socket: net.Socket | undefined;
      const session = http2.connect(`http://${host}:${endpoint.port}`, {
        settings: { enablePush: false, initialWindowSize: 1 << 20 },
        maxSessionMemory: 64,
        // Plain TCP or mesh mTLS (ALPN tsmesh/h2); http2 waits for 'secureConnect' on a TLS socket.
        createConnection: () => {
          socket = this.dial(endpoint, 'http2').socket;
          return socket;
        },
      });
      const timer = setTimeout(() => {
        const error = Object.assign(new Error(`connect timeout after ${this.connectTimeoutMs} ms`), { code: 'ECONNECTTIMEOUT' });
        // session.destroy() alone ends the socket gracefully, which waits for the pending connect
        // (minutes against a blackholed address): destroy the socket itself and fail now.
        forget();
        reject(error);
        socket?.destroy(error);
        session.destroy(error);
      }, this.connectTimeoutMs);
      session.once('connect', () => {
        clearTimeout(timer);
        // Connections idle in the pool must not keep the process alive on shutdown.
        session.unref();
        resolve(session);
      });
      session.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        forget();
        log.debug({ upstream: key, err: error.message }, 'upstream session error');
        reject(error);
      });
      session.on('goaway', forget);
      session.on('close', () => {
        clearTimeout(timer);
        forget();
      });
    });
  }
}

export function poolKey(endpoint: UpstreamEndpoint): string {
  const base = endpoint.localAddress ? `${endpoint.key}@${endpoint.localAddress}` : endpoint.key;
  return endpoint.identity ? `${base}#${endpoint.identity}` : base;
}
