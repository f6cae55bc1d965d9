// AuthorizationPolicy on the inbound side, with real clients: HTTP/1.1 and HTTP/2 inside mesh mTLS
// (the caller's identity from a throwaway CA), gRPC (a raw HTTP/2 call over mesh mTLS, and
// @grpc/grpc-js in plaintext), and TCP tunnels to a server-first application, which must never
// speak to a refused caller. Each refusal is counted by policy and logged with the RBAC flag.
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { setLogLevel, validateObject, type MeshAuthorizationPolicy } from '@tsmesh/common';
import { H1Forwarder } from '../http/h1.js';
import { H2Forwarder } from '../http/h2.js';
import { H1Relay } from '../h1/relay.js';
import { compileAuthorization, type WorkloadAuthorization } from '../policy/authorization.js';
import { MESH_ALPN } from '../tls/mesh-tls.js';
import { AccessLog, METRIC_NAMES, ProxyMetrics, RequestTelemetry } from '../telemetry/index.js';
import { captureLog, type CapturedLog } from '../telemetry/testing/log-capture.js';
import { plainDialer } from '../upstream/dial.js';
import { testMeshCa, type TestMeshCa, type WorkloadCert } from '../testing/mesh-ca.js';
import { listenHttp, listenH2, listenTcp, once, type Listening } from '../testing/servers.js';
import { Inbound } from './inbound.js';

const WORKLOAD = { namespace: 'shop', labels: { app: 'backend' } };

