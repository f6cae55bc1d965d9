// The proxy's spans: a client span per request in the calling sidecar, a server span in the
// receiving one, a connection span per opaque TCP connection. Built on @opentelemetry/api alone;
// whether spans are recorded and exported is up to the SDK the entry point starts (sdk.ts).
//
// The proxy makes every sampling decision itself, before it asks the tracer for anything: an
// unsampled request (99 in 100 at the default rate) gets a small non-recording handle and never
// reaches the SDK, and its span name and attributes are never built. Only a sampled request
// starts a span on the tracer, as a child of the incoming context when there is one.
//
// A span id of the proxy's own is propagated only for a span that is recorded. Otherwise (the
// request is not sampled, or no SDK runs) the proxy forwards the incoming context unchanged with
// the decision made (apps' spans still form one tree), and for a request without context makes a
// trace id and span id itself, so the hops downstream share a trace id and the decision.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  createTraceState,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { ATTR, grpcStatusName } from './attributes.js';
import type { TraceContext } from './context.js';
import { newSpanId, newTraceId, sampledAtRandom, sampledAtRate } from './ids.js';

export const TRACER_NAME = 'tsmesh-proxy';

export type SpanKindName = 'client' | 'server';

/** Span attributes, or a function making them, called only when the span is recorded. */
export type LazyAttributes = Attributes | (() => Attributes);

/** A span name, or a function making it, called only when the span is recorded. */
export type LazyName = string | (() => string);

export interface SpanStart {
  readonly kind: SpanKindName;
  readonly name: LazyName;
  /** The incoming context (from `extract`); absent: the span starts a new trace. */
  readonly parent?: TraceContext | undefined;
  readonly attributes?: LazyAttributes | undefined;
}

/** One span in progress. */
export interface SpanHandle {
  /**
   * This span's context, to propagate to the next hop (its `spanId` becomes the next span's
   * parent). The sampling decision is always made (`sampled` is a boolean).
   */
  readonly context: TraceContext;
  /** Whether the span is recorded (an SDK runs and sampled it); attributes are dropped otherwise. */
  readonly recording: boolean;
  setAttributes(attributes: LazyAttributes): void;
  /**
   * Records the response: HTTP status (`undefined` if none was received) and gRPC status. Decides
   * the span's error status at `end` (semantic conventions: 4xx is an error for a client only,
   * 5xx for both; gRPC server errors are UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
   * UNAVAILABLE, DATA_LOSS).
   */
  setResponse(status: number | undefined, grpcStatus?: number): void;
  /** Ends the span, marking it failed if `error` is given. Later calls do nothing. */
  end(error?: unknown): void;
}

export interface ProxyTracerOptions {
  /**
   * Rate (0..1) for traces the proxy starts or whose caller deferred the decision. Default 1 here;
   * the sidecar passes its configured rate (TSMESH_TRACING_SAMPLE_RATE, default 0.01).
   */
  readonly sampleRate?: number;
  /**
   * The tracer to use; default the global API tracer (an SDK's once one is started). It is asked
   * only for sampled spans, so its sampler should record what it is given (sdk.ts: parent-based,
   * roots always on).
   */
  readonly tracer?: Tracer;
}

const GRPC_SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

/** `error.type` for a thrown error: its `code` when it has one (Node, tsmesh), else its name. */
export function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && name !== '') return name;
  }
  return '_OTHER';
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function resolve(attributes: LazyAttributes): Attributes {
  return typeof attributes === 'function' ? attributes() : attributes;
}

/** A span that is not recorded: it carries the context to propagate and ignores the rest. */
class UnrecordedSpan implements SpanHandle {
  readonly recording = false;

  constructor(readonly context: TraceContext) {}

  setAttributes(): void {}

  setResponse(): void {}

  end(): void {}
}

/** A span the SDK records. */
class RecordedSpan implements SpanHandle {
  readonly recording = true;
  private status: number | undefined;
  private grpcStatus: number | undefined;
  private ended = false;

  constructor(
    private readonly span: Span,
    private readonly kind: SpanKindName,
    readonly context: TraceContext,
  ) {}

  setAttributes(attributes: LazyAttributes): void {
    if (!this.ended) this.span.setAttributes(resolve(attributes));
  }

