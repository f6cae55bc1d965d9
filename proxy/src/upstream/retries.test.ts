// Retries and per-try timeouts enforced by a running sidecar (explicit-port mode) on its three
// forwarders: the HTTP/1.1 relay and node engines, HTTP/2, and gRPC (grpc-js on both sides). An
// HTTPRoute's GEP-1731 `retry` and `timeouts.backendRequest`, and a TrafficPolicy's default `retry`
// for gRPC codes.
import { createHash } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { testMeshYaml, TestMeshFile } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { listenH2, listenHttp, payload, type Listening } from '../testing/servers.js';

beforeAll(() => setLogLevel('silent'));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Behaviour = 'ok' | 'fail' | 'hang';

/** One endpoint: answers per its behaviour, counts the requests it got. */
interface Endpoint {
  readonly name: string;
  behaviour: Behaviour;
  hits: number;
  readonly port: number;
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** What an `ok` endpoint answers: who it is and what request body it read. */
function answer(name: string, body: Buffer): string {
  return JSON.stringify({ who: name, length: body.length, sha: sha(body) });
}

async function h1Endpoints(names: string[]): Promise<Endpoint[]> {
  return Promise.all(
    names.map(async (name) => {
      const hanging = new Set<http.ServerResponse>();
      const ep = { name, behaviour: 'ok' as Behaviour, hits: 0, port: 0 };
      const server: Listening<http.Server> = await listenHttp((req, res) => {
        ep.hits++;
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (ep.behaviour === 'hang') return void hanging.add(res);
          if (ep.behaviour === 'fail') return void res.writeHead(503, { 'content-type': 'text/plain' }).end(`${name} failed`);
          res.writeHead(200, { 'content-type': 'application/json' }).end(answer(name, Buffer.concat(chunks)));
        });
      });
      cleanups.push(() => server.close());
      return Object.assign(ep, { port: server.port });
    }),
  );
}

async function h2Endpoints(names: string[]): Promise<Endpoint[]> {
  return Promise.all(
    names.map(async (name) => {
      const ep = { name, behaviour: 'ok' as Behaviour, hits: 0, port: 0 };
      const server = await listenH2((stream) => {
        ep.hits++;
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (ep.behaviour === 'hang' || stream.destroyed) return;
          if (ep.behaviour === 'fail') {
            stream.respond({ ':status': 503, 'content-type': 'text/plain' });
            return void stream.end(`${name} failed`);
          }
          stream.respond({ ':status': 200, 'content-type': 'application/json' });
          stream.end(answer(name, Buffer.concat(chunks)));
        });
      });
      cleanups.push(() => server.close());
      return Object.assign(ep, { port: server.port });
    }),
  );
}

const ROUTE_RETRY = { codes: [503], attempts: 2, backoff: '1ms' };

/** The Service over `endpoints` with one HTTPRoute rule carrying `rule` (retry, timeouts), and extra YAML documents. */
function meshWith(endpoints: Endpoint[], rule: Record<string, unknown> | undefined, portName = 'web', extra: string[] = []): string {
  const docs = [testMeshYaml([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName, endpoints: endpoints.map((e) => e.port) }])];
  if (rule) {
    docs.push(
      stringify({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'svc-retry', namespace: 'default' },
        spec: { parentRefs: [{ group: '', kind: 'Service', name: 'svc', port: SERVICE_PORT }], rules: [{ backendRefs: [{ name: 'svc', port: SERVICE_PORT }], ...rule }] },
      }),
    );
  }
  return [...docs, ...extra].join('---\n');
}

