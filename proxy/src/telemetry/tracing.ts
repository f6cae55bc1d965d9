// The proxy's spans: a client span per request in the calling sidecar, a server span in the
// receiving one, a connection span per opaque TCP connection. Built on @opentelemetry/api alone;
// whether spans are recorded and exported is up to the SDK the entry point starts (sdk.ts).
//
// Without an SDK the API's tracer is a no-op and its spans carry no ids of their own. The
// proxy then forwards the incoming context unchanged (apps' spans still form one tree), and for a
// request without context makes a trace id and span id itself, sampled at the configured rate, so
// the hops downstream share a trace id.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  createTraceState,
  isSpanContextValid,
  trace,
  type Attributes,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { ATTR } from './attributes.js';
import type { TraceContext } from './context.js';
import { newSpanId, newTraceId, sampledAtRate } from './ids.js';

export const TRACER_NAME = 'tsmesh-proxy';

export type SpanKindName = 'client' | 'server';

/** Span attributes, or a function making them, called only when the span is recorded. */
export type LazyAttributes = Attributes | (() => Attributes);

export interface SpanStart {
  readonly kind: SpanKindName;
  readonly name: string;
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
  /** Rate (0..1) for traces the proxy starts or whose caller deferred the decision. Default 1. */
  readonly sampleRate?: number;
  /** The tracer to use; default the global API tracer (an SDK's once one is started). */
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

class OtelSpanHandle implements SpanHandle {
  private status: number | undefined;
  private grpcStatus: number | undefined;
  private ended = false;
  readonly recording: boolean;

  constructor(
    private readonly span: Span,
    private readonly kind: SpanKindName,
    readonly context: TraceContext,
  ) {
    this.recording = span.isRecording();
  }

  setAttributes(attributes: LazyAttributes): void {
    if (this.recording && !this.ended) this.span.setAttributes(resolve(attributes));
  }

  setResponse(status: number | undefined, grpcStatus?: number): void {
    if (this.ended) return;
    if (status !== undefined && status !== 0) this.status = status;
    if (grpcStatus !== undefined) this.grpcStatus = grpcStatus;
    if (!this.recording) return;
    if (this.status !== undefined) this.span.setAttribute(ATTR.HTTP_RESPONSE_STATUS_CODE, this.status);
    if (this.grpcStatus !== undefined) this.span.setAttribute(ATTR.RPC_GRPC_STATUS_CODE, this.grpcStatus);
  }

  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (this.recording) this.markStatus(error);
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
        this.span.setAttribute(ATTR.ERROR_TYPE, String(this.grpcStatus));
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

export class ProxyTracer {
  readonly sampleRate: number;
  private readonly tracer: Tracer;

  constructor(options: ProxyTracerOptions = {}) {
    this.sampleRate = clampRate(options.sampleRate);
    this.tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  }

  /**
   * Starts a request span, child of `parent` when given. An incoming sampling decision is kept; a
   * deferred one (B3 without a sampled flag) and a new trace are decided at `sampleRate`.
   */
  startSpan(start: SpanStart): SpanHandle {
    const parent = start.parent;
    let sampled: boolean | undefined;
    let parentContext = ROOT_CONTEXT;
    if (parent !== undefined) {
      sampled = parent.debug === true ? true : (parent.sampled ?? sampledAtRate(parent.traceId, this.sampleRate));
      const remote: SpanContext = {
        traceId: parent.traceId,
        spanId: parent.spanId,
        traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
        isRemote: true,
        ...(parent.traceState !== undefined ? { traceState: createTraceState(parent.traceState) } : {}),
      };
      parentContext = trace.setSpanContext(ROOT_CONTEXT, remote);
    }
    const kind = start.kind === 'client' ? SpanKind.CLIENT : SpanKind.SERVER;
    const span = this.tracer.startSpan(start.name, { kind }, parentContext);
    const own = span.spanContext();
    let context: TraceContext;
    if (isSpanContextValid(own) && own.spanId !== parent?.spanId) {
      context = {
        traceId: own.traceId,
        spanId: own.spanId,
        sampled: (own.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED,
        ...(parent?.debug === true ? { debug: true } : {}),
        ...(parent !== undefined ? { parentSpanId: parent.spanId } : {}),
        ...(parent?.traceState !== undefined ? { traceState: parent.traceState } : {}),
      };
    } else if (parent !== undefined) {
      // No SDK: the proxy is transparent and forwards the caller's context, decision made.
      context = {
        traceId: parent.traceId,
        spanId: parent.spanId,
        sampled,
        ...(parent.debug === true ? { debug: true } : {}),
        ...(parent.parentSpanId !== undefined ? { parentSpanId: parent.parentSpanId } : {}),
        ...(parent.traceState !== undefined ? { traceState: parent.traceState } : {}),
      };
    } else {
      const traceId = newTraceId();
      context = { traceId, spanId: newSpanId(), sampled: sampledAtRate(traceId, this.sampleRate) };
    }
    const handle = new OtelSpanHandle(span, start.kind, context);
    if (start.attributes !== undefined) handle.setAttributes(start.attributes);
    return handle;
  }

  /**
   * Starts the span of an opaque TCP connection (a new trace: TCP carries no context), or returns
   * `undefined` when it would not be recorded (no SDK, or not sampled).
   */
  startConnectionSpan(start: Omit<SpanStart, 'parent'>): SpanHandle | undefined {
    const kind = start.kind === 'client' ? SpanKind.CLIENT : SpanKind.SERVER;
    const span = this.tracer.startSpan(start.name, { kind }, ROOT_CONTEXT);
    if (!span.isRecording()) {
      span.end();
      return undefined;
    }
    const own = span.spanContext();
    const handle = new OtelSpanHandle(span, start.kind, { traceId: own.traceId, spanId: own.spanId, sampled: true });
    if (start.attributes !== undefined) handle.setAttributes(start.attributes);
    return handle;
  }
}
