// Test support for distribution tests: a real tsmesh CA in a temp dir, workload certificates from
// it, TLS contexts from those, and a mesh file / a MeshProvider the test drives by hand.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { generateWorkloadCsr, parseCaConfig, requestCertificate, startCa, type RunningCa } from '@tsmesh/ca';
import { buildSnapshot, logger, ok, type KubeObject, type Logger, type MeshProvider, type MeshSnapshot, type Result, type TsmeshError } from '@tsmesh/common';

/** A logger that writes nothing. */
export const silent: Logger = logger('test.distribution').child({});
silent.level = 'silent';
export const CONTROL_ID = 'spiffe://cluster.local/ns/tsmesh-system/sa/tsmesh-control';

/** Who may ask the CA for what (the token file). */
const TOKENS = [
  { token: 'web-token', namespace: 'shop', serviceAccount: 'web' },
  { token: 'other-token', namespace: 'other', serviceAccount: 'client' },
  { token: 'control-token', namespace: 'tsmesh-system', serviceAccount: 'tsmesh-control' },
];

export interface IssuedPem {
  readonly keyPem: string;
  readonly certPem: string;
  readonly trustBundlePem: string;
}

export class TestCa {
  private constructor(
    readonly dir: string,
    readonly ca: RunningCa,
  ) {}

  static async start(): Promise<TestCa> {
    const dir = mkdtempSync(join(tmpdir(), 'tsmesh-distribution-'));
    const tokenFile = join(dir, 'tokens.yaml');
    writeFileSync(tokenFile, TOKENS.map((t) => `- {token: ${t.token}, namespace: ${t.namespace}, serviceAccount: ${t.serviceAccount}}`).join('\n'));
    const config = parseCaConfig(['--state-dir', join(dir, 'ca'), '--token-file', tokenFile, '--listen', '127.0.0.1:0'], {});
    const ca = await startCa(config, { log: silent, auditLog: silent });
    return new TestCa(dir, ca);
  }

  get trustBundlePem(): string {
    return this.ca.trustBundlePem;
  }

  /** A workload certificate for `namespace/serviceAccount`, asked of the CA like a sidecar asks. */
  async issue(namespace: string, serviceAccount: string): Promise<IssuedPem> {
    const entry = TOKENS.find((t) => t.namespace === namespace && t.serviceAccount === serviceAccount);
    if (entry === undefined) throw new Error(`no token for ${namespace}/${serviceAccount}`);
    const { keyPem, csrPem } = generateWorkloadCsr(`spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`);
    const answer = await requestCertificate({
      caAddr: `127.0.0.1:${this.ca.address.port}`,
      token: entry.token,
      trustBundlePem: this.ca.trustBundlePem,
      csrPem,
    });
    if (!answer.ok) throw answer.error;
    return { keyPem, certPem: answer.value.certChain.join(''), trustBundlePem: answer.value.trustBundle.join('') };
  }

  /** Writes PEM files for `tsmesh control --tls-cert/--tls-key/--trust-bundle`. */
  writeServingFiles(name: string, pem: IssuedPem): { cert: string; key: string; bundle: string } {
    const files = { cert: join(this.dir, `${name}-cert.pem`), key: join(this.dir, `${name}-key.pem`), bundle: join(this.dir, `${name}-bundle.pem`) };
    writeFileSync(files.cert, pem.certPem);
    writeFileSync(files.key, pem.keyPem);
    writeFileSync(files.bundle, this.trustBundlePem);
    return files;
  }

  async close(): Promise<void> {
    await this.ca.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** What WorkloadIdentityManager.clientContext() gives: our chain and key, the trust bundle as roots. */
export function clientContext(pem: IssuedPem): SecureContext {
  return createSecureContext({ key: pem.keyPem, cert: pem.certPem, ca: pem.trustBundlePem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
}

/** A MeshProvider whose snapshots the test publishes. */
export class ManualProvider implements MeshProvider {
  private snapshot: MeshSnapshot;
  private readonly listeners = new Set<(snapshot: MeshSnapshot) => void>();

  constructor(first: MeshSnapshot) {
    this.snapshot = first;
  }

  start(): Promise<Result<MeshSnapshot, TsmeshError>> {
    return Promise.resolve(ok(this.snapshot));
  }

  current(): MeshSnapshot {
    return this.snapshot;
  }

  subscribe(listener: (snapshot: MeshSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(snapshot: MeshSnapshot): void {
    this.snapshot = snapshot;
    for (const listener of this.listeners) listener(snapshot);
  }

  close(): Promise<void> {
    this.listeners.clear();
    return Promise.resolve();
  }
}

/** `snapshot` with extra raw objects in `others` (what a newer control plane might send an older sidecar). */
export function withOthers(snapshot: MeshSnapshot, extra: readonly KubeObject[], version: string): MeshSnapshot {
  return Object.defineProperties(Object.create(snapshot) as MeshSnapshot, {
    version: { value: version, enumerable: true },
    others: { value: Object.freeze([...snapshot.others, ...extra]), enumerable: true },
  });
}

export interface MeshSpec {
  /** Endpoint IPs of Service shop/web. */
  readonly webEndpoints: readonly string[];
}

/** Namespaces, Service shop/web with its slice and pods, PeerAuthentications in three namespaces, a route. */
export function meshObjects(spec: MeshSpec): KubeObject[] {
  const objects: KubeObject[] = [
    ...['shop', 'other', 'tsmesh-system'].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop', annotations: { 'tsmesh.io/load-balancer': 'round-robin' } },
      spec: { clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: spec.webEndpoints.map((ip, i) => ({
        addresses: [ip],
        conditions: { ready: true },
        targetRef: { kind: 'Pod', name: `web-${i}`, namespace: 'shop' },
      })),
    },
    ...spec.webEndpoints.map((ip, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `web-${i}`, namespace: 'shop', labels: { app: 'web' }, annotations: { 'tsmesh.io/status': '{}' } },
      spec: {
        serviceAccountName: 'web',
        containers: [{ name: 'app', image: 'web:1', env: [{ name: 'SECRET_LOOKING', value: 'not for sidecars' }] }],
      },
      status: { podIP: ip, podIPs: [{ ip }], phase: 'Running' },
    })),
    ...[
      ['tsmesh-system', 'mesh-wide'],
      ['shop', 'shop-strict'],
      ['other', 'other-disable'],
    ].map(([namespace, name]) => ({
      apiVersion: 'security.tsmesh.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name, namespace },
      spec: { mtls: { mode: name === 'other-disable' ? 'DISABLE' : 'STRICT' } },
    })),
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'web-canary', namespace: 'shop' },
      spec: { parentRefs: [{ kind: 'Service', group: '', name: 'web', port: 80 }], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] },
    },
  ];
  return objects;
}

export function meshSnapshot(spec: MeshSpec, version?: string): MeshSnapshot {
  return buildSnapshot(meshObjects(spec), version);
}

/** The YAML stream of a mesh file (JSON is YAML). */
export function meshFileText(spec: MeshSpec): string {
  return meshObjects(spec).map((o) => JSON.stringify(o)).join('\n---\n');
}
