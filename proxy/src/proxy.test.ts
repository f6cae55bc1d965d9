// The assembled sidecar (explicit-port mode): mesh-file reloads reach the data path, a bad file
// leaves the last good mesh in force, and the admin and health ports answer from live state.
import http from 'node:http';
import http2 from 'node:http2';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import type { RunningProxy } from './proxy.js';
import { stringify } from 'yaml';
import { selfSignedPem } from './gateway/testing/certs.js';
import { TestMeshFile, testMeshYaml, type TestService } from './testing/mesh.js';
import { adminJson, fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from './testing/proxy.js';
import { closedPort, eventually, listenH2, listenHttp, listenTcp, pause, stablePort, type Listening } from './testing/servers.js';

const service = (...endpoints: number[]): TestService => ({ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints });

/** GET through `agent` (one keep-alive connection) and return the body. */
function get(port: number, agent: http.Agent | false = false): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      })
      .on('error', reject);
  });
}

describe('mesh file reloads through the running sidecar', () => {
  let a: Listening<http.Server>;
  let b: Listening<http.Server>;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let agent: http.Agent;

  beforeAll(async () => {
    const named = (name: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      res.end(name);
    };
    a = await listenHttp(named('a'));
    b = await listenHttp(named('b'));
    mesh = new TestMeshFile([service(a.port)]);
    proxy = await startTestProxy(mesh.path);
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  });

  afterAll(async () => {
    agent?.destroy();
    await proxy?.close();
    await Promise.all([a?.close(), b?.close()]);
    mesh?.remove();
  });

  test('changed endpoints take over new requests, even on an open keep-alive connection, within about a second', async () => {
    expect(await get(proxy.ports.outbound, agent)).toBe('a');
    const before = await adminJson<{ version: string }>(proxy, '/config_dump');
    mesh.write([service(b.port)]);
    const changed = Date.now();
    await eventually(async () => (await get(proxy.ports.outbound, agent)) === 'b', 'requests to reach the new endpoint', 3000);
    expect(Date.now() - changed).toBeLessThan(1500);
    expect(await get(proxy.ports.outbound)).toBe('b');
    const after = await adminJson<{ version: string }>(proxy, '/config_dump');
    expect(after.version).not.toBe(before.version);
    expect(after.version).toBe(proxy.snapshot()?.version);
  });

  test('/config_dump never shows the data of a Secret in the mesh file', async () => {
    const { cert, key } = selfSignedPem('secret.example.com');
    const secret = stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tls', namespace: 'default' }, type: 'kubernetes.io/tls', stringData: { 'tls.crt': cert, 'tls.key': key } });
    const before = await adminJson<{ version: string }>(proxy, '/config_dump');
    mesh.writeText(`${testMeshYaml([service(a.port)])}---\n${secret}`);
    await eventually(async () => (await adminJson<{ version: string }>(proxy, '/config_dump')).version !== before.version, 'the mesh with the Secret to load', 3000);
    const dump = JSON.stringify(await adminJson<unknown>(proxy, '/config_dump'));
    expect(dump).toContain('"kind":"Secret"');
    expect(dump).toContain('(redacted)');
    expect(dump).not.toContain('PRIVATE KEY');
    expect(dump).not.toContain('BEGIN CERTIFICATE');
    mesh.write([service(a.port)]);
  });

  test('a malformed or invalid mesh file is refused: requests keep working and /config_dump keeps the last good version', async () => {
    const good = await adminJson<{ version: string }>(proxy, '/config_dump');
    const target = await get(proxy.ports.outbound);
    for (const bad of ['kind: Service\nmetadata: [unclosed\n', 'apiVersion: v1\nkind: Bogus\nmetadata: {name: x}\n', '']) {
      mesh.writeText(bad);
      await pause(300); // the watcher's debounce is 100 ms; a refusal has no outward sign to wait for
      expect(await get(proxy.ports.outbound)).toBe(target);
      expect((await adminJson<{ version: string }>(proxy, '/config_dump')).version).toBe(good.version);
      expect((await fetchText(proxy.ports.health, '/healthz/ready')).status).toBe(200);
    }
    // The watcher is still alive after the refusals.
    mesh.write([service(a.port)]);
    await eventually(async () => (await get(proxy.ports.outbound)) === 'a', 'the next good file to apply', 3000);
  });
});

describe('mesh file reloads and HTTP/2 upstream sessions', () => {
  test('sessions to endpoints that left the mesh are closed; the same client session moves to the new endpoint', async () => {
    const named = (name: string) => (stream: http2.ServerHttp2Stream) => {
      stream.resume();
      stream.respond({ ':status': 200 });
      stream.end(name);
    };
    const a = await listenH2(named('a'));
    const b = await listenH2(named('b'));
    const mesh = new TestMeshFile([service(a.port)]);
    const proxy = await startTestProxy(mesh.path);
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    session.on('error', () => undefined);
    try {
      const call = (): Promise<string> =>
        new Promise((resolve, reject) => {
          const req = session.request({ ':path': '/' });
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => resolve(Buffer.concat(chunks).toString()));
          req.on('error', reject);
        });
      expect(await call()).toBe('a');
      expect(a.open).toBe(1);
      mesh.write([service(b.port)]);
      await eventually(async () => (await call()) === 'b', 'streams to reach the new endpoint', 3000);
      await eventually(() => a.open === 0, 'the session to the departed endpoint to close');
    } finally {
      session.destroy();
      await proxy.close();
      await Promise.all([a.close(), b.close()]);
      mesh.remove();
    }
  });
});

