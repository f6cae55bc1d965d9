// HTTPRoute/GRPCRoute filters through a running sidecar (outbound, explicit-port mode), observed at
// the backend and at the client, on both HTTP/1.1 engines, HTTP/2 and gRPC: ResponseHeaderModifier,
// RequestRedirect (answered by the sidecar), URLRewrite (host and path the backend receives) and
// RequestMirror (a copy to another Service that never delays or fails the request).
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { testMeshYaml, TestMeshFile } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { closedPort, eventually, listenH2, listenHttp, once, pause, payload, sha256, type Listening } from '../testing/servers.js';

/** One request as a backend saw it. */
interface Seen {
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

const SHADOW_IP = '10.96.0.20';
const STALL_IP = '10.96.0.21';
const EMPTY_IP = '10.96.0.22';
const DOWN_IP = '10.96.0.23';

const prefix = (value: string): Record<string, unknown> => ({ path: { type: 'PathPrefix', value } });
const svc = { name: 'svc', port: SERVICE_PORT };

/** The route under test: one rule per filter case, all on Service svc. */
function routeYaml(kind: 'HTTPRoute' | 'GRPCRoute' = 'HTTPRoute'): string {
  const rules =
    kind === 'GRPCRoute'
      ? [
          {
            filters: [
              { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-frame', value: 'deny' }], remove: ['x-internal'] } },
              { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: SERVICE_PORT } } },
            ],
            backendRefs: [svc],
          },
        ]
      : [
          { matches: [prefix('/resp')], filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'X-Frame', value: 'deny' }], add: [{ name: 'x-route', value: 'resp' }], remove: ['x-internal'] } }], backendRefs: [svc] },
          { matches: [prefix('/failing')], filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-frame', value: 'deny' }] } }], backendRefs: [{ name: 'empty', port: SERVICE_PORT }] },
          { matches: [prefix('/old')], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' }, statusCode: 301 } }] },
          { matches: [prefix('/secure')], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: 'secure.example' } }, { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-frame', value: 'deny' }] } }] },
          { matches: [prefix('/moved')], filters: [{ type: 'RequestRedirect', requestRedirect: { port: 8080, statusCode: 308 } }] },
          { matches: [prefix('/api/v1')], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'backend.internal', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } }], backendRefs: [svc] },
          { matches: [prefix('/strip')], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }], backendRefs: [svc] },
          { matches: [prefix('/full')], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/index.html' } } }], backendRefs: [svc] },
          { matches: [prefix('/mirror')], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: SERVICE_PORT } } }, { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-mod', value: 'yes' }] } }], backendRefs: [svc] },
          { matches: [prefix('/stall')], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'stall', port: SERVICE_PORT } } }], backendRefs: [svc] },
          { matches: [prefix('/down')], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'down', port: SERVICE_PORT } } }], backendRefs: [svc] },
          { matches: [prefix('/never')], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: SERVICE_PORT }, percent: 0 } }], backendRefs: [svc] },
          { backendRefs: [svc] },
        ];
  return stringify({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind,
    metadata: { name: 'filters', namespace: 'default' },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'svc', port: SERVICE_PORT }], rules },
  });
}

function meshText(ports: { primary: number; shadow: number; stall: number; down: number }, portName = 'web', kind: 'HTTPRoute' | 'GRPCRoute' = 'HTTPRoute'): string {
  const services = testMeshYaml([
    { name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName, endpoints: [ports.primary] },
    { name: 'shadow', clusterIP: SHADOW_IP, port: SERVICE_PORT, portName, endpoints: [ports.shadow] },
    { name: 'stall', clusterIP: STALL_IP, port: SERVICE_PORT, portName, endpoints: [ports.stall] },
    { name: 'empty', clusterIP: EMPTY_IP, port: SERVICE_PORT, portName, endpoints: [] },
    { name: 'down', clusterIP: DOWN_IP, port: SERVICE_PORT, portName, endpoints: [ports.down] },
  ]);
  return `${services}---\n${routeYaml(kind)}`;
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const mirrored = async (proxy: RunningProxy, result: string): Promise<number> =>
  metric((await fetchText(proxy.ports.health, '/metrics')).body, 'tsmesh_route_mirror_total', `result="${result}"`);

/** An HTTP/1.1 backend that records what it saw and answers with a header the route removes. */
function recordingHttp(seen: Seen[], answer = true): Promise<Listening<http.Server>> {
  return listenHttp((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', host: req.headers.host, headers: req.headers, body: Buffer.concat(chunks) });
      if (!answer) return;
      res.writeHead(200, { 'content-type': 'text/plain', 'x-internal': 'secret', 'x-route': 'backend' });
      res.end('primary');
    });
  });
}

