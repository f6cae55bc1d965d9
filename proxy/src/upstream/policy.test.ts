// TrafficPolicy enforced by a running sidecar over HTTP/2: consistent hashing on a header,
// circuit breaking on requests in flight, and outlier detection on 5xx answers.
import http2 from 'node:http2';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { testMeshYaml, TestMeshFile, type TestService } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { closedPort, eventually, listenH2, listenHttp, type Listening } from '../testing/servers.js';

beforeAll(() => setLogLevel('silent'));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function trafficPolicy(spec: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'policy.tsmesh.io/v1alpha1',
    kind: 'TrafficPolicy',
    metadata: { name: 'svc-policy', namespace: 'default' },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'svc' }], ...spec },
  });
}

async function start(ports: number[], spec: Record<string, unknown>): Promise<{ proxy: RunningProxy; session: http2.ClientHttp2Session; mesh: TestMeshFile }> {
  const service: TestService = { name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName: 'http2', endpoints: ports };
  const mesh = new TestMeshFile([]);
  mesh.writeText(`${testMeshYaml([service])}---\n${trafficPolicy(spec)}`);
  const proxy = await startTestProxy(mesh.path);
  const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
  session.on('error', () => undefined);
  cleanups.push(() => mesh.remove(), () => proxy.close(), () => session.destroy());
  return { proxy, session, mesh };
}

interface Answer {
  status: number;
  body: string;
  proxyError: string | undefined;
}

function call(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/', ...headers });
    let status = 0;
    let proxyError: string | undefined;
    req.on('response', (h) => {
      status = Number(h[':status']);
      proxyError = h['x-tsmesh-proxy-error'] as string | undefined;
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString(), proxyError }));
    req.on('error', reject);
  });
}

async function upstreams(n: number, answer: (i: number) => number = () => 200): Promise<Array<Listening<http2.Http2Server>>> {
  const servers = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      listenH2((stream) => {
        stream.respond({ ':status': answer(i) });
        stream.end(`u${i}`);
      }),
    ),
  );
  cleanups.push(() => Promise.all(servers.map((s) => s.close())));
  return servers;
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('TrafficPolicy in a running sidecar', () => {
  it('ring-hash on a header: every request with one value lands on one endpoint, and the values spread', async () => {
    const servers = await upstreams(5);
    const { session } = await start(
      servers.map((s) => s.port),
      { loadBalancer: { algorithm: 'ring-hash', hash: { header: 'x-user' } } },
    );
    const landing = new Map<string, Set<string>>();
    for (let round = 0; round < 5; round++) {
      for (let user = 0; user < 40; user++) {
        const { body } = await call(session, { 'x-user': `user-${user}` });
        let seen = landing.get(`user-${user}`);
        if (!seen) landing.set(`user-${user}`, (seen = new Set()));
        seen.add(body);
      }
    }
    expect([...landing.values()].every((s) => s.size === 1)).toBe(true);
    expect(new Set([...landing.values()].map((s) => [...s][0])).size).toBeGreaterThanOrEqual(4);
  });

  it('circuit breaking: past maxRequests in flight a stream gets 503 with UO at once and is counted; the rest are served', async () => {
    const held: Array<http2.ServerHttp2Stream> = [];
    const slow = await listenH2((stream) => {
      held.push(stream);
    });
    cleanups.push(() => slow.close(), () => held.forEach((s) => s.destroy()));
    const { proxy, session } = await start([slow.port], { connectionPool: { maxRequests: 2 } });
    const answers = Array.from({ length: 5 }, () => call(session));
    const refused = await Promise.race([Promise.all(answers.slice(2)), new Promise((r) => setTimeout(() => r('timeout'), 3000))]);
    expect(refused).toEqual([
      expect.objectContaining({ status: 503, proxyError: 'overflow' }),
      expect.objectContaining({ status: 503, proxyError: 'overflow' }),
      expect.objectContaining({ status: 503, proxyError: 'overflow' }),
    ]);
    await eventually(() => held.length === 2, 'the two admitted streams to reach the endpoint');
    for (const stream of held) {
      stream.respond({ ':status': 200 });
      stream.end('late');
    }
    expect((await Promise.all(answers.slice(0, 2))).map((a) => a.status)).toEqual([200, 200]);
    // The two in flight ended: the cluster takes requests again.
    const next = call(session);
    await eventually(() => held.length === 3, 'a new stream to be admitted');
    held[2]!.respond({ ':status': 200 });
    held[2]!.end('again');
    expect((await next).status).toBe(200);
    const metrics = (await fetchText(proxy.ports.health, '/metrics')).body;
    expect(metric(metrics, 'tsmesh_upstream_overflow_total', `kind="max_requests"`)).toBe(3);
  });

  it('outlier detection: an endpoint answering 500 is ejected after consecutive5xxErrors and the others take the traffic', async () => {
    const servers = await upstreams(3, (i) => (i === 0 ? 500 : 200));
    const { session } = await start(
      servers.map((s) => s.port),
      { loadBalancer: { algorithm: 'round-robin' }, outlierDetection: { consecutive5xxErrors: 3, baseEjectionTime: '30s', maxEjectionPercent: 50 } },
    );
    const before: number[] = [];
    for (let i = 0; i < 9; i++) before.push((await call(session)).status);
    expect(before.filter((s) => s === 500)).toHaveLength(3);
    const after: number[] = [];
    for (let i = 0; i < 30; i++) after.push((await call(session)).status);
    expect(after.every((s) => s === 200)).toBe(true);
  });

  it('HTTP/1.1 too: ring-hash on a cookie keeps a session on one endpoint; an endpoint that refuses is failed over and the retry counted', async () => {
    const servers = await Promise.all([0, 1, 2].map((i) => listenHttp((req, res) => res.end(`u${i}`))));
    cleanups.push(() => Promise.all(servers.map((s) => s.close())));
    const dead = await closedPort();
    const service: TestService = { name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName: 'http', endpoints: [...servers.map((s) => s.port), dead] };
    const mesh = new TestMeshFile([]);
    mesh.writeText(`${testMeshYaml([service])}---\n${trafficPolicy({ loadBalancer: { algorithm: 'ring-hash', hash: { cookie: 'session' } } })}`);
    const proxy = await startTestProxy(mesh.path);
    cleanups.push(() => mesh.remove(), () => proxy.close());
    const landing = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++) {
      for (let user = 0; user < 30; user++) {
        const res = await fetchText(proxy.ports.outbound, '/', { headers: { cookie: `theme=dark; session=s${user}` } });
        expect(res.status).toBe(200);
        let seen = landing.get(`s${user}`);
        if (!seen) landing.set(`s${user}`, (seen = new Set()));
        seen.add(res.body);
      }
    }
    expect([...landing.values()].every((s) => s.size === 1)).toBe(true);
    expect(new Set([...landing.values()].map((s) => [...s][0])).size).toBe(3);
    // The sessions whose key the refusing endpoint owned were failed over to another one, once each.
    const metrics = (await fetchText(proxy.ports.health, '/metrics')).body;
    expect(metric(metrics, 'tsmesh_upstream_connect_failures_total', 'destination_service="default/svc:80"')).toBeGreaterThanOrEqual(1);
    expect(metric(metrics, 'tsmesh_upstream_retries_total', 'protocol="http1",reason="connect"')).toBe(metric(metrics, 'tsmesh_upstream_connect_failures_total', 'destination_service="default/svc:80"'));
  });
});
