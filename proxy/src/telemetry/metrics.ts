// The proxy's Prometheus metrics (served at :15020/metrics): request and TCP metrics with the
// labels SPEC fixes, a few proxy-health metrics, and the process's default metrics under their
// standard names (`process_*`, `nodejs_*`: the scrape target already says it is the sidecar).
// The per-request and per-connection metrics live in a series table that records without
// allocating (series.ts); the rest are prom-client metrics on a registry owned by one
// ProxyMetrics (never prom-client's global one). `render()` writes both.
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ResponseFlag } from './flags.js';
import { SeriesTable, flagBits, labelValue, type PeerSeries, type SeriesFamilies } from './series.js';
import type { Direction, PeerInfo, Reporter } from './types.js';

export {
  ISTIO_REQUEST_LABELS,
  ISTIO_TCP_LABELS,
  REQUEST_LABELS,
  SERVICE_DOMAIN,
  TCP_LABELS,
  UNKNOWN,
  grpcStatusLabel,
  labelValue,
  responseCodeLabel,
  serviceLabels,
} from './series.js';

export const METRIC_NAMES = {
  buildInfo: 'tsmesh_build_info',
  requests: 'tsmesh_requests_total',
  requestDuration: 'tsmesh_request_duration_seconds',
  tcpOpened: 'tsmesh_tcp_opened_total',
  tcpClosed: 'tsmesh_tcp_closed_total',
  tcpSentBytes: 'tsmesh_tcp_sent_bytes_total',
  tcpReceivedBytes: 'tsmesh_tcp_received_bytes_total',
  detectTimeouts: 'tsmesh_protocol_detect_timeouts_total',
  h2Protections: 'tsmesh_h2_protection_total',
  certExpiry: 'tsmesh_workload_cert_expiry_timestamp_seconds',
  connectFailures: 'tsmesh_upstream_connect_failures_total',
  retries: 'tsmesh_upstream_retries_total',
  overflows: 'tsmesh_upstream_overflow_total',
  zonePicks: 'tsmesh_upstream_zone_picks_total',
  loopConnections: 'tsmesh_proxy_loop_connections_total',
  loopRestarts: 'tsmesh_proxy_loop_restarts_total',
  policyDenials: 'tsmesh_policy_denials_total',
  authzDecisions: 'tsmesh_authz_decisions_total',
  rateLimitDecisions: 'tsmesh_ratelimit_decisions_total',
  rateLimitLocalBuckets: 'tsmesh_ratelimit_local_buckets_total',
  routeMirrors: 'tsmesh_route_mirror_total',
} as const;

/**
 * Istio's standard metric names, written from the same cells as tsmesh's request and TCP metrics
 * with Istio's labels, so Istio's Grafana dashboards and Kiali read them as they are.
 */
export const ISTIO_METRIC_NAMES = {
  requests: 'istio_requests_total',
  requestDuration: 'istio_request_duration_milliseconds',
  requestBytes: 'istio_request_bytes',
  responseBytes: 'istio_response_bytes',
  tcpOpened: 'istio_tcp_connections_opened_total',
  tcpClosed: 'istio_tcp_connections_closed_total',
  tcpSentBytes: 'istio_tcp_sent_bytes_total',
  tcpReceivedBytes: 'istio_tcp_received_bytes_total',
} as const;

/** What is running: the `tsmesh_build_info` labels and the admin server's `/server_info`. */
export interface BuildInfo {
  readonly component: 'proxy';
  /** The proxy package's version (its package.json, shipped beside dist/; "unknown" without it). */
  readonly version: string;
  /** The Node.js version, e.g. v24.9.0. */
  readonly node: string;
}

