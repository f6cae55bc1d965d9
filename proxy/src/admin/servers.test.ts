import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { ADMIN_ENDPOINTS, createAdminServer, createHealthServer, type AdminSources, type HealthSources } from './servers.js';
import { fetchText } from '../testing/proxy.js';
import { listenTcp } from '../testing/servers.js';

const servers: http.Server[] = [];

async function listen(server: http.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

beforeAll(() => setLogLevel('silent'));

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** Fake sources: fixed answers a test can change. */
class FakeHealth implements HealthSources {
  reason: string | undefined = undefined;
  metricsError: Error | undefined = undefined;
  appProbes: Record<string, unknown> = {};
  readonly appHost = '127.0.0.1';
  notReadyReason(): string | undefined {
    return this.reason;
  }
  metrics(): Promise<{ contentType: string; body: string }> {
    if (this.metricsError) return Promise.reject(this.metricsError);
    return Promise.resolve({ contentType: 'text/plain; version=0.0.4', body: '# HELP up 1\n' });
  }
}

const admin: AdminSources = {
  configDump: () => ({ version: 'v1' }),
  clusters: () => [{ cluster: 'default/svc:80', endpoints: [] }],
  certs: () => ({ identity: null }),
};

describe('createHealthServer', () => {
  test('/healthz/ready is 503 with the reason until the sidecar is ready, then 200', async () => {
    const health = new FakeHealth();
    health.reason = 'no mesh configuration';
    const port = await listen(createHealthServer(health));
    const notReady = await fetchText(port, '/healthz/ready');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toBe('not ready: no mesh configuration\n');
    health.reason = undefined;
    expect((await fetchText(port, '/healthz/ready')).status).toBe(200);
    expect((await fetchText(port, '/healthz/live')).status).toBe(200);
  });

  test('answers only GET', async () => {
    const port = await listen(createHealthServer(new FakeHealth()));
    expect((await fetchText(port, '/healthz/ready', { method: 'POST' })).status).toBe(405);
  });

  test('a failing metrics source is a 500 with the error, and the server keeps serving', async () => {
    const health = new FakeHealth();
    health.metricsError = new Error('registry broke');
    const port = await listen(createHealthServer(health));
    const res = await fetchText(port, '/metrics');
    expect(res.status).toBe(500);
    expect(JSON.parse(res.body)).toEqual({ error: 'registry broke' });
    expect((await fetchText(port, '/healthz/live')).status).toBe(200);
  });

  test('runs app probes against appHost and answers 404 for paths it does not know', async () => {
    const app = await listenTcp((s) => s.end());
    try {
      const health = new FakeHealth();
      health.appProbes = { 'web/readyz': { tcpSocket: { port: app.port } } };
      const port = await listen(createHealthServer(health));
      expect((await fetchText(port, '/app-health/web/readyz')).status).toBe(200);
      expect((await fetchText(port, '/app-health/web/livez')).status).toBe(404);
      expect((await fetchText(port, '/nothing')).status).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('createAdminServer', () => {
  test('serves /config_dump, /clusters and /certs as JSON and 404 for anything else', async () => {
    const port = await listen(createAdminServer(admin));
    const dump = await fetchText(port, '/config_dump');
    expect(dump.headers['content-type']).toBe('application/json');
    expect(JSON.parse(dump.body)).toEqual({ version: 'v1' });
    expect(JSON.parse((await fetchText(port, '/clusters')).body)).toEqual([{ cluster: 'default/svc:80', endpoints: [] }]);
    expect(JSON.parse((await fetchText(port, '/certs')).body)).toEqual({ identity: null });
    expect((await fetchText(port, '/config_dump', { method: 'DELETE' })).status).toBe(404);
  });

  test('GET /server_info says which proxy version runs, on which Node.js, for how long', async () => {
    const port = await listen(createAdminServer(admin));
    const res = await fetchText(port, '/server_info');
    expect(res.status).toBe(200);
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    expect(JSON.parse(res.body)).toEqual({ component: 'proxy', version, node: process.version, uptimeSeconds: expect.any(Number) });
  });

  test('GET / lists every endpoint, as text or JSON, and each one it lists answers', async () => {
    const port = await listen(createAdminServer({ ...admin, authorization: () => ({ policies: [] }) as never }));
    const text = await fetchText(port, '/');
    expect(text.status).toBe(200);
    expect(text.headers['content-type']).toBe('text/plain; charset=utf-8');
    for (const e of ADMIN_ENDPOINTS) expect(text.body).toMatch(new RegExp(`^${e.method} ${e.path.replace(/[/?]/g, '\\$&')} +\\S`, 'm'));
    const json = await fetchText(port, '/', { headers: { accept: 'application/json' } });
    expect(JSON.parse(json.body)).toEqual({ component: 'proxy', version: expect.any(String), endpoints: ADMIN_ENDPOINTS });
    expect(JSON.parse((await fetchText(port, '/?format=json')).body).endpoints).toEqual(ADMIN_ENDPOINTS);
    // Listed means served: no 404 (a check without its query is a 400 naming the parameter).
    for (const e of ADMIN_ENDPOINTS) expect({ e, status: (await fetchText(port, e.path, { method: e.method })).status }).not.toEqual({ e, status: 404 });
    const unknown = await fetchText(port, '/stats');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error).toBe('no admin endpoint GET /stats; GET / lists them');
  });

  test('GET / leaves /authz/check out where the sidecar has no policies to explain', async () => {
    const port = await listen(createAdminServer(admin));
    const json = JSON.parse((await fetchText(port, '/?format=json')).body) as { endpoints: Array<{ path: string }> };
    expect(json.endpoints.map((e) => e.path)).not.toContain('/authz/check');
    expect(json.endpoints.length).toBe(ADMIN_ENDPOINTS.length - 1);
  });

  test('the reference lists the admin endpoints in the row of port 15000', () => {
    const doc = readFileSync(new URL('../../../docs/reference.md', import.meta.url), 'utf8');
    const row = doc.split('\n').find((line) => line.startsWith('| 15000 | sidecar |')) ?? '';
    const listed = [...row.matchAll(/`(GET|POST) ([^`?]+)[^`]*`/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(listed.sort()).toEqual(ADMIN_ENDPOINTS.map((e) => `${e.method} ${e.path}`).sort());
  });

  test('GET /logging says the level POST /logging set', async () => {
    const port = await listen(createAdminServer(admin));
    expect((await fetchText(port, '/logging?level=warn', { method: 'POST' })).status).toBe(200);
    expect(JSON.parse((await fetchText(port, '/logging')).body)).toEqual({ level: 'warn' });
    expect((await fetchText(port, '/logging?level=error', { method: 'POST' })).status).toBe(200);
    expect(JSON.parse((await fetchText(port, '/logging')).body)).toEqual({ level: 'error' });
    setLogLevel('silent');
  });

  test('POST /logging changes the level; an unknown level is a 400 naming it', async () => {
    const port = await listen(createAdminServer(admin));
    expect((await fetchText(port, '/logging?level=warn', { method: 'POST' })).status).toBe(200);
    const bad = await fetchText(port, '/logging?level=verbose', { method: 'POST' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toContain('verbose');
    setLogLevel('silent');
  });
});
