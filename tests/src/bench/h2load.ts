// One scenario: a short h2load warm-up run, then the measured h2load run with a per-request
// log, while the peer's process is sampled from /proc before and after it.
import { readFileSync, rmSync } from 'node:fs';
import type { Timing } from './config.js';
import { parseH2loadSummary, parseRequestLog, summarizeLatency, type H2loadSummary, type LatencySummary } from './percentiles.js';
import { run, type Workspace } from './processes.js';
import { sampleMachine, sampleProcess, USER_HZ, type ProcessSample } from './procfs.js';

/** What h2load sends: one case's request to one peer. */
export interface Load {
  /** The peer's address and the case's path. */
  readonly url: string;
  /** h2load -c: client connections. */
  readonly connections: number;
  /** h2load -m: concurrent streams per connection. */
  readonly streams: number;
  /** h2load -H, `name: value`. */
  readonly headers: readonly string[];
  /** h2load -d: the request body, which makes every request a POST. */
  readonly bodyFile?: string;
  /** h2load --h1: HTTP/1.1 instead of HTTP/2 (streams must then be 1: no pipelining). */
  readonly h1?: boolean;
}

export interface ProcessUsage {
  /** CPU seconds (all threads) during the measured run, and per 10,000 measured requests. */
  readonly cpuSeconds: number;
  readonly cpuSecondsPer10kRequests: number;
  /** Share of one core the main thread used during the measured run (1 = saturated). */
  readonly mainThreadUtilization: number;
  /** Resident set when started (before any load), before the measured run, and its peak (VmHWM), in MiB. */
  readonly startRssMiB: number;
  readonly idleRssMiB: number;
  readonly peakRssMiB: number;
}

export interface ScenarioResult {
  readonly h2load: H2loadSummary;
  readonly latency: LatencySummary;
  readonly statuses: Record<string, number>;
  /** The peer process under test (null for the direct connection), and the upstreams' nginx. */
  readonly peer: ProcessUsage | null;
  readonly upstreams: ProcessUsage;
  /** Share of all the machine's cores in use during the measured run (load generator included). */
  readonly machineUtilization: number;
  /** Length of the measured run, seconds. */
  readonly wallSeconds: number;
  /** CPU seconds of h2load itself (sampled every 100 ms, so slightly low). */
  readonly loadGeneratorCpuSeconds: number;
  /** Cores busy in interrupts and softirqs: mostly the kernel's loopback TCP path. */
  readonly softirqCores: number;
  /** Cores busy in processes other than the peer, the upstreams and h2load: other work skewing the run. */
  readonly otherBusyCores: number;
}

export function h2loadArgs(load: Load, seconds: number, logFile?: string): string[] {
  const args = ['-c', String(load.connections), '-m', String(load.streams), '-t', '1', '-D', String(seconds)];
  if (load.h1) args.push('--h1');
  for (const header of load.headers) args.push('-H', header);
  if (load.bodyFile) args.push('-d', load.bodyFile);
  if (logFile) args.push(`--log-file=${logFile}`);
  return [...args, load.url];
}

/** A process to watch: its pid and the sample taken when it had just started. */
export interface Watched {
  readonly pid: number;
  readonly atStart: ProcessSample;
}

export function watch(pid: number): Watched {
  return { pid, atStart: sampleProcess(pid) };
}

function usage(watched: Watched, before: ProcessSample, after: ProcessSample, requests: number, wallSeconds: number): ProcessUsage {
  const cpu = after.cpuSeconds - before.cpuSeconds;
  const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;
  return {
    cpuSeconds: Math.round(cpu * 100) / 100,
    cpuSecondsPer10kRequests: requests > 0 ? Math.round((cpu / requests) * 10_000 * 1000) / 1000 : Number.NaN,
    mainThreadUtilization: Math.round(((after.mainThreadCpuSeconds - before.mainThreadCpuSeconds) / wallSeconds) * 100) / 100,
    startRssMiB: mib(watched.atStart.rssKiB),
    idleRssMiB: mib(before.rssKiB),
    peakRssMiB: mib(after.peakRssKiB),
  };
}

