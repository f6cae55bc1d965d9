// The key material the chart makes at install: the CA root (used by the real CA program, and
// published to the sidecars in the ConfigMap tsmesh-ca-root-cert), the control plane's serving
// certificate under that root (the real control plane serves a real sidecar client with it), and
// the injector's serving certificate (verified through the webhook's caBundle, as the API server does).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createSecureContext, createServer, type Server } from 'node:tls';
import { afterEach, describe, expect, test } from '@jest/globals';
import { generateWorkloadCsr, parseCaConfig, requestCertificate, startCa, type Authenticator, type RunningCa } from '@tsmesh/ca';
import { logger, setLogLevel } from '@tsmesh/common';
import { controlPlaneConfig, startControlPlane, type RunningControlPlane } from '@tsmesh/control';
import { injectorConfig } from '@tsmesh/injector';
import { ControlPlaneSource } from '@tsmesh/proxy';
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
let control: RunningControlPlane | undefined;
let sidecar: ControlPlaneSource | undefined;
afterEach(async () => {
  await sidecar?.close();
  await control?.close();
  await running?.close();
  server?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  running = undefined;
  server = undefined;
  control = undefined;
  sidecar = undefined;
  dir = undefined;
});

/** Writes a Secret's keys as the kubelet mounts them; returns the directory. */
function mountSecret(secret: DataObject, name: string): string {
  dir ??= mkdtempSync(join(tmpdir(), 'tsmesh-chart-ca-'));
  const mounted = join(dir, name);
  mkdirSync(mounted);
  for (const [file, content] of Object.entries(secret.data)) writeFileSync(join(mounted, file), decode(content), { mode: 0o600 });
  return mounted;
}

/** Starts the real CA with the chart's own arguments, the Secret's files in place of the mounted ones. */
async function startChartCa(objects: readonly KubeObject[]): Promise<RunningCa> {
  const rootDir = mountSecret(one<DataObject>(objects, 'Secret', 'tsmesh-ca-root'), 'root');
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
    const own = await render({ set: { 'ca.root.existingSecret': 'corp-root', 'control.tls.existingSecret': 'corp-control-tls' } });
    expect(own.some((o) => o.kind === 'Secret' && o.metadata.name === 'tsmesh-ca-root')).toBe(false);
    const volumes = one<Deployment>(own, 'Deployment', 'tsmesh-ca').spec.template.spec.volumes ?? [];
    expect(volumes.find((v) => v.name === 'root')?.secret?.secretName).toBe('corp-root');
  });

  test('with ca.root.existingSecret, publishes ca.root.trustBundle, and refuses to publish nothing', async () => {
    await expect(render({ set: { 'ca.root.existingSecret': 'corp-root', 'caRootCert.namespaces': '{shop}' } })).rejects.toThrow(
      /ca\.root\.trustBundle is required with ca\.root\.existingSecret/,
    );
    const pem = decode(one<DataObject>(await render(), 'Secret', 'tsmesh-ca-root').data['root-cert.pem'] ?? '');
    const objects = await render({
      set: { 'ca.root.existingSecret': 'corp-root', 'ca.root.trustBundle': pem, 'caRootCert.namespaces': '{shop}', 'control.tls.existingSecret': 'corp-control-tls' },
    });
    const maps = all<DataObject>(objects, 'ConfigMap').filter((m) => m.metadata.name === 'tsmesh-ca-root-cert');
    expect(maps.map((m) => [m.metadata.namespace, m.data['root-cert.pem']?.trim()])).toEqual([
      ['tsmesh-system', pem.trim()],
      ['shop', pem.trim()],
    ]);
  });
});

