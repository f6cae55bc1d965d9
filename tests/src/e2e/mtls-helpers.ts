// What the mTLS suite reads from pods: the probe's results, a sidecar's admin `/certs` and
// `/metrics`, its access-log lines; and a way to wait for a condition without fixed sleeps.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAndWait, waitForLine, type Pod } from 'tsmesh/demo';

/** The compiled probe: tests/dist/e2e/mtls-probe.js (from src under Jest, or from dist itself). */
export const PROBE_MAIN = join(dirname(fileURLToPath(import.meta.url)), '../../dist/e2e/mtls-probe.js');

export function requireProbe(): void {
  if (!existsSync(PROBE_MAIN)) throw new Error(`${PROBE_MAIN} is missing: build first (npx tsc -b)`);
}

function parseResult<T>(out: string, what: string): T {
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{"result"'));
  if (!line) throw new Error(`${what} printed no result: ${out.slice(-500)}`);
  return (JSON.parse(line) as { result: T }).result;
}

/** Runs one probe in the pod (as the application: its traffic is captured) and returns its result. */
export async function probe<T>(pod: Pod, args: readonly string[]): Promise<T> {
  return parseResult<T>(await pod.exec(process.execPath, [PROBE_MAIN, ...args]), `probe ${args[0]} in ${pod.name}`);
}

export interface RunningProbe<T> {
  /** Asks the probe to finish (SIGTERM) and resolves its result. */
  stop(): Promise<T>;
}

/** Starts a looping probe (`grpc-load`, `tcp-loop`) and resolves once it runs. */
export async function startProbe<T>(pod: Pod, args: readonly string[]): Promise<RunningProbe<T>> {
  const child: ChildProcess = pod.spawn(process.execPath, [PROBE_MAIN, ...args]);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString('utf8')));
  await waitForLine(child, (l) => l === '{"started":true}', 15_000, `probe ${args[0]} in ${pod.name}`);
  return {
    async stop() {
      const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
      child.kill('SIGTERM');
      const timer = setTimeout(() => void killAndWait(child), 15_000);
      await exited;
      clearTimeout(timer);
      return parseResult<T>(output, `probe ${args[0]} in ${pod.name}`);
    },
  };
}

export interface HttpResult<B = unknown> {
  status: number;
  body?: B;
  error?: string;
}

/** GET `url` from inside the pod with extra `name: value` headers. */
export function httpGet<B = unknown>(pod: Pod, url: string, headers: readonly string[] = []): Promise<HttpResult<B>> {
  return probe<HttpResult<B>>(pod, ['http', '--url', url, ...headers.flatMap((h) => ['--header', h])]);
}

/** A certificate as `/certs` describes it. */
export interface CertInfo {
  subject: string;
  issuer: string;
  serialNumber: string;
  fingerprint256: string;
  notBefore: string;
  notAfter: string;
  subjectAltName?: string;
}

/** The sidecar's `/certs` answer (proxy identity `describe()`). */
export interface Certs {
  spiffeId: string;
  state: 'pending' | 'valid' | 'expired' | 'stopped';
  certificate?: CertInfo;
  chain: CertInfo[];
  trustBundle: CertInfo[];
  renewAt?: string;
  consecutiveFailures: number;
  lastError?: { code: string; message: string };
}

export async function certsOf(pod: Pod): Promise<Certs> {
  const answer = await httpGet<Certs>(pod, 'http://127.0.0.1:15000/certs');
  if (answer.status !== 200 || answer.body === undefined) throw new Error(`/certs of ${pod.name}: ${answer.status} ${answer.error ?? ''}`);
  return answer.body;
}

export async function metricsOf(pod: Pod): Promise<string> {
  const answer = await httpGet<string>(pod, 'http://127.0.0.1:15020/metrics');
  if (answer.status !== 200 || typeof answer.body !== 'string') throw new Error(`/metrics of ${pod.name}: ${answer.status} ${answer.error ?? ''}`);
  return answer.body;
}

/** The sum of a counter's samples whose labels include every `labels` pair. */
export function counterSum(metrics: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const labelText = line.slice(name.length + 1, close);
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += Number(line.slice(close + 1).trim());
  }
  return sum;
}

/** An access-log line (proxy telemetry/access-log.ts). */
export interface AccessLine {
  component: 'access';
  type: 'http' | 'tcp';
  reporter: 'source' | 'destination';
  direction: string;
  path?: string;
  status?: number;
  /** Response flags (`RBAC`, `UF`...), `-` when none. */
  flags?: string;
  grpc_status?: number | null;
  source_identity: string | null;
  destination_identity: string | null;
  destination_service: string | null;
  mtls: boolean;
  /** `ip:port` (IPv6 in brackets) of the endpoint, and of the peer that connected. */
  upstream?: string | null;
  downstream?: string | null;
}

/** The access-log lines of every process in the pod, oldest first. */
export function accessLines(pod: Pod): AccessLine[] {
  const lines: AccessLine[] = [];
  for (const raw of pod.logs) {
    if (!raw.includes('"component":"access"')) continue;
    try {
      lines.push(JSON.parse(raw) as AccessLine);
    } catch {
      // a line cut by the pipe: not an entry
    }
  }
  return lines;
}

/** What a sidecar logs when a connection between sidecars fails (handshake, identity, policy). */
const DATA_PATH_FAILURES = ['upstream connect failed', 'TCP upstream connect failed', 'upstream reset', 'inbound connection refused by mTLS policy'];

/** Data-path failure lines the pod logged at or after `sinceMs` (pino's `time`). */
export function failuresSince(pod: Pod, sinceMs: number): string[] {
  return pod.logs.filter((line) => {
    if (!DATA_PATH_FAILURES.some((m) => line.includes(`"msg":"${m}"`))) return false;
    const time = /"time":(?:"([^"]+)"|(\d+))/.exec(line);
    const at = time?.[1] !== undefined ? Date.parse(time[1]) : Number(time?.[2]);
    return !(at < sinceMs);
  });
}

/** Polls `check` until it returns a value other than undefined; throws after `timeoutMs` with `what` and the last state. */
export async function waitUntil<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
