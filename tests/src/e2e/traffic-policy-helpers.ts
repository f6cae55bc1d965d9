// The traffic-policy suite's pieces: the mesh file (Services, pods, HTTPRoutes with `retry` and
// `timeouts`, TrafficPolicies as docs/traffic-policy.md writes them), the faulty replicas
// (traffic-policy-probe `serve`), the client sidecar's metrics and access log, and curl and h2load
// run as the application inside the client pod (their traffic captured by its sidecar).
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { meshYaml, waitForLine, type MeshPodSpec, type MeshServiceSpec, type Pod } from 'tsmesh/demo';
import { STATS_URL, type ServerStats } from './traffic-policy-model.js';

export const TRAFFIC_PROBE = join(dirname(fileURLToPath(import.meta.url)), '../../dist/e2e/traffic-policy-probe.js');

export function requireTrafficProbe(): void {
  if (!existsSync(TRAFFIC_PROBE)) throw new Error(`${TRAFFIC_PROBE} is missing: build first (npx tsc -b)`);
}

function parseResult<T>(out: string, what: string): T {
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{"result"'));
  if (!line) throw new Error(`${what} printed no result: ${out.slice(-500)}`);
  return (JSON.parse(line) as { result: T }).result;
}

/** Runs a client of the probe in `pod` (as the application) and returns its result. */
export async function probe<T>(pod: Pod, args: readonly string[]): Promise<T> {
  return parseResult<T>(await pod.exec(process.execPath, [TRAFFIC_PROBE, ...args]), `traffic-policy probe ${args[0]} in ${pod.name}`);
}

/** Starts the replica's servers (HTTP/1.1, h2c and gRPC ports, each with its mode); resolves once they listen. */
export async function startReplica(pod: Pod, ports: { http?: Record<number, string>; h2?: Record<number, string>; grpc?: Record<number, string> }, slowMs = 300): Promise<void> {
  const args = ['serve', '--name', pod.name, '--slow-ms', String(slowMs)];
  for (const [port, mode] of Object.entries(ports.http ?? {})) args.push('--http', `${port}:${mode}`);
  for (const [port, mode] of Object.entries(ports.h2 ?? {})) args.push('--h2', `${port}:${mode}`);
  for (const [port, mode] of Object.entries(ports.grpc ?? {})) args.push('--grpc', `${port}:${mode}`);
  const child = pod.spawn(process.execPath, [TRAFFIC_PROBE, ...args]);
  await waitForLine(child, (l) => l === 'ready', 15_000, `replica servers in ${pod.name}`);
}

/** What the replica's servers received, per port (read inside the pod: no sidecar there). */
export async function replicaStats(pod: Pod): Promise<ServerStats> {
  return JSON.parse(await pod.exec('curl', ['-sS', '--max-time', '2', STATS_URL])) as ServerStats;
}

export interface HttpRouteRuleSpec {
  readonly backend: { readonly name: string; readonly port: number };
  readonly retry?: { readonly codes?: readonly number[]; readonly attempts?: number; readonly backoff?: string };
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
}

/** A GAMMA HTTPRoute on `parent`'s port with one rule. */
export function httpRoute(namespace: string, name: string, parent: { name: string; port: number }, rule: HttpRouteRuleSpec): object {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: parent.name, port: parent.port }],
      rules: [
        {
          backendRefs: [{ name: rule.backend.name, port: rule.backend.port }],
          ...(rule.retry ? { retry: rule.retry } : {}),
          ...(rule.timeouts ? { timeouts: rule.timeouts } : {}),
        },
      ],
    },
  };
}

/** A TrafficPolicy (policy.tsmesh.io/v1alpha1) on the whole Service `service`. */
export function trafficPolicy(namespace: string, service: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'policy.tsmesh.io/v1alpha1',
    kind: 'TrafficPolicy',
    metadata: { name: service, namespace },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: service }], ...spec },
  };
}