describe('the control plane serving certificate made at install', () => {
  test.each([
    ['tsmesh-system', VALUE_SETS['default values']],
    ['mesh', VALUE_SETS['another namespace with trust bundles published']],
  ])('is signed by the CA root for the Service names of tsmesh-control in %s, with the root as ca.crt', async (namespace, options) => {
    const objects = await render(options);
    const secret = one<DataObject>(objects, 'Secret', 'tsmesh-control-tls');
    expect(secret['type']).toBe('kubernetes.io/tls');
    const root = new X509Certificate(decode(one<DataObject>(objects, 'Secret', 'tsmesh-ca-root').data['root-cert.pem'] ?? ''));
    expect(new X509Certificate(decode(secret.data['ca.crt'] ?? '')).fingerprint256).toBe(root.fingerprint256);
    const cert = new X509Certificate(decode(secret.data['tls.crt'] ?? ''));
    expect(cert.verify(root.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkPrivateKey(createPrivateKey(decode(secret.data['tls.key'] ?? '')))).toBe(true);
    expect(cert.subjectAltName?.split(', ').sort()).toEqual(
      ['tsmesh-control', `tsmesh-control.${namespace}`, `tsmesh-control.${namespace}.svc`, `tsmesh-control.${namespace}.svc.cluster.local`].map((n) => `DNS:${n}`).sort(),
    );
  });

  test('serves the real control plane, which a sidecar with a workload certificate from the chart\'s CA reaches at the injected address', async () => {
    setLogLevel('silent');
    const objects = await render();
    const ca = await startChartCa(objects);
    const bundle = one<DataObject>(objects, 'ConfigMap', 'tsmesh-ca-root-cert').data['root-cert.pem'] ?? '';
    // The control plane, with the chart's own arguments and its Secret's files where the pod mounts them.
    const tlsDir = mountSecret(one<DataObject>(objects, 'Secret', 'tsmesh-control-tls'), 'control-tls');
    const meshFile = join(tlsDir, '..', 'mesh.yaml');
    writeFileSync(meshFile, 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n');
    // Only where the mesh comes from and the addresses differ from the pod: a file instead of the API server, loopback ports.
    // Each flag may be given once, so the chart's own --listen and --debug-listen make way for these.
    const overrides = ['--config', meshFile, '--listen', '127.0.0.1:0', '--debug-listen', 'off'];
    const args = withoutFlags(
      (one<Deployment>(objects, 'Deployment', 'tsmesh-control').spec.template.spec.containers[0]?.args ?? []).slice(1),
      ['--listen', '--debug-listen'],
    ).map((arg) => arg.replace('/etc/tsmesh/control-tls', tlsDir));
    const config = controlPlaneConfig([...args, ...overrides], {});
    control = await startControlPlane(config, { log: silent, tlsReloadMs: 0 });

    // A sidecar's workload certificate, as the injected sidecar gets it from the CA.
    const { csrPem, keyPem } = generateWorkloadCsr('spiffe://cluster.local/ns/shop/sa/cart');
    const answer = await requestCertificate({ caAddr: `127.0.0.1:${ca.address.port}`, servername: 'tsmesh-ca.tsmesh-system.svc', token: 't', trustBundlePem: bundle, csrPem });
    if (!answer.ok) throw answer.error;
    const context = createSecureContext({ key: keyPem, cert: answer.value.certChain.join(''), ca: bundle, minVersion: 'TLSv1.3' });

    // The injected TSMESH_CONTROL_ADDR's host is the name the sidecar checks on the certificate.
    const injector = one<Deployment>(objects, 'Deployment', 'tsmesh-injector').spec.template.spec.containers[0];
    const controlAddress = injectorConfig((injector?.args ?? []).slice(1), {}).settings.controlAddress;
    const [host] = controlAddress.split(':');
    sidecar = new ControlPlaneSource({
      controlAddr: `127.0.0.1:${control.address.port}`,
      serverName: host,
      tlsSource: { clientContext: () => context },
      podName: 'cart-0',
      startTimeoutMs: 10_000,
      log: silent,
    });
    const snapshot = await sidecar.start();
    if (!snapshot.ok) throw snapshot.error;
    expect(sidecar.status().connected).toBe(true);

    // A name the certificate does not carry is refused.
    const stranger = new ControlPlaneSource({
      controlAddr: `127.0.0.1:${control.address.port}`,
      serverName: 'tsmesh-control.elsewhere.svc',
      tlsSource: { clientContext: () => context },
      startTimeoutMs: 1500,
      backoff: { baseMs: 100, maxMs: 200 },
      log: silent,
    });
    const refused = await stranger.start();
    await stranger.close();
    expect(refused.ok).toBe(false);
    expect(stranger.status().lastError?.message ?? '').toMatch(/tsmesh-control\.elsewhere\.svc|altnames|certificate/i);
  });

  test('with ca.root.existingSecret, needs control.tls.existingSecret when the root cannot be read (no cluster)', async () => {
    await expect(render({ set: { 'ca.root.existingSecret': 'corp-root' } })).rejects.toThrow(
      /control\.tls\.existingSecret is required with ca\.root\.existingSecret when the chart cannot read root-cert\.pem and root-key\.pem from Secret tsmesh-system\/corp-root/,
    );
  });
});

describe('the injector serving certificate made at install (injector.tls.mode helm)', () => {
  test.each([
    ['tsmesh-system', VALUE_SETS['default values']],
    ['mesh', VALUE_SETS['another namespace with trust bundles published']],
  ])('serves TLS for tsmesh-injector.%s.svc that the webhook caBundle verifies', async (namespace, options) => {
    const objects = await render({ ...options, set: { ...options?.set, 'injector.tls.mode': 'helm' } });
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

/** `args` without the named flags and their values (`--flag value` or `--flag=value`). */
function withoutFlags(args: readonly string[], flags: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (flags.includes(arg)) {
      i++;
      continue;
    }
    if (flags.some((flag) => arg.startsWith(`${flag}=`))) continue;
    kept.push(arg);
  }
  return kept;
}
