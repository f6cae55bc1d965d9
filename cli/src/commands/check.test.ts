// `tsmesh check [--pre]` (the built CLI, as a child process) against the API-server stand-in with a
// healthy installation, then with each piece it claims to detect broken: a CRD deleted, a wrong
// caBundle, an unready CA, a missing trust bundle, a refused permission, an old or unreachable cluster.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { FakeApiServer } from '@tsmesh/control/testing';
import { runCli } from '../testing/run-cli.js';
import { DEPLOYMENTS, GATEWAY_API_CRDS, TSMESH_CRDS } from './check-checks.js';

const NS = 'tsmesh-system';
const WEBHOOK = `tsmesh-sidecar-injector-${NS}`;
const b64 = (text: string): string => Buffer.from(text).toString('base64');

function selfSignedCa(dir: string, name: string): string {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`)], {
    stdio: 'ignore',
  });
  return readFileSync(join(dir, `${name}.crt`), 'utf8');
}

function deployment(name: string, ready: number, replicas = 1): Parameters<FakeApiServer['create']>[0] {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: NS }, spec: { replicas, selector: { matchLabels: { app: name } } }, status: { replicas, readyReplicas: ready } };
}

describe('tsmesh check', () => {
  let dir: string;
  let injectorCa: string;
  let otherCa: string;
  let fake: FakeApiServer;
  let kubeconfig: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-check-'));
    injectorCa = selfSignedCa(dir, 'injector-ca');
    otherCa = selfSignedCa(dir, 'other-ca');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeEach(async () => {
    fake = await FakeApiServer.start();
    for (const name of [...GATEWAY_API_CRDS, ...TSMESH_CRDS]) fake.create({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name } });
    fake.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    fake.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'tsmesh-injection': 'enabled' } } });
    fake.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain' } });
    fake.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tsmesh-injector-ca', namespace: NS }, data: { 'ca.crt': b64(injectorCa), 'ca.key': b64('key') } });
    fake.create({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: WEBHOOK },
      webhooks: ['namespace', 'object'].map((w) => ({
        name: `${w}.sidecar-injector.tsmesh.io`,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        clientConfig: { service: { name: 'tsmesh-injector', namespace: NS, path: '/inject' }, caBundle: b64(injectorCa) },
      })),
    });
    for (const name of DEPLOYMENTS) fake.create(deployment(name, 1));
    fake.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'tsmesh-ca-root-cert', namespace: 'shop' }, data: { 'root-cert.pem': otherCa } });
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeConfig().exportConfig());
  });
  afterEach(() => fake.close());

  const check = (...args: string[]) => runCli(['check', '--kubeconfig', kubeconfig, ...args]);
  const failures = (stdout: string): string[] => stdout.split('\n').filter((line) => line.startsWith('✖'));

  it('passes a healthy installation: one ✔ line per check, exit 0', async () => {
    const run = await check();
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines.slice(0, -1).every((line) => line.startsWith('✔ '))).toBe(true);
    expect(lines).toEqual([
      expect.stringMatching(/^✔ Kubernetes API: the API server at http:\/\/127\.0\.0\.1:\d+ answers \(Kubernetes v1\.31\.0\)$/),
      '✔ Kubernetes API: Kubernetes 1.31 is 1.25 or newer',
      '✔ Gateway API: 2 CustomResourceDefinitions present (httproutes.gateway.networking.k8s.io, grpcroutes.gateway.networking.k8s.io)',
      expect.stringMatching(/^✔ tsmesh CRDs: 4 CustomResourceDefinitions present/),
      `✔ injection webhook: MutatingWebhookConfiguration ${WEBHOOK}: 2 webhooks, caBundle matches the injector's CA (Secret ${NS}/tsmesh-injector-ca)`,
      `✔ control plane: Deployment ${NS}/tsmesh-control ready (1/1)`,
      `✔ control plane: Deployment ${NS}/tsmesh-ca ready (1/1)`,
      `✔ control plane: Deployment ${NS}/tsmesh-injector ready (1/1)`,
      '✔ trust bundle: ConfigMap tsmesh-ca-root-cert present in all 1 namespace labelled tsmesh-injection=enabled',
      'tsmesh is healthy: every check passed.',
    ]);
  });

  it('detects a deleted CRD', async () => {
    fake.delete({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'authorizationpolicies.security.tsmesh.io' } });
    const run = await check();
    expect(run.code).toBe(1);
    expect(failures(run.stdout)).toEqual([
      '✖ tsmesh CRDs: CustomResourceDefinition missing: authorizationpolicies.security.tsmesh.io — fix: install or upgrade tsmesh: helm upgrade --install tsmesh charts/tsmesh -n tsmesh-system --create-namespace',
    ]);
    expect(run.stdout.endsWith('1 check failed.\n')).toBe(true);
  });

  it("detects a caBundle that does not hold the injector's CA, and a missing webhook configuration", async () => {
    const stored = fake.list('mutatingwebhookconfigurations')[0] as { webhooks: Array<{ clientConfig: { caBundle: string } }> } & Parameters<FakeApiServer['update']>[0];
    stored.webhooks[1]!.clientConfig.caBundle = b64(otherCa);
    fake.update(stored);
    const wrong = await check();
    expect(wrong.code).toBe(1);
    expect(failures(wrong.stdout)).toEqual([
      expect.stringMatching(
        /^✖ injection webhook: the caBundle of object\.sidecar-injector\.tsmesh\.io in tsmesh-sidecar-injector-tsmesh-system does not hold the injector's CA \(Secret tsmesh-system\/tsmesh-injector-ca\): .* — fix: kubectl -n tsmesh-system rollout restart deployment\/tsmesh-injector/,
      ),
    ]);

    fake.delete(stored);
    const missing = await check();
    expect(failures(missing.stdout)).toEqual([expect.stringMatching(/^✖ injection webhook: MutatingWebhookConfiguration tsmesh-sidecar-injector-tsmesh-system is missing: no pod is injected — fix: /)]);
  });

  it('detects an unready CA and a missing Deployment', async () => {
    fake.update(deployment('tsmesh-ca', 0));
    fake.delete(deployment('tsmesh-injector', 1));
    const run = await check();
    expect(run.code).toBe(1);
    expect(failures(run.stdout)).toEqual([
      '✖ control plane: Deployment tsmesh-system/tsmesh-ca is not ready (0/1 replicas ready) — fix: kubectl -n tsmesh-system describe deployment/tsmesh-ca; kubectl -n tsmesh-system logs deployment/tsmesh-ca',
      expect.stringMatching(/^✖ control plane: Deployment tsmesh-system\/tsmesh-injector is missing — fix: /),
    ]);
    expect(run.stdout.endsWith('2 checks failed.\n')).toBe(true);
  });

  it('detects a labelled namespace without the trust bundle ConfigMap', async () => {
    fake.update({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain', labels: { 'tsmesh-injection': 'enabled' } } });
    const run = await check();
    expect(run.code).toBe(1);
    expect(failures(run.stdout)).toEqual([expect.stringMatching(/^✖ trust bundle: ConfigMap tsmesh-ca-root-cert is missing in labelled namespace plain: .* — fix: the control plane publishes it/)]);
  });

  it('--pre: passes when the cluster is ready, and names a refused permission and missing Gateway API CRDs', async () => {
    const ready = await check('--pre');
    expect(ready.code).toBe(0);
    expect(ready.stdout).toMatch(/^✔ permissions: this user may install tsmesh \(8 SelfSubjectAccessReviews allowed\)$/m);
    expect(ready.stdout).not.toMatch(/tsmesh CRDs|control plane/);
    expect(ready.stdout.endsWith('Ready to install tsmesh: every check passed.\n')).toBe(true);

    fake.authorize = (a) => a.resource !== 'mutatingwebhookconfigurations';
    fake.delete({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'grpcroutes.gateway.networking.k8s.io' } });
    const refused = await check('--pre');
    expect(refused.code).toBe(1);
    expect(failures(refused.stdout)).toEqual([
      expect.stringMatching(/^✖ Gateway API: CustomResourceDefinition missing: grpcroutes\.gateway\.networking\.k8s\.io — fix: install the Gateway API standard CRDs/),
      expect.stringMatching(/^✖ permissions: this user may not create mutatingwebhookconfigurations\.admissionregistration\.k8s\.io — fix: /),
    ]);
  });

  it('fails on a Kubernetes older than 1.25, and stops at an unreachable API server', async () => {
    fake.version = { major: '1', minor: '24', gitVersion: 'v1.24.17' };
    const old = await check('--pre');
    expect(old.code).toBe(1);
    expect(failures(old.stdout)).toEqual(['✖ Kubernetes API: Kubernetes v1.24.17 is older than 1.25 — fix: upgrade the cluster to Kubernetes 1.25 or newer (1.29+ for native sidecars)']);

    await fake.close();
    const down = await check();
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/^✖ Kubernetes API: cannot reach the API server at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.* — fix: check the kubeconfig context[^\n]*\n1 check failed\.\n$/);
    fake = await FakeApiServer.start();
  });

  it('refuses bad arguments with exit 2', async () => {
    expect((await runCli(['check', '--bogus'])).code).toBe(2);
    expect((await runCli(['check', '--control-namespace', 'Bad_NS'])).code).toBe(2);
  });
});
