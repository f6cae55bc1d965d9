// `tsmesh proxy` as a process: graceful drain on SIGTERM. Requests that take 1 s are in flight
// over HTTP/2 and HTTP/1.1 when SIGTERM arrives 300 ms in; all of them must complete, readiness
// must fail at once, new connections must be refused, and the process must exit 0. With one event
// loop and with two (`--concurrency 2`: the requests are spread over both loops' listeners).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { oneServiceMesh, startSidecar, type SidecarProcess } from '../testing/sidecar.js';

const SLOW_MS = 1000;
/** In-flight HTTP/1.1 requests, one connection each: enough that every loop surely gets some. */
const H1_CONNECTIONS = 20;

/** One port serving HTTP/1.1 and h2c (prior knowledge): every answer comes after SLOW_MS. */
async function slowUpstream(): Promise<{ port: number; close(): void }> {
  const h1 = http.createServer((req, res) => {
    req.resume();
    setTimeout(() => res.end(`h1 ${req.url}`), SLOW_MS);
  });
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    stream.resume();
    setTimeout(() => {
      if (stream.closed) return;
      stream.respond({ ':status': 200 });
      stream.end(`h2 ${headers[':path']}`);
    }, SLOW_MS);
  });
  // node:http2 reads its socket's handle directly, so bytes already read cannot be handed back:
  // h2c connections are relayed to the HTTP/2 server's own port instead.
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  const h2Port = (h2.address() as net.AddressInfo).port;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      if (first.subarray(0, 3).toString() !== 'PRI') {
        socket.pause();
        socket.unshift(first);
        h1.emit('connection', socket);
        socket.resume();
        return;
      }
      const relay = net.connect({ host: '127.0.0.1', port: h2Port });
      sockets.add(relay);
      relay.write(first);
      socket.pipe(relay).pipe(socket);
      relay.on('error', () => socket.destroy());
      socket.on('error', () => relay.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
      h2.close();
    },
  };
}

function h1Get(port: number, path: string): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const agent = new http.Agent({ keepAlive: true });
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        agent.destroy();
        resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body });
      });
    });
    req.on('error', reject);
  });
}

function h2Get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
  });
}

/** `tsmesh_proxy_loop_connections_total{direction="outbound"}` per loop, from /metrics. */
async function loopConnections(port: number): Promise<number[]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const perLoop: number[] = [];
  for (const m of text.matchAll(/^tsmesh_proxy_loop_connections_total\{loop="(\d+)",direction="outbound"\} (\d+)$/gm)) perLoop[Number(m[1])] = Number(m[2]);
  return perLoop;
}

async function readiness(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz/ready`).catch(() => undefined);
  return res?.status ?? 0;
}

describe.each([1, 2])('tsmesh proxy --concurrency %i on SIGTERM (graceful drain)', (concurrency) => {
  let dir: string;
  let upstream: Awaited<ReturnType<typeof slowUpstream>>;
  let sidecar: SidecarProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-drain-'));
    upstream = await slowUpstream();
    writeFileSync(join(dir, 'mesh.yaml'), oneServiceMesh('slow', '10.96.0.10', upstream.port));
    sidecar = await startSidecar(join(dir, 'mesh.yaml'), ['--outbound-target', '10.96.0.10:80', '--drain-duration', '5s', '--concurrency', String(concurrency)], { TSMESH_POD_NAME: 'drain-test' });
  });

  afterAll(() => {
    sidecar?.child.kill('SIGKILL');
    upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finishes every in-flight HTTP/2 stream and HTTP/1.1 request, fails readiness at once, refuses new connections and exits 0', async () => {
    const { child, ports, exited } = sidecar!;
    expect(await readiness(ports.health)).toBe(200);
    const session = http2.connect(`http://127.0.0.1:${ports.outbound}`);
    session.on('error', () => undefined);
    let goaway = false;
    session.on('goaway', () => (goaway = true));
    const h2 = Array.from({ length: 10 }, (_, i) => h2Get(session, `/s${i}`));
    const h1 = Array.from({ length: H1_CONNECTIONS }, (_, i) => h1Get(ports.outbound, `/r${i}`));
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Every loop holds some of the in-flight requests (the kernel hashes each connection to a listener).
    const perLoop = await loopConnections(ports.health);
    expect(perLoop.length).toBe(concurrency);
    expect(perLoop.reduce((a, b) => a + b, 0)).toBe(H1_CONNECTIONS + 1);
    for (const n of perLoop) expect(n).toBeGreaterThan(0);

    const signalled = Date.now();
    child.kill('SIGTERM');
    let ready = 200;
    while (ready === 200 && Date.now() - signalled < 500) {
      ready = await readiness(ports.health);
      if (ready === 200) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(ready).toBe(503);
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: ports.outbound });
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');

    const h2Answers = await Promise.all(h2);
    const h1Answers = await Promise.all(h1);
    expect(h2Answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(h2Answers.map((a) => a.body)).toEqual(Array.from({ length: 10 }, (_, i) => `h2 /s${i}`));
    expect(h1Answers.map((a) => a.status)).toEqual(Array(H1_CONNECTIONS).fill(200));
    expect(h1Answers.map((a) => a.body)).toEqual(Array.from({ length: H1_CONNECTIONS }, (_, i) => `h1 /r${i}`));
    // Each HTTP/1.1 connection is told to close after its answer; the HTTP/2 client got GOAWAY.
    expect(h1Answers.map((a) => a.connection)).toEqual(Array(H1_CONNECTIONS).fill('close'));
    expect(goaway).toBe(true);
    session.destroy();

    // Exits 0 once the last connection is gone, well before the 5 s drain period ends.
    const code = await exited;
    expect(code).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(4000);
  });
});
