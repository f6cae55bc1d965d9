// The routing suite's pieces: the control plane (`tsmesh control --config`) in a pod of its own with a
// serving certificate from the mesh CA, sidecars that take the mesh from it (no --config), the mesh
// file the suite rewrites (Services, pods and the GAMMA routes under test) and the probe runner.
import type { ChildProcess } from 'node:child_process';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { CLI_MAIN, killAndWait, meshYaml, PROXY_UID, waitForLine, type MeshPodSpec, type MeshServiceSpec, type Pod } from 'tsmesh/demo';
import { REVISION_ANNOTATION, type ConfigState, type LoadReport } from './routing-model.js';

/** The compiled probe: tests/dist/e2e/routing-probe.js (from src under Jest, or from dist itself). */
export const ROUTING_PROBE = join(dirname(fileURLToPath(import.meta.url)), '../../dist/e2e/routing-probe.js');
export const CONTROL_PORT = 15010;
export const CONTROL_ID = 'spiffe://cluster.local/ns/tsmesh-system/sa/tsmesh-control';

export function requireRoutingProbe(): void {
  if (!existsSync(ROUTING_PROBE)) throw new Error(`${ROUTING_PROBE} is missing: build first (npx tsc -b)`);
}

function parseResult<T>(out: string, what: string): T {
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{"result"'));
  if (!line) throw new Error(`${what} printed no result: ${out.slice(-500)}`);
  return (JSON.parse(line) as { result: T }).result;
}

/** Runs the probe once in `pod` (as the application: its traffic is captured) and returns its result. */
export async function probe<T>(pod: Pod, args: readonly string[]): Promise<T> {
  return parseResult<T>(await pod.exec(process.execPath, [ROUTING_PROBE, ...args]), `routing probe ${args[0]} in ${pod.name}`);
}

export interface RunningLoad {
  /** Asks the load to finish (SIGTERM) and resolves its report. */
  stop(): Promise<LoadReport>;
}

/** Starts `http-load` without a request limit; resolves once the first answer came. */
export async function startLoad(pod: Pod, args: readonly string[]): Promise<RunningLoad> {
  const child = pod.spawn(process.execPath, [ROUTING_PROBE, 'http-load', ...args]);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString('utf8')));
  await waitForLine(child, (l) => l === '{"started":true}', 15_000, `http-load in ${pod.name}`);
  return {
    async stop() {
      const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
      child.kill('SIGTERM');
      const timer = setTimeout(() => void killAndWait(child), 15_000);
      await exited;
      clearTimeout(timer);
      return parseResult<LoadReport>(output, `http-load in ${pod.name}`);
    },
  };
}

/** The sidecar's mesh version, route revisions and control-plane connection. */
export function sidecarState(pod: Pod): Promise<ConfigState> {
  return probe<ConfigState>(pod, ['config']);
}

export interface ServingFiles {
  readonly cert: string;
  readonly key: string;
  readonly trustBundle: string;
}

/**
 * The control plane's serving certificate: a workload certificate for CONTROL_ID, asked of the CA
 * from inside `pod` with `tokenFile` (as a control-plane pod would), written to `dir`.
 */
export async function issueControlCertificate(pod: Pod, caAddr: string, tokenFile: string, trustBundle: string, dir: string): Promise<ServingFiles> {
  const files = { cert: join(dir, 'control-cert.pem'), key: join(dir, 'control-key.pem'), trustBundle };
  await probe(pod, ['issue-cert', '--ca', caAddr, '--token-file', tokenFile, '--trust-bundle', trustBundle, '--spiffe-id', CONTROL_ID, '--cert', files.cert, '--key', files.key]);
  return files;
}

/** `tsmesh control --config meshFile` in `pod`, serving sidecars on 0.0.0.0:15010; resolves once it serves. */
export async function startControl(pod: Pod, meshFile: string, tls: ServingFiles): Promise<ChildProcess> {
  const args = [
    CLI_MAIN, 'control',
    '--config', meshFile,
    '--tls-cert', tls.cert,
    '--tls-key', tls.key,
    '--trust-bundle', tls.trustBundle,
    '--listen', `0.0.0.0:${CONTROL_PORT}`,
    '--debug-listen', '127.0.0.1:15011',
  ];
  const child = pod.spawn(process.execPath, args, { env: { TSMESH_LOG_LEVEL: 'info' } });
  await waitForLine(child, (l) => l.includes('"control plane serving sidecars"'), 20_000, `control plane in ${pod.name}`);
  return child;
}

