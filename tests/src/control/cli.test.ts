// `tsmesh control` as a process, against the local API server stand-in: the real binary reads the
// cluster through its kubeconfig, keeps the trust bundle ConfigMap in every namespace (the one the
// injected sidecars mount) and stops cleanly on SIGTERM.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, type KubeObject } from '@tsmesh/common';
import { FakeApiServer } from '@tsmesh/control/testing';
import { CLI_MAIN } from 'tsmesh/demo';

const namespace = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

async function eventually<T>(probe: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('tsmesh control against the API server stand-in', () => {
  let dir: string;
  let fake: FakeApiServer;
  let control: ChildProcess | undefined;
  let output = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-control-cli-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=tsmesh-control'], {
      stdio: 'ignore',
    });
    fake = await FakeApiServer.start({ token: 'control-token' });
    for (const name of ['default', 'kube-system', 'tsmesh-system', 'shop']) fake.create(namespace(name));
    writeFileSync(join(dir, 'kubeconfig'), fake.kubeConfig().exportConfig());
  });

  afterAll(async () => {
    if (control !== undefined && control.exitCode === null) control.kill('SIGKILL');
    await fake?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const held = (ns: string): unknown =>
    (fake.list('configmaps', ns).find((cm) => cm.metadata.name === TRUST_BUNDLE_CONFIGMAP)?.['data'] as Record<string, unknown> | undefined)?.[TRUST_BUNDLE_KEY];

  it('publishes its trust bundle in every namespace, follows new ones, and exits 0 on SIGTERM', async () => {
    const bundle = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const child = spawn(
      process.execPath,
      [
        CLI_MAIN, 'control',
        '--kubeconfig', join(dir, 'kubeconfig'),
        '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem'), '--trust-bundle', join(dir, 'cert.pem'),
        '--listen', '127.0.0.1:0', '--debug-listen', 'off',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TSMESH_CONTROL_LOG_LEVEL: 'info' } },
    );
    control = child;
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));

    await eventually(() => ['default', 'tsmesh-system', 'shop'].every((ns) => held(ns) === bundle) || undefined, `the bundle in every namespace; output: ${output.slice(-500)}`);
    expect(held('kube-system')).toBeUndefined();
    fake.create(namespace('payments'));
    await eventually(() => held('payments') === bundle, 'the bundle in a namespace created later');
    expect(output).toContain('"msg":"control plane serving sidecars"');
    expect(output).toContain(`"trustBundleConfigMap":"${TRUST_BUNDLE_CONFIGMAP}"`);

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  }, 60_000);
});