function policy(name: string, spec: unknown): MeshAuthorizationPolicy {
  const checked = validateObject({ apiVersion: 'security.tsmesh.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'shop' }, spec });
  if (!checked.ok) throw checked.error;
  if (checked.value.kind !== 'AuthorizationPolicy') throw new Error('wrong kind');
  return checked.value.value;
}

interface Harness {
  readonly port: number;
  readonly metrics: ProxyMetrics;
  readonly access: CapturedLog;
  /** Replaces the compiled policies (as a new snapshot would). */
  set(authz: WorkloadAuthorization | undefined): void;
}

const running: Array<{ close(): Promise<void> }> = [];

async function inboundFor(appPort: number, ca: TestMeshCa, self: WorkloadCert, authz: WorkloadAuthorization | undefined, engine: 'node' | 'relay' = 'node'): Promise<Harness> {
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  const access = captureLog('info', { component: 'access' });
  const telemetry = new RequestTelemetry({ metrics, accessLog: new AccessLog(access.logger) });
  const h1Options = { connectTimeoutMs: 1000, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: 5000 };
  // `--http1-engine relay` stands in for the H1Forwarder type as the data plane does it.
  const h1 = engine === 'relay' ? (new H1Relay(h1Options, { telemetry, dial: plainDialer }) as unknown as H1Forwarder) : new H1Forwarder(h1Options, { telemetry, dial: plainDialer });
  const h2 = new H2Forwarder({ connectTimeoutMs: 1000 }, { telemetry, dial: plainDialer });
  let current = authz;
  const inbound = new Inbound({
    h1,
    h2,
    telemetry,
    tls: ca.source(self),
    self: { workload: 'backend', namespace: 'shop', identity: self.spiffeId },
    mtlsMode: () => 'PERMISSIVE',
    authorization: () => current,
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
  return { port: listening.port, metrics, access, set: (next) => (current = next) };
}

function meshClient(port: number, ca: TestMeshCa, workload: WorkloadCert, inner: keyof typeof MESH_ALPN): tls.TLSSocket {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ca: ca.rootPem,
    key: workload.key,
    cert: workload.cert,
    ALPNProtocols: [MESH_ALPN[inner]],
    minVersion: 'TLSv1.3',
    checkServerIdentity: () => undefined,
  });
  socket.on('error', () => undefined);
  return socket;
}

/** One HTTP/1.1 request inside mesh mTLS as `workload`; the status and body. */
async function h1Get(port: number, ca: TestMeshCa, workload: WorkloadCert, path: string, method = 'GET'): Promise<{ status: number; body: string; head: string }> {
  const socket = meshClient(port, ca, workload, 'http1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'secureConnect');
  socket.write(`${method} ${path} HTTP/1.1\r\nhost: backend.shop\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  await once(socket, 'close');
  const text = Buffer.concat(chunks).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), head: text.slice(0, end), body: text.slice(end + 4) };
}

/** One HTTP/2 request inside mesh mTLS; the response headers and body. */
async function h2Request(port: number, ca: TestMeshCa, workload: WorkloadCert, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: string }> {
  const session = http2.connect('http://backend.shop', { createConnection: () => meshClient(port, ca, workload, 'http2') });
  session.on('error', () => undefined);
  try {
    const stream = session.request(headers);
    const chunks: Buffer[] = [];
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('trailers', (t) => (trailers = t));
    stream.end(body);
    const [response] = await Promise.all([once<http2.IncomingHttpHeaders>(stream, 'response'), once(stream, 'close')]);
    return { headers: response, trailers, body: Buffer.concat(chunks).toString() };
  } finally {
    session.close();
  }
}

async function authzLines(metrics: ProxyMetrics): Promise<string[]> {
  return (await metrics.render()).split('\n').filter((line) => line.startsWith(`${METRIC_NAMES.authzDecisions}{`));
}

const FRONTEND_GETS_API = policy('frontend-api', {
  selector: { matchLabels: { app: 'backend' } },
  rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }], to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }] }],
});

describe('inbound authorization', () => {
  let ca: TestMeshCa;
  let backend: WorkloadCert;
  let frontend: WorkloadCert;
  let intruder: WorkloadCert;
  let h1App: Listening<import('node:http').Server>;
  let h2App: Listening<http2.Http2Server>;
  const seenPaths: string[] = [];

  beforeAll(async () => {
    setLogLevel('silent');
    ca = testMeshCa();
    backend = ca.issue('shop', 'backend');
    frontend = ca.issue('shop', 'frontend');
    intruder = ca.issue('evil', 'intruder');
    h1App = await listenHttp((req, res) => {
      seenPaths.push(req.url ?? '');
      res.end(`app saw ${req.url ?? ''}`);
    });
    h2App = await listenH2((stream, headers) => {
      seenPaths.push(String(headers[':path']));
      stream.respond({ ':status': 200 });
      stream.end(`h2 app saw ${String(headers[':path'])}`);
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

  test('HTTP/1.1: the ALLOWed principal GETs /api/*, and nothing else; others get 403', async () => {
    const { port } = await inboundFor(h1App.port, ca, backend, compileAuthorization([FRONTEND_GETS_API], WORKLOAD));
    expect(await h1Get(port, ca, frontend, '/api/items')).toMatchObject({ status: 200, body: 'app saw /api/items' });
    expect((await h1Get(port, ca, frontend, '/admin')).status).toBe(403);
    expect((await h1Get(port, ca, frontend, '/api/items', 'DELETE')).status).toBe(403);
    const refused = await h1Get(port, ca, intruder, '/api/items');
    expect(refused.status).toBe(403);
    expect(refused.head.toLowerCase()).toContain('x-tsmesh-proxy-error: rbac');
    // The caller is not told which policy refused it.
    expect(refused.head).not.toContain('frontend-api');
    expect(refused.body).toBe('RBAC: access denied\n');
  });

  test('HTTP/1.1 with the relay engine: the same 403 and the same normalised path', async () => {
    const { port } = await inboundFor(h1App.port, ca, backend, compileAuthorization([FRONTEND_GETS_API], WORKLOAD), 'relay');
    expect(await h1Get(port, ca, frontend, '/x/../api//items')).toMatchObject({ status: 200, body: 'app saw /api/items' });
    expect((await h1Get(port, ca, frontend, '/api/../admin')).status).toBe(403);
    expect((await h1Get(port, ca, intruder, '/api/items')).status).toBe(403);
  });

  test('HTTP/1.1: the path is judged normalised, and the app receives the path that was judged', async () => {
    const { port } = await inboundFor(h1App.port, ca, backend, compileAuthorization([FRONTEND_GETS_API], WORKLOAD));
    // Dot segments cannot climb out of /api/* past the policy...
    expect((await h1Get(port, ca, frontend, '/api/../admin')).status).toBe(403);
    expect((await h1Get(port, ca, frontend, '/api/%2e%2e/admin')).status).toBe(403);
    // ...and a path that normalises into /api/* reaches the app as judged.
    expect(await h1Get(port, ca, frontend, '/x/../api//items?q=1')).toMatchObject({ status: 200, body: 'app saw /api/items?q=1' });
    // An encoded slash is refused outright when a policy reads paths.
    expect((await h1Get(port, ca, frontend, '/api%2F..%2Fadmin')).status).toBe(400);
  });

  test('DENY beats ALLOW', async () => {
    const deny = policy('no-secrets', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/api/secret*'] } }] }] });
    const { port } = await inboundFor(h1App.port, ca, backend, compileAuthorization([FRONTEND_GETS_API, deny], WORKLOAD));
    expect((await h1Get(port, ca, frontend, '/api/items')).status).toBe(200);
    expect((await h1Get(port, ca, frontend, '/api/secrets')).status).toBe(403);
  });

  test('without policies (or after they are removed) nothing is checked', async () => {
    const harness = await inboundFor(h1App.port, ca, backend, compileAuthorization([], WORKLOAD));
    expect((await h1Get(harness.port, ca, intruder, '/admin')).status).toBe(200);
    harness.set(compileAuthorization([FRONTEND_GETS_API], WORKLOAD));
    expect((await h1Get(harness.port, ca, intruder, '/admin')).status).toBe(403);
    harness.set(undefined);
    expect((await h1Get(harness.port, ca, intruder, '/admin')).status).toBe(200);
    expect(await authzLines(harness.metrics)).toEqual([`${METRIC_NAMES.authzDecisions}{decision="deny",policy="none",reason="no_allow_matched",protocol="http"} 1`]);
  });

  test('a refusal is counted by policy and reason, and access-logged with the RBAC flag and 403', async () => {
    const deny = policy('no-evil', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['evil'] } }] }] });
    const { port, metrics, access } = await inboundFor(h1App.port, ca, backend, compileAuthorization([deny], WORKLOAD));
    expect((await h1Get(port, ca, intruder, '/x')).status).toBe(403);
    expect((await h1Get(port, ca, frontend, '/x')).status).toBe(200);
    expect(await authzLines(metrics)).toEqual([
      `${METRIC_NAMES.authzDecisions}{decision="deny",policy="shop/no-evil",reason="deny_matched",protocol="http"} 1`,
      `${METRIC_NAMES.authzDecisions}{decision="allow",policy="none",reason="no_policy",protocol="http"} 1`,
    ]);
    expect(access.lines()[0]).toMatchObject({ status: 403, flags: 'RBAC' });
  });

  test('AUDIT only marks: the request goes through and is counted as audited', async () => {
    const audit = policy('watch-evil', { action: 'AUDIT', rules: [{ from: [{ source: { namespaces: ['evil'] } }] }] });
    const { port, metrics } = await inboundFor(h1App.port, ca, backend, compileAuthorization([audit], WORKLOAD));
    expect((await h1Get(port, ca, intruder, '/x')).status).toBe(200);
    expect(await authzLines(metrics)).toContain(`${METRIC_NAMES.authzDecisions}{decision="audit",policy="shop/watch-evil",reason="audit_matched",protocol="http"} 1`);
  });

  test('HTTP/2: 403 for a refused caller, 200 for the allowed one', async () => {
    const { port } = await inboundFor(h2App.port, ca, backend, compileAuthorization([FRONTEND_GETS_API], WORKLOAD));
    const allowed = await h2Request(port, ca, frontend, { ':method': 'GET', ':path': '/api/v2' });
    expect([allowed.headers[':status'], allowed.body]).toEqual([200, 'h2 app saw /api/v2']);
    const refused = await h2Request(port, ca, intruder, { ':method': 'GET', ':path': '/api/v2' });
    expect(refused.headers[':status']).toBe(403);
  });

  test('gRPC over mesh mTLS: a refused call ends PERMISSION_DENIED (grpc-status 7)', async () => {
    const grpcPolicy = policy('grpc-frontend', { rules: [{ from: [{ source: { principals: ['*/sa/frontend'] } }], to: [{ operation: { paths: ['/shop.Catalog/*'] } }] }] });
    const { port } = await inboundFor(h2App.port, ca, backend, compileAuthorization([grpcPolicy], WORKLOAD));
    const call = { ':method': 'POST', ':path': '/shop.Catalog/List', 'content-type': 'application/grpc', te: 'trailers' };
    const frame = Buffer.from([0, 0, 0, 0, 0]);
    const refused = await h2Request(port, ca, intruder, call, frame);
    expect([refused.headers[':status'], refused.headers['grpc-status']]).toEqual([200, '7']);
    const allowed = await h2Request(port, ca, frontend, call, frame);
    expect(allowed.body).toBe('h2 app saw /shop.Catalog/List');
  });

  test('gRPC with @grpc/grpc-js in plaintext: where a principal is required, PERMISSION_DENIED', async () => {
    const server = new grpc.Server();
    const identity = (b: Buffer): Buffer => b;
    const definition = { path: '/shop.Catalog/List', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };
    server.addService({ List: definition } as grpc.ServiceDefinition, { List: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from('catalog')) });
    const appPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const requireIdentity = policy('mtls-only', { rules: [{ from: [{ source: { principals: ['*'] } }] }] });
    const harness = await inboundFor(appPort, ca, backend, compileAuthorization([requireIdentity], WORKLOAD));
    const client = new grpc.Client(`127.0.0.1:${harness.port}`, grpc.credentials.createInsecure());
    const unary = (): Promise<{ code: number; value?: string }> =>
      new Promise((resolve) => {
        client.makeUnaryRequest('/shop.Catalog/List', identity, identity, Buffer.alloc(0), (error, value) =>
          resolve(error ? { code: error.code } : { code: 0, value: value?.toString() }),
        );
      });
    try {
      expect(await unary()).toEqual({ code: grpc.status.PERMISSION_DENIED });
      harness.set(compileAuthorization([], WORKLOAD));
      expect(await unary()).toEqual({ code: 0, value: 'catalog' });
    } finally {
      client.close();
      server.forceShutdown();
    }
  });

  describe('TCP', () => {
    let banner: Listening<net.Server>;
    let accepted = 0;

    beforeAll(async () => {
      // Server-first: a refused caller must not even get its banner.
      banner = await listenTcp((socket) => {
        accepted += 1;
        socket.on('error', () => undefined);
        socket.write('220 ready\r\n');
        socket.on('data', (c: Buffer) => socket.write(`250 ${c.toString()}`));
      });
    });

    afterAll(async () => {
      await banner.close();
    });

    const portPolicy = (port: number): MeshAuthorizationPolicy =>
      policy('tcp-frontend', { rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }], to: [{ operation: { ports: [String(port)] } }] }] });

    test('a refused principal is cut off before the application is dialled; the allowed one talks', async () => {
      const { port, metrics, access } = await inboundFor(banner.port, ca, backend, compileAuthorization([portPolicy(banner.port)], WORKLOAD));
      const before = accepted;
      const refused = meshClient(port, ca, intruder, 'tcp');
      const got: Buffer[] = [];
      refused.on('data', (c: Buffer) => got.push(c));
      await once(refused, 'close');
      expect([Buffer.concat(got).toString(), accepted]).toEqual(['', before]);
      expect(await authzLines(metrics)).toEqual([`${METRIC_NAMES.authzDecisions}{decision="deny",policy="none",reason="no_allow_matched",protocol="tcp"} 1`]);
      expect(access.lines()[0]).toMatchObject({ type: 'tcp', flags: 'RBAC', reason: 'authz_denied' });

      const allowed = meshClient(port, ca, frontend, 'tcp');
      expect((await once<Buffer>(allowed, 'data')).toString()).toBe('220 ready\r\n');
      allowed.destroy();
    });

    test('a plaintext TCP caller is reset where a principal is required', async () => {
      const { port } = await inboundFor(banner.port, ca, backend, compileAuthorization([portPolicy(banner.port)], WORKLOAD));
      const before = accepted;
      const client = net.connect(port, '127.0.0.1');
      const closed = new Promise<string | undefined>((resolve) => {
        client.on('error', (e: NodeJS.ErrnoException) => resolve(e.code));
        client.on('close', () => resolve(undefined));
      });
      client.on('data', () => undefined);
      expect(await closed).toBe('ECONNRESET');
      expect(accepted).toBe(before);
    });

    test('an ALLOW rule that only names HTTP fields never lets TCP through (Istio: ignored for TCP)', async () => {
      const httpOnly = policy('http-only', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] });
      const { port } = await inboundFor(banner.port, ca, backend, compileAuthorization([httpOnly], WORKLOAD));
      const client = meshClient(port, ca, frontend, 'tcp');
      const got: Buffer[] = [];
      client.on('data', (c: Buffer) => got.push(c));
      await once(client, 'close');
      expect(Buffer.concat(got).toString()).toBe('');
    });
  });
});

describe('through a whole sidecar from a mesh file', () => {
  test('an AuthorizationPolicy in the mesh file refuses a plaintext caller with 403, and /authz/check says why', async () => {
    const { TestMeshFile, testMeshYaml } = await import('../testing/mesh.js');
    const { adminJson, fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } = await import('../testing/proxy.js');
    const app = await listenHttp((_req, res) => res.end('app'));
    const mesh = new TestMeshFile([]);
    mesh.writeText(
      `${testMeshYaml([{ name: 'web', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [app.port] }])}---\n` +
        'apiVersion: security.tsmesh.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: mtls-only\n  namespace: tsmesh-system\nspec:\n  rules:\n  - from:\n    - source:\n        principals: ["*"]\n',
    );
    const proxy = await startTestProxy(mesh.path, { inboundTarget: `127.0.0.1:${app.port}` });
    try {
      const refused = await fetchText(proxy.ports.inbound, '/');
      expect(refused.status).toBe(403);
      const explained = await adminJson<{ allowed: boolean; reason: string }>(proxy, `/authz/check?port=${app.port}&path=/`);
      expect(explained).toMatchObject({ allowed: false, reason: expect.stringContaining('none matched') });
      const metrics = await fetchText(proxy.ports.health, '/metrics');
      expect(metrics.body).toContain(`${METRIC_NAMES.authzDecisions}{decision="deny",policy="none",reason="no_allow_matched",protocol="http"} 1`);
    } finally {
      await proxy.close();
      mesh.remove();
      await app.close();
    }
  });
});
