import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { buildSnapshot, type KubeObject } from '@tsmesh/common';
import { parse } from 'yaml';
import { testMeshYaml, TestMeshFile, type TestService } from '../testing/mesh.js';
import { adminJson, fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, listenH2, listenHttp, listenTcp } from '../testing/servers.js';
import { UpstreamManager, type ClusterView, type ConnectionPool } from './manager.js';

function snapshotOf(services: readonly TestService[]) {
  return buildSnapshot(
    testMeshYaml(services)
      .split('---\n')
      .map((d) => parse(d) as KubeObject),
  );
}

class FakePool implements ConnectionPool {
  readonly retained: string[][] = [];
  closed = false;
  constructor(private readonly open: Map<string, number> = new Map()) {}
  retain(keep: ReadonlySet<string>): void {
    this.retained.push([...keep].sort());
  }
  connections(): ReadonlyMap<string, number> {
    return this.open;
  }
  close(): void {
    this.closed = true;
  }
}

const svc = (ports: number[]): TestService => ({ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: ports });

describe('UpstreamManager', () => {
  it('prunes every adopted pool to the endpoints still wanted on each mesh change', () => {
    const upstream = new UpstreamManager();
    const h1 = upstream.adopt('http1', new FakePool());
    const h2 = upstream.adopt('http2', new FakePool());
    upstream.update(snapshotOf([svc([9001, 9002])]));
    upstream.update(snapshotOf([svc([9002])]));
    expect(h1.retained).toEqual([['127.0.0.1:9001', '127.0.0.1:9002'], ['127.0.0.1:9002']]);
    expect(h2.retained).toEqual(h1.retained);
    upstream.close();
    expect([h1.closed, h2.closed]).toEqual([true, true]);
  });

  it('takes one pool per protocol', () => {
    const upstream = new UpstreamManager();
    upstream.adopt('tcp', new FakePool());
    expect(() => upstream.adopt('tcp', new FakePool())).toThrow('an upstream tcp pool is already adopted');
    upstream.close();
  });

  it('shows each endpoint with its open connections per protocol', () => {
    const upstream = new UpstreamManager();
    upstream.adopt('http1', new FakePool(new Map([['127.0.0.1:9001', 3]])));
    upstream.adopt('http2', new FakePool(new Map([['127.0.0.1:9002', 1], ['127.0.0.1:7777', 5]])));
    upstream.update(snapshotOf([svc([9001, 9002])]));
    expect(upstream.stats()).toEqual([
      {
        cluster: `default/svc:${SERVICE_PORT}`,
        loadBalancer: 'round-robin',
        endpoints: [
          { key: '127.0.0.1:9001', address: '127.0.0.1', port: 9001, inFlight: 0, ejected: false, connections: { http1: 3, http2: 0, tcp: 0 } },
          { key: '127.0.0.1:9002', address: '127.0.0.1', port: 9002, inFlight: 0, ejected: false, connections: { http1: 0, http2: 1, tcp: 0 } },
        ],
      },
    ]);
    upstream.close();
  });
});

describe('the upstream layer in a running sidecar (/clusters)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function connectionsOf(port: number, admin: Parameters<typeof adminJson>[0]): Promise<Record<string, ClusterView['endpoints'][number]['connections']>> {
    const clusters = await adminJson<ClusterView[]>(admin, '/clusters');
    const cluster = clusters.find((c) => c.cluster === `default/svc:${SERVICE_PORT}`);
    return Object.fromEntries((cluster?.endpoints ?? []).map((e) => [e.port === port ? 'a' : 'b', e.connections]));
  }

  it('counts pooled HTTP/2 connections per endpoint and drops them when the endpoint leaves the Service', async () => {
    const a = await listenH2((stream) => stream.respond({ ':status': 200 }, { endStream: true }));
    const b = await listenH2((stream) => stream.respond({ ':status': 200 }, { endStream: true }));
    const mesh = new TestMeshFile([{ ...svc([a.port, b.port]), portName: 'http2' }]);
    const proxy = await startTestProxy(mesh.path);
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    session.on('error', () => undefined);
    cleanups.push(() => mesh.remove(), () => Promise.all([a.close(), b.close()]).then(() => undefined), () => proxy.close(), () => void session.destroy());
    const call = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const req = session.request({ ':path': '/' });
        req.on('response', () => undefined);
        req.resume();
        req.on('end', resolve);
        req.on('error', reject);
      });
    for (let i = 0; i < 4; i++) await call();
    expect(await connectionsOf(a.port, proxy)).toEqual({ a: { http1: 0, http2: 1, tcp: 0 }, b: { http1: 0, http2: 1, tcp: 0 } });
    mesh.write([{ ...svc([b.port]), portName: 'http2' }]);
    await eventually(() => a.open === 0, 'the pooled connection to the departed endpoint to close', 3000);
    expect(await connectionsOf(a.port, proxy)).toEqual({ b: { http1: 0, http2: 1, tcp: 0 } });
  });

  it('counts pooled HTTP/1.1 connections per endpoint and drops them when the endpoint leaves the Service', async () => {
    const a = await listenHttp((req, res) => res.end('a'));
    const b = await listenHttp((req, res) => res.end('b'));
    const mesh = new TestMeshFile([{ ...svc([a.port, b.port]), portName: 'http' }]);
    const proxy = await startTestProxy(mesh.path);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => mesh.remove(), () => Promise.all([a.close(), b.close()]).then(() => undefined), () => proxy.close(), () => agent.destroy());
    for (let i = 0; i < 4; i++) expect((await fetchText(proxy.ports.outbound, '/', { agent })).status).toBe(200);
    expect(await connectionsOf(a.port, proxy)).toEqual({ a: { http1: 1, http2: 0, tcp: 0 }, b: { http1: 1, http2: 0, tcp: 0 } });
    mesh.write([{ ...svc([b.port]), portName: 'http' }]);
    await eventually(() => a.open === 0, 'the pooled connection to the departed endpoint to close', 3000);
    expect(await connectionsOf(a.port, proxy)).toEqual({ b: { http1: 1, http2: 0, tcp: 0 } });
  });

  it('counts opaque TCP connections per endpoint while they are open', async () => {
    const a = await listenTcp((s) => s.pipe(s));
    const b = await listenTcp((s) => s.pipe(s));
    const mesh = new TestMeshFile([{ ...svc([a.port, b.port]), portName: 'tcp' }]);
    const proxy = await startTestProxy(mesh.path);
    cleanups.push(() => mesh.remove(), () => Promise.all([a.close(), b.close()]).then(() => undefined), () => proxy.close());
    const clients = await Promise.all(
      [1, 2, 3].map(
        (i) =>
          new Promise<net.Socket>((resolve, reject) => {
            const c = net.connect(proxy.ports.outbound, '127.0.0.1', () => {
              c.write(`hello ${i}`);
              c.once('data', () => resolve(c));
            });
            c.on('error', reject);
          }),
      ),
    );
    // Round robin over two endpoints from wherever its rotation starts: two on one, one on the other.
    const open = await connectionsOf(a.port, proxy);
    expect([open['a']!.tcp, open['b']!.tcp].sort()).toEqual([1, 2]);
    expect([open['a']!.http1 + open['a']!.http2, open['b']!.http1 + open['b']!.http2]).toEqual([0, 0]);
    for (const c of clients) c.end();
    await eventually(async () => JSON.stringify(await connectionsOf(a.port, proxy)) === JSON.stringify({ a: { http1: 0, http2: 0, tcp: 0 }, b: { http1: 0, http2: 0, tcp: 0 } }), 'the closed connections to leave the count');
  });
});
