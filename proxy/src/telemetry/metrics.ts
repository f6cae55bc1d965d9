// The proxy's Prometheus metrics (served at :15020/metrics): request and TCP metrics with the
// labels SPEC fixes, a few proxy-health metrics, and the process's default metrics under their
// standard names (`process_*`, `nodejs_*`: the scrape target already says it is the sidecar), all
// on a registry owned by one ProxyMetrics (never prom-client's global one).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Direction, PeerInfo, Reporter } from './types.js';

export const METRIC_NAMES = {
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
  loopConnections: 'tsmesh_proxy_loop_connections_total',
  loopRestarts: 'tsmesh_proxy_loop_restarts_total',
} as const;

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

/** Request latency buckets in seconds: 0.5 ms (a local hop) to 30 s (a long call or a timeout). */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

export const UNKNOWN = 'unknown';
// Kubernetes names are at most 253 characters; anything longer is not a name we should trust.
const MAX_LABEL_LENGTH = 253;

type TcpLabels = Record<(typeof TCP_LABELS)[number], string>;
type RequestLabels = Record<(typeof REQUEST_LABELS)[number], string>;

/** A metric label value: missing or empty becomes `unknown`; overlong values are cut. */
export function labelValue(value: string | undefined): string {
  if (value === undefined || value === '') return UNKNOWN;
  return value.length > MAX_LABEL_LENGTH ? value.slice(0, MAX_LABEL_LENGTH) : value;
}

/** `response_code`: the HTTP status sent downstream, `0` when none was (reset, client gone). */
export function responseCodeLabel(status: number | undefined): string {
  if (status === undefined || status === 0) return '0';
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : UNKNOWN;
}

/** `grpc_status`: empty for non-gRPC requests; a gRPC request without a status is `unknown`. */
export function grpcStatusLabel(grpc: boolean, status: number | undefined): string {
  if (!grpc) return '';
  return status !== undefined && Number.isInteger(status) && status >= 0 && status <= 16 ? String(status) : UNKNOWN;
}

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

export class ProxyMetrics {
  /** The registry behind `render()`; register other proxy metrics here. */
  readonly registry: Registry;
  private readonly requests: Counter<(typeof REQUEST_LABELS)[number]>;
  private readonly duration: Histogram<(typeof REQUEST_LABELS)[number]>;
  private readonly tcpOpened: Counter<(typeof TCP_LABELS)[number]>;
  private readonly tcpClosed: Counter<(typeof TCP_LABELS)[number]>;
  private readonly tcpSent: Counter<(typeof TCP_LABELS)[number]>;
  private readonly tcpReceived: Counter<(typeof TCP_LABELS)[number]>;
  private readonly detectTimeouts: Counter<'direction'>;
  private readonly connectFailures: Counter<'destination_service'>;
  private readonly h2Protections: Counter<'direction' | 'kind'>;
  private readonly certExpiry: Gauge<'identity'>;
  private readonly loopConnections: Counter<'loop' | 'direction'>;
  private readonly loopRestarts: Counter<'loop'>;

