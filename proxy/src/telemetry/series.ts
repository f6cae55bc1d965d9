// The request and opaque-TCP series of the proxy's metrics, kept so that recording one allocates
// nothing: a cell per label set, found through nested maps keyed by the label values (strings the
// data path already holds), created once and afterwards only added to. prom-client's own
// `inc`/`observe` build, validate and hash a label object per call (about 2.5 KB and several µs
// per request); here a request costs seven map lookups and a few additions. The cells are written
// out as Prometheus text at scrape time, next to the registry's metrics (metrics.ts).
import type { PeerInfo, Reporter } from './types.js';

export const UNKNOWN = 'unknown';
// Kubernetes names are at most 253 characters; anything longer is not a name we should trust.
const MAX_LABEL_LENGTH = 253;

const PEER_LABELS = [
  'reporter',
  'source_workload',
  'source_namespace',
  'destination_service',
  'destination_workload',
  'destination_namespace',
] as const;
export const TCP_LABELS = [...PEER_LABELS, 'connection_security_policy'] as const;
export const REQUEST_LABELS = [...PEER_LABELS, 'response_code', 'grpc_status', 'connection_security_policy'] as const;

/** A metric label value: missing or empty becomes `unknown`; overlong values are cut. */
export function labelValue(value: string | undefined): string {
  if (value === undefined || value === '') return UNKNOWN;
  return value.length > MAX_LABEL_LENGTH ? value.slice(0, MAX_LABEL_LENGTH) : value;
}

function validStatus(status: number): boolean {
  return Number.isInteger(status) && status >= 100 && status <= 599;
}

function validGrpcStatus(status: number | undefined): status is number {
  return status !== undefined && Number.isInteger(status) && status >= 0 && status <= 16;
}

/** `response_code`: the HTTP status sent downstream, `0` when none was (reset, client gone). */
export function responseCodeLabel(status: number | undefined): string {
  if (status === undefined || status === 0) return '0';
  return validStatus(status) ? String(status) : UNKNOWN;
}

/** `grpc_status`: empty for non-gRPC requests; a gRPC request without a status is `unknown`. */
export function grpcStatusLabel(grpc: boolean, status: number | undefined): string {
  if (!grpc) return '';
  return validGrpcStatus(status) ? String(status) : UNKNOWN;
}

/**
 * The cell of a (response_code, grpc_status) pair within one peer set, as a number: the two labels
 * are small integers or one of a few words, so the pair is found without building a string.
 */
function responseKey(status: number | undefined, grpc: boolean, grpcStatus: number | undefined): number {
  const code = status === undefined || status === 0 ? 0 : validStatus(status) ? status : 1;
  const rpc = !grpc ? 0 : validGrpcStatus(grpcStatus) ? grpcStatus + 1 : 18;
  return code * 32 + rpc;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** `name="value",...` in the order given: written once per cell, when it is created. */
function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([name, value]) => `${name}="${escapeLabel(value)}"`)
    .join(',');
}

/** One request label set: its count and duration histogram. */
class RequestCell {
  /** The same labels as a record, for the JSON view (merged over event loops). */
  fields: Readonly<Record<string, string>> = {};
  count = 0;
  sum = 0;
  /** Observations per bucket (not cumulative); above the last bound they are only in `count`. */
  readonly buckets: Float64Array;

  constructor(
    readonly labels: string,
    private readonly bounds: readonly number[],
  ) {
    this.buckets = new Float64Array(bounds.length);
  }

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= (bounds[i] as number)) {
        this.buckets[i] = (this.buckets[i] as number) + 1;
        return;
      }
    }
  }
}

/** The series of one set of peer labels: its request cells and its TCP counters. */
export class PeerSeries {
  /** The TCP labels as exposition text. */
  readonly labels: string;
  readonly fields: Readonly<Record<(typeof TCP_LABELS)[number], string>>;
  readonly requests = new Map<number, RequestCell>();
  tcpOpened = 0;
  tcpClosed = 0;
  tcpSent = 0;
  tcpReceived = 0;

  constructor(
    fields: Readonly<Record<(typeof TCP_LABELS)[number], string>>,
    private readonly bounds: readonly number[],
  ) {
    this.fields = fields;
    this.labels = labelText(fields);
  }

  /** Counts one finished request and observes its duration (seconds, already clamped to ≥ 0). */
  request(status: number | undefined, grpc: boolean, grpcStatus: number | undefined, seconds: number): void {
    const key = responseKey(status, grpc, grpcStatus);
    let cell = this.requests.get(key);
    if (cell === undefined) {
      const f = this.fields;
      const fields = {
        reporter: f.reporter,
        source_workload: f.source_workload,
        source_namespace: f.source_namespace,
        destination_service: f.destination_service,
        destination_workload: f.destination_workload,
        destination_namespace: f.destination_namespace,
        response_code: responseCodeLabel(status),
        grpc_status: grpcStatusLabel(grpc, grpcStatus),
        connection_security_policy: f.connection_security_policy,
      };
      cell = new RequestCell(labelText(fields), this.bounds);
      cell.fields = fields;
      this.requests.set(key, cell);
    }
    cell.observe(seconds);
  }

  /** Adds to the byte counters (deltas). */
  bytes(sent: number, received: number): void {
    if (sent > 0) this.tcpSent += sent;
    if (received > 0) this.tcpReceived += received;
  }

  /** Counts a connection as closed. */
  closed(): void {
    this.tcpClosed++;
  }
}