describe('admin and health ports of the running sidecar', () => {
  let app: Listening<http.Server>;
  let appTcp: Listening<import('node:net').Server>;
  let appHealthy = true;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let deadPort: number;

  beforeAll(async () => {
    app = await listenHttp((req, res) => {
      req.resume();
      res.writeHead(appHealthy ? 200 : 500).end();
    });
    appTcp = await listenTcp((socket) => socket.end());
    deadPort = await closedPort();
    mesh = new TestMeshFile([service(app.port)]);
    const probes = {
      'app/livez': { httpGet: { path: '/healthz', port: app.port } },
      'app/readyz': { tcpSocket: { port: appTcp.port } },
      'app/startupz': { tcpSocket: { port: deadPort } },
    };
    proxy = await startTestProxy(mesh.path, { env: { TSMESH_APP_PROBES: JSON.stringify(probes) } });
  });

  afterAll(async () => {
    setLogLevel('silent');
    await proxy?.close();
    await Promise.all([app?.close(), appTcp?.close()]);
    mesh?.remove();
  });

  afterEach(() => {
    appHealthy = true;
  });

  test('/healthz/ready and /healthz/live answer 200 once the sidecar has its mesh', async () => {
    expect((await fetchText(proxy.ports.health, '/healthz/ready')).status).toBe(200);
    expect((await fetchText(proxy.ports.health, '/healthz/live')).status).toBe(200);
  });

  test('/config_dump shows the mesh version and the file it came from; /clusters the endpoints', async () => {
    const dump = await adminJson<{ version: string; source: { kind: string; path: string }; services: Array<{ name: string }> }>(proxy, '/config_dump');
    expect(dump.version).toBe(proxy.snapshot()?.version);
    expect(dump.source).toEqual({ kind: 'file', path: mesh.path });
    expect(dump.services.map((s) => s.name)).toEqual(['svc']);
    const clusters = await adminJson<Array<{ cluster: string; endpoints: Array<{ port: number }> }>>(proxy, '/clusters');
    expect(clusters).toEqual([expect.objectContaining({ cluster: `default/svc:${SERVICE_PORT}`, endpoints: [expect.objectContaining({ port: app.port, ejected: false })] })]);
  });

  test('POST /logging sets the level, and refuses an unknown or missing one with 400; GET only reads it', async () => {
    const ok = await fetchText(proxy.ports.admin, '/logging?level=debug', { method: 'POST' });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ level: 'debug' });
    setLogLevel('silent');
    const bad = await fetchText(proxy.ports.admin, '/logging?level=loud', { method: 'POST' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatch(/loud/);
    expect((await fetchText(proxy.ports.admin, '/logging', { method: 'POST' })).status).toBe(400);
    // Only POST changes the level: GET answers the level in force (silent, set above), whatever it asks.
    const read = await fetchText(proxy.ports.admin, '/logging?level=debug');
    expect(read.status).toBe(200);
    expect(JSON.parse(read.body)).toEqual({ level: 'silent' });
  });

  test('/app-health/<container>/livez runs the recorded httpGet probe: 200 while the app answers 2xx, 503 otherwise', async () => {
    expect((await fetchText(proxy.ports.health, '/app-health/app/livez')).status).toBe(200);
    appHealthy = false;
    const failing = await fetchText(proxy.ports.health, '/app-health/app/livez');
    expect(failing.status).toBe(503);
    expect(failing.body).toContain('HTTP 500');
  });

  test('/app-health runs tcpSocket probes: 200 when the port accepts, 503 when nothing listens', async () => {
    expect((await fetchText(proxy.ports.health, '/app-health/app/readyz')).status).toBe(200);
    const down = await fetchText(proxy.ports.health, '/app-health/app/startupz');
    expect(down.status).toBe(503);
    expect(down.body).toContain('ECONNREFUSED');
  });

  test('/app-health for an unknown container or probe kind is 404', async () => {
    expect((await fetchText(proxy.ports.health, '/app-health/other/livez')).status).toBe(404);
    expect((await fetchText(proxy.ports.health, '/app-health/app/deadz')).status).toBe(404);
  });

  test('/metrics answers in the Prometheus text format', async () => {
    const res = await fetchText(proxy.ports.health, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/^# HELP /m);
  });
});

describe('app-health when the application stops', () => {
  test('the httpGet probe turns 503 once the application is gone', async () => {
    // The probe dials the app's port after it closed: a port-0 port could be another listener's by then.
    const app = await listenHttp(
      (req, res) => {
        req.resume();
        res.end('ok');
      },
      {},
      await stablePort(),
    );
    const mesh = new TestMeshFile([service(app.port)]);
    const proxy = await startTestProxy(mesh.path, { env: { TSMESH_APP_PROBES: JSON.stringify({ 'web/livez': { httpGet: { path: '/', port: app.port } } }) } });
    try {
      expect((await fetchText(proxy.ports.health, '/app-health/web/livez')).status).toBe(200);
      await app.close();
      const res = await fetchText(proxy.ports.health, '/app-health/web/livez');
      expect(res.status).toBe(503);
      expect(res.body).toContain('ECONNREFUSED');
    } finally {
      await proxy.close();
      await app.close();
      mesh.remove();
    }
  });
});