function ownVersion(): string {
  try {
    // src/telemetry/ and dist/telemetry/ are both two levels below the package root.
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof version === 'string' && version !== '' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const BUILD_INFO: BuildInfo = Object.freeze({ component: 'proxy', version: ownVersion(), node: process.version });

/**
 * Why a connection or request was refused (the `reason` label of tsmesh_policy_denials_total):
 * `mtls_required` plaintext (or TLS that is not mesh mTLS) on a STRICT port; `mtls_unavailable`
 * mesh mTLS offered on a STRICT port of a sidecar without identity; `mtls_handshake` a mesh mTLS
 * handshake that failed (no or bad client certificate, wrong version); `incomplete_http` an HTTP
 * request line begun and not finished in time, which the sidecar will not pass on unparsed;
 * `authz_denied` a TCP connection an AuthorizationPolicy refused (reset before a byte reached the app).
 */
export type DenialReason = 'mtls_required' | 'mtls_unavailable' | 'mtls_handshake' | 'incomplete_http' | 'authz_denied';

/** Decisions counted since the counter was last read. */
/** One cluster's picks in and out of the caller's zone: plain numbers the balancer increments. */
export interface ZonePicks {
  local: number;
  crossZone: number;
}

class RateLimitTally {
  n = 0;
  constructor(readonly labels: { readonly decision: string; readonly policy: string; readonly reason: string }) {}
  inc(): void {
    this.n++;
  }
}

/** Request latency buckets in seconds: 0.5 ms (a local hop) to 30 s (a long call or a timeout). */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

/**
 * Istio's histogram bounds (Envoy's defaults), used by `istio_request_duration_milliseconds` (in
 * ms) and by `istio_request_bytes`/`istio_response_bytes` (in bytes), as Istio's proxies use them.
 */
export const ISTIO_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
]);

/** The labels shared by both sides of a call. */
export interface CallPeers {
  readonly reporter: Reporter;
  readonly source: PeerInfo;
  readonly destination: PeerInfo;
  /** Whether the mesh hop (proxy to proxy) used mutual TLS. */
  readonly mtls: boolean;
}

/** One finished HTTP or gRPC request. */
export interface RequestSample extends CallPeers {
  /** The status sent downstream; `undefined` when no response was sent. */
  readonly responseCode: number | undefined;
  readonly grpc: boolean;
  readonly grpcStatus: number | undefined;
  readonly durationSeconds: number;
  /** Why it ended as it did (Istio's `response_flags`). */
  readonly flags?: readonly ResponseFlag[] | undefined;
  /** Body bytes received from the downstream (`istio_request_bytes`). */
  readonly requestBytes?: number | undefined;
  /** Body bytes sent to the downstream (`istio_response_bytes`). */
  readonly responseBytes?: number | undefined;
}

/** The TCP metrics of one connection, labels computed once. */
export interface TcpConnectionMetrics {
  /** Adds to the byte counters (deltas, not totals). `sent` goes to the downstream, `received` comes from it. */
  bytes(sent: number, received: number): void;
  /** Counts the connection as closed. */
  closed(): void;
}

export interface ProxyMetricsOptions {
  /** Collect the process's default metrics (standard `process_*` and `nodejs_*` names). Default true. */
  readonly defaultMetrics?: boolean;
}

const HELP = {
  requests: 'Requests handled by the proxy, counted when they end.',
  requestDuration: 'Duration of requests handled by the proxy, from the first byte of the request to the end of the response.',
  tcpOpened: 'Opaque TCP connections opened.',
  tcpClosed: 'Opaque TCP connections closed.',
  tcpSentBytes: 'Bytes of opaque TCP connections sent towards the side that opened the connection (responses).',
  tcpReceivedBytes: 'Bytes of opaque TCP connections received from the side that opened the connection (requests).',
} as const;

const ISTIO_HELP = {
  requests: 'Requests handled by the proxy, counted when they end, with Istio\'s standard labels.',
  requestDuration: 'Duration of requests in milliseconds, from the first byte of the request to the end of the response, with Istio\'s standard labels.',
  requestBytes: 'Request body sizes in bytes, with Istio\'s standard labels.',
  responseBytes: 'Response body sizes in bytes, with Istio\'s standard labels.',
  tcpOpened: 'Opaque TCP connections opened, with Istio\'s standard labels.',
  tcpClosed: 'Opaque TCP connections closed, with Istio\'s standard labels.',
  tcpSentBytes: 'Bytes of opaque TCP connections sent towards the side that opened the connection, with Istio\'s standard labels.',
  tcpReceivedBytes: 'Bytes of opaque TCP connections received from the side that opened the connection, with Istio\'s standard labels.',
} as const;

function family(key: keyof typeof HELP): { name: string; help: string } {
  return { name: METRIC_NAMES[key], help: HELP[key] };
}

function istioFamily(key: keyof typeof ISTIO_HELP): { name: string; help: string } {
  return { name: ISTIO_METRIC_NAMES[key], help: ISTIO_HELP[key] };
}