type Node = Map<string, unknown>;

function child(node: Node, key: string): Node {
  let next = node.get(key) as Node | undefined;
  if (next === undefined) {
    next = new Map();
    node.set(key, next);
  }
  return next;
}

/** One metric family as prom-client's `getMetricsAsJSON()` gives it. */
export interface SeriesJson {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Array<{ labels: Readonly<Record<string, string | number>>; value: number; metricName?: string }>;
}

/** What a metric family of the table is called and says. */
export interface FamilyInfo {
  readonly name: string;
  readonly help: string;
}

/** The peer sets seen so far, by their label values, in the order they appeared. */
export class SeriesTable {
  private readonly root: Node = new Map();
  private readonly all: PeerSeries[] = [];
  private readonly le: readonly string[];

  constructor(private readonly bounds: readonly number[]) {
    this.le = [...bounds.map((bound) => `le="${bound}"`), 'le="+Inf"'];
  }

  /** The series of a peer set; created on first use, found without allocating afterwards. */
  peers(reporter: Reporter, source: PeerInfo, destination: PeerInfo, mtls: boolean): PeerSeries {
    const sourceWorkload = labelValue(source.workload);
    const sourceNamespace = labelValue(source.namespace);
    const service = labelValue(destination.service);
    const workload = labelValue(destination.workload);
    const namespace = labelValue(destination.namespace);
    const policy = mtls ? 'mutual_tls' : 'none';
    const leaf = child(child(child(child(child(child(this.root, reporter), policy), sourceWorkload), sourceNamespace), service), workload);
    let series = leaf.get(namespace) as PeerSeries | undefined;
    if (series === undefined) {
      series = new PeerSeries(
        {
          reporter,
          source_workload: sourceWorkload,
          source_namespace: sourceNamespace,
          destination_service: service,
          destination_workload: workload,
          destination_namespace: namespace,
          connection_security_policy: policy,
        },
        this.bounds,
      );
      leaf.set(namespace, series);
      this.all.push(series);
    }
    return series;
  }

  /** The request counter and duration histogram, as Prometheus text families. */
  renderRequests(counter: FamilyInfo, histogram: FamilyInfo): string[] {
    const counts = [header(counter, 'counter')];
    const durations = [header(histogram, 'histogram')];
    for (const series of this.all) {
      for (const cell of series.requests.values()) {
        counts.push(`${counter.name}{${cell.labels}} ${cell.count}`);
        let cumulative = 0;
        for (let i = 0; i < cell.buckets.length; i++) {
          cumulative += cell.buckets[i] as number;
          durations.push(`${histogram.name}_bucket{${this.le[i]},${cell.labels}} ${cumulative}`);
        }
        durations.push(`${histogram.name}_bucket{${this.le[cell.buckets.length]},${cell.labels}} ${cell.count}`);
        durations.push(`${histogram.name}_sum{${cell.labels}} ${cell.sum}`);
        durations.push(`${histogram.name}_count{${cell.labels}} ${cell.count}`);
      }
    }
    return [counts.join('\n'), durations.join('\n')];
  }

  /**
   * The request counter and duration histogram in prom-client's `getMetricsAsJSON()` shape, so
   * several event loops' tables merge exactly (AggregatorRegistry, `sum`).
   */
  requestsJson(counter: FamilyInfo, histogram: FamilyInfo): SeriesJson[] {
    const counts: SeriesJson = { name: counter.name, help: counter.help, type: 'counter', aggregator: 'sum', values: [] };
    const durations: SeriesJson = { name: histogram.name, help: histogram.help, type: 'histogram', aggregator: 'sum', values: [] };
    for (const series of this.all) {
      for (const cell of series.requests.values()) {
        counts.values.push({ labels: cell.fields, value: cell.count });
        let cumulative = 0;
        for (let i = 0; i < cell.buckets.length; i++) {
          cumulative += cell.buckets[i] as number;
          durations.values.push({ labels: { ...cell.fields, le: this.bounds[i] as number }, value: cumulative, metricName: `${histogram.name}_bucket` });
        }
        durations.values.push({ labels: { ...cell.fields, le: '+Inf' }, value: cell.count, metricName: `${histogram.name}_bucket` });
        durations.values.push({ labels: cell.fields, value: cell.sum, metricName: `${histogram.name}_sum` });
        durations.values.push({ labels: cell.fields, value: cell.count, metricName: `${histogram.name}_count` });
      }
    }
    return [counts, durations];
  }

  /** One TCP counter in prom-client's JSON shape (the series whose value is above 0). */
  tcpJson(family: FamilyInfo, value: (series: PeerSeries) => number): SeriesJson {
    const out: SeriesJson = { name: family.name, help: family.help, type: 'counter', aggregator: 'sum', values: [] };
    for (const series of this.all) {
      const n = value(series);
      if (n > 0) out.values.push({ labels: series.fields, value: n });
    }
    return out;
  }

  /** One TCP counter as a Prometheus text family: the series whose value is above 0. */
  renderTcp(family: FamilyInfo, value: (series: PeerSeries) => number): string {
    const lines = [header(family, 'counter')];
    for (const series of this.all) {
      const n = value(series);
      if (n > 0) lines.push(`${family.name}{${series.labels}} ${n}`);
    }
    return lines.join('\n');
  }
}

function header(family: FamilyInfo, type: 'counter' | 'histogram'): string {
  const help = family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return `# HELP ${family.name} ${help}\n# TYPE ${family.name} ${type}`;
}
