// The dashboard's arithmetic: from two scrapes of each sidecar's /metrics, the traffic of every
// edge (caller workload → called workload) and every workload over the interval between them —
// request rate from counter deltas, success rate from the response codes and gRPC statuses, and
// latency quantiles from the deltas of the duration histogram's buckets.
import type { Sample } from './prom-text.js';

export const REQUESTS = 'tsmesh_requests_total';
export const DURATION_BUCKET = 'tsmesh_request_duration_seconds_bucket';
const UNKNOWN = 'unknown';

/** The traffic of one edge or workload over one interval. */
export interface TrafficStats {
  /** Requests per second. */
  readonly rps: number;
  /** Requests counted in the interval. */
  readonly requests: number;
  /** Share of them that succeeded, 0..1; null when there were none. */
  readonly successRate: number | null;
  /** Latency quantiles in seconds; null when no request was timed. */
  readonly p50: number | null;
  readonly p99: number | null;
}

export interface EdgeStats extends TrafficStats {
  /** Node ids: `workload.namespace` (or the service's name when the workload is unknown). */
  readonly source: string;
  readonly destination: string;
  /** Which side's sidecar the figures come from: the caller's when it has one, else the callee's. */
  readonly reporter: 'source' | 'destination';
  /** Whether the hop was mutual TLS (every request counted in the interval). */
  readonly mtls: boolean;
}

export interface WorkloadStats extends TrafficStats {
  readonly id: string;
  /** `inbound` when the workload was called in the interval (its server-side signals), else `outbound`. */
  readonly direction: 'inbound' | 'outbound';
}

export interface IntervalStats {
  readonly edges: readonly EdgeStats[];
  readonly workloads: readonly WorkloadStats[];
}