/** The mesh file: pods and Services (demo meshYaml), then routes and policies. */
export function trafficMeshYaml(pods: readonly MeshPodSpec[], services: readonly MeshServiceSpec[], objects: readonly object[]): string {
  return [meshYaml(pods, services), ...objects.map((o) => stringify(o))].join('---\n');
}

/** Matches the destination_service label of Service `name` in the suite's namespace, however it is spelled (FQDN or cluster key). */
export function serviceLabel(namespace: string, name: string): RegExp {
  return new RegExp(`^(${name}\\.${namespace}(\\.|$)|${namespace}/${name}:)`);
}

/** One sample of the client sidecar's /metrics: name, labels, value. */
export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? ([^ ]+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    samples.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sidecar's metrics, read inside its pod (15020 is never captured). */
export async function sidecarMetrics(pod: Pod): Promise<Sample[]> {
  return parseMetrics(await pod.exec('curl', ['-sS', '--max-time', '3', 'http://127.0.0.1:15020/metrics']));
}

/** The sum of `name` over the samples whose labels include `match` (a label value may be a RegExp). */
export function sum(samples: readonly Sample[], name: string, match: Record<string, string | RegExp> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => (typeof v === 'string' ? s.labels[k] === v : v.test(s.labels[k] ?? ''))))
    .reduce((total, s) => total + s.value, 0);
}

/** The sidecar's /clusters, read inside its pod. */
export async function sidecarClusters(pod: Pod): Promise<unknown> {
  return JSON.parse(await pod.exec('curl', ['-sS', '--max-time', '3', 'http://127.0.0.1:15000/clusters'])) as unknown;
}

/** One curl transfer: what `-w` printed for it. */
export interface CurlAnswer {
  readonly status: number;
  readonly seconds: number;
  readonly server: string;
  readonly proxyError: string;
}

/** The `-w` format CurlAnswer reads: status, total time, x-served-by, x-tsmesh-proxy-error. */
export const CURL_FORMAT = '%{http_code} %{time_total} [%header{x-served-by}] [%header{x-tsmesh-proxy-error}]\n';

/** What one curl run printed: an answer per transfer, the other lines (errors), its exit code. */
export interface CurlRun {
  readonly answers: CurlAnswer[];
  readonly other: string[];
  readonly exitCode: number;
}

export function parseCurl(out: string): CurlRun {
  const answers: CurlAnswer[] = [];
  const other: string[] = [];
  let exitCode = -1;
  for (const line of out.split('\n')) {
    const m = /^(\d+) ([\d.]+) \[(.*)\] \[(.*)\]$/.exec(line.trim());
    const exit = /^curl-exit (\d+)$/.exec(line.trim());
    if (m) answers.push({ status: Number(m[1]), seconds: Number(m[2]), server: m[3] ?? '', proxyError: m[4] ?? '' });
    else if (exit) exitCode = Number(exit[1]);
    else if (line.trim() !== '') other.push(line.trim());
  }
  return { answers, other, exitCode };
}

/**
 * Runs curl in `pod` as the application with `args` (plus -sS -o /dev/null -w CURL_FORMAT): one
 * answer per transfer, whatever the exit code (a failed transfer prints 000 and an error line).
 */
export async function curl(pod: Pod, args: readonly string[]): Promise<CurlRun> {
  return parseCurl(await pod.exec('sh', ['-c', 'curl "$@" 2>&1; echo "curl-exit $?"', 'curl', '-sS', '-o', '/dev/null', '-w', CURL_FORMAT, ...args]));
}

/** The access-log lines (JSON, component access) among a sidecar's log lines (Pod.logs). */
export function accessLog(logs: readonly string[]): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const line of logs) {
    if (!line.startsWith('{') || !line.includes('"component":"access"')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by the log buffer
    }
  }
  return lines;
}

/** Collects the lines `child` writes on stdout from now on (Pod.logs keeps only the last ones). */
export function collectLines(child: ChildProcess): { readonly lines: string[]; stop(): void } {
  const lines: string[] = [];
  let partial = '';
  const onData = (chunk: Buffer): void => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout?.on('data', onData);
  return { lines, stop: () => child.stdout?.off('data', onData) };
}
