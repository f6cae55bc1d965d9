// What h2load measured, parsed: its summary on stdout (requests, req/s) and its per-request
// log (`--log-file`: start µs, status, duration µs), from which latency percentiles are computed.

/** Nearest-rank percentile (p in 0..100) of ascending values; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

export interface RequestLog {
  /** Request durations in microseconds, ascending. */
  readonly latenciesUs: Float64Array;
  /** Responses by HTTP status (h2load logs -1 for a request without a response). */
  readonly statuses: ReadonlyMap<number, number>;
}

/** Parses h2load's `--log-file` (tab-separated: start µs since epoch, status, µs to end of response). */
export function parseRequestLog(text: string): RequestLog {
  const lines = text.split('\n');
  const latencies = new Float64Array(lines.length);
  const statuses = new Map<number, number>();
  let n = 0;
  for (const line of lines) {
    if (line === '') continue;
    const fields = line.split('\t');
    const status = Number(fields[1]);
    const duration = Number(fields[2]);
    if (fields.length < 3 || !Number.isFinite(status) || !Number.isFinite(duration)) {
      throw new Error(`h2load log: unexpected line ${JSON.stringify(line.slice(0, 80))}`);
    }
    latencies[n++] = duration;
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }
  return { latenciesUs: latencies.subarray(0, n).sort(), statuses };
}

export interface LatencySummary {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
}

export function summarizeLatency(sortedUs: Float64Array): LatencySummary {
  let sum = 0;
  for (const v of sortedUs) sum += v;
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    p50Ms: ms(percentile(sortedUs, 50)),
    p99Ms: ms(percentile(sortedUs, 99)),
    meanMs: ms(sortedUs.length ? sum / sortedUs.length : Number.NaN),
    maxMs: ms(sortedUs.length ? (sortedUs[sortedUs.length - 1] as number) : Number.NaN),
  };
}

export interface H2loadSummary {
  /** Requests of the measured phase (h2load's `requests: N total`). */
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timeout: number;
  /** h2load's own rate, over the measured phase (excluding any warm-up). */
  readonly requestsPerSecond: number;
}

/** Parses the summary h2load prints at the end of a run. */
export function parseH2loadSummary(stdout: string): H2loadSummary {
  const finished = /^finished in [\d.]+(?:us|ms|s), ([\d.]+) req\/s/m.exec(stdout);
  const requests = /^requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(stdout);
  if (!finished || !requests) throw new Error(`h2load printed no summary: ${stdout.trim().split('\n').slice(-5).join(' | ')}`);
  return {
    requestsPerSecond: Number(finished[1]),
    total: Number(requests[1]),
    succeeded: Number(requests[2]),
    failed: Number(requests[3]),
    errored: Number(requests[4]),
    timeout: Number(requests[5]),
  };
}
