import { describe, expect, it } from '@jest/globals';
import { INVALID_SPAN_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { isSpanId, isTraceId, type TraceContext } from './context.js';
import { sampledAtRate } from './ids.js';
import { memoryTracer } from './testing/memory-tracer.js';
import { ProxyTracer, errorType } from './tracing.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';
const parent: TraceContext = { traceId: T, spanId: S, sampled: true, traceState: 'vendor=x' };

describe('ProxyTracer without an SDK', () => {
  const tracer = new ProxyTracer({ sampleRate: 1 });

  it('forwards the incoming context unchanged', () => {
    const span = tracer.startSpan({ kind: 'client', name: 'GET', parent });
    expect(span.recording).toBe(false);
    expect(span.context).toEqual({ traceId: T, spanId: S, sampled: true, traceState: 'vendor=x' });
    span.end();
  });

  it('keeps an incoming unsampled decision', () => {
    const span = tracer.startSpan({ kind: 'server', name: 'GET', parent: { ...parent, sampled: false } });
    expect(span.context.sampled).toBe(false);
  });

  it('decides a deferred B3 decision at the sample rate', () => {
    const never = new ProxyTracer({ sampleRate: 0 });
    expect(never.startSpan({ kind: 'client', name: 'GET', parent: { traceId: T, spanId: S, sampled: undefined } }).context.sampled).toBe(false);
    expect(tracer.startSpan({ kind: 'client', name: 'GET', parent: { traceId: T, spanId: S, sampled: undefined } }).context.sampled).toBe(true);
  });

  it('makes its own ids for a request without context, sampled at the rate', () => {
    const a = tracer.startSpan({ kind: 'client', name: 'GET' }).context;
    const b = tracer.startSpan({ kind: 'client', name: 'GET' }).context;
    expect(isTraceId(a.traceId) && isSpanId(a.spanId)).toBe(true);
    expect(a.traceId).not.toBe(b.traceId);
    expect(a.sampled).toBe(true);
    expect(new ProxyTracer({ sampleRate: 0 }).startSpan({ kind: 'client', name: 'GET' }).context.sampled).toBe(false);
  });

  it('never evaluates lazy attributes', () => {
    let calls = 0;
    const span = tracer.startSpan({ kind: 'client', name: 'GET', attributes: () => ({ n: ++calls }) });
    span.setAttributes(() => ({ n: ++calls }));
    span.end();
    expect(calls).toBe(0);
  });

  it('starts no connection span', () => {
    expect(tracer.startConnectionSpan({ kind: 'client', name: 'tcp' })).toBeUndefined();
  });
});

describe('ProxyTracer with an SDK', () => {
  it('makes the client span a child of the incoming context and propagates its own id', () => {
    const { tracer, exporter } = memoryTracer();
    const span = tracer.startSpan({ kind: 'client', name: 'GET', parent, attributes: { 'url.path': '/x' } });
    span.end();
    const [exported] = exporter.getFinishedSpans();
    expect(exported?.kind).toBe(SpanKind.CLIENT);
    expect(exported?.spanContext().traceId).toBe(T);
    expect(exported?.parentSpanContext?.spanId).toBe(S);
    expect(exported?.attributes['url.path']).toBe('/x');
    expect(exported?.spanContext().traceState?.serialize()).toBe('vendor=x');
    expect(span.context).toEqual({ traceId: T, spanId: exported?.spanContext().spanId, sampled: true, parentSpanId: S, traceState: 'vendor=x' });
  });

  it('starts a root server span for a request without context', () => {
    const { tracer, exporter } = memoryTracer();
    const span = tracer.startSpan({ kind: 'server', name: 'POST' });
    span.end();
    const [exported] = exporter.getFinishedSpans();
    expect(exported?.kind).toBe(SpanKind.SERVER);
    expect(exported?.parentSpanContext).toBeUndefined();
    expect(span.context.spanId).toBe(exported?.spanContext().spanId);
  });

  it('marks 4xx as an error on a client span only', () => {
    const { tracer, exporter } = memoryTracer();
    for (const kind of ['client', 'server'] as const) {
      const span = tracer.startSpan({ kind, name: 'GET', parent });
      span.setResponse(404);
      span.end();
    }
    const [client, server] = exporter.getFinishedSpans();
    expect(client?.status.code).toBe(SpanStatusCode.ERROR);
    expect(client?.attributes['error.type']).toBe('404');
    expect(client?.attributes['http.response.status_code']).toBe(404);
    expect(server?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('marks 5xx, gRPC server errors and thrown errors as errors', () => {
    const { tracer, exporter } = memoryTracer();
    const a = tracer.startSpan({ kind: 'server', name: 'GET' });
    a.setResponse(503);
    a.end();
    const b = tracer.startSpan({ kind: 'server', name: 'x.Y/Z' });
    b.setResponse(200, 14);
    b.end();
    const c = tracer.startSpan({ kind: 'server', name: 'x.Y/Z' });
    c.setResponse(200, 5); // NOT_FOUND is the caller's problem, not the server's.
    c.end();
    const d = tracer.startSpan({ kind: 'client', name: 'GET' });
    d.end(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    const [sa, sb, sc, sd] = exporter.getFinishedSpans();
    expect(sa?.status.code).toBe(SpanStatusCode.ERROR);
    expect(sb?.status.code).toBe(SpanStatusCode.ERROR);
    expect(sb?.attributes['rpc.status_code']).toBe('UNAVAILABLE');
    expect(sc?.attributes['rpc.status_code']).toBe('NOT_FOUND');
    expect(sc?.status.code).toBe(SpanStatusCode.UNSET);
    expect(sd?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'connect ECONNREFUSED' });
    expect(sd?.attributes['error.type']).toBe('ECONNREFUSED');
  });

  it('ends a span once', () => {
    const { tracer, exporter } = memoryTracer();
    const span = tracer.startSpan({ kind: 'client', name: 'GET' });
    span.end();
    span.end(new Error('late'));
    expect(exporter.getFinishedSpans()).toHaveLength(1);
    expect(exporter.getFinishedSpans()[0]?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('at rate 0 records no new trace but still propagates fresh ids, unsampled', () => {
    const { tracer, exporter } = memoryTracer(0);
    const span = tracer.startSpan({ kind: 'client', name: 'GET' });
    span.end();
    expect(span.recording).toBe(false);
    expect(isTraceId(span.context.traceId) && isSpanId(span.context.spanId)).toBe(true);
    expect(span.context.sampled).toBe(false);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });

  it('at rate 0 still records a trace the caller sampled, or marked debug', () => {
    const { tracer, exporter } = memoryTracer(0);
    tracer.startSpan({ kind: 'server', name: 'GET', parent }).end();
    tracer.startSpan({ kind: 'server', name: 'GET', parent: { traceId: T, spanId: S, sampled: undefined, debug: true } }).end();
    expect(exporter.getFinishedSpans()).toHaveLength(2);
  });

  it('at rate 1 records every new trace but not one the caller left unsampled', () => {
    const { tracer, exporter } = memoryTracer(1);
    for (let i = 0; i < 20; i++) tracer.startSpan({ kind: 'client', name: 'GET' }).end();
    const unsampled = tracer.startSpan({ kind: 'client', name: 'GET', parent: { ...parent, sampled: false } });
    unsampled.end();
    expect(exporter.getFinishedSpans()).toHaveLength(20);
    // Not recorded, so no span id of its own: the caller's context goes on unchanged, unsampled.
    expect(unsampled.recording).toBe(false);
    expect(unsampled.context).toMatchObject({ traceId: T, spanId: S, sampled: false, traceState: 'vendor=x' });
  });

  it('never asks the tracer for an unsampled span, nor builds its name or attributes', () => {
    const started: string[] = [];
    const counting = {
      startSpan: (name: string) => {
        started.push(name);
        return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
      },
    };
    let built = 0;
    const lazy = { name: () => `GET ${++built}`, attributes: () => ({ n: ++built }) };
    const never = new ProxyTracer({ sampleRate: 0, tracer: counting as unknown as Tracer });
    const root = never.startSpan({ kind: 'client', ...lazy });
    const deferred = never.startSpan({ kind: 'client', ...lazy, parent: { traceId: T, spanId: S, sampled: undefined } });
    const declined = new ProxyTracer({ sampleRate: 1, tracer: counting as unknown as Tracer }).startSpan({
      kind: 'server',
      ...lazy,
      parent: { ...parent, sampled: false },
    });
    for (const span of [root, deferred, declined]) {
      span.setAttributes(lazy.attributes);
      span.setResponse(200);
      span.end();
      expect(span.recording).toBe(false);
      expect(span.context.sampled).toBe(false);
    }
    expect(never.startConnectionSpan({ kind: 'client', ...lazy })).toBeUndefined();
    expect(started).toEqual([]);
    expect(built).toBe(0);
  });

  it('builds the name and attributes of a sampled span once', () => {
    const { tracer, exporter } = memoryTracer(1);
    let built = 0;
    tracer.startSpan({ kind: 'client', name: () => `GET ${++built}`, attributes: () => ({ n: ++built }) }).end();
    expect(exporter.getFinishedSpans().map((s) => [s.name, s.attributes['n']])).toEqual([['GET 1', 2]]);
  });

  it('samples new traces at the rate once: the SDK records every span the proxy starts', () => {
    const { tracer, exporter } = memoryTracer(0.5);
    const spans = Array.from({ length: 2000 }, () => tracer.startSpan({ kind: 'client', name: 'GET' }));
    for (const span of spans) span.end();
    const share = exporter.getFinishedSpans().length / spans.length;
    expect(share).toBeGreaterThan(0.42);
    expect(share).toBeLessThan(0.58);
    expect(spans.filter((s) => s.context.sampled).length).toBe(exporter.getFinishedSpans().length);
  });

  it('records no connection span at rate 0', () => {
    const { tracer, exporter } = memoryTracer(0);
    expect(tracer.startConnectionSpan({ kind: 'server', name: 'tcp' })).toBeUndefined();
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });

  it('records a connection span as a new trace', () => {
    const { tracer, exporter } = memoryTracer();
    const span = tracer.startConnectionSpan({ kind: 'server', name: 'tcp', attributes: { 'network.transport': 'tcp' } });
    span?.end();
    const [exported] = exporter.getFinishedSpans();
    expect(exported?.name).toBe('tcp');
    expect(exported?.parentSpanContext).toBeUndefined();
    expect(span?.context.traceId).toBe(exported?.spanContext().traceId);
  });
});

describe('sampledAtRate', () => {
  it('samples all at 1, none at 0, and about the rate in between', () => {
    const ids = Array.from({ length: 2000 }, () => new ProxyTracer({ sampleRate: 1 }).startSpan({ kind: 'client', name: 'x' }).context.traceId);
    expect(ids.every((id) => sampledAtRate(id, 1))).toBe(true);
    expect(ids.some((id) => sampledAtRate(id, 0))).toBe(false);
    const share = ids.filter((id) => sampledAtRate(id, 0.25)).length / ids.length;
    expect(share).toBeGreaterThan(0.18);
    expect(share).toBeLessThan(0.32);
  });
});

describe('errorType', () => {
  it('prefers an error code, then the name', () => {
    expect(errorType(Object.assign(new Error('x'), { code: 'TSMESH_ERR_NO_ENDPOINTS' }))).toBe('TSMESH_ERR_NO_ENDPOINTS');
    expect(errorType(new TypeError('x'))).toBe('TypeError');
    expect(errorType('boom')).toBe('_OTHER');
  });
});