/** The identity of one series within one scrape: its name and its labels in a fixed order. */
export function seriesKey(sample: Sample): string {
  const labels = Object.keys(sample.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(sample.labels[k])}`);
  return `${sample.name}{${labels.join(',')}}`;
}

/** The series of interest of one scrape, by key (the request counter and the duration buckets). */
export function indexScrape(samples: readonly Sample[]): Map<string, Sample> {
  const index = new Map<string, Sample>();
  for (const s of samples) if (s.name === REQUESTS || s.name === DURATION_BUCKET) index.set(seriesKey(s), s);
  return index;
}

/**
 * How much each counter of `current` grew since `previous` (both scrapes of ONE sidecar). A series
 * that is new counts from zero; one that went down was reset (the sidecar restarted) and counts
 * from zero too, as Prometheus's rate() does.
 */
export function counterDeltas(previous: ReadonlyMap<string, Sample>, current: ReadonlyMap<string, Sample>): Sample[] {
  const deltas: Sample[] = [];
  for (const [key, sample] of current) {
    if (!Number.isFinite(sample.value)) continue;
    const before = previous.get(key)?.value ?? 0;
    const delta = sample.value >= before ? sample.value - before : sample.value;
    deltas.push({ name: sample.name, labels: sample.labels, value: delta });
  }
  return deltas;
}

/** Whether a request with these labels succeeded: a response was sent, not 5xx, gRPC status OK when gRPC. */
export function succeeded(labels: Readonly<Record<string, string>>): boolean {
  const code = Number(labels.response_code);
  if (!(code >= 100 && code < 500)) return false;
  const grpc = labels.grpc_status ?? '';
  return grpc === '' || grpc === '0';
}

/**
 * The q-quantile (0..1) of a histogram given as cumulative bucket counts by upper bound, as
 * Prometheus's histogram_quantile computes it: linear within the bucket the rank falls in, the
 * lowest bucket starting at 0, and the largest finite bound when the rank falls in +Inf.
 */
export function histogramQuantile(q: number, buckets: ReadonlyMap<number, number>): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  if (bounds.length === 0 || bounds[bounds.length - 1] !== Infinity) return null;
  const total = buckets.get(Infinity) ?? 0;
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bound of bounds) {
    const count = buckets.get(bound) ?? 0;
    if (count >= rank && count > lowerCount) {
      if (bound === Infinity) return bounds.length > 1 ? (bounds[bounds.length - 2] ?? null) : null;
      return lowerBound + (bound - lowerBound) * ((rank - lowerCount) / (count - lowerCount));
    }
    lowerBound = bound;
    lowerCount = Math.max(lowerCount, count);
  }
  return bounds.length > 1 ? (bounds[bounds.length - 2] ?? null) : null;
}

/** The node id of a caller. */
function sourceNode(labels: Readonly<Record<string, string>>): string {
  const workload = labels.source_workload ?? UNKNOWN;
  if (workload === UNKNOWN || workload === '') return UNKNOWN;
  return `${workload}.${labels.source_namespace ?? UNKNOWN}`;
}

/** The node id of a callee: its workload, else the service it was addressed as. */
function destinationNode(labels: Readonly<Record<string, string>>): string {
  const workload = labels.destination_workload ?? UNKNOWN;
  if (workload !== UNKNOWN && workload !== '') return `${workload}.${labels.destination_namespace ?? UNKNOWN}`;
  const service = labels.destination_service ?? UNKNOWN;
  if (service === UNKNOWN || service === '') return UNKNOWN;
  return service.includes('.') ? service : `${service}.${labels.destination_namespace ?? UNKNOWN}`;
}

class Tally {
  requests = 0;
  ok = 0;
  mtls = 0;
  readonly buckets = new Map<number, number>();

  addRequests(labels: Readonly<Record<string, string>>, n: number): void {
    this.requests += n;
    if (succeeded(labels)) this.ok += n;
    if (labels.connection_security_policy === 'mutual_tls') this.mtls += n;
  }

  addBucket(le: number, n: number): void {
    this.buckets.set(le, (this.buckets.get(le) ?? 0) + n);
  }

  merge(other: Tally): void {
    this.requests += other.requests;
    this.ok += other.ok;
    this.mtls += other.mtls;
    for (const [le, n] of other.buckets) this.addBucket(le, n);
  }

  stats(seconds: number): TrafficStats {
    return {
      rps: seconds > 0 ? this.requests / seconds : 0,
      requests: this.requests,
      successRate: this.requests > 0 ? this.ok / this.requests : null,
      p50: histogramQuantile(0.5, this.buckets),
      p99: histogramQuantile(0.99, this.buckets),
    };
  }
}

/**
 * Every edge's and workload's traffic over an interval of `seconds`, from the counter deltas of
 * all the sidecars (concatenated). An edge counted by both sidecars is taken from the caller's
 * (reporter=source), so a request is counted once; an edge whose caller has no sidecar, from the
 * callee's.
 */
export function intervalStats(deltas: readonly Sample[], seconds: number): IntervalStats {
  const tallies = new Map<string, { source: string; destination: string; reporter: 'source' | 'destination'; tally: Tally }>();
  for (const s of deltas) {
    const reporter = s.labels.reporter === 'destination' ? 'destination' : s.labels.reporter === 'source' ? 'source' : undefined;
    if (reporter === undefined) continue;
    const source = sourceNode(s.labels);
    const destination = destinationNode(s.labels);
    const key = `${reporter}\u0000${source}\u0000${destination}`;
    let entry = tallies.get(key);
    if (!entry) tallies.set(key, (entry = { source, destination, reporter, tally: new Tally() }));
    if (s.name === REQUESTS) entry.tally.addRequests(s.labels, s.value);
    else if (s.name === DURATION_BUCKET) {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      if (!Number.isNaN(le)) entry.tally.addBucket(le, s.value);
    }
  }
  const edges: EdgeStats[] = [];
  const inbound = new Map<string, Tally>();
  const outbound = new Map<string, Tally>();
  const add = (map: Map<string, Tally>, id: string, tally: Tally): void => {
    let t = map.get(id);
    if (!t) map.set(id, (t = new Tally()));
    t.merge(tally);
  };
  for (const entry of tallies.values()) {
    if (entry.reporter === 'destination' && tallies.has(`source\u0000${entry.source}\u0000${entry.destination}`)) continue;
    const { tally } = entry;
    edges.push({
      source: entry.source,
      destination: entry.destination,
      reporter: entry.reporter,
      mtls: tally.requests > 0 && tally.mtls === tally.requests,
      ...tally.stats(seconds),
    });
    add(inbound, entry.destination, tally);
    add(outbound, entry.source, tally);
  }
  edges.sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination));
  const ids = new Set([...inbound.keys(), ...outbound.keys()]);
  const workloads: WorkloadStats[] = [...ids].sort().map((id) => {
    const called = inbound.get(id);
    const direction = called !== undefined ? 'inbound' : 'outbound';
    const tally = called ?? outbound.get(id) ?? new Tally();
    return { id, direction, ...tally.stats(seconds) };
  });
  return { edges, workloads };
}
