import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { createAdminServer, createHealthServer, type AdminSources, type HealthSources } from './servers.js';
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

  test('POST /logging changes the level; an unknown level is a 400 naming it', async () => {
    const port = await listen(createAdminServer(admin));
    expect((await fetchText(port, '/logging?level=warn', { method: 'POST' })).status).toBe(200);
    const bad = await fetchText(port, '/logging?level=verbose', { method: 'POST' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toContain('verbose');
    setLogLevel('silent');
  });
});