function recordingH2(seen: Seen[], answer = true): Promise<Listening<http2.Http2Server>> {
  return listenH2((stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      seen.push({ method: String(headers[':method']), path: String(headers[':path']), host: headers[':authority'], headers, body: Buffer.concat(chunks) });
      if (!answer || stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-internal': 'secret', 'x-route': 'backend' });
      stream.end('primary');
    });
  });
}

describe.each(['relay', 'node'])('route filters over HTTP/1.1 (%s engine)', (engine) => {
  const primarySeen: Seen[] = [];
  const shadowSeen: Seen[] = [];
  const stallSeen: Seen[] = [];
  let primary: Listening<http.Server>;
  let shadow: Listening<http.Server>;
  let stall: Listening<http.Server>;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  const get = (path: string, init: Parameters<typeof fetchText>[2] = {}) => fetchText(proxy.ports.outbound, path, { ...init, headers: { host: 'svc', ...init.headers } });
  const seenAt = (list: Seen[], path: string): Seen | undefined => list.find((s) => s.path === path);

  beforeAll(async () => {
    primary = await recordingHttp(primarySeen);
    shadow = await recordingHttp(shadowSeen);
    stall = await recordingHttp(stallSeen, false);
    mesh = new TestMeshFile([]);
    mesh.writeText(meshText({ primary: primary.port, shadow: shadow.port, stall: stall.port, down: await closedPort() }));
    proxy = await startTestProxy(mesh.path, { args: ['--http1-engine', engine] });
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all([primary?.close(), shadow?.close(), stall?.close()]);
    mesh?.remove();
  });

  test('ResponseHeaderModifier sets, adds and removes response headers', async () => {
    const res = await get('/resp/a');
    expect(res.status).toBe(200);
    expect(res.body).toBe('primary');
    expect(res.headers['x-frame']).toBe('deny');
    expect(res.headers['x-route']).toMatch(/^backend, ?resp$/);
    expect(res.headers['x-internal']).toBeUndefined();
    // Other rules' responses are untouched.
    const plain = await get('/plain');
    expect(plain.headers['x-internal']).toBe('secret');
    expect(plain.headers['x-frame']).toBeUndefined();
  });

  test("ResponseHeaderModifier is not applied to the sidecar's own error answers", async () => {
    const res = await get('/failing');
    expect(res.status).toBe(503);
    expect(res.headers['x-tsmesh-proxy-error']).toBeDefined();
    expect(res.headers['x-frame']).toBeUndefined();
  });

  test('RequestRedirect is answered by the sidecar with the Location the spec builds; nothing reaches a backend', async () => {
    const res = await get('/old/page?q=1&r=%2F');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('http://svc/new/page?q=1&r=%2F');
    expect(res.headers['content-length']).toBe('0');
    const secure = await get('/secure/x', { headers: { host: 'SVC.default:80' } });
    expect(secure.status).toBe(302);
    expect(secure.headers.location).toBe('https://secure.example/secure/x');
    // The route's ResponseHeaderModifier applies to the redirect it answers.
    expect(secure.headers['x-frame']).toBe('deny');
    const moved = await get('/moved/./a/../b', { method: 'POST', body: 'payload' });
    expect(moved.status).toBe(308);
    expect(moved.headers.location).toBe('http://svc:8080/moved/b');
    expect(primarySeen.filter((s) => /^\/(old|secure|moved|new)/.test(s.path))).toEqual([]);
  });

  test('a Host that is not a plain host name cannot steer the Location elsewhere', async () => {
    for (const host of ['evil.example/x', 'user@evil.example', 'evil.example\\x']) {
      const res = await get('/old/a', { headers: { host } });
      expect(res.status).toBe(301);
      expect(res.headers.location).toBe('http://svc.default.svc/new/a');
    }
  });

  test('a redirect keeps the client connection usable (keep-alive), body or not', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get('/old/a', { agent, method: 'POST', body: 'x'.repeat(10_000) });
      const second = await get('/resp/b', { agent });
      expect(first.status).toBe(301);
      expect(second.status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  test('URLRewrite replaces the host and the matched prefix the backend receives, keeping the query', async () => {
    const res = await get('/api/v1/users?id=7');
    expect(res.status).toBe(200);
    const seen = seenAt(primarySeen, '/v2/users?id=7');
    expect(seen?.host).toBe('backend.internal');
    await get('/strip/a/b');
    await get('/strip');
    await get('/full/anything?x=1');
    expect(seenAt(primarySeen, '/a/b')).toBeDefined();
    expect(seenAt(primarySeen, '/')).toBeDefined();
    expect(seenAt(primarySeen, '/index.html?x=1')).toBeDefined();
  });

  test('URLRewrite never forwards a dot segment or "//" the client slipped in', async () => {
    await get('/strip/a/%2e%2e/b');
    await get('/strip//x//y');
    await get('/strip/..%3B/z');
    expect(seenAt(primarySeen, '/b')).toBeDefined();
    expect(seenAt(primarySeen, '/x/y')).toBeDefined();
    for (const s of primarySeen) expect(s.path.split('?')[0]).not.toMatch(/\/\.\.?(\/|$)|\/\/|%2e/i);
  });

  test('RequestMirror sends a copy (body and edited headers) to the mirror Service and counts it', async () => {
    const before = await mirrored(proxy, 'sent');
    const res = await get('/mirror/x?y=1', { method: 'POST', body: 'hello mirror', headers: { 'content-type': 'text/plain', 'x-client': 'c1' } });
    expect(res.status).toBe(200);
    expect(res.body).toBe('primary');
    expect(seenAt(primarySeen, '/mirror/x?y=1')?.body.toString()).toBe('hello mirror');
    const copy = await eventually(() => seenAt(shadowSeen, '/mirror/x?y=1'), 'the mirrored request');
    expect(copy.method).toBe('POST');
    expect(copy.body.toString()).toBe('hello mirror');
    expect(copy.headers['x-client']).toBe('c1');
    expect(copy.headers['x-mod']).toBe('yes');
    await eventually(async () => (await mirrored(proxy, 'sent')) > before, 'the mirror to be counted');
  });

  test('RequestMirror with percent 0 sends nothing', async () => {
    expect((await get('/never')).status).toBe(200);
    await pause(100);
    expect(seenAt(shadowSeen, '/never')).toBeUndefined();
  });

  test('a mirror that never answers does not delay the request; one that cannot be reached does not fail it', async () => {
    const started = performance.now();
    const results = await Promise.all([get('/stall/1'), get('/stall/2', { method: 'POST', body: 'b' })]);
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    expect(performance.now() - started).toBeLessThan(1000);
    await eventually(() => stallSeen.length >= 2, 'the stalled mirror to receive its copies');
    const failedBefore = await mirrored(proxy, 'failed');
    expect((await get('/down/1')).status).toBe(200);
    await eventually(async () => (await mirrored(proxy, 'failed')) > failedBefore, 'the failed mirror to be counted');
  });

  test('a client whose connection is reset mid-body abandons the copy', async () => {
    const before = await mirrored(proxy, 'abandoned');
    const socket = net.connect(proxy.ports.outbound, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write('POST /mirror/cut HTTP/1.1\r\nHost: svc\r\nContent-Length: 100\r\n\r\npartial');
    await pause(50);
    socket.resetAndDestroy();
    await eventually(async () => (await mirrored(proxy, 'abandoned')) > before, 'the abandoned copy to be counted');
    expect(seenAt(shadowSeen, '/mirror/cut')).toBeUndefined();
  });

  test('a body over the mirror bound abandons the copy; the request goes through whole', async () => {
    const before = await mirrored(proxy, 'abandoned');
    const body = payload(150 * 1024).toString('hex');
    const res = await get('/mirror/big', { method: 'PUT', body, headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(200);
    expect(sha256(seenAt(primarySeen, '/mirror/big')!.body)).toBe(sha256(Buffer.from(body)));
    await eventually(async () => (await mirrored(proxy, 'abandoned')) > before, 'the abandoned mirror to be counted');
    expect(seenAt(shadowSeen, '/mirror/big')).toBeUndefined();
  });
});

/** One HTTP/2 stream, answered whole. */
function h2Request(session: http2.ClientHttp2Session, path: string, init: { method?: string; body?: Buffer | string; headers?: http2.OutgoingHttpHeaders } = {}): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': init.method ?? 'GET', ':path': path, ':authority': 'svc', ...init.headers }, { endStream: init.body === undefined });
    let headers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => resolve({ status: Number(headers[':status'] ?? 0), headers, body: Buffer.concat(chunks).toString() }));
    if (init.body !== undefined) req.end(init.body);
  });
}

describe('route filters over HTTP/2', () => {
  const primarySeen: Seen[] = [];
  const shadowSeen: Seen[] = [];
  const stallSeen: Seen[] = [];
  let primary: Listening<http2.Http2Server>;
  let shadow: Listening<http2.Http2Server>;
  let stall: Listening<http2.Http2Server>;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let session: http2.ClientHttp2Session;
  const seenAt = (list: Seen[], path: string): Seen | undefined => list.find((s) => s.path === path);

  beforeAll(async () => {
    primary = await recordingH2(primarySeen);
    shadow = await recordingH2(shadowSeen);
    stall = await recordingH2(stallSeen, false);
    mesh = new TestMeshFile([]);
    mesh.writeText(meshText({ primary: primary.port, shadow: shadow.port, stall: stall.port, down: await closedPort() }));
    proxy = await startTestProxy(mesh.path);
    session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    session.on('error', () => undefined);
    await once(session, 'connect');
  });

  afterAll(async () => {
    session?.destroy();
    await proxy?.close();
    await Promise.all([primary?.close(), shadow?.close(), stall?.close()]);
    mesh?.remove();
  });

  test('ResponseHeaderModifier sets, adds and removes response headers, not on error answers', async () => {
    const res = await h2Request(session, '/resp/a');
    expect(res.status).toBe(200);
    expect(res.headers['x-frame']).toBe('deny');
    expect(String(res.headers['x-route'])).toMatch(/^backend, ?resp$/);
    expect(res.headers['x-internal']).toBeUndefined();
    const failing = await h2Request(session, '/failing');
    expect(failing.status).toBe(503);
    expect(failing.headers['x-frame']).toBeUndefined();
  });

  test('RequestRedirect is answered by the sidecar', async () => {
    const res = await h2Request(session, '/old/page?q=1');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('http://svc/new/page?q=1');
    const posted = await h2Request(session, '/secure/x', { method: 'POST', body: 'payload' });
    expect(posted.status).toBe(302);
    expect(posted.headers.location).toBe('https://secure.example/secure/x');
    expect(primarySeen.filter((s) => /^\/(old|secure|new)/.test(s.path))).toEqual([]);
    // The connection carries on.
    expect((await h2Request(session, '/resp/c')).status).toBe(200);
  });

  test('URLRewrite replaces :authority and the path the backend receives', async () => {
    expect((await h2Request(session, '/api/v1/users?id=7')).status).toBe(200);
    expect(seenAt(primarySeen, '/v2/users?id=7')?.host).toBe('backend.internal');
    await h2Request(session, '/strip/a');
    expect(seenAt(primarySeen, '/a')?.host).toBe('svc');
  });

  test('RequestMirror sends a copy with its body; a stalled or unreachable mirror does not delay or fail the request', async () => {
    const res = await h2Request(session, '/mirror/h2', { method: 'POST', body: 'hello h2' });
    expect(res.status).toBe(200);
    const copy = await eventually(() => seenAt(shadowSeen, '/mirror/h2'), 'the mirrored stream');
    expect(copy.body.toString()).toBe('hello h2');
    expect(copy.headers['x-mod']).toBe('yes');
    const started = performance.now();
    expect((await h2Request(session, '/stall/h2')).status).toBe(200);
    expect((await h2Request(session, '/down/h2', { method: 'POST', body: 'x' })).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1000);
    await eventually(() => seenAt(stallSeen, '/stall/h2'), 'the stalled mirror to get its copy');
  });

  test('a body over the mirror bound, or a stream the client resets, abandons the copy; the request is unaffected', async () => {
    const before = await mirrored(proxy, 'abandoned');
    const body = payload(200 * 1024);
    const res = await h2Request(session, '/mirror/h2-big', { method: 'PUT', body });
    expect(res.status).toBe(200);
    expect(sha256(seenAt(primarySeen, '/mirror/h2-big')!.body)).toBe(sha256(body));
    await eventually(async () => (await mirrored(proxy, 'abandoned')) >= before + 1, 'the copy of the big body to be abandoned');
    // A client that goes away mid-body (its connection closes): the request never ends.
    const gone = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    gone.on('error', () => undefined);
    await once(gone, 'connect');
    const cut = gone.request({ ':method': 'POST', ':path': '/mirror/h2-cut', ':authority': 'svc' }, { endStream: false });
    cut.on('error', () => undefined);
    cut.write('partial');
    await pause(50);
    gone.destroy();
    await eventually(async () => (await mirrored(proxy, 'abandoned')) >= before + 2, 'both abandoned copies to be counted');
    await pause(100);
    expect(seenAt(shadowSeen, '/mirror/h2-big')).toBeUndefined();
    expect(seenAt(shadowSeen, '/mirror/h2-cut')).toBeUndefined();
    // The connection carries on.
    expect((await h2Request(session, '/resp/d')).status).toBe(200);
  });
});

// ---- gRPC: a GRPCRoute with a ResponseHeaderModifier and a RequestMirror ----

const raw = (b: Buffer): Buffer => b;
const ECHO: grpc.MethodDefinition<Buffer, Buffer> = { path: '/tsmesh.test.Echo/Say', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };

function echoServer(name: string, calls: Buffer[]): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService({ Say: ECHO }, {
    Say: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      calls.push(call.request);
      const header = new grpc.Metadata();
      header.set('x-internal', 'secret');
      call.sendMetadata(header);
      callback(null, Buffer.concat([Buffer.from(`${name}:`), call.request]));
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve({ server, port })));
  });
}

