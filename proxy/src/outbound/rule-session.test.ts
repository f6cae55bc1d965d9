// Route-rule session persistence (HTTPRoute rule `sessionPersistence`, GEP-1619) enforced by a
// running sidecar: requests a sticky rule matches stay on the endpoint their session names; the
// route's other rules balance as usual; HTTP/1.1 on both engines and HTTP/2.
import http2 from 'node:http2';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { testMeshYaml, TestMeshFile } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { listenH2, listenHttp } from '../testing/servers.js';

beforeAll(() => setLogLevel('silent'));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(ports: number[], portName: string, args: string[] = []): Promise<RunningProxy> {
  const route = {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'cart', namespace: 'default' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'svc', port: SERVICE_PORT }],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/cart' } }], sessionPersistence: { type: 'Header', sessionName: 'X-Cart-Session' }, backendRefs: [{ name: 'svc', port: SERVICE_PORT }] },
        { backendRefs: [{ name: 'svc', port: SERVICE_PORT }] },
      ],
    },
  };
  const mesh = new TestMeshFile([]);
  mesh.writeText(`${testMeshYaml([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName, loadBalancer: 'round-robin', endpoints: ports }])}---\n${stringify(route)}`);
  const proxy = await startTestProxy(mesh.path, { args });
  cleanups.push(() => mesh.remove(), () => proxy.close());
  return proxy;
}

describe.each(['relay', 'node'])('rule-level sessionPersistence over HTTP/1.1 (%s engine)', (engine) => {
  it('binds the requests of the sticky rule with its header; the other rule balances as usual', async () => {
    const servers = await Promise.all([0, 1, 2].map((i) => listenHttp((_req, res) => res.end(`u${i}`))));
    cleanups.push(() => Promise.all(servers.map((s) => s.close())));
    const proxy = await start(servers.map((s) => s.port), 'http', ['--http1-engine', engine]);
    const first = await fetchText(proxy.ports.outbound, '/cart/items');
    const token = first.headers['x-cart-session'];
    expect(typeof token).toBe('string');
    for (let i = 0; i < 6; i++) {
      const again = await fetchText(proxy.ports.outbound, '/cart/items', { headers: { 'x-cart-session': String(token) } });
      expect(again.body).toBe(first.body);
      expect(again.headers['x-cart-session']).toBeUndefined();
    }
    const plain = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const other = await fetchText(proxy.ports.outbound, '/other', { headers: { 'x-cart-session': String(token) } });
      expect(other.headers['x-cart-session']).toBeUndefined();
      plain.add(other.body);
    }
    expect(plain.size).toBe(3);
  });
});

describe('rule-level sessionPersistence over HTTP/2', () => {
  it('binds the streams of the sticky rule with its header', async () => {
    const servers = await Promise.all(
      [0, 1, 2].map((i) =>
        listenH2((stream) => {
          stream.respond({ ':status': 200 });
          stream.end(`u${i}`);
        }),
      ),
    );
    cleanups.push(() => Promise.all(servers.map((s) => s.close())));
    const proxy = await start(servers.map((s) => s.port), 'http2');
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    session.on('error', () => undefined);
    cleanups.push(() => session.destroy());
    const call = (headers: Record<string, string> = {}): Promise<{ body: string; token: string | undefined }> =>
      new Promise((resolve) => {
        const req = session.request({ ':path': '/cart', ...headers });
        let token: string | undefined;
        const chunks: Buffer[] = [];
        req.on('response', (h) => (token = h['x-cart-session'] as string | undefined));
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('close', () => resolve({ body: Buffer.concat(chunks).toString(), token }));
      });
    const first = await call();
    expect(first.token).toBeDefined();
    for (let i = 0; i < 6; i++) expect((await call({ 'x-cart-session': first.token! })).body).toBe(first.body);
  });
});
