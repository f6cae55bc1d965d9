// The benchmark's results: per case, every round's raw figures, each peer's medians and the
// ratios between peers measured in the same run; and the table printed on stdout.
import type { Timing } from './config.js';
import type { ProcessUsage } from './h2load.js';
import { PEERS, type PeerName, type PeerResult, type PeerSummary, type Ratios } from './summary.js';
import type { TrailerCheck } from './trailers.js';

export interface CaseReport {
  readonly name: string;
  readonly summary: string;
  /** The request as h2load sent it. */
  readonly request: { readonly method: 'GET' | 'POST'; readonly path: string; readonly headers: readonly string[]; readonly bodyBytes: number };
  readonly connections: number;
  readonly streams: number;
  /** The one-off nghttp check per peer, for a case whose answers end in trailers. */
  readonly trailers?: Readonly<Record<PeerName, TrailerCheck>>;
  /** Every round's raw figures, in the order measured. */
  readonly rounds: readonly Readonly<Record<PeerName, PeerResult>>[];
  readonly medians: Readonly<Record<PeerName, PeerSummary>>;
  /** Computed from the medians. */
  readonly ratios: {
    readonly sidecarToDirect: Ratios;
    readonly sidecarToHaproxy: Ratios;
    readonly haproxyToDirect: Ratios;
  };
}

export interface BenchReport {
  readonly benchmark: 'h2-balance';
  readonly startedAt: string;
  readonly wallSeconds: number;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly params: Timing & { readonly rounds: number; readonly cases: readonly string[] };
  readonly cases: readonly CaseReport[];
  /** Each balancer's VmHWM at the end of the whole run, MiB. */
  readonly peakRssMiB: { readonly haproxy: number; readonly sidecar: number };
  /** The sidecar's `/clusters` after the run: its endpoints, none ejected. */
  readonly sidecarClusters: unknown;
  /** What the sidecar logged at warn level or above during the whole run, by message. */
  readonly sidecarWarnings: Readonly<Record<string, number>>;
  /** Problems that make the figures wrong (failed requests, an uneven split, lost trailers): the run exits 1. */
  readonly problems: readonly string[];
  /** Conditions that make the figures less reliable (other work on the machine). */
  readonly notes: readonly string[];
}

export function fixed(n: number | undefined, digits: number): string {
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

/** Rows of cells, the first column left-aligned and the others right-aligned. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')).join('\n');
}

function formatCase(c: CaseReport, report: BenchReport): string[] {
  const p = report.params;
  const n = c.rounds.length;
  const body = c.request.bodyBytes > 0 ? `, ${c.request.bodyBytes}-byte body` : '';
  const headers = c.request.headers.length > 0 ? ` (${c.request.headers.join(', ')}${body})` : body;
  const header = ['peer', 'req/s', 'p50 ms', 'p99 ms', 'mean ms', 'failed', 'CPU s/10k', 'main thread', 'start RSS MiB', 'peak RSS MiB', 'nginx CPU s/10k', 'h2load CPU', 'other load', 'split u1/u2/u3', 'req/s by round'];
  const rows = PEERS.map((name) => {
    const s = c.medians[name];
    return [
      name,
      fixed(s.requestsPerSecond, 0),
      fixed(s.p50Ms, 3),
      fixed(s.p99Ms, 3),
      fixed(s.meanMs, 3),
      String(s.failed),
      ...usageCells(s.peer),
      fixed(s.upstreamsCpuSecondsPer10kRequests, 3),
      percent(s.loadGeneratorUtilization),
      fixed(s.otherBusyCores, 2),
      share(s.split),
      s.requestsPerSecondByRound.map((r) => r.toFixed(0)).join(' '),
    ];
  });
  const ratioRows = (
    [
      ['sidecar / direct', c.ratios.sidecarToDirect],
      ['sidecar / haproxy', c.ratios.sidecarToHaproxy],
      ['haproxy / direct', c.ratios.haproxyToDirect],
    ] as const
  ).map(([label, r]) => [label, fixed(r.requestsPerSecond, 2), fixed(r.p50, 2), fixed(r.p99, 2), fixed(r.cpuPer10kRequests, 2), fixed(r.peakRss, 2)]);
  const trailers = c.trailers
    ? [`trailers on the wire (nghttp, once per peer): ${PEERS.map((name) => `${name} ${c.trailers?.[name].ok ? 'ok' : 'LOST'}`).join(', ')}`]
    : [];
  return [
    `== case ${c.name}: ${c.request.method} ${c.request.path}${headers}`,
    `   h2load -c ${c.connections} -m ${c.streams} -D ${p.durationSeconds} after a ${p.warmUpSeconds} s warm-up run; ` +
      `${n === 1 ? 'one round' : `medians of ${n} rounds`} (failed and split: sums; other load: the highest)`,
    ...trailers.map((line) => `   ${line}`),
    '',
    table([header, ...rows]),
    '',
    table([[`ratio (${n === 1 ? 'one round' : 'of medians'})`, 'req/s', 'p50', 'p99', 'CPU/10k', 'peak RSS'], ...ratioRows]),
  ];
}

export function formatReport(report: BenchReport): string {
  const p = report.params;
  const minutes = Math.floor(report.wallSeconds / 60);
  const seconds = Math.round(report.wallSeconds % 60);
  return [
    `h2-balance: ${p.cases.length} case(s) × ${p.rounds} round(s) × ${PEERS.length} peers, in ${minutes}m${String(seconds).padStart(2, '0')}s; ` +
      `${report.machine.cpus} CPUs (${percent(Number(report.machine.backgroundBusy))} busy before the run), node ${report.machine.node}, ${report.machine.revision}`,
    ...report.cases.flatMap((c) => ['', ...formatCase(c, report)]),
    '',
    `peak RSS over the whole run (VmHWM; a case's column includes the cases before it): haproxy ${fixed(report.peakRssMiB.haproxy, 1)} MiB, sidecar ${fixed(report.peakRssMiB.sidecar, 1)} MiB`,
    ...(report.notes.length ? ['', ...report.notes.map((m) => `note: ${m}`)] : []),
    ...(report.problems.length ? ['', ...report.problems.map((m) => `PROBLEM: ${m}`)] : []),
  ].join('\n');
}
