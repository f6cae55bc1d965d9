// From rounds to figures: each peer's measured runs of one case, their medians, the ratios
// between the medians of two peers, and what makes a run wrong (problems) or less reliable (notes).
import type { ProcessUsage, ScenarioResult } from './h2load.js';

export const PEERS = ['direct', 'haproxy', 'sidecar'] as const;
export type PeerName = (typeof PEERS)[number];

/** One measured run of one peer. */
export interface PeerResult extends ScenarioResult {
  /** Requests each upstream answered during the measured run (from nginx's access logs). */
  readonly split: readonly number[];
}

/** A peer's figures over the rounds of one case: medians, except where noted. */
export interface PeerSummary {
  readonly rounds: number;
  readonly requestsPerSecond: number;
  readonly requestsPerSecondByRound: readonly number[];
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  /** Sum over the rounds. */
  readonly failed: number;
  /** The balancer process (null for the direct connection); peak RSS is the highest of the rounds. */
  readonly peer: ProcessUsage | null;
  readonly upstreamsCpuSecondsPer10kRequests: number;
  /** h2load's CPU as a share of one core. */
  readonly loadGeneratorUtilization: number;
  /** The highest of the rounds. */
  readonly otherBusyCores: number;
  /** Sum over the rounds. */
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

/** The middle value (the mean of the two middle ones for an even count), ignoring NaN; NaN when none is left. */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;

function usageSummary(usages: readonly ProcessUsage[]): ProcessUsage {
  const of = (pick: (u: ProcessUsage) => number): number[] => usages.map(pick);
  return {
    cpuSeconds: round(median(of((u) => u.cpuSeconds)), 2),
    cpuSecondsPer10kRequests: round(median(of((u) => u.cpuSecondsPer10kRequests)), 3),
    mainThreadUtilization: round(median(of((u) => u.mainThreadUtilization)), 2),
    startRssMiB: usages[0]?.startRssMiB ?? Number.NaN,
    idleRssMiB: round(median(of((u) => u.idleRssMiB)), 1),
    peakRssMiB: Math.max(...of((u) => u.peakRssMiB)),
  };
}

/** Summarizes one peer's rounds of a case (at least one). */
export function summarizePeer(results: readonly PeerResult[]): PeerSummary {
  const of = (pick: (r: PeerResult) => number): number[] => results.map(pick);
  const peers = results.map((r) => r.peer).filter((u): u is ProcessUsage => u !== null);
  const width = Math.max(0, ...results.map((r) => r.split.length));
  return {
    rounds: results.length,
    requestsPerSecond: round(median(of((r) => r.h2load.requestsPerSecond)), 2),
    requestsPerSecondByRound: of((r) => r.h2load.requestsPerSecond),
    p50Ms: median(of((r) => r.latency.p50Ms)),
    p99Ms: median(of((r) => r.latency.p99Ms)),
    meanMs: median(of((r) => r.latency.meanMs)),
    failed: of((r) => r.h2load.total - r.h2load.succeeded).reduce((a, b) => a + b, 0),
    peer: peers.length === results.length && peers.length > 0 ? usageSummary(peers) : null,
    upstreamsCpuSecondsPer10kRequests: round(median(of((r) => r.upstreams.cpuSecondsPer10kRequests)), 3),
    loadGeneratorUtilization: round(median(of((r) => r.loadGeneratorCpuSeconds / r.wallSeconds)), 2),
    otherBusyCores: Math.max(...of((r) => r.otherBusyCores)),
    split: Array.from({ length: width }, (_, i) => results.reduce((sum, r) => sum + (r.split[i] ?? 0), 0)),
  };
}

const ratio = (a: number, b: number): number => (b > 0 ? round(a / b, 2) : Number.NaN);

/** a / b, figure by figure, from the two peers' medians. */
export function ratios(a: PeerSummary, b: PeerSummary): Ratios {
  const base: Ratios = { requestsPerSecond: ratio(a.requestsPerSecond, b.requestsPerSecond), p50: ratio(a.p50Ms, b.p50Ms), p99: ratio(a.p99Ms, b.p99Ms) };
  if (!a.peer || !b.peer) return base;
  return { ...base, cpuPer10kRequests: ratio(a.peer.cpuSecondsPer10kRequests, b.peer.cpuSecondsPer10kRequests), peakRss: ratio(a.peer.peakRssMiB, b.peer.peakRssMiB) };
}

/** Other work that shared the machine's cores with a run; `label` names the case, round and peer. */
export function notesOf(label: string, result: PeerResult): string[] {
  return result.otherBusyCores > 0.1 ? [`${label}: other processes kept ${result.otherBusyCores} cores busy during the run; its figures are skewed`] : [];
}

/** What is wrong with one run: failed requests, non-200 answers, or (for balancers) an uneven split. */
export function problemsOf(label: string, name: PeerName, result: PeerResult): string[] {
  const problems: string[] = [];
  const { total, succeeded } = result.h2load;
  if (total === 0) problems.push(`${label}: no request completed`);
  if (succeeded < total) problems.push(`${label}: ${total - succeeded} of ${total} requests failed`);
  const non200 = Object.entries(result.statuses).filter(([status]) => status !== '200');
  if (non200.length > 0) problems.push(`${label}: answers other than 200: ${non200.map(([s, n]) => `${n}×${s}`).join(', ')}`);
  const sum = result.split.reduce((a, b) => a + b, 0);
  // Requests still in flight when h2load stops reach the upstreams without being counted by it.
  if (Math.abs(sum - total) > total * 0.01 + 100) problems.push(`${label}: the upstreams logged ${sum} requests, h2load counted ${total}`);
  if (name !== 'direct') {
    // Round robin over three equal upstreams: each should get about a third.
    const uneven = result.split.some((n) => sum === 0 || n / sum < 0.25 || n / sum > 0.42);
    if (uneven) problems.push(`${label}: requests not spread over the three upstreams: ${result.split.join(' / ')}`);
  }
  return problems;
}
