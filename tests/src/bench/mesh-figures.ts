// The mesh benchmarks' arithmetic: latency percentiles of one open-loop run, the latency a proxy
// pair adds over the direct path, CPU per 1,000 requests, and medians over the rounds.
import { percentile } from './percentiles.js';
import { median } from './summary.js';

export interface Percentiles {
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
}

export interface LatencyFigures extends Percentiles {
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

const round = (n: number, digits: number): number => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : Number.NaN);

/** Percentiles (nearest rank) of ascending latencies in microseconds, in milliseconds to the microsecond. */
export function latencyFigures(sortedUs: ArrayLike<number>): LatencyFigures {
  let sum = 0;
  for (let i = 0; i < sortedUs.length; i++) sum += sortedUs[i] as number;
  const ms = (us: number): number => round(us / 1000, 3);
  return {
    p50Ms: ms(percentile(sortedUs, 50)),
    p90Ms: ms(percentile(sortedUs, 90)),
    p99Ms: ms(percentile(sortedUs, 99)),
    p999Ms: ms(percentile(sortedUs, 99.9)),
    maxMs: ms(sortedUs.length ? (sortedUs[sortedUs.length - 1] as number) : Number.NaN),
    meanMs: ms(sortedUs.length ? sum / sortedUs.length : Number.NaN),
  };
}

/** What a proxied path adds to the direct one, percentile by percentile (may be negative in noise). */
export function addedLatency(proxied: Percentiles, direct: Percentiles): Percentiles {
  return {
    p50Ms: round(proxied.p50Ms - direct.p50Ms, 3),
    p90Ms: round(proxied.p90Ms - direct.p90Ms, 3),
    p99Ms: round(proxied.p99Ms - direct.p99Ms, 3),
  };
}

/** a / b to two decimals; NaN when b is not positive (a ratio of added latencies is meaningless then). */
export function ratioOf(a: number, b: number): number {
  return b > 0 && Number.isFinite(a) ? round(a / b, 2) : Number.NaN;
}

/** CPU seconds per 1,000 requests: also the cores kept busy at 1,000 req/s. */
export function cpuPer1k(cpuSeconds: number, requests: number): number {
  return requests > 0 ? round((cpuSeconds / requests) * 1000, 4) : Number.NaN;
}

/** The medians of each percentile over the rounds. */
export function medianFigures<T extends Record<string, number>>(rounds: readonly T[]): T {
  const keys = Object.keys(rounds[0] ?? {}) as Array<keyof T & string>;
  return Object.fromEntries(keys.map((k) => [k, median(rounds.map((r) => r[k] as number))])) as T;
}

/**
 * The order variants are measured in, rotated every round so none is always first (after an idle
 * pause) or last: round 0 direct, tsmesh, haproxy; round 1 tsmesh, haproxy, direct; ...
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const k = ((round % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
