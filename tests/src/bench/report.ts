// The benchmark's results: per-peer figures, the ratios between peers measured in the same run,
// and the table printed on stdout.
import type { LoadParams, ProcessUsage, ScenarioResult } from './h2load.js';

export const PEERS = ['direct', 'haproxy', 'sidecar'] as const;
export type PeerName = (typeof PEERS)[number];

export interface PeerResult extends ScenarioResult {
  /** Requests each upstream answered during the measured run (from nginx's access logs). */
  readonly split: readonly number[];
}

export interface Ratios {
  readonly requestsPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  /** Only between two processes that were sampled (not against the direct connection). */
  readonly cpuPer10kRequests?: number;
  readonly peakRss?: number;
}

export interface BenchReport {
  readonly benchmark: 'h2-balance';
  readonly startedAt: string;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly params: LoadParams;
  readonly peers: Readonly<Record<PeerName, PeerResult>>;
  readonly ratios: {
    readonly sidecarToDirect: Ratios;
    readonly sidecarToHaproxy: Ratios;
    readonly haproxyToDirect: Ratios;
  };
  /** The sidecar's `/clusters` after the run: its endpoints, none ejected. */
  readonly sidecarClusters: unknown;
  /** What the sidecar logged at warn level or above during the whole run, by message. */
  readonly sidecarWarnings: Readonly<Record<string, number>>;
  /** Problems that make the figures wrong (failed requests, an uneven split): the run exits 1. */
  readonly problems: readonly string[];
  /** Conditions that make the figures less reliable (other work on the machine). */
  readonly notes: readonly string[];
}

const ratio = (a: number, b: number): number => (b > 0 ? Math.round((a / b) * 100) / 100 : Number.NaN);

export function ratios(a: PeerResult, b: PeerResult): Ratios {
  const base: Ratios = {
    requestsPerSecond: ratio(a.h2load.requestsPerSecond, b.h2load.requestsPerSecond),
    p50: ratio(a.latency.p50Ms, b.latency.p50Ms),
    p99: ratio(a.latency.p99Ms, b.latency.p99Ms),
  };
  if (!a.peer || !b.peer) return base;
  return { ...base, cpuPer10kRequests: ratio(a.peer.cpuSecondsPer10kRequests, b.peer.cpuSecondsPer10kRequests), peakRss: ratio(a.peer.peakRssMiB, b.peer.peakRssMiB) };
}

/** Other work that shared the machine's cores with a peer's measured run. */
export function notesOf(name: PeerName, result: PeerResult): string[] {
  return result.otherBusyCores > 0.1 ? [`${name}: other processes kept ${result.otherBusyCores} cores busy during the run; its figures are skewed`] : [];
}

/** What is wrong with a peer's run: failed requests, non-200 answers, or (for balancers) an uneven split. */
export function problemsOf(name: PeerName, result: PeerResult): string[] {
  const problems: string[] = [];
  const { total, succeeded } = result.h2load;
  if (total === 0) problems.push(`${name}: no request completed`);
  if (succeeded < total) problems.push(`${name}: ${total - succeeded} of ${total} requests failed`);
  const non200 = Object.entries(result.statuses).filter(([status]) => status !== '200');
  if (non200.length > 0) problems.push(`${name}: answers other than 200: ${non200.map(([s, n]) => `${n}×${s}`).join(', ')}`);
  const sum = result.split.reduce((a, b) => a + b, 0);
  // Requests still in flight when h2load stops reach the upstreams without being counted by it.
  if (Math.abs(sum - total) > total * 0.01 + 100) problems.push(`${name}: the upstreams logged ${sum} requests, h2load counted ${total}`);
  if (name !== 'direct') {
    // Round robin over three equal upstreams: each should get about a third.
    const uneven = result.split.some((n) => sum === 0 || n / sum < 0.25 || n / sum > 0.42);
    if (uneven) problems.push(`${name}: requests not spread over the three upstreams: ${result.split.join(' / ')}`);
  }
  return problems;
}

function fixed(n: number | undefined, digits: number): string {
  return n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

function share(split: readonly number[]): string {
  const sum = split.reduce((a, b) => a + b, 0);
  return sum === 0 ? '-' : split.map((n) => `${Math.round((n / sum) * 100)}%`).join('/');
}

function percent(n: number | undefined): string {
  return n === undefined || Number.isNaN(n) ? '-' : `${Math.round(n * 100)}%`;
}

function usageCells(u: ProcessUsage | null): string[] {
  return [fixed(u?.cpuSecondsPer10kRequests, 3), percent(u?.mainThreadUtilization), fixed(u?.startRssMiB, 1), fixed(u?.peakRssMiB, 1)];
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')).join('\n');
}

export function formatReport(report: BenchReport): string {
  const p = report.params;
  const header = ['peer', 'req/s', 'p50 ms', 'p99 ms', 'mean ms', 'failed', 'CPU s/10k', 'main thread', 'start RSS MiB', 'peak RSS MiB', 'nginx CPU s/10k', 'h2load CPU', 'other load', 'split u1/u2/u3'];
  const rows = PEERS.map((name) => {
    const r = report.peers[name];
    return [
      name,
      fixed(r.h2load.requestsPerSecond, 0),
      fixed(r.latency.p50Ms, 3),
      fixed(r.latency.p99Ms, 3),
      fixed(r.latency.meanMs, 3),
      String(r.h2load.total - r.h2load.succeeded),
      ...usageCells(r.peer),
      fixed(r.upstreams.cpuSecondsPer10kRequests, 3),
      percent(r.loadGeneratorCpuSeconds / r.wallSeconds),
      fixed(r.otherBusyCores, 2),
      share(r.split),
    ];
  });
  const ratioRows = (
    [
      ['sidecar / direct', report.ratios.sidecarToDirect],
      ['sidecar / haproxy', report.ratios.sidecarToHaproxy],
      ['haproxy / direct', report.ratios.haproxyToDirect],
    ] as const
  ).map(([label, r]) => [label, fixed(r.requestsPerSecond, 2), fixed(r.p50, 2), fixed(r.p99, 2), fixed(r.cpuPer10kRequests, 2), fixed(r.peakRss, 2)]);
  return [
    `h2load -c ${p.connections} -m ${p.streams} -D ${p.durationSeconds} (after a ${p.warmUpSeconds} s warm-up run), ${report.machine.cpus} CPUs ` +
      `(${percent(Number(report.machine.backgroundBusy))} busy before the run), node ${report.machine.node}`,
    '',
    table([header, ...rows]),
    '',
    table([['ratio', 'req/s', 'p50', 'p99', 'CPU/10k', 'peak RSS'], ...ratioRows]),
    ...(report.notes.length ? ['', ...report.notes.map((m) => `note: ${m}`)] : []),
    ...(report.problems.length ? ['', ...report.problems.map((m) => `PROBLEM: ${m}`)] : []),
  ].join('\n');
}