const FAMILIES: SeriesFamilies = Object.freeze({
  requests: family('requests'),
  requestDuration: family('requestDuration'),
  tcpOpened: family('tcpOpened'),
  tcpClosed: family('tcpClosed'),
  tcpSentBytes: family('tcpSentBytes'),
  tcpReceivedBytes: family('tcpReceivedBytes'),
  istioRequests: istioFamily('requests'),
  istioRequestDuration: istioFamily('requestDuration'),
  istioRequestBytes: istioFamily('requestBytes'),
  istioResponseBytes: istioFamily('responseBytes'),
  istioTcpOpened: istioFamily('tcpOpened'),
  istioTcpClosed: istioFamily('tcpClosed'),
  istioTcpSentBytes: istioFamily('tcpSentBytes'),
  istioTcpReceivedBytes: istioFamily('tcpReceivedBytes'),
});

function bytesOf(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : 0;
}

export class ProxyMetrics {
  /** The registry of the proxy-health and process metrics; `render()` adds the request and TCP ones. */
  readonly registry: Registry;
  private readonly series = new SeriesTable({ durationSeconds: DURATION_BUCKETS, durationMs: ISTIO_BUCKETS, bytes: ISTIO_BUCKETS });
  private readonly buildInfo: Gauge<'component' | 'version' | 'node_version'>;
  private readonly detectTimeouts: Counter<'direction'>;
  private readonly connectFailures: Counter<'destination_service'>;
  private readonly retries: Counter<'destination_service' | 'protocol' | 'reason'>;
  private readonly overflows: Counter<'destination_service' | 'kind'>;
  private readonly h2Protections: Counter<'direction' | 'kind'>;
  private readonly denials: Counter<'reporter' | 'reason'>;
  private readonly authzDecisions: Counter<'decision' | 'policy' | 'reason' | 'protocol'>;
  private readonly rateLimitDecisions: Counter<'decision' | 'policy' | 'reason'>;
  private readonly rateLimitLocalBuckets: Counter;
  /** Per-request rate limit counts, kept as plain numbers and added to the counter when it is read. */
  private readonly rateLimitTallies = new Map<string, RateLimitTally>();
  private readonly mirrors: Counter<'destination_service' | 'result'>;
  private readonly zonePicks: Counter<'destination_service' | 'locality'>;
  /** Per cluster, the picks not yet added to the counter. */
  private readonly zoneTallies = new Map<string, ZonePicks>();
  private readonly certExpiry: Gauge<'identity'>;
  private readonly loopConnections: Counter<'loop' | 'direction'>;
  private readonly loopRestarts: Counter<'loop'>;

