// Session persistence (XBackendTrafficPolicy `sessionPersistence`) enforced by a running sidecar:
// real HTTP/1.1 clients on both engines and a real HTTP/2 client, real upstreams.
import http from 'node:http';
import http2 from 'node:http2';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { testMeshYaml, TestMeshFile, type TestService } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, listenH2, listenHttp, type Listening } from '../testing/servers.js';

beforeAll(() => setLogLevel('silent'));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function backendPolicy(sessionPersistence: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'gateway.networking.x-k8s.io/v1alpha1',
    kind: 'XBackendTrafficPolicy',
    metadata: { name: 'sticky', namespace: 'default' },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'svc' }], sessionPersistence },
  });
}

function meshText(ports: number[], portName: string, sessionPersistence: Record<string, unknown>): string {
  const service: TestService = { name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName, loadBalancer: 'round-robin', endpoints: ports };
  return `${testMeshYaml([service])}---\n${backendPolicy(sessionPersistence)}`;
}

async function start(ports: number[], portName: string, sessionPersistence: Record<string, unknown>, args: string[] = []): Promise<{ proxy: RunningProxy; mesh: TestMeshFile }> {
  const mesh = new TestMeshFile([]);
  mesh.writeText(meshText(ports, portName, sessionPersistence));
  const proxy = await startTestProxy(mesh.path, { args });
  cleanups.push(() => mesh.remove(), () => proxy.close());
  return { proxy, mesh };
}

async function h1Upstreams(n: number): Promise<Array<Listening<http.Server>>> {
  const servers = await Promise.all(Array.from({ length: n }, (_, i) => listenHttp((req, res) => res.end(`u${i}`))));
  cleanups.push(() => Promise.all(servers.map((s) => s.close())));
  return servers;
}

async function h2Upstreams(n: number): Promise<Array<Listening<http2.Http2Server>>> {
  const servers = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      listenH2((stream) => {
        stream.respond({ ':status': 200 });
        stream.end(`u${i}`);
      }),
    ),
  );
  cleanups.push(() => Promise.all(servers.map((s) => s.close())));
  return servers;
}

/** The `name=value` part of a Set-Cookie header. */
const cookiePair = (setCookie: string | string[] | undefined): string => (Array.isArray(setCookie) ? (setCookie[0] ?? '') : (setCookie ?? '')).split(';')[0] ?? '';

describe.each(['relay', 'node'])('session persistence over HTTP/1.1 (%s engine)', (engine) => {
  it('binds a client to the endpoint of its first answer with a cookie, and re-binds when that endpoint leaves the Service', async () => {
    const servers = await h1Upstreams(3);
    const ports = servers.map((s) => s.port);
    const { proxy, mesh } = await start(ports, 'http', { sessionName: 'shop', absoluteTimeout: '1h', cookieConfig: { lifetimeType: 'Permanent' } }, ['--http1-engine', engine]);
    const first = await fetchText(proxy.ports.outbound, '/');
    expect(first.status).toBe(200);
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    expect(setCookie).toMatch(/^shop=[A-Za-z0-9_-]+; Max-Age=3600; Path=\/; HttpOnly$/);
    // Round robin would spread these over the three; the cookie keeps every one on the first's endpoint.
    const pair = cookiePair(setCookie);
    for (let i = 0; i < 9; i++) {
      const again = await fetchText(proxy.ports.outbound, '/', { headers: { cookie: `theme=dark; ${pair}` } });
      expect(again.body).toBe(first.body);
      expect(again.headers['set-cookie']).toBeUndefined();
    }
    // Without the cookie, balancing as usual.
    const spread = new Set<string>();
    for (let i = 0; i < 6; i++) spread.add((await fetchText(proxy.ports.outbound, '/')).body);
    expect(spread.size).toBe(3);
    // The bound endpoint leaves the Service: the request goes elsewhere and the session is re-issued.
    const bound = Number(first.body.slice(1));
    mesh.writeText(meshText(ports.filter((_, i) => i !== bound), 'http', { sessionName: 'shop' }));
    const moved = await eventually(async () => {
      const r = await fetchText(proxy.ports.outbound, '/', { headers: { cookie: pair } });
      return r.body !== first.body ? r : undefined;
    }, 'a request with the old cookie to go to another endpoint');
    const newPair = cookiePair(moved.headers['set-cookie']);
    expect(newPair).toMatch(/^shop=/);
    expect(newPair).not.toBe(pair);
    const after = await fetchText(proxy.ports.outbound, '/', { headers: { cookie: newPair } });
    expect(after.body).toBe(moved.body);
  });

  it('ignores a cookie value that names no endpoint of the Service, and issues a real one', async () => {
    const servers = await h1Upstreams(2);
    const { proxy } = await start(
      servers.map((s) => s.port),
      'http',
      {},
      ['--http1-engine', engine],
    );
    const forged = await fetchText(proxy.ports.outbound, '/', { headers: { cookie: 'tsmesh-session=127.0.0.1:22' } });
    expect(forged.status).toBe(200);
    expect(cookiePair(forged.headers['set-cookie'])).toMatch(/^tsmesh-session=[A-Za-z0-9_-]+$/);
  });
});

describe('session persistence over HTTP/2', () => {
  function call(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders = {}): Promise<{ body: string; headers: http2.IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      const req = session.request({ ':path': '/', ...headers });
      let head: http2.IncomingHttpHeaders = {};
      req.on('response', (h) => (head = h));
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ body: Buffer.concat(chunks).toString(), headers: head }));
      req.on('error', reject);
    });
  }

  async function client(proxy: RunningProxy): Promise<http2.ClientHttp2Session> {
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    session.on('error', () => undefined);
    cleanups.push(() => session.destroy());
    return session;
  }

  it('binds streams with the cookie, each stream balanced on its own otherwise', async () => {
    const servers = await h2Upstreams(3);
    const { proxy } = await start(
      servers.map((s) => s.port),
      'http2',
      {},
    );
    const session = await client(proxy);
    const first = await call(session);
    const pair = cookiePair(first.headers['set-cookie']);
    expect(pair).toMatch(/^tsmesh-session=/);
    const bodies = await Promise.all(Array.from({ length: 9 }, () => call(session, { cookie: pair })));
    expect(new Set(bodies.map((b) => b.body))).toEqual(new Set([first.body]));
    expect(bodies.every((b) => b.headers['set-cookie'] === undefined)).toBe(true);
  });

  it('with type Header, answers the session in that header and follows it', async () => {
    const servers = await h2Upstreams(3);
    const { proxy } = await start(
      servers.map((s) => s.port),
      'http2',
      { type: 'Header', sessionName: 'X-Shop-Session' },
    );
    const session = await client(proxy);
    const first = await call(session);
    const token = first.headers['x-shop-session'] as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(first.headers['set-cookie']).toBeUndefined();
    const bodies = await Promise.all(Array.from({ length: 6 }, () => call(session, { 'x-shop-session': token })));
    expect(new Set(bodies.map((b) => b.body))).toEqual(new Set([first.body]));
  });
});
