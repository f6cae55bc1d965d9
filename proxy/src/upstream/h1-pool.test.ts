// The HTTP/1.1 upstream pool against real servers on 127.0.0.1: reuse (LIFO), endpoint and
// identity separation, idle timeout, pruning, connections that fail or speak while idle, and
// responses that must not leave their connection in the pool (ambiguous framing included).
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, test } from '@jest/globals';
import { H1UpstreamPool, type H1PoolOptions } from './h1-pool.js';
import { dialerFor, plainDialer, type Dialer } from './dial.js';
import { endpointOf, type UpstreamEndpoint } from './selector.js';
import { poolKey } from '../h2/pool.js';
import { acceptMeshTls } from '../tls/mesh-tls.js';
import { testMeshCa } from '../testing/mesh-ca.js';
import { eventually, listenHttp, listenTcp, pause, type Listening } from '../testing/servers.js';

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly reused: boolean;
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function pool(options: Partial<H1PoolOptions> = {}, dial: Dialer = plainDialer): H1UpstreamPool {
  const p = new H1UpstreamPool({ connectTimeoutMs: 2000, idleTimeoutMs: 30_000, ...options }, dial);
  cleanups.push(() => p.close());
  return p;
}

async function server(handler: http.RequestListener): Promise<Listening<http.Server>> {
  const s = await listenHttp(handler);
  cleanups.push(() => s.close());
  return s;
}

/** A raw TCP server that answers each request head (no body) with `respond(n, socket)`, n counting from 1 per connection. */
async function raw(respond: (n: number, socket: net.Socket) => void): Promise<Listening<net.Server>> {
  const s = await listenTcp((socket) => {
    let buffered = '';
    let n = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        buffered = buffered.slice(end + 4);
        respond(++n, socket);
      }
    });
    socket.on('error', () => undefined);
  });
  cleanups.push(() => s.close());
  return s;
}

function get(p: H1UpstreamPool, endpoint: UpstreamEndpoint, path = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = p.request(endpoint, { method: 'GET', path, headers: { host: 'svc' } });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.end();
  });
}

/** Lets the pool take back a connection freed at the end of a response (Node frees it on the next tick). */
const settle = (): Promise<void> => pause(20);