async function startWith(text: string, args: string[] = []): Promise<RunningProxy> {
  const mesh = new TestMeshFile([]);
  mesh.writeText(text);
  const proxy = await startTestProxy(mesh.path, { args });
  cleanups.push(() => mesh.remove(), () => proxy.close());
  return proxy;
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function metrics(proxy: RunningProxy): Promise<string> {
  return (await fetchText(proxy.ports.health, '/metrics')).body;
}

describe.each(['relay', 'node'])('HTTP/1.1 retries (%s engine)', (engine) => {
  const args = ['--http1-engine', engine];

  it('retries a GET answered with a retried status on another endpoint; the retries are counted', async () => {
    const [a, b] = await h1Endpoints(['a', 'b']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], { retry: ROUTE_RETRY }), args);
    for (let i = 0; i < 4; i++) {
      const res = await fetchText(proxy.ports.outbound, '/');
      expect([res.status, JSON.parse(res.body).who]).toEqual([200, 'b']);
    }
    expect(a!.hits).toBeGreaterThanOrEqual(1);
    expect(metric(await metrics(proxy), 'tsmesh_upstream_retries_total', 'protocol="http1",reason="status"')).toBe(a!.hits);
  });

  it('replays a PUT body (under the replay limit) on the retry', async () => {
    const [a, b] = await h1Endpoints(['a', 'b']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], { retry: ROUTE_RETRY }), args);
    const body = payload(10 * 1024).toString('hex');
    for (let i = 0; i < 2; i++) {
      const res = await fetchText(proxy.ports.outbound, '/', { method: 'PUT', body, headers: { 'content-type': 'text/plain' } });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ who: 'b', length: body.length, sha: sha(Buffer.from(body)) });
    }
    expect(a!.hits).toBeGreaterThanOrEqual(1);
  });

  it('does not retry a body past the replay limit: the client gets the answer', async () => {
    const [a, b] = await h1Endpoints(['a', 'b']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], { retry: ROUTE_RETRY }), args);
    const body = payload(50 * 1024).toString('hex');
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await fetchText(proxy.ports.outbound, '/', { method: 'PUT', body })).status);
    expect(statuses.sort()).toEqual([200, 503]);
    expect(a!.hits + b!.hits).toBe(2);
  });

  it('caps every try and backoff with timeouts.request', async () => {
    const [a] = await h1Endpoints(['a']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!], { retry: { codes: [503], attempts: 5, backoff: '2s' }, timeouts: { request: '300ms' } }), args);
    const started = performance.now();
    const res = await fetchText(proxy.ports.outbound, '/');
    expect([res.status, res.headers['x-tsmesh-proxy-error']]).toEqual([504, 'timeout']);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(a!.hits).toBe(1);
  });

  it('does not retry a POST on a status code: the client gets the answer', async () => {
    const [a, b] = await h1Endpoints(['a', 'b']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], { retry: ROUTE_RETRY }), args);
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await fetchText(proxy.ports.outbound, '/', { method: 'POST', body: 'x' })).status);
    expect(statuses.sort()).toEqual([200, 503]);
    expect(a!.hits + b!.hits).toBe(2);
  });

  it('gives the client the last answer once the attempts are spent', async () => {
    const [a, b] = await h1Endpoints(['a', 'b']);
    a!.behaviour = 'fail';
    b!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], { retry: ROUTE_RETRY }), args);
    const res = await fetchText(proxy.ports.outbound, '/');
    expect(res.status).toBe(503);
    expect(res.body).toMatch(/^[ab] failed$/);
    expect(res.headers['x-tsmesh-proxy-error']).toBeUndefined();
    expect(a!.hits + b!.hits).toBe(3);
  });

  it('does not retry without a retry policy', async () => {
    const [a, b] = await h1Endpoints(['a', 'b']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], undefined), args);
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await fetchText(proxy.ports.outbound, '/')).status);
    expect(statuses.sort()).toEqual([200, 503]);
  });

  it('waits the backoff between tries', async () => {
    const [a] = await h1Endpoints(['a']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!], { retry: { codes: [503], attempts: 2, backoff: '150ms' } }), args);
    const started = performance.now();
    const res = await fetchText(proxy.ports.outbound, '/');
    const elapsed = performance.now() - started;
    expect(res.status).toBe(503);
    expect(a!.hits).toBe(3);
    // 150 ms before the first retry, 150-300 ms before the second.
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2000);
  });

  it('cancels a try past timeouts.backendRequest and retries it elsewhere; 504 UT when every try times out', async () => {
    const [a, b] = await h1Endpoints(['a', 'b']);
    a!.behaviour = 'hang';
    const rule = { retry: ROUTE_RETRY, timeouts: { request: '5s', backendRequest: '200ms' } };
    const proxy = await startWith(meshWith([a!, b!], rule), args);
    for (let i = 0; i < 2; i++) {
      const res = await fetchText(proxy.ports.outbound, '/');
      expect([res.status, JSON.parse(res.body).who]).toEqual([200, 'b']);
    }
    expect(a!.hits).toBeGreaterThanOrEqual(1);
    b!.behaviour = 'hang';
    const started = performance.now();
    const res = await fetchText(proxy.ports.outbound, '/');
    expect([res.status, res.headers['x-tsmesh-proxy-error']]).toEqual([504, 'timeout']);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(metric(await metrics(proxy), 'tsmesh_upstream_retries_total', 'protocol="http1",reason="timeout"')).toBeGreaterThanOrEqual(3);
  });

  it('answers 504 at timeouts.backendRequest without a retry policy', async () => {
    const [a] = await h1Endpoints(['a']);
    a!.behaviour = 'hang';
    const proxy = await startWith(meshWith([a!], { timeouts: { request: '5s', backendRequest: '200ms' } }), args);
    const started = performance.now();
    const res = await fetchText(proxy.ports.outbound, '/');
    expect([res.status, res.headers['x-tsmesh-proxy-error']]).toEqual([504, 'timeout']);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(a!.hits).toBe(1);
  });
});

