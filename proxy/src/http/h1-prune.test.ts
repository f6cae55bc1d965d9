// The sidecar's pooled HTTP/1.1 upstream connections follow the mesh: when an endpoint leaves its
// Service, its idle pooled connection is closed at once (not at the idle timeout), and the
// endpoints that stay keep theirs.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile, type TestService } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, listenHttp, type Listening } from '../testing/servers.js';

describe('HTTP/1.1 upstream pool and mesh changes', () => {
  let a: Listening<http.Server>;
  let b: Listening<http.Server>;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  const service = (endpoints: number[]): TestService[] => [{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints }];

  beforeAll(async () => {
    // Neither endpoint closes idle connections itself; the proxy's idle timeout is an hour.
    a = await listenHttp((req, res) => res.end('a'), { keepAliveTimeout: 0 });
    b = await listenHttp((req, res) => res.end('b'), { keepAliveTimeout: 0 });
    mesh = new TestMeshFile(service([a.port, b.port]));
    proxy = await startTestProxy(mesh.path, { args: ['--http-idle-timeout', '1h'] });
  });

  afterAll(async () => {
    await proxy?.close();
    await a?.close();
    await b?.close();
    mesh?.remove();
  });

  test('closes the idle pooled connection of an endpoint removed from the mesh and keeps the others', async () => {
    const answers = new Set<string>();
    for (let i = 0; i < 4; i++) answers.add((await fetchText(proxy.ports.outbound, '/', { headers: { host: 'svc' } })).body);
    expect([...answers].sort()).toEqual(['a', 'b']);
    await eventually(() => a.open === 1 && b.open === 1, 'one pooled connection to each endpoint');

    mesh.write(service([b.port]));
    await eventually(() => a.open === 0, 'the removed endpoint’s pooled connection to be closed', 10_000);
    expect(b.open).toBe(1);
    expect((await fetchText(proxy.ports.outbound, '/', { headers: { host: 'svc' } })).body).toBe('b');
    expect(b.accepted).toBe(1);
  });
});