  constructor(options: ProxyMetricsOptions = {}) {
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];
    const counter = <L extends string>(name: string, labelNames: readonly L[], help: string, more: { collect?: () => void } = {}): Counter<L> =>
      new Counter({ name, help, labelNames, registers, ...more });
    this.buildInfo = new Gauge({
      name: METRIC_NAMES.buildInfo,
      help: 'Always 1: the running component, its tsmesh version and its Node.js version as labels.',
      labelNames: ['component', 'version', 'node_version'],
      // Every event loop has one; merged, the sidecar still says 1.
      aggregator: 'first',
      registers,
    });
    this.buildInfo.set({ component: BUILD_INFO.component, version: BUILD_INFO.version, node_version: BUILD_INFO.node }, 1);
    this.detectTimeouts = counter(METRIC_NAMES.detectTimeouts, ['direction'], 'Connections whose protocol detection timed out (silent ones are then opaque TCP; an unfinished HTTP request line is refused).');
    this.connectFailures = counter(METRIC_NAMES.connectFailures, ['destination_service'], 'Failed attempts to connect to an upstream endpoint (refused, timed out, TLS handshake failed).');
    this.retries = counter(METRIC_NAMES.retries, ['destination_service', 'protocol', 'reason'], 'Attempts sent again to an upstream after one failed, by protocol (http1, http2, tcp) and why the previous one failed (connect, reset, refused).');
    this.overflows = counter(METRIC_NAMES.overflows, ['destination_service', 'kind'], 'Requests failed fast, or retries not sent, because a cluster limit was reached (kind: max_requests, max_retries, retry_budget).');
    this.h2Protections = counter(METRIC_NAMES.h2Protections, ['direction', 'kind'], 'What the HTTP/2 codec refused or cut, by kind (rapid_reset, continuation_flood, header_list_too_large, control_flood, ...).');
    this.denials = counter(METRIC_NAMES.policyDenials, ['reporter', 'reason'], 'Connections and requests refused by policy (mTLS mode, a request the sidecar will not pass on unparsed), by reason.');
    this.authzDecisions = counter(METRIC_NAMES.authzDecisions, ['decision', 'policy', 'reason', 'protocol'], 'Inbound requests (protocol http) and connections (tcp) judged by AuthorizationPolicy: decision allow, deny or audit, the deciding policy (namespace/name, "none" when no ALLOW policy matched) and the reason.');
    this.rateLimitDecisions = counter(METRIC_NAMES.rateLimitDecisions, ['decision', 'policy', 'reason'], 'Inbound HTTP requests judged by an HTTPLocalRateLimitPolicy (namespace/name): decision admitted (reason within_limit) or limited (answered 429 / RESOURCE_EXHAUSTED), reason the bucket that refused: total, identity or override.', { collect: () => this.flushRateLimits() });
    this.rateLimitLocalBuckets = counter(METRIC_NAMES.rateLimitLocalBuckets, [], 'Rate limit buckets kept by one event loop alone because the shared bucket table was full (each such bucket admits its limit per loop).');
    this.mirrors = counter(METRIC_NAMES.routeMirrors, ['destination_service', 'result'], 'Copies of requests sent by RequestMirror route filters, by mirror Service and outcome (sent: answered; failed: no endpoint, refused, reset or timed out; abandoned: body over the bound or request not finished).');
    this.zonePicks = counter(METRIC_NAMES.zonePicks, ['destination_service', 'locality'], 'Endpoints picked for a Service port while the sidecar knows its zone: locality local (in its zone, or hinted for it) or cross_zone (failover or spill from a degraded zone).', { collect: () => this.flushZonePicks() });
    this.certExpiry = new Gauge({
      name: METRIC_NAMES.certExpiry,
      help: 'When the workload certificate in use expires, in seconds since the Unix epoch; absent without one.',
      // Labelled so that no series exists before the first certificate (an unlabelled gauge would read 0).
      labelNames: ['identity'],
      registers,
    });
    this.loopConnections = counter(METRIC_NAMES.loopConnections, ['loop', 'direction'], 'Connections accepted on the capture ports, by the event loop that accepted them (--concurrency) and direction.');
    this.loopRestarts = counter(METRIC_NAMES.loopRestarts, ['loop'], 'Event loops (worker threads, --concurrency 2 and more) restarted after they ended unexpectedly.');
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  }

  /** The Content-Type of `render()`'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts one finished request and observes its duration and sizes. Allocates nothing once its labels were seen. */
  recordRequest(sample: RequestSample): void {
    const seconds = sample.durationSeconds;
    this.series
      .peers(sample.reporter, sample.source, sample.destination, sample.mtls)
      .request(
        sample.responseCode,
        sample.grpc,
        sample.grpcStatus,
        flagBits(sample.flags),
        Number.isFinite(seconds) && seconds > 0 ? seconds : 0,
        bytesOf(sample.requestBytes),
        bytesOf(sample.responseBytes),
      );
  }

  /** Counts a TCP connection as opened; the returned handle (shared by its peer set) records its bytes and its close. */
  tcpConnection(peers: CallPeers): TcpConnectionMetrics {
    const series: PeerSeries = this.series.peers(peers.reporter, peers.source, peers.destination, peers.mtls);
    series.tcpOpened++;
    return series;
  }

  /** Counts a protocol detection that timed out. */
  protocolDetectTimeout(direction: Direction): void {
    this.detectTimeouts.inc({ direction });
  }

  /** Counts one connection or request refused by policy, on the `reporter` side. */
  policyDenied(reporter: Reporter, reason: DenialReason): void {
    this.denials.inc({ reporter, reason });
  }

  /** Counts one AuthorizationPolicy verdict on a workload that has policies. */
  authzDecision(decision: 'allow' | 'deny' | 'audit', policy: string | undefined, reason: string, protocol: 'http' | 'tcp'): void {
    this.authzDecisions.inc({ decision, policy: policy ?? 'none', reason, protocol });
  }

  /**
   * The counter of one rate limit policy's decisions with one reason: asked once per snapshot,
   * incremented per request without allocating (a plain number, added to the metric when it is read).
   */
  rateLimitCounter(policy: string, decision: 'admitted' | 'limited', reason: string): { inc(): void } {
    const key = `${decision}\0${policy}\0${reason}`;
    let tally = this.rateLimitTallies.get(key);
    if (tally === undefined) {
      tally = new RateLimitTally({ decision, policy, reason });
      this.rateLimitTallies.set(key, tally);
    }
    return tally;
  }

  /**
   * The tally of `cluster`'s picks: the balancer increments its fields per pick without allocating;
   * they are added to the counter when it is read. The same object for the same cluster.
   */
  zonePickTally(cluster: string): ZonePicks {
    let tally = this.zoneTallies.get(cluster);
    if (tally === undefined) this.zoneTallies.set(cluster, (tally = { local: 0, crossZone: 0 }));
    return tally;
  }

  private flushZonePicks(): void {
    for (const [cluster, tally] of this.zoneTallies) {
      const destination = labelValue(cluster);
      if (tally.local > 0) this.zonePicks.inc({ destination_service: destination, locality: 'local' }, tally.local);
      if (tally.crossZone > 0) this.zonePicks.inc({ destination_service: destination, locality: 'cross_zone' }, tally.crossZone);
      tally.local = 0;
      tally.crossZone = 0;
    }
  }

  private flushRateLimits(): void {
    for (const tally of this.rateLimitTallies.values()) {
      if (tally.n === 0) continue;
      this.rateLimitDecisions.inc(tally.labels, tally.n);
      tally.n = 0;
    }
  }

  /** Counts one bucket kept by this loop alone (the shared table was full). */
  rateLimitLocalBucket(): void {
    this.rateLimitLocalBuckets.inc();
  }

  /** Counts one RequestMirror copy of a request to `destinationService` (`namespace/name:port`) by its outcome. */
  routeMirror(destinationService: string, result: string): void {
    this.mirrors.inc({ destination_service: labelValue(destinationService), result });
  }

  /** Counts one action of an HTTP/2 protection (limits.ts) on the `direction` side. */
  h2Protection(direction: string, kind: string): void {
    this.h2Protections.inc({ direction, kind });
  }

  /** Counts a connection accepted on a capture port by event loop `loop`. */
  loopConnection(loop: number, direction: Direction): void {
    this.loopConnections.inc({ loop: String(loop), direction });
  }

  /** Counts a restart of event loop `loop` after it ended unexpectedly. */
  loopRestart(loop: number): void {
    this.loopRestarts.inc({ loop: String(loop) });
  }

  /** Counts one failed attempt to connect to an endpoint of `destinationService`. */
  upstreamConnectFailure(destinationService: string | undefined): void {
    this.connectFailures.inc({ destination_service: labelValue(destinationService) });
  }

  /** Counts one attempt made again to an endpoint of `destinationService` after `reason`. */
  upstreamRetry(destinationService: string | undefined, protocol: string, reason: string): void {
    this.retries.inc({ destination_service: labelValue(destinationService), protocol, reason });
  }

  /** Counts one request failed fast or one retry not sent because of a cluster limit. */
  upstreamOverflow(destinationService: string | undefined, kind: string): void {
    this.overflows.inc({ destination_service: labelValue(destinationService), kind });
  }

  /**
   * Publishes when the workload certificate in use expires, labelled with its SPIFFE ID; with
   * `undefined` the series disappears (no certificate). Replaces any earlier value.
   */
  setCertExpiry(notAfter: Date | undefined, identity?: string): void {
    this.certExpiry.reset();
    if (notAfter !== undefined) {
      this.certExpiry.set({ identity: labelValue(identity) }, Math.floor(notAfter.getTime() / 1000));
    }
  }

  /**
   * Every metric, request and TCP series included, in prom-client's `getMetricsAsJSON()` shape:
   * what an event loop sends the main thread, which merges the loops into one `/metrics`.
   */
  async json(): Promise<Awaited<ReturnType<Registry['getMetricsAsJSON']>>> {
    const own = this.series.json(FAMILIES);
    return [...(own as unknown as Awaited<ReturnType<Registry['getMetricsAsJSON']>>), ...(await this.registry.getMetricsAsJSON())];
  }

  /** The Prometheus text exposition: the request and TCP metrics (tsmesh's, then Istio's), then every metric in the registry. */
  async render(): Promise<string> {
    return `${this.series.render(FAMILIES).join('\n\n')}\n\n${await this.registry.metrics()}`;
  }
}
