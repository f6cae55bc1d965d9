// The one telemetry facade the data path calls: `startRequest` when a request's headers arrive,
// `response` when its response does, `end` when it is done; `startTcp`/`end` for an opaque
// connection; `denied` for one refused by policy. Each finished request or connection is recorded
// exactly once in metrics, a span and the access log. Nothing here throws into the caller:
// failures are logged (rate-limited).
import { logger, type Logger } from '@tsmesh/common';
import type { Attributes } from '@opentelemetry/api';
import { AccessLog } from './access-log.js';
import { ATTR, pathOnly, peerAttributes, requestAttributes, requestSpanName, tcpAttributes } from './attributes.js';
import { b3StyleOf, extract, inject, type HeaderSource } from './context.js';
import { formatFlags, type ResponseFlag } from './flags.js';
import { RateLimitedLog } from './log-limit.js';
import type { CallPeers, DenialReason, ProxyMetrics } from './metrics.js';
import { ProxyTracer, type SpanHandle } from './tracing.js';
import { directionOf, type Direction, type HttpProtocol, type PeerInfo } from './types.js';

/** Who is on each side of a request or connection, and which sidecar reports it. */
export interface ConnectionPeers extends CallPeers {
  /** Defaults from `reporter` (`source` in the outbound, calling, sidecar; `destination` in the inbound one). */
  readonly direction?: Direction | undefined;
  /** The downstream peer, `ip:port`. */
  readonly downstream?: string | undefined;
}

/** A request as the data path sees it when its headers arrive. */
export interface RequestInfo extends ConnectionPeers {
  readonly method: string;
  /** `:authority` or `Host`. */
  readonly authority: string;
  /** `:path` or the request target, query included (it is stripped before it is recorded). */
  readonly path: string;
  readonly protocol: HttpProtocol;
  /** The request's headers (lowercase names), for the incoming trace context. */
  readonly headers: HeaderSource;
  /** What is known before the upstream is picked; `end` may add the endpoint's workload. */
  readonly destination: PeerInfo;
  /** Whether the mesh hop uses mutual TLS (inbound: the connection it came on; outbound: the one it leaves on). */
  readonly mtls: boolean;
}

/** How a request ended. Byte counts are body bytes: `sent` to the downstream, `received` from it. */
export interface RequestEnd {
  readonly bytesSent?: number | undefined;
  readonly bytesReceived?: number | undefined;
  /** The endpoint the request went to, `ip:port`. */
  readonly upstream?: string | undefined;
  /** Destination fields learned after `startRequest` (the picked endpoint's workload); merged over it. */
  readonly destination?: PeerInfo | undefined;
  readonly flags?: readonly ResponseFlag[] | undefined;
  /** The failure that ended the request, if any (marks the span as an error). */
  readonly error?: unknown;
  /** Outbound: whether the picked endpoint was reached over mutual TLS (overrides the start's value). */
  readonly mtls?: boolean | undefined;
  /** Upstream attempts made, retries included (the access log's `attempts`). */
  readonly attempts?: number | undefined;
}

export interface RequestRecord {
  /** The request's trace id (also written in the access log). */
  readonly traceId: string;
  /**
   * The trace headers to set on the forwarded request: W3C and B3 (multi when the request came
   * with `x-b3-*`, single otherwise), naming this proxy's span as the parent. Remove every name
   * in `TRACE_HEADERS` from the forwarded request before setting these.
   */
  upstreamHeaders(): Readonly<Record<string, string>>;
  /**
   * The response status sent downstream (also when the proxy answers itself). Call again with the
   * trailers' `grpc-status`; the last value wins.
   */
  response(status: number | undefined, grpcStatus?: number | string): void;
  /**
   * Where routing sent the request: the cluster's name (`namespace/service:port`) and the route
   * rule that matched (`namespace/route#rule`), for the access log. Stores the two strings given.
   */
  route(cluster: string, routeName: string | undefined): void;
  /** Records the request in metrics, its span and the access log. Only the first call counts. */
  end(result?: RequestEnd): void;
}

/** An opaque TCP connection, known once its upstream is picked. */
export interface TcpInfo extends ConnectionPeers {
  /** The endpoint connected to, `ip:port`. */
  readonly upstream?: string | undefined;
}

/** Byte totals of a connection so far: `sent` to the downstream, `received` from it. */
export interface TcpTotals {
  readonly sent: number;
  readonly received: number;
}

