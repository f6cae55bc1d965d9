// Local rate limits on the inbound side, with real clients: HTTP/1.1 (both engines) and HTTP/2
// inside mesh mTLS (identities from a throwaway CA), gRPC (raw HTTP/2 over mesh mTLS and
// @grpc/grpc-js in plaintext), and a whole sidecar with two event loops sharing one set of buckets.
// The buckets' clock is a fake one here (nothing refills during a test) except in the whole sidecar.
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { setLogLevel, validateObject, type MeshAuthorizationPolicy, type MeshHTTPLocalRateLimitPolicy } from '@tsmesh/common';
import { H1Forwarder } from '../http/h1.js';
import { H2Forwarder } from '../http/h2.js';
import { H1Relay } from '../h1/relay.js';
import { compileAuthorization, type WorkloadAuthorization } from '../policy/authorization.js';
import { RateBuckets, rateBucketsBuffer } from '../policy/rate-buckets.js';
import { compileRateLimits, type WorkloadRateLimits } from '../policy/rate-limit.js';
import { MESH_ALPN } from '../tls/mesh-tls.js';
import { AccessLog, METRIC_NAMES, ProxyMetrics, RequestTelemetry } from '../telemetry/index.js';
import { captureLog, type CapturedLog } from '../telemetry/testing/log-capture.js';
import { find, parseExposition } from '../telemetry/testing/prometheus-text.js';
import { plainDialer } from '../upstream/dial.js';
import { testMeshCa, type TestMeshCa, type WorkloadCert } from '../testing/mesh-ca.js';
import { listenHttp, listenH2, listenTcp, once, type Listening } from '../testing/servers.js';
import { Inbound } from './inbound.js';

const WORKLOAD = { namespace: 'shop', labels: { app: 'backend' } };

function rateLimit(name: string, spec: unknown): MeshHTTPLocalRateLimitPolicy {
  const checked = validateObject({ apiVersion: 'policy.tsmesh.io/v1', kind: 'HTTPLocalRateLimitPolicy', metadata: { name, namespace: 'shop' }, spec });
  if (!checked.ok) throw checked.error;
  if (checked.value.kind !== 'HTTPLocalRateLimitPolicy') throw new Error('wrong kind');
  return checked.value.value;
}