  setResponse(status: number | undefined, grpcStatus?: number): void {
    if (this.ended) return;
    if (status !== undefined && status !== 0) this.status = status;
    if (grpcStatus !== undefined) this.grpcStatus = grpcStatus;
    if (this.status !== undefined) this.span.setAttribute(ATTR.HTTP_RESPONSE_STATUS_CODE, this.status);
    if (this.grpcStatus !== undefined) this.span.setAttribute(ATTR.RPC_STATUS_CODE, grpcStatusName(this.grpcStatus));
  }

  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.markStatus(error);
    this.span.end();
  }

  private markStatus(error: unknown): void {
    if (error !== undefined) {
      this.span.setAttribute(ATTR.ERROR_TYPE, errorType(error));
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
      return;
    }
    if (this.grpcStatus !== undefined && this.grpcStatus !== 0) {
      const failed = this.kind === 'client' || GRPC_SERVER_ERRORS.has(this.grpcStatus);
      if (failed) {
        this.span.setAttribute(ATTR.ERROR_TYPE, grpcStatusName(this.grpcStatus));
        this.span.setStatus({ code: SpanStatusCode.ERROR });
        return;
      }
    }
    if (this.status !== undefined && (this.status >= 500 || (this.kind === 'client' && this.status >= 400))) {
      this.span.setAttribute(ATTR.ERROR_TYPE, String(this.status));
      this.span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
}

function clampRate(rate: number | undefined): number {
  if (rate === undefined || Number.isNaN(rate)) return 1;
  return Math.min(1, Math.max(0, rate));
}

function spanKind(kind: SpanKindName): SpanKind {
  return kind === 'client' ? SpanKind.CLIENT : SpanKind.SERVER;
}

export class ProxyTracer {
  readonly sampleRate: number;
  private readonly tracer: Tracer;

  constructor(options: ProxyTracerOptions = {}) {
    this.sampleRate = clampRate(options.sampleRate);
    this.tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  }

  /**
   * Starts a request span, child of `parent` when given. An incoming sampling decision is kept
   * (B3 debug forces sampling); a deferred one (B3 without a sampled flag) and a new trace are
   * decided at `sampleRate`. Only a sampled span is started on the tracer.
   */
  startSpan(start: SpanStart): SpanHandle {
    const parent = start.parent;
    if (parent === undefined) {
      const traceId = newTraceId();
      const sampled = sampledAtRate(traceId, this.sampleRate);
      const recorded = sampled ? this.record(start, ROOT_CONTEXT, undefined) : undefined;
      return recorded ?? new UnrecordedSpan({ traceId, spanId: newSpanId(), sampled });
    }
    const sampled = parent.debug === true || (parent.sampled ?? sampledAtRate(parent.traceId, this.sampleRate));
    // Forwarded unchanged, decision made; the incoming object itself when it already carries it.
    const forwarded: TraceContext = parent.sampled === sampled ? parent : { ...parent, sampled };
    if (!sampled) return new UnrecordedSpan(forwarded);
    const remote: SpanContext = {
      traceId: parent.traceId,
      spanId: parent.spanId,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      ...(parent.traceState !== undefined ? { traceState: createTraceState(parent.traceState) } : {}),
    };
    return this.record(start, trace.setSpanContext(ROOT_CONTEXT, remote), parent) ?? new UnrecordedSpan(forwarded);
  }

  /**
   * Starts the span of an opaque TCP connection (a new trace: TCP carries no context), sampled at
   * `sampleRate`, or returns `undefined` when it would not be recorded (not sampled, or no SDK).
   */
  startConnectionSpan(start: Omit<SpanStart, 'parent'>): SpanHandle | undefined {
    if (!sampledAtRandom(this.sampleRate)) return undefined;
    return this.record(start, ROOT_CONTEXT, undefined);
  }

  /** Starts a sampled span on the tracer; `undefined` when the tracer does not record it (no SDK). */
  private record(start: SpanStart, parentContext: Context, parent: TraceContext | undefined): SpanHandle | undefined {
    const name = typeof start.name === 'function' ? start.name() : start.name;
    const span = this.tracer.startSpan(name, { kind: spanKind(start.kind) }, parentContext);
    if (!span.isRecording()) {
      span.end();
      return undefined;
    }
    const own = span.spanContext();
    const context: TraceContext = {
      traceId: own.traceId,
      spanId: own.spanId,
      sampled: true,
      ...(parent?.debug === true ? { debug: true } : {}),
      ...(parent !== undefined ? { parentSpanId: parent.spanId } : {}),
      ...(parent?.traceState !== undefined ? { traceState: parent.traceState } : {}),
    };
    const handle = new RecordedSpan(span, start.kind, context);
    if (start.attributes !== undefined) handle.setAttributes(start.attributes);
    return handle;
  }
}
