// Circuit breaking on upstream connections, enforced by a running sidecar: a TrafficPolicy's
// connectionPool.maxConnections caps the connections per cluster (HTTP/1.1 both engines, HTTP/2);
// requests that need one more wait, maxPendingRequests at most, and the rest fail fast 503 UO.
import http from 'node:http';
import http2 from 'node:http2';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { testMeshYaml, TestMeshFile } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy, type SimpleResponse } from '../testing/proxy.js';
import { eventually, listenH2, listenHttp } from '../testing/servers.js';

beforeAll(() => setLogLevel('silent'));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function mesh(ports: number[], portName: string, connectionPool: Record<string, number>): string {
  const policy = stringify({
    apiVersion: 'policy.tsmesh.io/v1alpha1',
    kind: 'TrafficPolicy',
    metadata: { name: 'svc-pool', namespace: 'default' },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'svc' }], connectionPool },
  });
  return `${testMeshYaml([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName, endpoints: ports }])}---\n${policy}`;
}

async function start(text: string, args: string[] = []): Promise<RunningProxy> {
  const file = new TestMeshFile([]);
  file.writeText(text);
  const proxy = await startTestProxy(file.path, { args });
  cleanups.push(() => file.remove(), () => proxy.close());
  return proxy;
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe.each(['relay', 'node'])('HTTP/1.1 maxConnections and maxPendingRequests (%s engine)', (engine) => {
  it('holds a request that needs a connection over the cap, fails the one past maxPendingRequests with 503 UO, and serves the held one when a connection frees', async () => {
    const held: http.ServerResponse[] = [];
    const server = await listenHttp((_req, res) => void held.push(res));
    cleanups.push(() => server.close(), () => held.forEach((r) => r.destroy()));
    const proxy = await start(mesh([server.port], 'http', { maxConnections: 1, maxPendingRequests: 1 }), ['--http1-engine', engine]);
    const first = fetchText(proxy.ports.outbound, '/1');
    await eventually(() => held.length === 1, 'the first request to reach the endpoint');
    const second = fetchText(proxy.ports.outbound, '/2');
    // Let the second one reach its wait before the third arrives.
    await eventually(async () => metric((await fetchText(proxy.ports.health, '/metrics')).body, 'tsmesh_upstream_overflow_total', 'kind="max_connections"') >= 1, 'the second request to wait');
    const third: SimpleResponse = await fetchText(proxy.ports.outbound, '/3');
    expect([third.status, third.headers['x-tsmesh-proxy-error']]).toEqual([503, 'overflow']);
    expect(server.accepted).toBe(1);
    held[0]!.end('one');
    expect((await first).body).toBe('one');
    await eventually(() => held.length === 2, 'the held request to reach the endpoint once a connection is free');
    held[1]!.end('two');
    expect((await second).body).toBe('two');
    // Never more than one connection at a time.
    expect(server.open).toBeLessThanOrEqual(1);
    const metrics = (await fetchText(proxy.ports.health, '/metrics')).body;
    expect(metric(metrics, 'tsmesh_upstream_overflow_total', 'kind="max_pending"')).toBe(1);
  });
});

describe('HTTP/2 maxConnections and maxPendingRequests', () => {
  it('holds a stream to an endpoint without a connection while the cluster is at its cap; the idle connection is closed for it', async () => {
    const held: Array<{ name: string; stream: http2.ServerHttp2Stream }> = [];
    const servers = await Promise.all(['a', 'b'].map((name) => listenH2((stream) => void held.push({ name, stream }))));
    cleanups.push(() => Promise.all(servers.map((s) => s.close())));
    const proxy = await start(mesh(servers.map((s) => s.port), 'http2', { maxConnections: 1, maxPendingRequests: 1 }));
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    session.on('error', () => undefined);
    cleanups.push(() => session.destroy());
    const call = (): Promise<{ status: number; error: unknown; body: string }> =>
      new Promise((resolve) => {
        const req = session.request({ ':path': '/' });
        let status = 0;
        let error: unknown;
        const chunks: Buffer[] = [];
        req.on('response', (h) => {
          status = Number(h[':status']);
          error = h['x-tsmesh-proxy-error'];
        });
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('close', () => resolve({ status, error, body: Buffer.concat(chunks).toString() }));
        req.on('error', () => undefined);
      });
    // Round-robin: x, y, x, y (x: whichever endpoint comes first).
    const one = call();
    await eventually(() => held.length === 1, 'the first stream to reach an endpoint');
    const x = held[0]!.name;
    const y = x === 'a' ? 'b' : 'a';
    const [sx, sy] = x === 'a' ? [servers[0]!, servers[1]!] : [servers[1]!, servers[0]!];
    const two = call();
    await eventually(async () => metric((await fetchText(proxy.ports.health, '/metrics')).body, 'tsmesh_upstream_overflow_total', 'kind="max_connections"') >= 1, 'the stream to y to wait');
    const three = call();
    await eventually(() => held.length === 2, 'the third stream to reach x on its open connection');
    const four = await call();
    expect([four.status, four.error]).toEqual([503, 'overflow']);
    expect(held.map((h) => h.name)).toEqual([x, x]);
    expect(sy.accepted).toBe(0);
    for (const h of held.splice(0)) {
      h.stream.respond({ ':status': 200 });
      h.stream.end(h.name);
    }
    expect([(await one).body, (await three).body]).toEqual([x, x]);
    await eventually(() => held.length === 1, 'the held stream to reach y once the idle connection to x closed');
    expect(held[0]!.name).toBe(y);
    held[0]!.stream.respond({ ':status': 200 });
    held[0]!.stream.end(y);
    expect((await two).body).toBe(y);
    expect(sx.open).toBe(0);
  });
});