  constructor(options: ProxyMetricsOptions = {}) {
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];
    this.requests = new Counter({
      name: METRIC_NAMES.requests,
      help: 'Requests handled by the proxy, counted when they end.',
      labelNames: REQUEST_LABELS,
      registers,
    });
    this.duration = new Histogram({
      name: METRIC_NAMES.requestDuration,
      help: 'Duration of requests handled by the proxy, from the first byte of the request to the end of the response.',
      labelNames: REQUEST_LABELS,
      buckets: [...DURATION_BUCKETS],
      registers,
    });
    this.tcpOpened = new Counter({
      name: METRIC_NAMES.tcpOpened,
      help: 'Opaque TCP connections opened.',
      labelNames: TCP_LABELS,
      registers,
    });
    this.tcpClosed = new Counter({
      name: METRIC_NAMES.tcpClosed,
      help: 'Opaque TCP connections closed.',
      labelNames: TCP_LABELS,
      registers,
    });
    this.tcpSent = new Counter({
      name: METRIC_NAMES.tcpSentBytes,
      help: 'Bytes of opaque TCP connections sent towards the side that opened the connection (responses).',
      labelNames: TCP_LABELS,
      registers,
    });
    this.tcpReceived = new Counter({
      name: METRIC_NAMES.tcpReceivedBytes,
      help: 'Bytes of opaque TCP connections received from the side that opened the connection (requests).',
      labelNames: TCP_LABELS,
      registers,
    });
    this.detectTimeouts = new Counter({
      name: METRIC_NAMES.detectTimeouts,
      help: 'Connections whose protocol detection timed out (then treated as opaque TCP).',
      labelNames: ['direction'],
      registers,
    });
    this.connectFailures = new Counter({
      name: METRIC_NAMES.connectFailures,
      help: 'Failed attempts to connect to an upstream endpoint (refused, timed out, TLS handshake failed).',
      labelNames: ['destination_service'],
      registers,
    });
    this.h2Protections = new Counter({
      name: METRIC_NAMES.h2Protections,
      help: 'What the HTTP/2 codec refused or cut, by kind (rapid_reset, continuation_flood, header_list_too_large, control_flood, ...).',
      labelNames: ['direction', 'kind'],
      registers,
    });
    this.certExpiry = new Gauge({
      name: METRIC_NAMES.certExpiry,
      help: 'When the workload certificate in use expires, in seconds since the Unix epoch; absent without one.',
      // Labelled so that no series exists before the first certificate (an unlabelled gauge would read 0).
      labelNames: ['identity'],
      registers,
    });
    this.loopConnections = new Counter({
      name: METRIC_NAMES.loopConnections,
      help: 'Connections accepted on the capture ports, by the event loop that accepted them (--concurrency) and direction.',
      labelNames: ['loop', 'direction'],
      registers,
    });
    this.loopRestarts = new Counter({
      name: METRIC_NAMES.loopRestarts,
      help: 'Event loops (worker threads, --concurrency 2 and more) restarted after they ended unexpectedly.',
      labelNames: ['loop'],
      registers,
    });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  }

  /** The Content-Type of `render()`'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts one finished request and observes its duration. */
  recordRequest(sample: RequestSample): void {
    const labels: RequestLabels = {
      reporter: sample.reporter,
      source_workload: labelValue(sample.source.workload),
      source_namespace: labelValue(sample.source.namespace),
      destination_service: labelValue(sample.destination.service),
      destination_workload: labelValue(sample.destination.workload),
      destination_namespace: labelValue(sample.destination.namespace),
      response_code: responseCodeLabel(sample.responseCode),
      grpc_status: grpcStatusLabel(sample.grpc, sample.grpcStatus),
      connection_security_policy: sample.mtls ? 'mutual_tls' : 'none',
    };
    this.requests.inc(labels);
    this.duration.observe(labels, sample.durationSeconds >= 0 ? sample.durationSeconds : 0);
  }

  /** Counts a TCP connection as opened; the returned handle records its bytes and its close. */
  tcpConnection(peers: CallPeers): TcpConnectionMetrics {
    const labels: TcpLabels = {
      reporter: peers.reporter,
      source_workload: labelValue(peers.source.workload),
      source_namespace: labelValue(peers.source.namespace),
      destination_service: labelValue(peers.destination.service),
      destination_workload: labelValue(peers.destination.workload),
      destination_namespace: labelValue(peers.destination.namespace),
      connection_security_policy: peers.mtls ? 'mutual_tls' : 'none',
    };
    this.tcpOpened.inc(labels);
    return {
      bytes: (sent, received) => {
        if (sent > 0) this.tcpSent.inc(labels, sent);
        if (received > 0) this.tcpReceived.inc(labels, received);
      },
      closed: () => this.tcpClosed.inc(labels),
    };
  }

  /** Counts a protocol detection that timed out. */
  protocolDetectTimeout(direction: Direction): void {
    this.detectTimeouts.inc({ direction });
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

  /** The Prometheus text exposition of every metric in the registry. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
