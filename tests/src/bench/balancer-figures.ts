// The balancers benchmark's arithmetic: the share of requests that reached the slow replica, the
// medians of an algorithm's rounds in one scenario, the verdict on latency-aware balancing, and
// the table. No I/O, so it is tested without load (balancer-figures.test.ts).
import { median } from './summary.js';

export const ALGORITHMS = ['round-robin', 'least-request', 'peak-ewma'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** h2load: closed-loop HTTP/2 streams at saturation; open-loop: HTTP/1.1 requests at a fixed rate (open-loop-client.js). */
export const LOADS = ['h2load', 'open-loop'] as const;
export type LoadName = (typeof LOADS)[number];

export const SCENARIOS = ['none-slow', 'one-slow', 'turns-slow'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const SCENARIO_SUMMARY: Readonly<Record<Scenario, string>> = {
  'none-slow': 'every replica answers at once',
  'one-slow': 'replica 1 answers DELAY ms late throughout (warm-up included)',
  'turns-slow': 'replica 1 turns DELAY ms late halfway through the measured run',
};

/** One measured run of one algorithm in one scenario. */
export interface BalancerRun {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Requests that failed (h2load's failed + errored) or answered other than 200. */
  readonly failed: number;
  /** Share (0..1) of the requests counted by the replicas that went to the slow one; after the switch in turns-slow. */
  readonly slowShare: number;
}

const round = (n: number, digits: number): number => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : Number.NaN);

/**
 * The share of the requests between two readings of the replicas' counters that went to replica
 * `slow`: NaN when no request was counted (an empty window says nothing).
 */
export function slowShare(before: readonly number[], after: readonly number[], slow: number): number {
  let total = 0;
  for (let i = 0; i < after.length; i++) total += (after[i] ?? 0) - (before[i] ?? 0);
  if (total <= 0) return Number.NaN;
  return round(((after[slow] ?? 0) - (before[slow] ?? 0)) / total, 4);
}

/** The medians of each figure over the rounds (failed: their sum, so one bad round shows). */
export function medianRun(rounds: readonly BalancerRun[]): BalancerRun {
  const of = (pick: (r: BalancerRun) => number): number => median(rounds.map(pick));
  return {
    requestsPerSecond: round(of((r) => r.requestsPerSecond), 0),
    p50Ms: round(of((r) => r.p50Ms), 3),
    p99Ms: round(of((r) => r.p99Ms), 3),
    failed: rounds.reduce((sum, r) => sum + r.failed, 0),
    slowShare: round(of((r) => r.slowShare), 4),
  };
}

export type Medians = Readonly<Record<Scenario, Readonly<Record<Algorithm, BalancerRun>>>>;

/** Whether `challenger` should replace `incumbent` as the default, and why, in one sentence each. */
export interface Verdict {
  readonly better: boolean;
  readonly reasons: readonly string[];
}

/**
 * The default-choosing rule: `challenger` is clearly better with a slow replica when, in every
 * slow scenario, its p99 is at most 80 % of the incumbent's and its req/s no lower than 95 %;
 * and not worse without one when its req/s is at least 90 % and its p99 at most 125 % of the
 * incumbent's (loopback figures are noisy at that grain). Any failed request disqualifies it.
 */
export function verdict(medians: Medians, challenger: Algorithm, incumbent: Algorithm): Verdict {
  const reasons: string[] = [];
  let better = true;
  for (const scenario of SCENARIOS) {
    const c = medians[scenario][challenger];
    const i = medians[scenario][incumbent];
    const rps = c.requestsPerSecond / i.requestsPerSecond;
    const p99 = c.p99Ms / i.p99Ms;
    const slow = scenario !== 'none-slow';
    const ok = c.failed === 0 && (slow ? p99 <= 0.8 && rps >= 0.95 : p99 <= 1.25 && rps >= 0.9);
    if (!ok) better = false;
    reasons.push(
      `${scenario}: ${challenger} ${c.requestsPerSecond} req/s p99 ${c.p99Ms} ms vs ${incumbent} ${i.requestsPerSecond} req/s p99 ${i.p99Ms} ms ` +
        `(req/s x${round(rps, 2)}, p99 x${round(p99, 2)}${c.failed ? `, ${c.failed} failed` : ''}): ${ok ? 'passes' : 'fails'} (${slow ? 'needs p99 <= x0.8 and req/s >= x0.95' : 'needs p99 <= x1.25 and req/s >= x0.9'})`,
    );
  }
  return { better, reasons };
}

/** The verdict over every load: better only when better under each of them. */
export function overallVerdict(byLoad: Readonly<Partial<Record<LoadName, Medians>>>, challenger: Algorithm, incumbent: Algorithm): Verdict {
  const verdicts = LOADS.filter((load) => byLoad[load] !== undefined).map((load) => ({ load, v: verdict(byLoad[load] as Medians, challenger, incumbent) }));
  return {
    better: verdicts.length > 0 && verdicts.every(({ v }) => v.better),
    reasons: verdicts.flatMap(({ load, v }) => v.reasons.map((r) => `${load} ${r}`)),
  };
}

/** The table on stdout and in docs/benchmarks.md. */
export function formatTable(medians: Medians, delayMs: number): string {
  const lines = ['| scenario | algorithm | req/s | p50 ms | p99 ms | to the slow replica | failed |', '|---|---|---:|---:|---:|---:|---:|'];
  for (const scenario of SCENARIOS) {
    for (const algorithm of ALGORITHMS) {
      const r = medians[scenario][algorithm];
      const share = Number.isNaN(r.slowShare) ? '-' : `${round(r.slowShare * 100, 1)} %`;
      lines.push(`| ${scenario} | ${algorithm} | ${r.requestsPerSecond} | ${r.p50Ms} | ${r.p99Ms} | ${share} | ${r.failed} |`);
    }
  }
  const legend = SCENARIOS.map((s) => `${s}: ${SCENARIO_SUMMARY[s].replace('DELAY', String(delayMs))}`);
  return [...lines, '', ...legend].join('\n');
}