/** One HTTP/2 stream through the sidecar. */
function h2Call(session: http2.ClientHttp2Session, init: { method?: string; body?: Buffer } = {}): Promise<{ status: number; body: string; proxyError: unknown }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/', ':method': init.method ?? 'GET' }, { endStream: init.body === undefined });
    let status = 0;
    let proxyError: unknown;
    req.on('response', (h) => {
      status = Number(h[':status']);
      proxyError = h['x-tsmesh-proxy-error'];
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString(), proxyError }));
    req.on('error', reject);
    if (init.body) req.end(init.body);
  });
}

async function h2Session(proxy: RunningProxy): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
  session.on('error', () => undefined);
  cleanups.push(() => session.destroy());
  return session;
}

describe('HTTP/2 retries', () => {
  it('retries a GET answered with a retried status on another endpoint, and replays a PUT body', async () => {
    const [a, b] = await h2Endpoints(['a', 'b']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], { retry: ROUTE_RETRY }, 'http2'));
    const session = await h2Session(proxy);
    for (let i = 0; i < 3; i++) {
      const res = await h2Call(session);
      expect([res.status, JSON.parse(res.body).who]).toEqual([200, 'b']);
    }
    const body = payload(30 * 1024);
    for (let i = 0; i < 2; i++) {
      const res = await h2Call(session, { method: 'PUT', body });
      expect([res.status, JSON.parse(res.body)]).toEqual([200, { who: 'b', length: body.length, sha: sha(body) }]);
    }
    expect(a!.hits).toBeGreaterThanOrEqual(2);
    expect(metric(await metrics(proxy), 'tsmesh_upstream_retries_total', 'protocol="http2",reason="status"')).toBe(a!.hits);
  });

  it('caps every try and backoff with timeouts.request', async () => {
    const [a] = await h2Endpoints(['a']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!], { retry: { codes: [503], attempts: 5, backoff: '2s' }, timeouts: { request: '300ms' } }, 'http2'));
    const session = await h2Session(proxy);
    const started = performance.now();
    const res = await h2Call(session);
    expect([res.status, res.proxyError]).toEqual([504, 'timeout']);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(a!.hits).toBe(1);
  });

  it('does not retry a body past the replay limit', async () => {
    const [a, b] = await h2Endpoints(['a', 'b']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], { retry: ROUTE_RETRY }, 'http2'));
    const session = await h2Session(proxy);
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await h2Call(session, { method: 'PUT', body: payload(100 * 1024) })).status);
    expect(statuses.sort()).toEqual([200, 503]);
  });

  it('does not retry a POST on a status code, and gives the last answer once the attempts are spent', async () => {
    const [a, b] = await h2Endpoints(['a', 'b']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], { retry: ROUTE_RETRY }, 'http2'));
    const session = await h2Session(proxy);
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await h2Call(session, { method: 'POST', body: Buffer.from('x') })).status);
    expect(statuses.sort()).toEqual([200, 503]);
    b!.behaviour = 'fail';
    const before = a!.hits + b!.hits;
    const res = await h2Call(session);
    expect([res.status, res.proxyError]).toEqual([503, undefined]);
    expect(res.body).toMatch(/^[ab] failed$/);
    expect(a!.hits + b!.hits - before).toBe(3);
  });

  it('cancels a try past timeouts.backendRequest and retries it elsewhere; 504 UT when every try times out', async () => {
    const [a, b] = await h2Endpoints(['a', 'b']);
    a!.behaviour = 'hang';
    const proxy = await startWith(meshWith([a!, b!], { retry: ROUTE_RETRY, timeouts: { request: '5s', backendRequest: '200ms' } }, 'http2'));
    const session = await h2Session(proxy);
    for (let i = 0; i < 2; i++) {
      const res = await h2Call(session);
      expect([res.status, JSON.parse(res.body).who]).toEqual([200, 'b']);
    }
    b!.behaviour = 'hang';
    const res = await h2Call(session);
    expect([res.status, res.proxyError]).toEqual([504, 'timeout']);
  });
});

