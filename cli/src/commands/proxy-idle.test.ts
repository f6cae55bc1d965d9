// `tsmesh proxy` as a process: 5,000 idle opaque TCP connections are released after the idle
// timeout (`--tcp-idle-timeout`), and 5,000 idle HTTP/1.1 keep-alive connections after theirs
// (`--http-idle-timeout`). The sidecar's own file descriptors are counted in /proc: they
// rise by two per connection (client side and upstream side) and fall back to the baseline once
// the connections have been idle for the timeout, and every client sees its connection closed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
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

describe('tsmesh proxy --tcp-idle-timeout', () => {
  let dir: string;
  let upstream: net.Server;
  const upstreamSockets = new Set<net.Socket>();
  let child: ChildProcess | undefined;
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
    writeFileSync(
      join(dir, 'mesh.yaml'),
      `apiVersion: v1
kind: Service
metadata: { name: db, namespace: default }
spec:
  clusterIP: 10.96.0.20
  ports: [{ name: db, port: 80, targetPort: ${port}, protocol: TCP }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: db-1, namespace: default, labels: { kubernetes.io/service-name: db } }
addressType: IPv4
ports: [{ name: db, port: ${port}, protocol: TCP }]
endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }]
`,
    );
    child = spawn(process.execPath, [MAIN, 'proxy', '--config', join(dir, 'mesh.yaml'), '--bind', '127.0.0.1', '--outbound-target', '10.96.0.20:80', '--outbound-port', '0', '--inbound-port', '0', '--admin-port', '0', '--health-port', '0', '--concurrency', '1', '--tcp-idle-timeout', `${IDLE_TIMEOUT_MS}ms`], {
      // Port 80 is opaque TCP: no protocol detection, so an idle client is idle from its first byte.
      env: { PATH: process.env.PATH, TSMESH_LOG_LEVEL: 'info', TSMESH_POD_NAME: 'idle-test', TSMESH_OPAQUE_PORTS: '80' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    outboundPort = await new Promise<number>((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => reject(new Error(`sidecar not ready: ${buffered.slice(-500)}`)), 15_000);
      child!.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        for (const line of buffered.split('\n')) {
          if (!line.includes('"sidecar ready"')) continue;
          clearTimeout(timer);
          resolve((JSON.parse(line) as { ports: { outbound: number } }).ports.outbound);
        }
      });
      child!.once('exit', (code) => reject(new Error(`sidecar exited ${code}: ${buffered.slice(-500)}`)));
    });
  });

  afterAll(() => {
    child?.kill('SIGKILL');
    for (const s of upstreamSockets) s.destroy();
    upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`releases ${CONNECTIONS} idle connections, both sides, after the idle timeout`, async () => {
    const pid = child!.pid!;
    const baseline = fdCount(pid);
    const clients: net.Socket[] = [];
    let closedByPeer = 0;
    const started = Date.now();
    for (let batch = 0; batch < CONNECTIONS; batch += 250) {
      await Promise.all(
        Array.from({ length: Math.min(250, CONNECTIONS - batch) }, () => {
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
        }),
      );
    }
    const connectedIn = Date.now() - started;
    // Every connection crossed the sidecar: the upstream holds them all, and the sidecar two fds each.
    await until('the upstream to hold every connection', () => upstreamSockets.size === CONNECTIONS, 10_000);
    const held = fdCount(pid);
    expect(connectedIn).toBeLessThan(IDLE_TIMEOUT_MS - 1000); // none could have timed out yet
    expect(held - baseline).toBeGreaterThanOrEqual(2 * CONNECTIONS);

    await until('every client to be closed by the sidecar', () => closedByPeer === CONNECTIONS, IDLE_TIMEOUT_MS + 15_000);
    await until('the upstream connections to be closed', () => upstreamSockets.size === 0, 10_000);
    await until('the sidecar fds back to the baseline', () => fdCount(pid) <= baseline + 5, 10_000);
    for (const c of clients) c.destroy();
  }, 60_000);
});

describe('tsmesh proxy --http-idle-timeout', () => {
  let dir: string;
  let upstream: http.Server;
  let child: ChildProcess | undefined;
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
    writeFileSync(
      join(dir, 'mesh.yaml'),
      `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: 10.96.0.21
  ports: [{ name: http, port: 80, targetPort: ${port}, protocol: TCP, appProtocol: http }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: ${port}, protocol: TCP }]
endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }]
`,
    );
    child = spawn(process.execPath, [MAIN, 'proxy', '--config', join(dir, 'mesh.yaml'), '--bind', '127.0.0.1', '--outbound-target', '10.96.0.21:80', '--outbound-port', '0', '--inbound-port', '0', '--admin-port', '0', '--health-port', '0', '--concurrency', '1', '--http-idle-timeout', `${IDLE_TIMEOUT_MS}ms`], {
      env: { PATH: process.env.PATH, TSMESH_LOG_LEVEL: 'info', TSMESH_POD_NAME: 'idle-http-test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    outboundPort = await new Promise<number>((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => reject(new Error(`sidecar not ready: ${buffered.slice(-500)}`)), 15_000);
      child!.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        for (const line of buffered.split('\n')) {
          if (!line.includes('"sidecar ready"')) continue;
          clearTimeout(timer);
          resolve((JSON.parse(line) as { ports: { outbound: number } }).ports.outbound);
        }
      });
      child!.once('exit', (code) => reject(new Error(`sidecar exited ${code}: ${buffered.slice(-500)}`)));
    });
  });

  afterAll(() => {
    child?.kill('SIGKILL');
    upstream?.closeAllConnections();
    upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`closes ${CONNECTIONS} idle HTTP/1.1 keep-alive client connections after the idle timeout`, async () => {
    const pid = child!.pid!;
    const baseline = fdCount(pid);
    const clients: net.Socket[] = [];
    let answered = 0;
    let closedByPeer = 0;
    const started = Date.now();
    for (let batch = 0; batch < CONNECTIONS; batch += 250) {
      await Promise.all(
        Array.from({ length: Math.min(250, CONNECTIONS - batch) }, () => {
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
        }),
      );
    }
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