describe('H1UpstreamPool', () => {
  test('reuses an idle connection for the next request to the same endpoint', async () => {
    const s = await server((req, res) => res.end('ok'));
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    expect(await get(p, endpoint)).toEqual({ status: 200, body: 'ok', reused: false });
    await settle();
    expect(p.stats()).toEqual([{ key: poolKey(endpoint), open: 1, idle: 1, inUse: 0 }]);
    expect(await get(p, endpoint)).toEqual({ status: 200, body: 'ok', reused: true });
    expect(s.accepted).toBe(1);
  });

  test('hands out the most recently released connection first (LIFO)', async () => {
    const ports: number[] = [];
    const s = await server((req, res) => {
      ports.push(req.socket.remotePort ?? 0);
      setTimeout(() => res.end('ok'), Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0));
    });
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    // Two at once: two connections; the slower one is released last.
    await Promise.all([get(p, endpoint, '/?delay=0'), get(p, endpoint, '/?delay=100')]);
    await settle();
    const releasedLast = ports[1];
    await get(p, endpoint);
    expect(ports[2]).toBe(releasedLast);
    expect(s.accepted).toBe(2);
  });

  test('never shares a connection between endpoints with different expected identities', async () => {
    const s = await server((req, res) => res.end('ok'));
    const dialed: Array<string | undefined> = [];
    const dial = Object.assign(
      (endpoint: UpstreamEndpoint, inner: Parameters<Dialer>[1]) => {
        dialed.push(endpoint.identity);
        return plainDialer(endpoint, inner);
      },
      { mtlsFor: () => false },
    );
    const p = pool({}, dial);
    const a = endpointOf('127.0.0.1', s.port, { identity: 'spiffe://cluster.local/ns/a/sa/a' });
    const b = endpointOf('127.0.0.1', s.port, { identity: 'spiffe://cluster.local/ns/b/sa/b' });
    await get(p, a);
    await settle();
    expect((await get(p, b)).reused).toBe(false);
    await settle();
    expect((await get(p, a)).reused).toBe(true);
    expect(dialed).toEqual([a.identity, b.identity]);
    expect(s.accepted).toBe(2);
    expect(p.stats().map((e) => e.key).sort()).toEqual([poolKey(a), poolKey(b)].sort());
  });

  test('pools mesh mTLS connections, and one to a peer with another identity fails without entering the pool', async () => {
    const ca = testMeshCa();
    cleanups.push(() => ca.remove());
    const server = ca.source(ca.issue('app', 'server'));
    const client = ca.source(ca.issue('app', 'client'));
    // The peer sidecar: mesh mTLS terminated, HTTP/1.1 inside.
    const app = http.createServer((req, res) => res.end(`hello ${req.url}`));
    const s = await listenTcp((socket) => {
      socket.pause();
      acceptMeshTls(server, socket, 2000).then(
        (accepted) => app.emit('connection', accepted.socket),
        () => undefined,
      );
    });
    cleanups.push(() => s.close());
    cleanups.push(() => app.closeAllConnections());
    const p = pool({}, dialerFor(client));
    const right = endpointOf('127.0.0.1', s.port, { identity: 'spiffe://cluster.local/ns/app/sa/server' });
    const wrong = endpointOf('127.0.0.1', s.port, { identity: 'spiffe://cluster.local/ns/app/sa/other' });
    expect(await get(p, right, '/1')).toEqual({ status: 200, body: 'hello /1', reused: false });
    await settle();
    expect(await get(p, right, '/2')).toEqual({ status: 200, body: 'hello /2', reused: true });
    const error = await get(p, wrong).catch((e: NodeJS.ErrnoException) => e);
    expect(error).toHaveProperty('code', 'TSMESH_ERR_PEER_IDENTITY');
    await settle();
    expect(p.stats()).toEqual([{ key: poolKey(right), open: 1, idle: 1, inUse: 0 }]);
    expect(s.accepted).toBe(2);
  });

  test('closes a connection idle for the idle timeout, not before', async () => {
    const s = await server((req, res) => res.end('ok'));
    const p = pool({ idleTimeoutMs: 300 });
    await get(p, endpointOf('127.0.0.1', s.port));
    const answeredAt = Date.now();
    await pause(150);
    expect(s.open).toBe(1);
    await eventually(() => s.open === 0, 'the idle connection to be closed', 3000);
    expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(290);
    expect(p.stats()).toEqual([]);
  });

  test('never closes a connection whose response outlasts the idle timeout', async () => {
    const s = await server((req, res) => setTimeout(() => res.end('slow'), 400));
    const p = pool({ idleTimeoutMs: 100 });
    const endpoint = endpointOf('127.0.0.1', s.port);
    // A first request leaves an idle connection whose timer runs while the second is in flight.
    await get(p, endpointOf('127.0.0.1', s.port));
    expect(await get(p, endpoint)).toEqual({ status: 200, body: 'slow', reused: true });
  });

  test('keeps a server-announced shorter keep-alive timeout, and does not pool a connection it is about to close', async () => {
    let hint = 'timeout=2';
    const s = await server((req, res) => {
      res.setHeader('keep-alive', hint);
      res.end('ok');
    });
    const p = pool({ idleTimeoutMs: 30_000 });
    const endpoint = endpointOf('127.0.0.1', s.port);
    await get(p, endpoint);
    // timeout=2 s: pooled for at most 1 s.
    await eventually(() => s.open === 0, 'the connection closed before the server closes it', 2000);
    hint = 'timeout=1';
    await get(p, endpoint);
    await eventually(() => s.open === 0, 'the connection closed at once', 500);
    expect(p.stats()).toEqual([]);
  });

  test('prune closes the idle connections of endpoints no longer wanted and keeps the others', async () => {
    const s1 = await server((req, res) => res.end('one'));
    const s2 = await server((req, res) => res.end('two'));
    const p = pool();
    const one = endpointOf('127.0.0.1', s1.port);
    const two = endpointOf('127.0.0.1', s2.port);
    await Promise.all([get(p, one), get(p, two)]);
    await settle();
    p.prune(new Set([poolKey(two)]));
    await eventually(() => s1.open === 0, 'the pruned endpoint’s connection to be closed', 2000);
    expect(s2.open).toBe(1);
    expect((await get(p, two)).reused).toBe(true);
    expect(p.stats().map((e) => e.key)).toEqual([poolKey(two)]);
  });

  test('prune lets a request in flight finish, then closes its connection', async () => {
    const s = await server((req, res) => setTimeout(() => res.end('late'), 150));
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    const pending = get(p, endpoint);
    await eventually(() => s.open === 1, 'the request to reach the server');
    p.prune(new Set());
    expect(await pending).toEqual({ status: 200, body: 'late', reused: false });
    await eventually(() => s.open === 0, 'the pruned connection to be closed after its response', 2000);
    expect((await get(p, endpoint)).reused).toBe(false);
    expect(s.accepted).toBe(2);
  });

  test('forgets an idle connection the server closed or reset, and the next request dials anew', async () => {
    const s = await server((req, res) => res.end('ok'));
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    await get(p, endpoint);
    await settle();
    s.resetConnections();
    await eventually(() => p.stats().length === 0, 'the reset connection to leave the pool', 2000);
    expect(await get(p, endpoint)).toEqual({ status: 200, body: 'ok', reused: false });
    await settle();
    // A graceful close (FIN) too.
    s.server.closeIdleConnections();
    await eventually(() => p.stats().length === 0, 'the closed connection to leave the pool', 2000);
    expect((await get(p, endpoint)).reused).toBe(false);
  });

  test('skips an idle connection that can no longer be written and still counts the fresh one', async () => {
    const s = await server((req, res) => res.end('ok'));
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    let pooled: net.Socket | undefined;
    await new Promise<void>((resolve, reject) => {
      const req = p.request(endpoint, { method: 'GET', path: '/', headers: { host: 'svc' } });
      req.on('socket', (socket: net.Socket) => (pooled = socket));
      req.on('response', (res) => res.resume().on('end', resolve));
      req.on('error', reject);
      req.end();
    });
    await settle();
    // Half-closed by us: not writable at once, its 'close' comes later.
    pooled!.end();
    expect(await get(p, endpoint)).toEqual({ status: 200, body: 'ok', reused: false });
    await settle();
    expect(p.stats()).toEqual([{ key: poolKey(endpoint), open: 1, idle: 1, inUse: 0 }]);
  });

  test('does not reuse a connection whose response said Connection: close', async () => {
    // The server says close but leaves the socket open: only the pool's own check keeps it out.
    const s = await raw((n, socket) => socket.write(`HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok`));
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    await get(p, endpoint);
    await settle();
    expect(p.stats()).toEqual([]);
    expect((await get(p, endpoint)).reused).toBe(false);
    expect(s.accepted).toBe(2);
  });

  test('does not reuse a connection whose response was not read to its end', async () => {
    // 10 bytes announced, 5 sent: the connection is mid-response when the caller gives up.
    let requests = 0;
    const s = await raw((n, socket) => socket.write(++requests === 1 ? 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello' : 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    await new Promise<void>((resolve) => {
      const req = p.request(endpoint, { method: 'GET', path: '/', headers: { host: 'svc' } });
      req.on('error', () => undefined);
      req.on('response', (res) => {
        res.once('data', () => {
          res.destroy();
          resolve();
        });
      });
      req.end();
    });
    await settle();
    expect(p.stats()).toEqual([]);
    expect(await get(p, endpoint)).toEqual({ status: 200, body: 'ok', reused: false });
    expect(s.accepted).toBe(2);
  });

  test('closes an idle connection that sends bytes nobody asked for', async () => {
    // After its answer, the server sends a second, unsolicited response: it must never be read as
    // the answer to the next request.
    const s = await raw((n, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst`);
      setTimeout(() => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nforge`), 50);
    });
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    expect((await get(p, endpoint)).body).toBe('first');
    await eventually(() => p.stats().length === 0, 'the connection to be dropped', 2000);
    expect(await get(p, endpoint)).toEqual({ status: 200, body: 'first', reused: false });
  });

  test.each([
    ['Content-Length and Transfer-Encoding together', 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING'],
    ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab', 'HPE_UNEXPECTED_CONTENT_LENGTH'],
    ['an obs-fold header continuation', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\ncontent-length: 2\r\n\r\nok', 'HPE_INVALID_HEADER_TOKEN'],
    ['a bare LF ending a header line', 'HTTP/1.1 200 OK\r\nx-a: 1\ncontent-length: 2\r\n\r\nok', 'HPE_CR_EXPECTED'],
    ['a chunk size that overflows 64 bits', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffff0\r\nab\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
  ])('refuses an ambiguous response (%s) and never pools its connection', async (_what, response, code) => {
    const s = await raw((n, socket) => socket.write(response));
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    const error = await get(p, endpoint).then(
      (answer) => answer,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(error).toHaveProperty('code', code);
    await eventually(() => s.open === 0, 'the connection to be closed', 2000);
    expect(p.stats()).toEqual([]);
  });

  test('keeps at most maxIdlePerEndpoint idle connections per endpoint', async () => {
    const s = await server((req, res) => setTimeout(() => res.end('ok'), 50));
    const p = pool({ maxIdlePerEndpoint: 2 });
    const endpoint = endpointOf('127.0.0.1', s.port);
    await Promise.all([get(p, endpoint), get(p, endpoint), get(p, endpoint), get(p, endpoint)]);
    await settle();
    expect(p.stats()).toEqual([{ key: poolKey(endpoint), open: 2, idle: 2, inUse: 0 }]);
    await eventually(() => s.open === 2, 'the extra connections to be closed', 2000);
  });

  test('counts busy connections apart from idle ones', async () => {
    const s = await server((req, res) => setTimeout(() => res.end('ok'), 100));
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    const pending = Promise.all([get(p, endpoint), get(p, endpoint)]);
    await eventually(() => s.open === 2, 'both requests to reach the server');
    expect(p.stats()).toEqual([{ key: poolKey(endpoint), open: 2, idle: 0, inUse: 2 }]);
    expect(p.size).toBe(2);
    await pending;
    await settle();
    expect(p.stats()).toEqual([{ key: poolKey(endpoint), open: 2, idle: 2, inUse: 0 }]);
  });

  test('close ends every connection, busy ones included, and later requests fail', async () => {
    const s = await server((req, res) => {
      const timer = setTimeout(() => res.end('never'), 5000);
      res.on('close', () => clearTimeout(timer));
    });
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    const pending = get(p, endpoint).catch((error: Error) => error);
    await eventually(() => s.open === 1, 'the request to reach the server');
    p.close();
    expect(await pending).toHaveProperty('message');
    await eventually(() => s.open === 0, 'the busy connection to be closed', 2000);
    await expect(get(p, endpoint)).rejects.toThrow(/closed/);
  });

  test('a connect failure reaches the request and leaves nothing in the pool', async () => {
    const s = await server((req, res) => res.end('ok'));
    const port = s.port;
    await s.close();
    const p = pool();
    const error = await get(p, endpointOf('127.0.0.1', port)).catch((e: NodeJS.ErrnoException) => e);
    expect((error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    await settle();
    expect(p.stats()).toEqual([]);
  });

  test('the server’s idle timer closing first is seen as a close, not handed out', async () => {
    const s = await listenHttp((req, res) => res.end('ok'), { keepAliveTimeout: 100 });
    cleanups.push(() => s.close());
    const p = pool();
    const endpoint = endpointOf('127.0.0.1', s.port);
    await get(p, endpoint);
    await eventually(() => p.stats().length === 0, 'the server-closed connection to leave the pool', 2000);
    expect((await get(p, endpoint)).reused).toBe(false);
  });
});
