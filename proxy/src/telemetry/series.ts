// The request and opaque-TCP series of the proxy's metrics, kept so that recording one allocates
// nothing: a cell per label set, found through nested maps keyed by the label values (strings the
// data path already holds), created once and afterwards only added to. prom-client's own
// `inc`/`observe` build, validate and hash a label object per call (about 2.5 KB and several µs
// per request); here a request costs a few map lookups and a few additions. The cells are written
// out as Prometheus text at scrape time, next to the registry's metrics (metrics.ts), twice: as
// tsmesh's own families (SPEC labels, cells summed by them) and as Istio's standard ones
// (`istio_requests_total`, ..., each cell as it is), so Istio's dashboards and Kiali read a tsmesh
// mesh with no recording rule.
import { RESPONSE_FLAGS, type ResponseFlag } from './flags.js';
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

/** The peer labels of Istio's standard metrics, in the order Istio's proxies write them. */
const ISTIO_PEER_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
] as const;
/** Labels of `istio_tcp_*`. */
export const ISTIO_TCP_LABELS = [...ISTIO_PEER_LABELS, 'request_protocol', 'response_flags', 'connection_security_policy'] as const;
/** Labels of `istio_requests_total`, `istio_request_duration_milliseconds`, `istio_request_bytes`, `istio_response_bytes`. */
export const ISTIO_REQUEST_LABELS = [
  ...ISTIO_PEER_LABELS,
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

/** The DNS suffix of a Service's FQDN in `destination_service` (Kubernetes' default cluster domain). */
export const SERVICE_DOMAIN = 'svc.cluster.local';

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

const FLAG_NAMES = Object.keys(RESPONSE_FLAGS) as ResponseFlag[];
const FLAG_BITS: ReadonlyMap<string, number> = new Map(FLAG_NAMES.map((flag, i) => [flag, 1 << i]));

/** The response flags as a bit set, so a request's flags pick its cell without building a string. */
export function flagBits(flags: readonly ResponseFlag[] | undefined): number {
  if (flags === undefined) return 0;
  let bits = 0;
  for (let i = 0; i < flags.length; i++) bits |= FLAG_BITS.get(flags[i] as string) ?? 0;
  return bits;
}

/** `response_flags`: the flags of a bit set in a fixed order, comma-separated; `-` for none (Envoy's format). */
export function responseFlagsLabel(bits: number): string {
  if (bits === 0) return '-';
  return FLAG_NAMES.filter((_, i) => (bits & (1 << i)) !== 0).join(',');
}

/**
 * Istio's three service labels from a mesh Service's name: `name.namespace` (or already
 * `name.namespace.svc...`) gives the FQDN, the name and the namespace; anything else (an address
 * outside the mesh) is the service and its name, namespace `unknown`.
 */
export function serviceLabels(service: string | undefined): { readonly fqdn: string; readonly name: string; readonly namespace: string } {
  const value = labelValue(service);
  if (value === UNKNOWN) return { fqdn: UNKNOWN, name: UNKNOWN, namespace: UNKNOWN };
  const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.svc(\..+)?)?$/.exec(value);
  if (!match) return { fqdn: value, name: value, namespace: UNKNOWN };
  const name = match[1] as string;
  const namespace = match[3] as string;
  return { fqdn: match[5] === undefined ? `${name}.${namespace}.${SERVICE_DOMAIN}` : value, name, namespace };
}

/**
 * The cell of a (flags, response_code, grpc_status) triple within one peer set, as a number: the
 * labels are small integers or one of a few words, so the cell is found without building a string.
 * `request_protocol` follows from grpc_status (0 for plain HTTP).
 */