/** Stops the control plane as Kubernetes would (SIGTERM) and waits for it to exit. */
export async function stopControl(child: ChildProcess): Promise<void> {
  const timer = setTimeout(() => void killAndWait(child), 5000);
  await killAndWait(child, 'SIGTERM');
  clearTimeout(timer);
}

export interface ControlledSidecarOptions {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The CA's environment (caEnv) */
  readonly caEnv: Record<string, string>;
  readonly controlPod: Pod;
}

/**
 * Starts the mesh in `pod` as the injector would with a control plane: `tsmesh iptables`, then
 * `tsmesh proxy` (uid 1337) WITHOUT --config: it gets its certificate from the CA, then the mesh
 * from the control plane over mTLS, checking the control plane's SPIFFE ID. Resolves once ready.
 */
export async function startControlledSidecar(pod: Pod, options: ControlledSidecarOptions): Promise<ChildProcess> {
  await pod.exec(process.execPath, [CLI_MAIN, 'iptables']);
  const child = pod.spawn(process.execPath, [CLI_MAIN, 'proxy'], {
    uid: PROXY_UID,
    env: {
      TSMESH_POD_NAME: pod.name,
      TSMESH_POD_NAMESPACE: options.namespace,
      TSMESH_POD_IP: pod.ip,
      TSMESH_SERVICE_ACCOUNT: options.serviceAccount,
      TSMESH_LOG_LEVEL: 'info',
      TSMESH_CONTROL_ADDR: `${options.controlPod.ip}:${CONTROL_PORT}`,
      TSMESH_CONTROL_IDENTITY: CONTROL_ID,
      ...options.caEnv,
    },
  });
  await waitForLine(child, (l) => l.includes('"sidecar ready"'), 20_000, `sidecar of ${pod.name}`);
  return child;
}

export interface BackendRef {
  readonly name: string;
  readonly port: number;
  readonly weight?: number;
}

export interface RouteRule {
  /** Header values the rule requires (exact matches). */
  readonly headers?: Record<string, string>;
  readonly backendRefs: readonly BackendRef[];
}

export interface RouteSpec {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly name: string;
  /** The Service the route attaches to (GAMMA: parentRefs kind Service). */
  readonly parent: { readonly name: string; readonly port: number };
  readonly revision: string;
  readonly rules: readonly RouteRule[];
}

function routeObject(namespace: string, route: RouteSpec): object {
  const headers = (rule: RouteRule): Array<{ name: string; value: string }> => Object.entries(rule.headers ?? {}).map(([name, value]) => ({ name, value }));
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: route.kind,
    metadata: { name: route.name, namespace, annotations: { [REVISION_ANNOTATION]: route.revision } },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: route.parent.name, port: route.parent.port }],
      rules: route.rules.map((rule) => ({
        ...(rule.headers === undefined ? {} : { matches: [{ headers: headers(rule) }] }),
        backendRefs: rule.backendRefs.map((b) => ({ name: b.name, port: b.port, ...(b.weight === undefined ? {} : { weight: b.weight }) })),
      })),
    },
  };
}

/** The mesh file: pods and Services (demo meshYaml) and the routes in `namespace`. */
export function routingMeshYaml(namespace: string, pods: readonly MeshPodSpec[], services: readonly MeshServiceSpec[], routes: readonly RouteSpec[]): string {
  return [meshYaml(pods, services), ...routes.map((r) => stringify(routeObject(namespace, r)))].join('---\n');
}

/** Replaces `file` atomically (a watcher never reads half of it); returns the time of the rename (ms since the epoch). */
export function replaceFile(file: string, text: string): number {
  const temporary = `${file}.next`;
  writeFileSync(temporary, text);
  const at = Date.now();
  renameSync(temporary, file);
  return at;
}
