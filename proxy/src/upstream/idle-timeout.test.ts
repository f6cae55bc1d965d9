// A TrafficPolicy's connectionPool.idleTimeout closes upstream connections left idle that long,
// on both HTTP/1.1 engines and on HTTP/2; a connection in use is not closed by it.
import http2 from 'node:http2';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { testMeshYaml, TestMeshFile } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, listenH2, listenHttp } from '../testing/servers.js';

beforeAll(() => setLogLevel('silent'));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(port: number, portName: string, args: string[] = []): Promise<RunningProxy> {
  const policy = stringify({
    apiVersion: 'policy.tsmesh.io/v1alpha1',
    kind: 'TrafficPolicy',
    metadata: { name: 'svc-idle', namespace: 'default' },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'svc' }], connectionPool: { idleTimeout: '300ms' } },
  });
  const file = new TestMeshFile([]);
  file.writeText(`${testMeshYaml([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName, endpoints: [port] }])}---\n${policy}`);
  const proxy = await startTestProxy(file.path, { args });
  cleanups.push(() => file.remove(), () => proxy.close());
  return proxy;
}

describe.each(['relay', 'node'])('connectionPool.idleTimeout on HTTP/1.1 (%s engine)', (engine) => {
  it('closes the upstream connection once idle that long, and a slow response is not cut by it', async () => {
    const server = await listenHttp((req, res) => {
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      setTimeout(() => res.end('ok'), ms);
    });
    cleanups.push(() => server.close());
    const proxy = await start(server.port, 'http', ['--http1-engine', engine]);
    // 600 ms in flight: twice the idle timeout, and the answer still comes.
    expect((await fetchText(proxy.ports.outbound, '/?ms=600')).body).toBe('ok');
    expect(server.open).toBe(1);
    await eventually(() => server.open === 0, 'the idle upstream connection to close', 3000);
    expect(server.accepted).toBe(1);
  });
});

describe('connectionPool.idleTimeout on HTTP/2', () => {
  it('sends the idle upstream connection away once it has had no stream that long', async () => {
    const server = await listenH2((stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    cleanups.push(() => server.close());
    const proxy = await start(server.port, 'http2');
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    session.on('error', () => undefined);
    cleanups.push(() => session.destroy());
    const body = await new Promise<string>((resolve) => {
      const req = session.request({ ':path': '/' });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('close', () => resolve(Buffer.concat(chunks).toString()));
    });
    expect(body).toBe('ok');
    expect(server.open).toBe(1);
    await eventually(() => server.open === 0, 'the idle upstream connection to go away', 3000);
  });
});