export interface TcpEnd extends TcpTotals {
  readonly flags?: readonly ResponseFlag[] | undefined;
  readonly error?: unknown;
}

export interface TcpRecord {
  /** The connection span's trace id, when the connection is traced. */
  readonly traceId: string | undefined;
  /** Publishes the byte totals so far (long-lived connections); only the growth is counted. */
  progress(totals: TcpTotals): void;
  /** Records the close with the final totals. Only the first call counts. */
  end(result: TcpEnd): void;
}

/** A connection the sidecar refused before forwarding anything (mTLS policy, unparsable HTTP). */
export interface DenialInfo extends ConnectionPeers {
  readonly reason: DenialReason;
  /** `RBAC` for a policy refusal, `DPE` for a request the sidecar would not pass on unparsed. */
  readonly flags: readonly ResponseFlag[];
  /** How long the connection was held before the refusal. */
  readonly durationMs?: number | undefined;
}

export interface RequestTelemetryOptions {
  readonly metrics: ProxyMetrics;
  /** Default: a ProxyTracer on the global API tracer at sample rate 1. */
  readonly tracer?: ProxyTracer;
  /** Default: none written (the sidecar's default, TSMESH_ACCESS_LOG=off). */
  readonly accessLog?: AccessLog;
  /** Monotonic milliseconds; default `performance.now`. */
  readonly now?: () => number;
  /** Where telemetry's own failures go; default `telemetry` component logger. */
  readonly log?: Logger;
}

const FAILURE_LOG_INTERVAL_MS = 10_000;

function mergePeer(base: PeerInfo, update: PeerInfo | undefined): PeerInfo {
  if (update === undefined) return base;
  return {
    workload: update.workload ?? base.workload,
    namespace: update.namespace ?? base.namespace,
    service: update.service ?? base.service,
    identity: update.identity ?? base.identity,
    app: update.app ?? base.app,
    version: update.version ?? base.version,
  };
}