// ---- gRPC: grpc-js on both sides ----

const SERVICE = {
  Unary: {
    path: '/retry.Test/Unary',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;

interface GrpcEndpoint extends Endpoint {
  code: grpc.status;
}

async function grpcEndpoints(names: string[]): Promise<GrpcEndpoint[]> {
  return Promise.all(
    names.map(async (name) => {
      const ep: GrpcEndpoint = { name, behaviour: 'ok', hits: 0, port: 0, code: grpc.status.UNAVAILABLE };
      const server = new grpc.Server();
      server.addService(SERVICE, {
        Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          ep.hits++;
          if (ep.behaviour === 'hang') return;
          if (ep.behaviour === 'fail') return callback({ code: ep.code, details: `${name} failed` });
          callback(null, Buffer.concat([Buffer.from(`${name}:`), call.request]));
        },
      });
      const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
      cleanups.push(() => server.forceShutdown());
      return Object.assign(ep, { port });
    }),
  );
}

function grpcPolicy(retry: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'policy.tsmesh.io/v1alpha1',
    kind: 'TrafficPolicy',
    metadata: { name: 'svc-retry', namespace: 'default' },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'svc' }], retry },
  });
}

function unary(client: grpc.Client, message: string, deadlineMs = 5000): Promise<{ code: grpc.status; value: string | undefined }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      SERVICE.Unary.path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(message),
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error: grpc.ServiceError | null, value?: Buffer) => resolve({ code: error ? error.code : grpc.status.OK, value: value?.toString() }),
    );
  });
}

function grpcClient(proxy: RunningProxy): grpc.Client {
  const client = new grpc.Client(`127.0.0.1:${proxy.ports.outbound}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  return client;
}

describe('gRPC retries (TrafficPolicy retry.grpcCodes)', () => {
  it('retries a call whose trailers-only answer has a retried grpc-status on another endpoint', async () => {
    const [a, b] = await grpcEndpoints(['a', 'b']);
    a!.behaviour = 'fail';
    const proxy = await startWith(meshWith([a!, b!], undefined, 'grpc', [grpcPolicy({ grpcCodes: ['UNAVAILABLE'], attempts: 2, backoff: '1ms' })]));
    const client = grpcClient(proxy);
    for (let i = 0; i < 4; i++) expect(await unary(client, `m${i}`)).toEqual({ code: grpc.status.OK, value: `b:m${i}` });
    expect(a!.hits).toBeGreaterThanOrEqual(1);
    expect(metric(await metrics(proxy), 'tsmesh_upstream_retries_total', 'protocol="http2",reason="status"')).toBe(a!.hits);
  });

  it('does not retry a gRPC status the policy does not list', async () => {
    const [a, b] = await grpcEndpoints(['a', 'b']);
    a!.behaviour = 'fail';
    a!.code = grpc.status.NOT_FOUND;
    const proxy = await startWith(meshWith([a!, b!], undefined, 'grpc', [grpcPolicy({ grpcCodes: ['UNAVAILABLE'] })]));
    const client = grpcClient(proxy);
    const codes: grpc.status[] = [];
    for (let i = 0; i < 2; i++) codes.push((await unary(client, 'x')).code);
    expect(codes.sort()).toEqual([grpc.status.OK, grpc.status.NOT_FOUND]);
  });

  it('answers DEADLINE_EXCEEDED when every try passes timeouts.backendRequest', async () => {
    const [a] = await grpcEndpoints(['a']);
    a!.behaviour = 'hang';
    const proxy = await startWith(meshWith([a!], { timeouts: { request: '5s', backendRequest: '200ms' } }, 'grpc'));
    const client = grpcClient(proxy);
    const started = performance.now();
    expect((await unary(client, 'x')).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(performance.now() - started).toBeLessThan(1500);
  });
});
