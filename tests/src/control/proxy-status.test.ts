// `tsmesh proxy-status` (the built CLI, as a child process) against a running control plane with
// real sidecars connected over mutual TLS: by direct address, and in a "cluster" (the API-server
// stand-in) through a port-forward to the control-plane pod. Exit codes and one-line reasons when
// the control plane cannot be found or reached.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { controlPlaneConfig, startControlPlane, type RunningControlPlane } from '@tsmesh/control';
import { FakeApiServer } from '@tsmesh/control/testing';
import { ControlPlaneSource } from '@tsmesh/proxy';
import { CONTROL_ID, ManualProvider, TestCa, clientContext, meshSnapshot, silent, withOthers, type IssuedPem } from './mesh-fixture.js';

const CLI = createRequire(import.meta.url).resolve('tsmesh');

function tsmesh(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, HOME: '/nonexistent' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
async function eventually<T>(probe: () => T | undefined | false, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(10);
  }
}

interface Row {
  name: string;
  namespace: string;
  pod: string;
  control: string;
  snapshot: string;
  status: string;
  nacked?: { version: string; error: string };
  lastSeen: string;
  certificateExpiresAt?: string;
}

describe('tsmesh proxy-status', () => {
  let ca: TestCa;
  let web: IssuedPem;
  let files: { cert: string; key: string; bundle: string };
  let plane: RunningControlPlane;
  // What beforeAll started, closed even when it failed part way.
  const opened: Array<{ close(): Promise<void> }> = [];
  let provider: ManualProvider;
  let fake: FakeApiServer | undefined;
  const sources: ControlPlaneSource[] = [];

  beforeAll(async () => {
    setLogLevel('silent');
    ca = await TestCa.start();
    opened.push(ca);
    web = await ca.issue('shop', 'web');
    files = ca.writeServingFiles('control', await ca.issue('tsmesh-system', 'tsmesh-control'));
    provider = new ManualProvider(meshSnapshot({ webEndpoints: ['10.0.0.1'] }));
    const argv = ['--tls-cert', files.cert, '--tls-key', files.key, '--trust-bundle', files.bundle, '--listen', '127.0.0.1:0', '--debug-listen', '127.0.0.1:0', '--debounce', '10ms'];
    plane = await startControlPlane(controlPlaneConfig(argv, {}), { log: silent, tlsReloadMs: 0, provider });
    opened.push(plane);
    const source = new ControlPlaneSource({
      controlAddr: `127.0.0.1:${plane.address.port}`,
      tlsSource: { clientContext: () => clientContext(web) },
      serverIdentity: CONTROL_ID,
      podName: 'web-0',
      startTimeoutMs: 5000,
      log: silent,
    });
    sources.push(source);
    const started = await source.start();
    if (!started.ok) throw started.error;
    await eventually(() => plane.distributor.connections()[0]?.lastAcked !== undefined, 'the ACK');
  });

  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  afterAll(async () => {
    await Promise.all(sources.map((s) => s.close()));
    for (const s of opened.reverse()) await s.close();
  });

  const admin = (): string => `127.0.0.1:${plane.debugAddress?.port ?? 0}`;

  it('lists a connected sidecar, its snapshot, its ACK, when it was last seen and its certificate expiry (-o json)', async () => {
    const run = await tsmesh(['proxy-status', '--control', admin(), '-o', 'json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout) as Row[];
    const sent = plane.distributor.connections()[0]?.lastSent?.version;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'web-0', namespace: 'shop', pod: 'web-0', control: admin(), snapshot: sent, status: 'SYNCED' });
    const leaf = new X509Certificate(web.certPem);
    expect(rows[0]?.certificateExpiresAt).toBe(new Date(leaf.validTo).toISOString());
    expect(Date.now() - Date.parse(rows[0]?.lastSeen ?? '')).toBeLessThan(60_000);
  });

  it('prints a table, and shows a NACK with its reason', async () => {
    const table = await tsmesh(['proxy-status', '--control', admin()]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+SNAPSHOT\s+STATUS\s+LAST SEEN\s+CERT EXPIRES\s+CONTROL\n/);
    expect(table.stdout).toMatch(/web-0\.shop\s+\S+\s+SYNCED\s+(now|\d+s ago)\s+in 2[34]h\s+127\.0\.0\.1:\d+\n/);

    const unknown = { apiVersion: 'gateway.networking.k8s.io/v2', kind: 'HTTPRoute', metadata: { name: 'future', namespace: 'shop' }, spec: {} };
    provider.publish(withOthers(provider.current(), [unknown], 'bad-1'));
    await eventually(() => plane.distributor.connections()[0]?.lastNacked !== undefined, 'the NACK');
    const after = await tsmesh(['proxy-status', '--control', admin(), '-o', 'json']);
    const rows = JSON.parse(after.stdout) as Row[];
    expect(rows[0]).toMatchObject({ status: 'NACKED', nacked: { version: rows[0]?.snapshot } });
    expect(rows[0]?.nacked?.error).toContain('HTTPRoute shop/future');
    expect((await tsmesh(['proxy-status', '--control', admin()])).stdout).toMatch(/NACKED: snapshot \S+: 1 invalid object: HTTPRoute shop… /);
  });

  it('finds the control-plane pods through the Kubernetes API and asks each through a port-forward', async () => {
    fake = await FakeApiServer.start();
    const labels = { 'app.kubernetes.io/name': 'tsmesh', 'app.kubernetes.io/component': 'control' };
    fake.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'tsmesh-control-abc', namespace: 'tsmesh-system', labels }, spec: { containers: [] }, status: { phase: 'Running' } });
    fake.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'tsmesh-control-old', namespace: 'tsmesh-system', labels }, spec: { containers: [] }, status: { phase: 'Succeeded' } });
    fake.forwardPort('tsmesh-system', 'tsmesh-control-abc', 15011, { host: '127.0.0.1', port: plane.debugAddress?.port ?? 0 });
    const kubeconfig = join(ca.dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeConfig().exportConfig());
    const run = await tsmesh(['proxy-status', '--kubeconfig', kubeconfig, '-o', 'json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject([{ name: 'web-0', namespace: 'shop', control: 'tsmesh-control-abc' }]);
    expect(fake.requestsFor('/api/v1/namespaces/tsmesh-system/pods/tsmesh-control-abc/portforward')).toHaveLength(1);
  });

  it('exits 1 with a one-line reason when the control plane cannot be found or reached', async () => {
    const refused = await tsmesh(['proxy-status', '--control', '127.0.0.1:1']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^tsmesh proxy-status: cannot reach the control plane's admin server: .*127\.0\.0\.1:1\/debug\/connections: connect ECONNREFUSED[^\n]*\n$/);

    fake = await FakeApiServer.start();
    const kubeconfig = join(ca.dir, 'kubeconfig-empty');
    writeFileSync(kubeconfig, fake.kubeConfig().exportConfig());
    const none = await tsmesh(['proxy-status', '--kubeconfig', kubeconfig]);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe('tsmesh proxy-status: no running control-plane pod (app.kubernetes.io/name=tsmesh,app.kubernetes.io/component=control) in namespace tsmesh-system: is tsmesh installed? (tsmesh check)\n');

    const labels = { 'app.kubernetes.io/name': 'tsmesh', 'app.kubernetes.io/component': 'control' };
    fake.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'tsmesh-control-abc', namespace: 'tsmesh-system', labels }, spec: { containers: [] }, status: { phase: 'Running' } });
    const unforwarded = await tsmesh(['proxy-status', '--kubeconfig', kubeconfig]);
    expect(unforwarded.code).toBe(1);
    expect(unforwarded.stderr).toMatch(/^tsmesh proxy-status: cannot reach pod tsmesh-system\/tsmesh-control-abc port 15011 through a port-forward \(http:\/\/127\.0\.0\.1:\d+\): the API server answered 404[^\n]*\n$/);

    const bad = await tsmesh(['proxy-status', '-o', 'yaml']);
    expect(bad.code).toBe(2);
  });
});