function grpcCode(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : Number.parseInt(value, 10);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** One request header's value for the access log (the first, for a repeated one); read only when the log is on. */
function headerOf(headers: HeaderSource, name: string): string | undefined {
  const value = typeof headers === 'function' ? headers(name) : headers[name];
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.length > 0 ? String(value[0]) : undefined;
  return String(value);
}

const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

const NOOP_REQUEST: RequestRecord = Object.freeze({
  traceId: '',
  upstreamHeaders: () => EMPTY_HEADERS,
  response: () => undefined,
  route: () => undefined,
  end: () => undefined,
});

const NOOP_TCP: TcpRecord = Object.freeze({
  traceId: undefined,
  progress: () => undefined,
  end: () => undefined,
});

class Request implements RequestRecord {
  private status: number | undefined;
  private grpcStatus: number | undefined;
  private headers: Readonly<Record<string, string>> | undefined;
  private ended = false;
  cluster: string | undefined;
  routeName: string | undefined;
  /** Read when the request starts (its header storage may be reused later), only if the access log is on. */
  requestId: string | undefined;
  userAgent: string | undefined;

  constructor(
    private readonly owner: Recorder,
    private readonly info: RequestInfo,
    private readonly span: SpanHandle,
    private readonly startedAt: number,
  ) {}

  get traceId(): string {
    return this.span.context.traceId;
  }

  upstreamHeaders(): Readonly<Record<string, string>> {
    try {
      this.headers ??= Object.freeze(inject({}, this.span.context, b3StyleOf(this.info.headers)));
      return this.headers;
    } catch (error) {
      this.owner.failed('upstreamHeaders', error);
      return EMPTY_HEADERS;
    }
  }

  response(status: number | undefined, grpcStatus?: number | string): void {
    if (this.ended) return;
    try {
      if (status !== undefined) this.status = status;
      const code = grpcCode(grpcStatus);
      if (code !== undefined) this.grpcStatus = code;
      this.span.setResponse(this.status, this.grpcStatus);
    } catch (error) {
      this.owner.failed('response', error);
    }
  }

  route(cluster: string, routeName: string | undefined): void {
    this.cluster = cluster;
    this.routeName = routeName;
  }

  end(result: RequestEnd = {}): void {
    if (this.ended) return;
    this.ended = true;
    try {
      this.owner.finishRequest(this.info, this.span, this.startedAt, this.status, this.grpcStatus, result, this);
    } catch (error) {
      this.owner.failed('end', error);
    }
  }
}

class TcpConnection implements TcpRecord {
  private counted: TcpTotals = { sent: 0, received: 0 };
  private ended = false;

  constructor(
    private readonly owner: Recorder,
    private readonly info: TcpInfo,
    private readonly metrics: ReturnType<ProxyMetrics['tcpConnection']>,
    private readonly span: SpanHandle | undefined,
    private readonly startedAt: number,
  ) {}

  get traceId(): string | undefined {
    return this.span?.context.traceId;
  }

  progress(totals: TcpTotals): void {
    if (this.ended) return;
    try {
      this.count(totals);
    } catch (error) {
      this.owner.failed('tcp.progress', error);
    }
  }

  end(result: TcpEnd): void {
    if (this.ended) return;
    this.ended = true;
    try {
      this.count(result);
      this.metrics.closed();
      this.owner.finishTcp(this.info, this.span, this.startedAt, result);
    } catch (error) {
      this.owner.failed('tcp.end', error);
    }
  }

  private count(totals: TcpTotals): void {
    const sent = Math.max(0, totals.sent - this.counted.sent);
    const received = Math.max(0, totals.received - this.counted.received);
    if (sent === 0 && received === 0) return;
    this.metrics.bytes(sent, received);
    this.counted = { sent: this.counted.sent + sent, received: this.counted.received + received };
  }
}

/** What records finish through: the shared sinks, kept out of RequestTelemetry's public surface. */
class Recorder {
  private readonly failures: RateLimitedLog;

  constructor(
    readonly metrics: ProxyMetrics,
    readonly tracer: ProxyTracer,
    readonly accessLog: AccessLog,
    readonly now: () => number,
    log: Logger,
  ) {
    this.failures = new RateLimitedLog(log, FAILURE_LOG_INTERVAL_MS);
  }

  /** Called once by a request's `end`. */
  finishRequest(
    info: RequestInfo,
    span: SpanHandle,
    startedAt: number,
    status: number | undefined,
    grpcStatus: number | undefined,
    result: RequestEnd,
    routed: {
      readonly cluster: string | undefined;
      readonly routeName: string | undefined;
      readonly requestId: string | undefined;
      readonly userAgent: string | undefined;
    },
  ): void {
    const durationMs = Math.max(0, this.now() - startedAt);
    const destination = mergePeer(info.destination, result.destination);
    const grpc = info.protocol === 'grpc';
    const mtls = result.mtls ?? info.mtls;
    this.metrics.recordRequest({
      reporter: info.reporter,
      source: info.source,
      destination,
      mtls,
      responseCode: status,
      grpc,
      grpcStatus,
      durationSeconds: durationMs / 1000,
      flags: result.flags,
      requestBytes: result.bytesReceived,
      responseBytes: result.bytesSent,
    });
    if (span.recording) {
      span.setAttributes(() => {
        const attributes: Attributes = {};
        if (info.reporter === 'source') peerAttributes(attributes, result.upstream);
        if (result.destination?.identity !== undefined) attributes[ATTR.TSMESH_DESTINATION_IDENTITY] = result.destination.identity;
        if (result.flags !== undefined && result.flags.length > 0) attributes[ATTR.TSMESH_RESPONSE_FLAGS] = formatFlags(result.flags);
        return attributes;
      });
    }
    span.end(result.error);
    if (this.accessLog.enabled) {
      this.accessLog.http({
        reporter: info.reporter,
        direction: info.direction ?? directionOf(info.reporter),
        protocol: info.protocol,
        method: info.method,
        authority: info.authority,
        path: pathOnly(info.path),
        status,
        grpcStatus: grpc ? grpcStatus : undefined,
        attempts: result.attempts,
        requestId: routed.requestId,
        userAgent: routed.userAgent,
        upstreamCluster: routed.cluster,
        routeName: routed.routeName,
        durationMs,
        bytesSent: result.bytesSent ?? 0,
        bytesReceived: result.bytesReceived ?? 0,
        upstream: result.upstream,
        downstream: info.downstream,
        sourceIdentity: info.source.identity,
        destinationIdentity: destination.identity,
        destinationService: destination.service,
        mtls,
        traceId: span.context.traceId,
        flags: result.flags,
      });
    }
  }

  /** Called once by a connection's `end`. */
  finishTcp(info: TcpInfo, span: SpanHandle | undefined, startedAt: number, result: TcpEnd): void {
    const durationMs = Math.max(0, this.now() - startedAt);
    if (span !== undefined) {
      span.setAttributes(() => {
        const attributes: Attributes = {
          [ATTR.TSMESH_BYTES_SENT]: result.sent,
          [ATTR.TSMESH_BYTES_RECEIVED]: result.received,
        };
        if (result.flags !== undefined && result.flags.length > 0) attributes[ATTR.TSMESH_RESPONSE_FLAGS] = formatFlags(result.flags);
        return attributes;
      });
      span.end(result.error);
    }
    if (this.accessLog.enabled) {
      this.accessLog.tcp({
        reporter: info.reporter,
        direction: info.direction ?? directionOf(info.reporter),
        durationMs,
        bytesSent: result.sent,
        bytesReceived: result.received,
        upstream: info.upstream,
        downstream: info.downstream,
        sourceIdentity: info.source.identity,
        destinationIdentity: info.destination.identity,
        destinationService: info.destination.service,
        mtls: info.mtls,
        traceId: span?.context.traceId,
        flags: result.flags,
      });
    }
  }

  /** Called once per refused connection. */
  finishDenial(info: DenialInfo): void {
    this.metrics.policyDenied(info.reporter, info.reason);
    if (this.accessLog.enabled) {
      this.accessLog.tcp({
        reporter: info.reporter,
        direction: info.direction ?? directionOf(info.reporter),
        durationMs: info.durationMs ?? 0,
        bytesSent: 0,
        bytesReceived: 0,
        downstream: info.downstream,
        sourceIdentity: info.source.identity,
        destinationIdentity: info.destination.identity,
        destinationService: info.destination.service,
        mtls: info.mtls,
        flags: info.flags,
        reason: info.reason,
      });
    }
  }

  /** Logs a failure of telemetry itself, at most once per interval. */
  failed(where: string, error: unknown): void {
    try {
      this.failures.error({ where, err: error }, 'telemetry failed; the request is unaffected');
    } catch {
      // Logging itself failed: nothing left to do, and the data path must not see it.
    }
  }
}

export class RequestTelemetry {
  /** The metrics requests are recorded in; the data path also calls its proxy-health counters. */
  readonly metrics: ProxyMetrics;
  private readonly recorder: Recorder;

  constructor(options: RequestTelemetryOptions) {
    this.metrics = options.metrics;
    this.recorder = new Recorder(
      options.metrics,
      options.tracer ?? new ProxyTracer(),
      options.accessLog ?? AccessLog.off(),
      options.now ?? (() => performance.now()),
      options.log ?? logger('telemetry'),
    );
  }

  /** Starts recording a request: reads its trace context and starts its span. Never throws. */
  startRequest(info: RequestInfo): RequestRecord {
    try {
      const startedAt = this.recorder.now();
      const span = this.recorder.tracer.startSpan({
        kind: info.reporter === 'source' ? 'client' : 'server',
        // Built only if the request is sampled, like the attributes.
        name: () => requestSpanName(info),
        parent: extract(info.headers),
        attributes: () => requestAttributes(info),
      });
      const request = new Request(this.recorder, info, span, startedAt);
      if (this.recorder.accessLog.enabled) {
        request.requestId = headerOf(info.headers, 'x-request-id');
        request.userAgent = headerOf(info.headers, 'user-agent');
      }
      return request;
    } catch (error) {
      this.recorder.failed('startRequest', error);
      return NOOP_REQUEST;
    }
  }

  /**
   * Records a refused connection: counts it in tsmesh_policy_denials_total (reporter, reason) and
   * writes its access-log line (`type: "tcp"`, the flags, `reason`). Never throws.
   */
  denied(info: DenialInfo): void {
    try {
      this.recorder.finishDenial(info);
    } catch (error) {
      this.recorder.failed('denied', error);
    }
  }

  /** Starts recording an opaque TCP connection: counts it opened, starts its span. Never throws. */
  startTcp(info: TcpInfo): TcpRecord {
    try {
      const startedAt = this.recorder.now();
      const metrics = this.metrics.tcpConnection(info);
      const span = this.recorder.tracer.startConnectionSpan({
        kind: info.reporter === 'source' ? 'client' : 'server',
        name: () => (info.destination.service !== undefined ? `tcp ${info.destination.service}` : 'tcp'),
        attributes: () => tcpAttributes(info),
      });
      return new TcpConnection(this.recorder, info, metrics, span, startedAt);
    } catch (error) {
      this.recorder.failed('startTcp', error);
      return NOOP_TCP;
    }
  }
}
