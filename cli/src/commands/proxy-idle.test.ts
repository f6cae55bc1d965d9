// `tsmesh proxy` as a process: 5,000 idle opaque TCP connections are released after the idle
// timeout (`--tcp-idle-timeout`). The sidecar's own file descriptors are counted in /proc: they
// rise by two per connection (client side and upstream side) and fall back to the baseline once
// the connections have been idle for the timeout, and every client sees its connection closed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
