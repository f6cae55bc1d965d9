// `tsmesh proxy` as a process: 5,000 idle opaque TCP connections are released after the idle
// timeout (`--tcp-idle-timeout`), and 5,000 idle HTTP/1.1 keep-alive connections after theirs
// (`--http-idle-timeout`). The sidecar's own file descriptors are counted in /proc: they
// rise by two per connection (client side and upstream side) and fall back to the baseline once
// the connections have been idle for the timeout, and every client sees its connection closed.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { oneServiceMesh, startSidecar, type SidecarProcess } from '../testing/sidecar.js';

const CONNECTIONS = 5000;
const IDLE_TIMEOUT_MS = 8000;

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

function softFdLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files')) ?? '';
  return Number(line.split(/\s{2,}/)[1]);
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Opens `count` connections with `open`, 250 at a time (the listen backlog stays short). */
async function inBatches(count: number, open: () => Promise<void>): Promise<void> {
  for (let batch = 0; batch < count; batch += 250) await Promise.all(Array.from({ length: Math.min(250, count - batch) }, open));
}

describe('tsmesh proxy --tcp-idle-timeout', () => {
  let dir: string;
  let upstream: net.Server;
  const upstreamSockets = new Set<net.Socket>();
  let sidecar: SidecarProcess | undefined;
  let outboundPort = 0;

  beforeAll(async () => {
    // This process holds the clients and the upstream's side: two fds per connection.
    expect(softFdLimit()).toBeGreaterThan(2 * CONNECTIONS + 1000);
    upstream = net.createServer((socket) => {
      upstreamSockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => upstreamSockets.delete(socket));
      socket.resume(); // reads, never answers, never closes first: only the sidecar ends these
    });
    upstream.maxConnections = CONNECTIONS * 2;
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', 4096, resolve));
    const port = (upstream.address() as net.AddressInfo).port;
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-idle-'));
    writeFileSync(join(dir, 'mesh.yaml'), oneServiceMesh('db', '10.96.0.20', port));
    // Port 80 is opaque TCP: no protocol detection, so an idle client is idle from its first byte.
    sidecar = await startSidecar(join(dir, 'mesh.yaml'), ['--outbound-target', '10.96.0.20:80', '--concurrency', '1', '--tcp-idle-timeout', `${IDLE_TIMEOUT_MS}ms`], { TSMESH_OPAQUE_PORTS: '80' });
    outboundPort = sidecar.ports.outbound;
  });

  afterAll(() => {
    sidecar?.child.kill('SIGKILL');
    for (const s of upstreamSockets) s.destroy();
    upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`releases ${CONNECTIONS} idle connections, both sides, after the idle timeout`, async () => {
    const pid = sidecar!.child.pid!;
    const baseline = fdCount(pid);
    const clients: net.Socket[] = [];
    let closedByPeer = 0;
    const started = Date.now();
    await inBatches(CONNECTIONS, () => {
      return new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port: outboundPort });
        socket.once('connect', () => {
          socket.write('x');
          resolve();
        });
        socket.once('error', reject);
        socket.once('end', () => closedByPeer++);
        socket.resume();
        clients.push(socket);
      });
    });
    const connectedIn = Date.now() - started;
    // Every connection crossed the sidecar: the upstream holds them all, and the sidecar two fds each.
    await until('the upstream to hold every connection', () => upstreamSockets.size === CONNECTIONS, 10_000);
    const held = fdCount(pid);
    expect(connectedIn).toBeLessThan(IDLE_TIMEOUT_MS - 1000); // none could have timed out yet
    // (The baseline may hold a few short-lived fds of its own, e.g. a log or timer fd.)
    expect(held - baseline).toBeGreaterThanOrEqual(2 * CONNECTIONS - 20);

    await until('every client to be closed by the sidecar', () => closedByPeer === CONNECTIONS, IDLE_TIMEOUT_MS + 15_000);
    await until('the upstream connections to be closed', () => upstreamSockets.size === 0, 10_000);
    await until('the sidecar fds back to the baseline', () => fdCount(pid) <= baseline + 5, 10_000);
    for (const c of clients) c.destroy();
  }, 60_000);
});

describe('tsmesh proxy --http-idle-timeout', () => {
  let dir: string;
  let upstream: http.Server;
  let sidecar: SidecarProcess | undefined;
  let outboundPort = 0;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      req.resume();
      res.end('ok');
    });
    upstream.keepAliveTimeout = 0; // the upstream never closes first: only the sidecar's timers do
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', 4096, resolve));
    const port = (upstream.address() as net.AddressInfo).port;
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-idle-http-'));
    writeFileSync(join(dir, 'mesh.yaml'), oneServiceMesh('web', '10.96.0.21', port, 'http'));
    sidecar = await startSidecar(join(dir, 'mesh.yaml'), ['--outbound-target', '10.96.0.21:80', '--concurrency', '1', '--http-idle-timeout', `${IDLE_TIMEOUT_MS}ms`]);
    outboundPort = sidecar.ports.outbound;
  });

  afterAll(() => {
    sidecar?.child.kill('SIGKILL');
    upstream?.closeAllConnections();
    upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`closes ${CONNECTIONS} idle HTTP/1.1 keep-alive client connections after the idle timeout`, async () => {
    const pid = sidecar!.child.pid!;
    const baseline = fdCount(pid);
    const clients: net.Socket[] = [];
    let answered = 0;
    let closedByPeer = 0;
    const started = Date.now();
    await inBatches(CONNECTIONS, () => {
      return new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port: outboundPort });
        clients.push(socket);
        let got = '';
        socket.once('connect', () => socket.write('GET / HTTP/1.1\r\nHost: web\r\n\r\n'));
        socket.on('data', (c: Buffer) => {
          got += c.toString();
          if (got.startsWith('HTTP/1.1 200') && got.endsWith('ok')) {
            answered++;
            resolve();
          }
        });
        socket.once('error', reject);
        socket.once('end', () => closedByPeer++);
      });
    });
    const answeredIn = Date.now() - started;
    expect(answered).toBe(CONNECTIONS);
    expect(answeredIn).toBeLessThan(IDLE_TIMEOUT_MS - 1000); // none could have timed out yet
    expect(fdCount(pid) - baseline).toBeGreaterThanOrEqual(CONNECTIONS);

    await until('every client connection to be closed by the sidecar', () => closedByPeer === CONNECTIONS, IDLE_TIMEOUT_MS + 15_000);
    // The client side is gone; pooled upstream connections are bounded by the pool, not by clients.
    await until('the sidecar fds to fall by the clients', () => fdCount(pid) <= baseline + 300, 10_000);
    for (const c of clients) c.destroy();
  }, 60_000);
});