function authzPolicy(name: string, spec: unknown): MeshAuthorizationPolicy {
  const checked = validateObject({ apiVersion: 'security.tsmesh.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'shop' }, spec });
  if (!checked.ok || checked.value.kind !== 'AuthorizationPolicy') throw new Error('bad policy');
  return checked.value.value;
}

interface Harness {
  readonly port: number;
  readonly metrics: ProxyMetrics;
  readonly access: CapturedLog;
}

const running: Array<{ close(): Promise<void> }> = [];

/** Compiled onto fresh buckets whose clock stands still: a burst is all there is. */
function limits(policies: MeshHTTPLocalRateLimitPolicy[], metrics?: ProxyMetrics): WorkloadRateLimits {
  const counters = metrics === undefined ? undefined : (p: string, d: 'admitted' | 'limited', r: string) => metrics.rateLimitCounter(p, d, r);
  return compileRateLimits(policies, WORKLOAD, { trustDomain: 'cluster.local', buckets: new RateBuckets(rateBucketsBuffer(), () => 1_000_000_000n), counters });
}

async function inboundFor(
  appPort: number,
  ca: TestMeshCa,
  self: WorkloadCert,
  policies: MeshHTTPLocalRateLimitPolicy[],
  options: { engine?: 'node' | 'relay'; authz?: WorkloadAuthorization } = {},
): Promise<Harness> {
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  const access = captureLog('info', { component: 'access' });
  const telemetry = new RequestTelemetry({ metrics, accessLog: new AccessLog(access.logger) });
  const h1Options = { connectTimeoutMs: 1000, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: 5000 };
  const h1 = options.engine === 'relay' ? (new H1Relay(h1Options, { telemetry, dial: plainDialer }) as unknown as H1Forwarder) : new H1Forwarder(h1Options, { telemetry, dial: plainDialer });
  const h2 = new H2Forwarder({ connectTimeoutMs: 1000 }, { telemetry, dial: plainDialer });
  const compiled = limits(policies, metrics);
  const inbound = new Inbound({
    h1,
    h2,
    telemetry,
    tls: ca.source(self),
    self: { workload: 'backend', namespace: 'shop', identity: self.spiffeId },
    mtlsMode: () => 'PERMISSIVE',
    authorization: () => options.authz,
    rateLimits: () => compiled,
    serviceFor: () => 'backend.shop',
    detectTimeoutMs: 200,
    connectTimeoutMs: 1000,
    tcpIdleTimeoutMs: 0,
    opaquePorts: new Set(),
    podIp: undefined,
    fixedDestination: { address: '127.0.0.1', port: appPort, family: 4 },
  });
  const listening: Listening<net.Server> = await listenTcp((socket) => inbound.handle(socket), { pauseOnConnect: true, allowHalfOpen: true });
  running.push({
    close: async () => {
      h1.close();
      h2.close();
      await listening.close();
    },
  });
  return { port: listening.port, metrics, access };
}

function meshClient(port: number, ca: TestMeshCa, workload: WorkloadCert, inner: keyof typeof MESH_ALPN): tls.TLSSocket {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.rootPem, key: workload.key, cert: workload.cert, ALPNProtocols: [MESH_ALPN[inner]], minVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
  socket.on('error', () => undefined);
  return socket;
}

/** `count` HTTP/1.1 requests on one keep-alive mesh mTLS connection as `workload`; each status and head. */
async function h1Gets(port: number, ca: TestMeshCa, workload: WorkloadCert, count: number): Promise<Array<{ status: number; head: string }>> {
  const socket = meshClient(port, ca, workload, 'http1');
  await once(socket, 'secureConnect');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  const closeAt = (i: number): string => (i === count - 1 ? 'connection: close\r\n' : '');
  for (let i = 0; i < count; i++) socket.write(`GET /item/${i} HTTP/1.1\r\nhost: backend.shop\r\n${closeAt(i)}content-length: 0\r\n\r\n`);
  await once(socket, 'close');
  return text
    .split(/(?=HTTP\/1\.1 \d{3} )/)
    .filter((part) => part.startsWith('HTTP/1.1'))
    .map((part) => ({ status: Number(part.slice(9, 12)), head: part.slice(0, part.indexOf('\r\n\r\n')).toLowerCase() }));
}

/** `count` HTTP/2 requests on one mesh mTLS connection, one after the other; the response headers of each. */
type H2Answer = Record<string, string | string[] | number | boolean | undefined> & { endedWithHeaders: boolean };

async function h2Requests(port: number, ca: TestMeshCa, workload: WorkloadCert, headers: http2.OutgoingHttpHeaders, count: number, body?: Buffer): Promise<H2Answer[]> {
  const session = http2.connect('http://backend.shop', { createConnection: () => meshClient(port, ca, workload, 'http2') });
  session.on('error', () => undefined);
  const out: H2Answer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const stream = session.request(headers);
      stream.on('data', () => undefined);
      stream.end(body);
      const [response] = await Promise.all([
        new Promise<H2Answer>((resolve) => stream.once('response', (h, flags: number) => resolve({ ...h, endedWithHeaders: (flags & 0x1) === 0x1 }))),
        once(stream, 'close'),
      ]);
      out.push(response);
    }
    return out;
  } finally {
    session.close();
  }
}

async function rateLimitLines(metrics: ProxyMetrics): Promise<string[]> {
  return (await metrics.render()).split('\n').filter((line) => line.startsWith(`${METRIC_NAMES.rateLimitDecisions}{`));
}