function responseKey(status: number | undefined, grpc: boolean, grpcStatus: number | undefined, flags: number): number {
  const code = status === undefined || status === 0 ? 0 : validStatus(status) ? status : 1;
  const rpc = !grpc ? 0 : validGrpcStatus(grpcStatus) ? grpcStatus + 1 : 18;
  // code * 32 + rpc < 2^15.
  return flags * 32768 + code * 32 + rpc;
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

/**
 * The bounds of the histograms. Durations are observed once, in seconds, into the union of
 * tsmesh's bounds and Istio's (which are whole milliseconds), so each family's cumulative counts are
 * exact; sizes into Istio's bounds, in bytes.
 */
export interface SeriesBounds {
  /** `tsmesh_request_duration_seconds`, seconds. */
  readonly durationSeconds: readonly number[];
  /** `istio_request_duration_milliseconds`, milliseconds. */
  readonly durationMs: readonly number[];
  /** `istio_request_bytes` and `istio_response_bytes`, bytes. */
  readonly bytes: readonly number[];
}

/** A histogram's bounds within the union it is observed into: `at[i]` is the union index of bound `le[i]`. */
interface Projection {
  readonly at: readonly number[];
  readonly le: readonly string[];
  readonly leValues: readonly number[];
}

class Layout {
  /** The union of the duration bounds, in seconds. */
  readonly union: readonly number[];
  readonly tsmesh: Projection;
  readonly istio: Projection;
  readonly bytes: Projection;
  readonly byteBounds: readonly number[];

  constructor(bounds: SeriesBounds) {
    const union = [...new Set([...bounds.durationSeconds, ...bounds.durationMs.map((ms) => ms / 1000)])].sort((a, b) => a - b);
    this.union = union;
    const project = (values: readonly number[], inUnion: (value: number) => number): Projection => ({
      at: values.map((value) => union.indexOf(inUnion(value))),
      le: values.map(String),
      leValues: values,
    });
    this.tsmesh = project(bounds.durationSeconds, (s) => s);
    this.istio = project(bounds.durationMs, (ms) => ms / 1000);
    this.byteBounds = bounds.bytes;
    this.bytes = { at: bounds.bytes.map((_, i) => i), le: bounds.bytes.map(String), leValues: bounds.bytes };
  }
}

/** Adds one observation to non-cumulative bucket counts (above the last bound it is only in the count). */
function observe(buckets: Float64Array, bounds: readonly number[], value: number): void {
  for (let i = 0; i < bounds.length; i++) {
    if (value <= (bounds[i] as number)) {
      buckets[i] = (buckets[i] as number) + 1;
      return;
    }
  }
}

/** One request label set: its count, duration histogram and request and response size histograms. */
class RequestCell {
  /** tsmesh's labels (SPEC) as a record and as exposition text; several cells may share them. */
  readonly fields: Readonly<Record<string, string>>;
  readonly labels: string;
  /** Istio's labels, as a record (JSON view, merged over event loops) and as text. */
  readonly istioFields: Readonly<Record<string, string>>;
  readonly istioLabels: string;
  count = 0;
  /** Seconds. */
  sum = 0;
  /** Observations per bucket of the union of duration bounds (not cumulative). */
  readonly durations: Float64Array;
  requestBytes = 0;
  responseBytes = 0;
  readonly requestSizes: Float64Array;
  readonly responseSizes: Float64Array;

  constructor(
    fields: Readonly<Record<string, string>>,
    istioFields: Readonly<Record<string, string>>,
    private readonly layout: Layout,
  ) {
    this.fields = fields;
    this.labels = labelText(fields);
    this.istioFields = istioFields;
    this.istioLabels = labelText(istioFields);
    this.durations = new Float64Array(layout.union.length);
    this.requestSizes = new Float64Array(layout.byteBounds.length);
    this.responseSizes = new Float64Array(layout.byteBounds.length);
  }

  observe(seconds: number, requestBytes: number, responseBytes: number): void {
    this.count++;
    this.sum += seconds;
    this.requestBytes += requestBytes;
    this.responseBytes += responseBytes;
    const layout = this.layout;
    observe(this.durations, layout.union, seconds);
    observe(this.requestSizes, layout.byteBounds, requestBytes);
    observe(this.responseSizes, layout.byteBounds, responseBytes);
  }
}

/** The peer labels of one series in both vocabularies. */
interface PeerFields {
  readonly tsmesh: Readonly<Record<(typeof TCP_LABELS)[number], string>>;
  readonly istio: Readonly<Record<(typeof ISTIO_PEER_LABELS)[number], string>>;
}

/** The series of one set of peer labels: its request cells and its TCP counters. */
export class PeerSeries {
  /** tsmesh's TCP labels as a record and as exposition text (several peer sets may share them). */
  readonly fields: Readonly<Record<(typeof TCP_LABELS)[number], string>>;
  readonly labels: string;
  /** Istio's TCP labels. */
  readonly istioFields: Readonly<Record<(typeof ISTIO_TCP_LABELS)[number], string>>;
  readonly istioLabels: string;
  readonly requests = new Map<number, RequestCell>();
  tcpOpened = 0;
  tcpClosed = 0;
  tcpSent = 0;
  tcpReceived = 0;

  constructor(
    private readonly peer: PeerFields,
    private readonly layout: Layout,
  ) {
    this.fields = peer.tsmesh;
    this.labels = labelText(peer.tsmesh);
    this.istioFields = {
      ...peer.istio,
      request_protocol: 'tcp',
      // Connections are counted by peers only: what ended one is in its access-log line.
      response_flags: '-',
      connection_security_policy: peer.tsmesh.connection_security_policy,
    };
    this.istioLabels = labelText(this.istioFields);
  }

  /**
   * Counts one finished request and observes its duration (seconds, already clamped to ≥ 0) and
   * its request and response body sizes (bytes, ≥ 0).
   */
  request(
    status: number | undefined,
    grpc: boolean,
    grpcStatus: number | undefined,
    flags: number,
    seconds: number,
    requestBytes: number,
    responseBytes: number,
  ): void {
    const key = responseKey(status, grpc, grpcStatus, flags);
    let cell = this.requests.get(key);
    if (cell === undefined) {
      const f = this.peer.tsmesh;
      const code = responseCodeLabel(status);
      const rpc = grpcStatusLabel(grpc, grpcStatus);
      const fields = {
        reporter: f.reporter,
        source_workload: f.source_workload,
        source_namespace: f.source_namespace,
        destination_service: f.destination_service,
        destination_workload: f.destination_workload,
        destination_namespace: f.destination_namespace,
        response_code: code,
        grpc_status: rpc,
        connection_security_policy: f.connection_security_policy,
      };
      const istio = {
        ...this.peer.istio,
        request_protocol: grpc ? 'grpc' : 'http',
        response_code: code,
        grpc_response_status: rpc,
        response_flags: responseFlagsLabel(flags),
        connection_security_policy: f.connection_security_policy,
      };
      cell = new RequestCell(fields, istio, this.layout);
      this.requests.set(key, cell);
    }
    cell.observe(seconds, requestBytes, responseBytes);
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

/** The families the table writes. */
export interface SeriesFamilies {
  readonly requests: FamilyInfo;
  readonly requestDuration: FamilyInfo;
  readonly tcpOpened: FamilyInfo;
  readonly tcpClosed: FamilyInfo;
  readonly tcpSentBytes: FamilyInfo;
  readonly tcpReceivedBytes: FamilyInfo;
  readonly istioRequests: FamilyInfo;
  readonly istioRequestDuration: FamilyInfo;
  readonly istioRequestBytes: FamilyInfo;
  readonly istioResponseBytes: FamilyInfo;
  readonly istioTcpOpened: FamilyInfo;
  readonly istioTcpClosed: FamilyInfo;
  readonly istioTcpSentBytes: FamilyInfo;
  readonly istioTcpReceivedBytes: FamilyInfo;
}

/** One histogram series to write: its labels, counts per bucket, count and sum. */
interface HistogramRow {
  readonly labels: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly buckets: Float64Array;
  readonly count: number;
  readonly sum: number;
}

/** A counter series to write. */
interface CounterRow {
  readonly labels: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly value: number;
}

/** tsmesh's request series: the cells summed by tsmesh's labels (a cell's extra Istio labels split them further). */
function summedRequests(cells: Iterable<RequestCell>, union: number): HistogramRow[] {
  const rows = new Map<string, { labels: string; fields: Readonly<Record<string, string>>; buckets: Float64Array; count: number; sum: number }>();
  for (const cell of cells) {
    let row = rows.get(cell.labels);
    if (row === undefined) {
      row = { labels: cell.labels, fields: cell.fields, buckets: new Float64Array(union), count: 0, sum: 0 };
      rows.set(cell.labels, row);
    }
    row.count += cell.count;
    row.sum += cell.sum;
    for (let i = 0; i < union; i++) row.buckets[i] = (row.buckets[i] as number) + (cell.durations[i] as number);
  }
  return [...rows.values()];
}

/** tsmesh's TCP series: one counter summed by tsmesh's labels, the series above 0. */
function summedTcp(all: readonly PeerSeries[], value: (series: PeerSeries) => number): CounterRow[] {
  const rows = new Map<string, { labels: string; fields: Readonly<Record<string, string>>; value: number }>();
  for (const series of all) {
    const n = value(series);
    if (n <= 0) continue;
    const row = rows.get(series.labels);
    if (row === undefined) rows.set(series.labels, { labels: series.labels, fields: series.fields, value: n });
    else row.value += n;
  }
  return [...rows.values()];
}

function istioTcp(all: readonly PeerSeries[], value: (series: PeerSeries) => number): CounterRow[] {
  const rows: CounterRow[] = [];
  for (const series of all) {
    const n = value(series);
    if (n > 0) rows.push({ labels: series.istioLabels, fields: series.istioFields, value: n });
  }
  return rows;
}

function header(family: FamilyInfo, type: 'counter' | 'histogram'): string {
  const help = family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return `# HELP ${family.name} ${help}\n# TYPE ${family.name} ${type}`;
}

/** How a family is written out: as Prometheus text or as prom-client JSON. */
interface FamilyWriter<T> {
  counter(family: FamilyInfo, rows: readonly CounterRow[]): T;
  histogram(family: FamilyInfo, rows: readonly HistogramRow[], projection: Projection, scale?: number): T;
}

function counterText(family: FamilyInfo, rows: readonly CounterRow[]): string {
  const lines = [header(family, 'counter')];
  for (const row of rows) lines.push(`${family.name}{${row.labels}} ${row.value}`);
  return lines.join('\n');
}

/** A histogram family; `scale` multiplies the sum (seconds observed, milliseconds written). */
function histogramText(family: FamilyInfo, rows: readonly HistogramRow[], projection: Projection, scale = 1): string {
  const name = family.name;
  const lines = [header(family, 'histogram')];
  for (const row of rows) {
    let cumulative = 0;
    let next = 0;
    for (let i = 0; i < row.buckets.length && next < projection.at.length; i++) {
      cumulative += row.buckets[i] as number;
      if (i === projection.at[next]) {
        lines.push(`${name}_bucket{le="${projection.le[next]}",${row.labels}} ${cumulative}`);
        next++;
      }
    }
    lines.push(`${name}_bucket{le="+Inf",${row.labels}} ${row.count}`);
    lines.push(`${name}_sum{${row.labels}} ${row.sum * scale}`);
    lines.push(`${name}_count{${row.labels}} ${row.count}`);
  }
  return lines.join('\n');
}

function counterJson(family: FamilyInfo, rows: readonly CounterRow[]): SeriesJson {
  return { name: family.name, help: family.help, type: 'counter', aggregator: 'sum', values: rows.map((row) => ({ labels: row.fields, value: row.value })) };
}

function histogramJson(family: FamilyInfo, rows: readonly HistogramRow[], projection: Projection, scale = 1): SeriesJson {
  const name = family.name;
  const out: SeriesJson = { name, help: family.help, type: 'histogram', aggregator: 'sum', values: [] };
  for (const row of rows) {
    let cumulative = 0;
    let next = 0;
    for (let i = 0; i < row.buckets.length && next < projection.at.length; i++) {
      cumulative += row.buckets[i] as number;
      if (i === projection.at[next]) {
        out.values.push({ labels: { ...row.fields, le: projection.leValues[next] as number }, value: cumulative, metricName: `${name}_bucket` });
        next++;
      }
    }
    out.values.push({ labels: { ...row.fields, le: '+Inf' }, value: row.count, metricName: `${name}_bucket` });
    out.values.push({ labels: row.fields, value: row.sum * scale, metricName: `${name}_sum` });
    out.values.push({ labels: row.fields, value: row.count, metricName: `${name}_count` });
  }
  return out;
}

/** The peer sets seen so far, by their label values, in the order they appeared. */
export class SeriesTable {
  private readonly root: Node = new Map();
  private readonly all: PeerSeries[] = [];
  private readonly layout: Layout;

  constructor(bounds: SeriesBounds) {
    this.layout = new Layout(bounds);
  }

  /** The series of a peer set; created on first use, found without allocating afterwards. */
  peers(reporter: Reporter, source: PeerInfo, destination: PeerInfo, mtls: boolean): PeerSeries {
    const sourceWorkload = labelValue(source.workload);
    const sourceNamespace = labelValue(source.namespace);
    // As Istio's: a principal is one a certificate proved, so only over mutual TLS (the access log
    // keeps the identities discovery expected on a plaintext hop).
    const sourcePrincipal = mtls ? labelValue(source.identity) : UNKNOWN;
    const sourceApp = labelValue(source.app);
    const sourceVersion = labelValue(source.version);
    const service = labelValue(destination.service);
    const workload = labelValue(destination.workload);
    const namespace = labelValue(destination.namespace);
    const principal = mtls ? labelValue(destination.identity) : UNKNOWN;
    const app = labelValue(destination.app);
    const version = labelValue(destination.version);
    const policy = mtls ? 'mutual_tls' : 'none';
    let node = child(child(child(child(child(this.root, reporter), policy), sourceWorkload), sourceNamespace), sourcePrincipal);
    node = child(child(child(child(child(child(node, sourceApp), sourceVersion), service), workload), namespace), principal);
    const leaf = child(node, app);
    let series = leaf.get(version) as PeerSeries | undefined;
    if (series === undefined) {
      const svc = serviceLabels(destination.service);
      series = new PeerSeries(
        {
          tsmesh: {
            reporter,
            source_workload: sourceWorkload,
            source_namespace: sourceNamespace,
            destination_service: service,
            destination_workload: workload,
            destination_namespace: namespace,
            connection_security_policy: policy,
          },
          istio: {
            reporter,
            source_workload: sourceWorkload,
            source_canonical_service: sourceApp !== UNKNOWN ? sourceApp : sourceWorkload,
            source_canonical_revision: sourceVersion !== UNKNOWN ? sourceVersion : 'latest',
            source_workload_namespace: sourceNamespace,
            source_principal: sourcePrincipal,
            source_app: sourceApp,
            source_version: sourceVersion,
            destination_workload: workload,
            destination_workload_namespace: namespace,
            destination_principal: principal,
            destination_app: app,
            destination_version: version,
            destination_service: svc.fqdn,
            destination_canonical_service: app !== UNKNOWN ? app : workload,
            destination_canonical_revision: version !== UNKNOWN ? version : 'latest',
            destination_service_name: svc.name,
            destination_service_namespace: svc.namespace,
          },
        },
        this.layout,
      );
      leaf.set(version, series);
      this.all.push(series);
    }
    return series;
  }

  private cells(): RequestCell[] {
    const cells: RequestCell[] = [];
    for (const series of this.all) for (const cell of series.requests.values()) cells.push(cell);
    return cells;
  }

  /** Every family of the table as Prometheus text, tsmesh's then Istio's. */
  render(f: SeriesFamilies): string[] {
    return this.write(f, { counter: counterText, histogram: histogramText });
  }

  /**
   * The same families in prom-client's `getMetricsAsJSON()` shape, so several event loops' tables
   * merge exactly (AggregatorRegistry, `sum`).
   */
  json(f: SeriesFamilies): SeriesJson[] {
    return this.write(f, { counter: counterJson, histogram: histogramJson });
  }

  /** Every family of the table, in order, through one writer (text or JSON). */
  private write<T>(f: SeriesFamilies, out: FamilyWriter<T>): T[] {
    const layout = this.layout;
    const cells = this.cells();
    const tsmesh = summedRequests(cells, layout.union.length);
    const istio: HistogramRow[] = cells.map((c) => ({ labels: c.istioLabels, fields: c.istioFields, buckets: c.durations, count: c.count, sum: c.sum }));
    const counts = (rows: readonly HistogramRow[]): CounterRow[] => rows.map((row) => ({ labels: row.labels, fields: row.fields, value: row.count }));
    return [
      out.counter(f.requests, counts(tsmesh)),
      out.histogram(f.requestDuration, tsmesh, layout.tsmesh),
      out.counter(f.tcpOpened, summedTcp(this.all, (s) => s.tcpOpened)),
      out.counter(f.tcpClosed, summedTcp(this.all, (s) => s.tcpClosed)),
      out.counter(f.tcpSentBytes, summedTcp(this.all, (s) => s.tcpSent)),
      out.counter(f.tcpReceivedBytes, summedTcp(this.all, (s) => s.tcpReceived)),
      out.counter(f.istioRequests, counts(istio)),
      out.histogram(f.istioRequestDuration, istio, layout.istio, 1000),
      out.histogram(f.istioRequestBytes, cells.map((c) => ({ labels: c.istioLabels, fields: c.istioFields, buckets: c.requestSizes, count: c.count, sum: c.requestBytes })), layout.bytes),
      out.histogram(f.istioResponseBytes, cells.map((c) => ({ labels: c.istioLabels, fields: c.istioFields, buckets: c.responseSizes, count: c.count, sum: c.responseBytes })), layout.bytes),
      out.counter(f.istioTcpOpened, istioTcp(this.all, (s) => s.tcpOpened)),
      out.counter(f.istioTcpClosed, istioTcp(this.all, (s) => s.tcpClosed)),
      out.counter(f.istioTcpSentBytes, istioTcp(this.all, (s) => s.tcpSent)),
      out.counter(f.istioTcpReceivedBytes, istioTcp(this.all, (s) => s.tcpReceived)),
    ];
  }
}