/** Sends the same load for the warm-up time, unmeasured (JIT, connection pools, heap sizing). */
export async function warmUp(workspace: Workspace, h2load: string, load: Load, timing: Timing): Promise<void> {
  if (timing.warmUpSeconds > 0) await run(workspace, h2load, h2loadArgs(load, timing.warmUpSeconds), timeoutMs(timing));
}

function timeoutMs(timing: Timing): number {
  return (Math.max(timing.warmUpSeconds, timing.durationSeconds) + 20) * 1000;
}

/** The measured run: h2load with a per-request log, the processes sampled just before and after it. */
export async function measure(
  workspace: Workspace,
  h2load: string,
  name: string,
  load: Load,
  timing: Timing,
  watched: { peer: Watched | undefined; upstreams: Watched },
): Promise<ScenarioResult> {
  const logFile = workspace.path(`${name}.h2load.log`);
  const { peer, upstreams } = watched;
  const peerBefore = peer && sampleProcess(peer.pid);
  const upstreamsBefore = sampleProcess(upstreams.pid);
  const machineBefore = sampleMachine();
  const started = performance.now();
  let loadGeneratorCpuSeconds = 0;
  let sampler: NodeJS.Timeout | undefined;
  const sampleLoadGenerator = (pid: number | undefined): void => {
    if (pid === undefined) return;
    sampler = setInterval(() => {
      try {
        loadGeneratorCpuSeconds = sampleProcess(pid).cpuSeconds;
      } catch {
        // h2load has just exited: keep the last sample
      }
    }, 100);
  };
  const { stdout } = await run(workspace, h2load, h2loadArgs(load, timing.durationSeconds, logFile), timeoutMs(timing), (child) => sampleLoadGenerator(child.pid)).finally(() =>
    clearInterval(sampler),
  );
  const wallSeconds = (performance.now() - started) / 1000;
  const machineAfter = sampleMachine();
  const peerAfter = peer && sampleProcess(peer.pid);
  const upstreamsAfter = sampleProcess(upstreams.pid);
  const summary = parseH2loadSummary(stdout);
  const cpuOf = (before: ProcessSample | undefined, after: ProcessSample | undefined): number => (before && after ? after.cpuSeconds - before.cpuSeconds : 0);
  const interruptSeconds = (machineAfter.interrupts - machineBefore.interrupts) / USER_HZ;
  const processBusySeconds = (machineAfter.busy - machineBefore.busy) / USER_HZ - interruptSeconds;
  const ours = cpuOf(peerBefore, peerAfter) + cpuOf(upstreamsBefore, upstreamsAfter) + loadGeneratorCpuSeconds;
  const log = parseRequestLog(readFileSync(logFile, 'utf8'));
  // One line per request: tens of MB per run, and every case and round has its own.
  rmSync(logFile, { force: true });
  return {
    h2load: summary,
    latency: summarizeLatency(log.latenciesUs),
    statuses: Object.fromEntries([...log.statuses].map(([status, n]) => [String(status), n])),
    peer: peer && peerBefore && peerAfter ? usage(peer, peerBefore, peerAfter, summary.total, wallSeconds) : null,
    upstreams: usage(upstreams, upstreamsBefore, upstreamsAfter, summary.total, wallSeconds),
    machineUtilization: Math.round(((machineAfter.busy - machineBefore.busy) / Math.max(1, machineAfter.total - machineBefore.total)) * 100) / 100,
    wallSeconds: Math.round(wallSeconds * 100) / 100,
    loadGeneratorCpuSeconds: Math.round(loadGeneratorCpuSeconds * 100) / 100,
    softirqCores: Math.round((interruptSeconds / wallSeconds) * 100) / 100,
    otherBusyCores: Math.round((Math.max(0, processBusySeconds - ours) / wallSeconds) * 100) / 100,
  };
}
