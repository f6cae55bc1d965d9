import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { controlPlaneConfig } from './config.js';
import { CONTROL_METRIC_NAMES, nackKind } from './metrics.js';
import { startControlPlane, type RunningControlPlane } from './server.js';
import { pause } from './testing/eventually.js';
import { FakeApiServer } from './testing/fake-apiserver.js';
import { namespace, service } from './testing/fixtures.js';

const silent = pino({ level: 'silent' });

async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(20);
  }
}

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe('nackKind', () => {
  it('sorts a NACK reason into too_large, unparsable or invalid', () => {
    expect(nackKind('snapshot v1: 2 MiB (2097152 bytes), over the size limit of 1 MiB')).toBe('too_large');
    expect(nackKind('snapshot v1 is not valid JSON: Unexpected token')).toBe('unparsable');
    expect(nackKind('1 invalid object: HTTPRoute shop/future: apiVersion: unsupported')).toBe('invalid');
  });
});

describe('control plane admin server', () => {
  let dir: string;
  let tlsFlags: string[];
  let fake: FakeApiServer | undefined;
  let plane: RunningControlPlane | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-metrics-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=control'], {
      stdio: 'ignore',
    });
    tlsFlags = ['--tls-cert', cert, '--tls-key', key, '--trust-bundle', cert, '--listen', '127.0.0.1:0', '--debug-listen', '127.0.0.1:0'];
  });

  afterEach(async () => {
    await plane?.close();
    await fake?.close();
    plane = undefined;
    fake = undefined;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const get = async (path: string): Promise<Response> => fetch(`http://127.0.0.1:${plane?.debugAddress?.port ?? 0}${path}`);

  it('counts the Kubernetes watch events by kind and type', async () => {
    fake = await FakeApiServer.start();
    fake.create(namespace('shop'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeConfig().exportConfig());
    plane = await startControlPlane(controlPlaneConfig([...tlsFlags, '--kubeconfig', kubeconfig], {}), { log: silent, tlsReloadMs: 0, routeStatus: false, trustBundle: false });
    const first = await (await get('/metrics')).text();
    expect(sample(first, CONTROL_METRIC_NAMES.watchEvents, { kind: 'Namespace', type: 'added' })).toBe(1);
    expect(sample(first, CONTROL_METRIC_NAMES.watchEvents, { kind: 'Service', type: 'added' })).toBeUndefined();

    fake.create(service('web'));
    await eventually(async () => sample(await (await get('/metrics')).text(), CONTROL_METRIC_NAMES.watchEvents, { kind: 'Service', type: 'added' }) === 1, 'the Service event');
    fake.delete(service('web'));
    await eventually(async () => sample(await (await get('/metrics')).text(), CONTROL_METRIC_NAMES.watchEvents, { kind: 'Service', type: 'deleted' }) === 1, 'the delete event');
  });

  it('lists its endpoints at GET / and keeps /debug/connections and /healthz/ready', async () => {
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(meshFile, '');
    plane = await startControlPlane(controlPlaneConfig([...tlsFlags, '--config', meshFile], {}), { log: silent, tlsReloadMs: 0 });
    const index = (await (await get('/')).json()) as { endpoints: Record<string, string> };
    expect(Object.keys(index.endpoints)).toEqual(['/debug/connections', '/healthz/ready', '/metrics']);
    expect(await (await get('/debug/connections')).json()).toMatchObject({ connections: [], publishes: 1 });
    expect((await get('/healthz/ready')).status).toBe(200);
    expect((await get('/nope')).status).toBe(404);
  });
});