describe('GRPCRoute filters with grpc-js', () => {
  const primaryCalls: Buffer[] = [];
  const shadowCalls: Buffer[] = [];
  let servers: { server: grpc.Server; port: number }[];
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let client: grpc.Client;

  beforeAll(async () => {
    servers = await Promise.all([echoServer('primary', primaryCalls), echoServer('shadow', shadowCalls)]);
    mesh = new TestMeshFile([]);
    mesh.writeText(meshText({ primary: servers[0]!.port, shadow: servers[1]!.port, stall: servers[1]!.port, down: await closedPort() }, 'grpc', 'GRPCRoute'));
    proxy = await startTestProxy(mesh.path);
    client = new grpc.Client(`127.0.0.1:${proxy.ports.outbound}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  });

  afterAll(async () => {
    client?.close();
    await proxy?.close();
    for (const s of servers ?? []) s.server.forceShutdown();
    mesh?.remove();
  });

  test('the response headers are modified and the call is mirrored to the shadow Service', async () => {
    const outcome = await new Promise<{ error: grpc.ServiceError | null; response: Buffer | undefined; metadata: grpc.Metadata | undefined }>((resolve) => {
      let metadata: grpc.Metadata | undefined;
      const call = client.makeUnaryRequest(ECHO.path, raw, raw, Buffer.from('hi'), (error, response) => resolve({ error, response, metadata }));
      call.on('metadata', (md: grpc.Metadata) => (metadata = md));
    });
    expect(outcome.error).toBeNull();
    expect(outcome.response?.toString()).toBe('primary:hi');
    expect(outcome.metadata?.get('x-frame')).toEqual(['deny']);
    expect(outcome.metadata?.get('x-internal')).toEqual([]);
    await eventually(() => shadowCalls.some((c) => c.toString() === 'hi'), 'the mirrored call');
    expect(primaryCalls.map((c) => c.toString())).toEqual(['hi']);
  });
});