describe('inbound local rate limits', () => {
  let ca: TestMeshCa;
  let backend: WorkloadCert;
  let frontend: WorkloadCert;
  let batch: WorkloadCert;
  let other: WorkloadCert;
  let h1App: Listening<import('node:http').Server>;
  let h2App: Listening<http2.Http2Server>;
  let appRequests = 0;

  beforeAll(async () => {
    setLogLevel('silent');
    ca = testMeshCa();
    backend = ca.issue('shop', 'backend');
    frontend = ca.issue('shop', 'frontend');
    batch = ca.issue('jobs', 'batch');
    other = ca.issue('shop', 'other');
    h1App = await listenHttp((req, res) => {
      appRequests++;
      res.end(`app saw ${req.url ?? ''}`);
    });
    h2App = await listenH2((stream) => {
      appRequests++;
      stream.respond({ ':status': 200 });
      stream.end('h2 app');
    });
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.close()));
  });

  afterAll(async () => {
    await h1App.close();
    await h2App.close();
    ca.remove();
  });

  test.each(['node', 'relay'] as const)('HTTP/1.1 (%s engine): per-identity buckets are independent; the excess gets 429 with retry-after and never reaches the app', async (engine) => {
    const { port, access } = await inboundFor(h1App.port, ca, backend, [rateLimit('per-caller', { identity: { requestsPerSecond: 3 } })], { engine });
    const before = appRequests;
    const fromFrontend = await h1Gets(port, ca, frontend, 5);
    expect(fromFrontend.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
    expect(fromFrontend[3]?.head).toMatch(/\r\nretry-after: 1(\r\n|$)/);
    // Another caller has its own bucket.
    expect((await h1Gets(port, ca, other, 4)).map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(appRequests - before).toBe(6);
    const limited = access.lines().filter((l) => l['status'] === 429);
    expect(limited).toHaveLength(3);
    expect(limited[0]).toMatchObject({ flags: 'RL' });
  });

  test('overrides: the named callers share the override\'s bucket; the others keep their per-identity one', async () => {
    const { port, metrics } = await inboundFor(h1App.port, ca, backend, [
      rateLimit('with-override', { identity: { requestsPerSecond: 1 }, overrides: [{ requestsPerSecond: 4, clientRefs: [{ kind: 'ServiceAccount', name: 'frontend' }, { kind: 'ServiceAccount', name: 'batch', namespace: 'jobs' }] }] }),
    ]);
    expect((await h1Gets(port, ca, frontend, 3)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await h1Gets(port, ca, batch, 3)).map((r) => r.status)).toEqual([200, 429, 429]);
    expect((await h1Gets(port, ca, other, 2)).map((r) => r.status)).toEqual([200, 429]);
    expect((await rateLimitLines(metrics)).sort()).toEqual([
      `${METRIC_NAMES.rateLimitDecisions}{decision="admitted",policy="shop/with-override",reason="within_limit"} 5`,
      `${METRIC_NAMES.rateLimitDecisions}{decision="limited",policy="shop/with-override",reason="identity"} 1`,
      `${METRIC_NAMES.rateLimitDecisions}{decision="limited",policy="shop/with-override",reason="override"} 2`,
    ]);
  });

  test('a caller cannot choose its bucket: a forged identity header is ignored, the verified certificate decides', async () => {
    const { port } = await inboundFor(h1App.port, ca, backend, [
      rateLimit('forged', { identity: { requestsPerSecond: 1 }, overrides: [{ requestsPerSecond: 100, clientRefs: [{ kind: 'ServiceAccount', name: 'batch', namespace: 'jobs' }] }] }),
    ]);
    const socket = meshClient(port, ca, frontend, 'http1');
    await once(socket, 'secureConnect');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    const forged = 'x-forwarded-client-cert: By=spiffe://cluster.local/ns/shop/sa/backend;URI=spiffe://cluster.local/ns/jobs/sa/batch\r\n';
    for (let i = 0; i < 3; i++) socket.write(`GET / HTTP/1.1\r\nhost: backend.shop\r\n${forged}${i === 2 ? 'connection: close\r\n' : ''}content-length: 0\r\n\r\n`);
    await once(socket, 'close');
    expect([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]))).toEqual([200, 429, 429]);
  });

  test('a request authorization denies is not counted against the limit', async () => {
    const onlyFrontend = compileAuthorization([authzPolicy('frontend-only', { rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }] }] })], WORKLOAD);
    const { port } = await inboundFor(h1App.port, ca, backend, [rateLimit('total', { total: { requestsPerSecond: 2 } })], { authz: onlyFrontend });
    expect((await h1Gets(port, ca, other, 5)).map((r) => r.status)).toEqual([403, 403, 403, 403, 403]);
    expect((await h1Gets(port, ca, frontend, 3)).map((r) => r.status)).toEqual([200, 200, 429]);
  });

  test('HTTP/2: 429 with retry-after', async () => {
    const { port } = await inboundFor(h2App.port, ca, backend, [rateLimit('total', { total: { requestsPerSecond: 2 } })]);
    const answers = await h2Requests(port, ca, frontend, { ':method': 'GET', ':path': '/' }, 3);
    expect(answers.map((h) => h[':status'])).toEqual([200, 200, 429]);
    expect(answers[2]?.['retry-after']).toBe('1');
  });

  test('gRPC over mesh mTLS: the excess ends RESOURCE_EXHAUSTED (grpc-status 8) in a trailers-only response', async () => {
    const { port, metrics } = await inboundFor(h2App.port, ca, backend, [rateLimit('grpc', { identity: { requestsPerSecond: 1 } })]);
    const call = { ':method': 'POST', ':path': '/shop.Catalog/List', 'content-type': 'application/grpc', te: 'trailers' };
    const answers = await h2Requests(port, ca, frontend, call, 2, Buffer.from([0, 0, 0, 0, 0]));
    expect(answers[0]?.[':status']).toBe(200);
    expect(answers[1]).toMatchObject({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '8', 'retry-after': '1', endedWithHeaders: true });
    const text = parseExposition(await metrics.render());
    expect(find(text, 'tsmesh_requests_total', { grpc_status: '8', response_code: '200' }).map((s) => s.value)).toEqual([1]);
  });

  test('gRPC with @grpc/grpc-js in plaintext: only total applies (no identity), the excess is RESOURCE_EXHAUSTED', async () => {
    const server = new grpc.Server();
    const identity = (b: Buffer): Buffer => b;
    const definition = { path: '/shop.Catalog/List', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };
    server.addService({ List: definition } as grpc.ServiceDefinition, { List: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from('catalog')) });
    const appPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const harness = await inboundFor(appPort, ca, backend, [rateLimit('both', { total: { requestsPerSecond: 3 }, identity: { requestsPerSecond: 1 } })]);
    const client = new grpc.Client(`127.0.0.1:${harness.port}`, grpc.credentials.createInsecure());
    const unary = (): Promise<{ code: number; retryAfter?: string }> =>
      new Promise((resolve) => {
        const call = client.makeUnaryRequest('/shop.Catalog/List', identity, identity, Buffer.alloc(0), (error) =>
          resolve(error ? { code: error.code, retryAfter: String(error.metadata?.get('retry-after')[0] ?? '') } : { code: 0 }),
        );
        void call;
      });
    try {
      const codes: Array<{ code: number; retryAfter?: string }> = [];
      for (let i = 0; i < 5; i++) codes.push(await unary());
      expect(codes).toEqual([{ code: 0 }, { code: 0 }, { code: 0 }, { code: grpc.status.RESOURCE_EXHAUSTED, retryAfter: '1' }, { code: grpc.status.RESOURCE_EXHAUSTED, retryAfter: '1' }]);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});

