// The key material the chart makes at install: the CA root (used by the real CA program, and
// published to the sidecars in the ConfigMap tsmesh-ca-root-cert) and the injector's serving
// certificate (verified through the webhook's caBundle, as the API server does).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import { afterEach, describe, expect, test } from '@jest/globals';
import { generateWorkloadCsr, parseCaConfig, requestCertificate, startCa, type Authenticator, type RunningCa } from '@tsmesh/ca';
import { logger } from '@tsmesh/common';
import { render, VALUE_SETS, type KubeObject } from './helm.js';
import { all, one, type Deployment, type WebhookConfiguration } from './objects.js';

type DataObject = KubeObject & { data: Record<string, string> };

const decode = (base64: string): string => Buffer.from(base64, 'base64').toString('utf8');
const silent = logger('tests.chart');
silent.level = 'silent';

/** Accepts any token as shop/cart: the chart's TokenReview wiring is not what is tested here. */
const anyToken: Authenticator = { kind: 'test', authenticate: async () => ({ ok: true, value: { namespace: 'shop', serviceAccount: 'cart' } }) };

let dir: string | undefined;
let running: RunningCa | undefined;
let server: Server | undefined;
afterEach(async () => {
  await running?.close();
  server?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  running = undefined;
  server = undefined;
  dir = undefined;
});

/** Starts the real CA with the chart's own arguments, the Secret's files in place of the mounted ones. */
async function startChartCa(objects: readonly KubeObject[]): Promise<RunningCa> {
  dir = mkdtempSync(join(tmpdir(), 'tsmesh-chart-ca-'));
  const secret = one<DataObject>(objects, 'Secret', 'tsmesh-ca-root');
  const rootDir = join(dir, 'root');
  mkdirSync(rootDir);
  for (const [file, content] of Object.entries(secret.data)) writeFileSync(join(rootDir, file), decode(content), { mode: 0o600 });
  const container = one<Deployment>(objects, 'Deployment', 'tsmesh-ca').spec.template.spec.containers[0];
  const args = (container?.args ?? []).slice(1).map((arg) => arg.replace('/etc/tsmesh/ca-root', rootDir).replace('/var/run/tsmesh/ca', join(dir as string, 'state')));
  const config = parseCaConfig([...args, '--listen', '127.0.0.1:0'], {});
  running = await startCa(config, { authenticator: anyToken, log: silent, auditLog: silent });
  return running;
}

