import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CONTENT_SECURITY_POLICY, createDashboardServer, hostAllowed, type DashboardState } from './server.js';

const STATE: DashboardState = { at: 1, intervalMs: 1000, targets: [], edges: [], workloads: [], times: [], history: {}, traces: { source: undefined, list: [] } };

describe('the dashboard server', () => {
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    server = createDashboardServer({ state: () => STATE }, { hosts: ['dash.example'] });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  test('serves the page, its script and the libraries from node_modules, each with the Content-Security-Policy', async () => {
    for (const [path, type] of [
      ['/', 'text/html'],
      ['/app.js', 'text/javascript'],
      ['/vendor/cytoscape.esm.min.mjs', 'text/javascript'],
      ['/vendor/uPlot.esm.js', 'text/javascript'],
      ['/vendor/uPlot.min.css', 'text/css'],
    ] as const) {
      const res = await fetch(`${base}${path}`);
      expect([path, res.status]).toEqual([path, 200]);
      expect(res.headers.get('content-type')).toContain(type);
      expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe');
  });

  test('answers the current view as JSON at /api/state', async () => {
    const res = await fetch(`${base}/api/state`);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(STATE)));
  });

  test('is read-only: anything but GET and HEAD is 405', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) expect((await fetch(`${base}/api/state`, { method })).status).toBe(405);
  });

  test('serves no file outside its list (no path traversal) and nothing under an unknown Host (DNS rebinding)', async () => {
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/vendor/../../package.json', '/static/app.js', '/index.html']) {
      expect([path, (await fetch(`${base}${path}`)).status]).toEqual([path, 404]);
    }
    expect(hostAllowed('evil.example:80', new Set())).toBe(false);
    expect(hostAllowed(undefined, new Set())).toBe(false);
    expect(hostAllowed('localhost:15500', new Set())).toBe(true);
    expect(hostAllowed('[::1]:15500', new Set())).toBe(true);
    expect(hostAllowed('dash.example:15500', new Set(['dash.example']))).toBe(true);
    const res = await new Promise<number>((resolve, reject) => {
      http.get(`${base}/api/state`, { headers: { host: 'evil.example' } }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(res).toBe(421);
  });
});