describe('through a whole sidecar from a mesh file', () => {
  test('spec.route limits one HTTPRoute rule: requests its rule routes are limited, the others are not', async () => {
    const { TestMeshFile, testMeshYaml } = await import('../testing/mesh.js');
    const { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } = await import('../testing/proxy.js');
    const app = await listenHttp((_req, res) => res.end('app'));
    const mesh = new TestMeshFile([]);
    const route =
      'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: web\n  namespace: default\nspec:\n  parentRefs:\n  - {group: "", kind: Service, name: web, port: ' +
      String(SERVICE_PORT) +
      '}\n  rules:\n  - name: search\n    matches:\n    - path: {type: PathPrefix, value: /search}\n    backendRefs:\n    - {name: web, port: ' +
      String(SERVICE_PORT) +
      '}\n  - name: rest\n    backendRefs:\n    - {name: web, port: ' +
      String(SERVICE_PORT) +
      '}\n';
    mesh.writeText(
      `${testMeshYaml([{ name: 'web', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [app.port] }])}---\n${route}---\n` +
        'apiVersion: policy.tsmesh.io/v1\nkind: HTTPLocalRateLimitPolicy\nmetadata:\n  name: search\n  namespace: default\nspec:\n  route:\n    name: web\n    ruleName: search\n  total:\n    requestsPerSecond: 1\n',
    );
    const proxy = await startTestProxy(mesh.path, { inboundTarget: `127.0.0.1:${app.port}`, env: { TSMESH_POD_IP: '127.0.0.1' } });
    try {
      const statuses = async (path: string, n: number): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) out.push((await fetchText(proxy.ports.inbound, path)).status);
        return out;
      };
      expect(await statuses('/search?q=a', 3)).toEqual([200, 429, 429]);
      expect(await statuses('/items', 4)).toEqual([200, 200, 200, 200]);
    } finally {
      await proxy.close();
      mesh.remove();
      await app.close();
    }
  });

  test('with two event loops the buckets are shared: at once, 60 connections get the limit admitted, not twice it', async () => {
    const { TestMeshFile, testMeshYaml } = await import('../testing/mesh.js');
    const { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } = await import('../testing/proxy.js');
    const app = await listenHttp((_req, res) => res.end('app'));
    const mesh = new TestMeshFile([]);
    mesh.writeText(
      `${testMeshYaml([{ name: 'web', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [app.port] }])}---\n` +
        'apiVersion: policy.tsmesh.io/v1\nkind: HTTPLocalRateLimitPolicy\nmetadata:\n  name: total\n  namespace: default\nspec:\n  total:\n    requestsPerSecond: 10\n',
    );
    const proxy = await startTestProxy(mesh.path, { inboundTarget: `127.0.0.1:${app.port}`, concurrency: 2 });
    try {
      const started = performance.now();
      const answers = await Promise.all(Array.from({ length: 60 }, () => fetchText(proxy.ports.inbound, '/')));
      const seconds = (performance.now() - started) / 1000;
      const admitted = answers.filter((a) => a.status === 200).length;
      // The burst (10) plus what refilled while the requests were in flight; per-loop buckets would admit about 20.
      expect(admitted).toBeGreaterThanOrEqual(10);
      expect(admitted).toBeLessThanOrEqual(10 + Math.ceil(seconds * 10) + 1);
      expect(answers.filter((a) => a.status === 429).every((a) => a.headers['retry-after'] === '1')).toBe(true);
      const metrics = parseExposition((await fetchText(proxy.ports.health, '/metrics')).body);
      const perLoop = [0, 1].map((loop) => find(metrics, 'tsmesh_proxy_loop_connections_total', { loop: String(loop), direction: 'inbound' }).reduce((n, s) => n + s.value, 0));
      // Both loops took connections (else the test would not tell shared buckets from per-loop ones).
      expect(perLoop[0]).toBeGreaterThan(5);
      expect(perLoop[1]).toBeGreaterThan(5);
      const limited = find(metrics, METRIC_NAMES.rateLimitDecisions, { decision: 'limited', policy: 'default/total', reason: 'total' }).reduce((n, s) => n + s.value, 0);
      expect(limited).toBe(60 - admitted);
    } finally {
      await proxy.close();
      mesh.remove();
      await app.close();
    }
  });
});