describe('the CA root made at install', () => {
  test('is a CA certificate with its key, and every ConfigMap tsmesh-ca-root-cert publishes that certificate', async () => {
    const objects = await render(VALUE_SETS['another namespace with trust bundles published']);
    const secret = one<DataObject>(objects, 'Secret', 'tsmesh-ca-root');
    const cert = new X509Certificate(decode(secret.data['root-cert.pem'] ?? ''));
    expect(cert.ca).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(decode(secret.data['root-key.pem'] ?? '')))).toBe(true);
    const maps = all<DataObject>(objects, 'ConfigMap').filter((c) => c.metadata.name === 'tsmesh-ca-root-cert');
    expect(maps.map((c) => c.metadata.namespace).sort()).toEqual(['billing', 'mesh', 'shop']);
    for (const map of maps) expect(new X509Certificate(map.data['root-cert.pem'] ?? '').fingerprint256).toBe(cert.fingerprint256);
  });

  test('starts the real CA, whose serving certificate verifies against the ConfigMap as the sidecars dial it', async () => {
    const objects = await render();
    const ca = await startChartCa(objects);
    const bundle = one<DataObject>(objects, 'ConfigMap', 'tsmesh-ca-root-cert').data['root-cert.pem'] ?? '';
    const authorized = await new Promise<boolean>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: ca.address.port, ca: bundle, servername: 'tsmesh-ca.tsmesh-system.svc' }, () => {
        resolve(socket.authorized);
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(authorized).toBe(true);
    expect(ca.trustBundlePem.trim()).toBe(bundle.trim());
  });

  test('issues a workload certificate that chains to the published root', async () => {
    const objects = await render(VALUE_SETS['another namespace with trust bundles published']);
    const ca = await startChartCa(objects);
    const bundle = one<DataObject>(objects, 'ConfigMap', 'tsmesh-ca-root-cert', 'shop').data['root-cert.pem'] ?? '';
    const { csrPem } = generateWorkloadCsr('spiffe://example.org/ns/shop/sa/cart');
    const answer = await requestCertificate({ caAddr: `127.0.0.1:${ca.address.port}`, servername: 'tsmesh-ca.mesh.svc', token: 't', trustBundlePem: bundle, csrPem });
    if (!answer.ok) throw answer.error;
    expect(answer.value.certChain).toHaveLength(2);
    const [leaf, intermediate] = answer.value.certChain.map((pem) => new X509Certificate(pem)) as [X509Certificate, X509Certificate];
    const root = new X509Certificate(bundle);
    expect(leaf.subjectAltName).toBe('URI:spiffe://example.org/ns/shop/sa/cart');
    expect(leaf.verify(intermediate.publicKey)).toBe(true);
    expect(intermediate.verify(root.publicKey)).toBe(true);
    expect(answer.value.trustBundle.map((pem) => new X509Certificate(pem).fingerprint256)).toEqual([root.fingerprint256]);
  });

  test('is made anew by each rendering without a cluster, and not at all with ca.root.existingSecret', async () => {
    const first = one<DataObject>(await render(), 'Secret', 'tsmesh-ca-root');
    const second = one<DataObject>(await render(), 'Secret', 'tsmesh-ca-root');
    expect(first.data['root-cert.pem']).not.toBe(second.data['root-cert.pem']);
    expect(first.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    const own = await render({ set: { 'ca.root.existingSecret': 'corp-root' } });
    expect(own.some((o) => o.kind === 'Secret' && o.metadata.name === 'tsmesh-ca-root')).toBe(false);
    const volumes = one<Deployment>(own, 'Deployment', 'tsmesh-ca').spec.template.spec.volumes ?? [];
    expect(volumes.find((v) => v.name === 'root')?.secret?.secretName).toBe('corp-root');
  });

  test('with ca.root.existingSecret, publishes ca.root.trustBundle, and refuses to publish nothing', async () => {
    await expect(render({ set: { 'ca.root.existingSecret': 'corp-root', 'caRootCert.namespaces': '{shop}' } })).rejects.toThrow(
      /ca\.root\.trustBundle is required with ca\.root\.existingSecret/,
    );
    const pem = decode(one<DataObject>(await render(), 'Secret', 'tsmesh-ca-root').data['root-cert.pem'] ?? '');
    const objects = await render({ set: { 'ca.root.existingSecret': 'corp-root', 'ca.root.trustBundle': pem, 'caRootCert.namespaces': '{shop}' } });
    const maps = all<DataObject>(objects, 'ConfigMap');
    expect(maps.map((m) => [m.metadata.namespace, m.data['root-cert.pem']?.trim()])).toEqual([
      ['tsmesh-system', pem.trim()],
      ['shop', pem.trim()],
    ]);
  });
});

describe('the injector serving certificate made at install', () => {
  test.each([
    ['tsmesh-system', VALUE_SETS['default values']],
    ['mesh', VALUE_SETS['another namespace with trust bundles published']],
  ])('serves TLS for tsmesh-injector.%s.svc that the webhook caBundle verifies', async (namespace, options) => {
    const objects = await render(options);
    const secret = one<DataObject>(objects, 'Secret', 'tsmesh-injector-tls');
    expect(secret['type']).toBe('kubernetes.io/tls');
    const caBundle = one<WebhookConfiguration>(objects, 'MutatingWebhookConfiguration', `tsmesh-sidecar-injector-${namespace}`).webhooks[0]?.clientConfig.caBundle ?? '';
    expect(caBundle).toBe(secret.data['ca.crt']);
    const cert = new X509Certificate(decode(secret.data['tls.crt'] ?? ''));
    expect(cert.subjectAltName).toContain(`DNS:tsmesh-injector.${namespace}.svc`);
    server = createServer({ cert: decode(secret.data['tls.crt'] ?? ''), key: decode(secret.data['tls.key'] ?? '') }, (socket) => socket.end());
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const authorized = await new Promise<boolean>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca: decode(caBundle), servername: `tsmesh-injector.${namespace}.svc` }, () => {
        resolve(socket.authorized);
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(authorized).toBe(true);
  });
});
