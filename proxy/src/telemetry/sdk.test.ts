import { afterEach, describe, expect, it } from '@jest/globals';
import { AccessLog } from './access-log.js';
import type { TracingConfig } from './config.js';
import { extract } from './context.js';
import { startTelemetrySdk as startLazily } from './index.js';
import { ProxyMetrics } from './metrics.js';
import { RequestTelemetry, type RequestInfo } from './observer.js';
import { startTelemetrySdk, type TelemetrySdk, type TelemetrySdkOptions } from './sdk.js';
import { closedPort, startCollector, type Collector } from './testing/collector.js';
import { captureLog } from './testing/log-capture.js';
import { ProxyTracer } from './tracing.js';

const APP_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const APP_SPAN = '00f067aa0ba902b7';
const CALLER = 'spiffe://cluster.local/ns/bookinfo/sa/productpage';
const CALLEE = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';

let sdk: TelemetrySdk | undefined;
let collector: Collector | undefined;

afterEach(async () => {
  await sdk?.shutdown();
  await collector?.close();
  sdk = undefined;
  collector = undefined;
});

function start(tracing: TracingConfig, extra: Partial<TelemetrySdkOptions> = {}, log = captureLog('info')) {
  sdk = startTelemetrySdk(
    {
      tracing,
      service: { name: 'productpage-v1', namespace: 'bookinfo', podName: 'productpage-v1-7d9f8c6b5-x2kqz' },
      batch: { scheduledDelayMillis: 20 },
      ...extra,
    },
    log.logger,
  );
  return sdk;
}

function telemetry(sampleRate = 1): RequestTelemetry {
  return new RequestTelemetry({
    metrics: new ProxyMetrics({ defaultMetrics: false }),
    tracer: new ProxyTracer({ sampleRate }),
    accessLog: new AccessLog(captureLog('silent').logger),
  });
}

function request(headers: Record<string, string>, reporter: 'source' | 'destination'): RequestInfo {
  return {
    reporter,
    method: 'GET',
    authority: 'reviews.bookinfo:9080',
    path: '/reviews/1',
    protocol: 'http1',
    headers,
    source: { workload: 'productpage-v1', namespace: 'bookinfo', identity: CALLER },
    destination: { service: 'reviews.bookinfo.svc.cluster.local', identity: CALLEE },
    mtls: true,
  };
}

/** One call through two sidecars: the app's context → client span → server span. */
function call(t: RequestTelemetry, headers: Record<string, string>) {
  const client = t.startRequest(request(headers, 'source'));
  const server = t.startRequest(request({ ...client.upstreamHeaders() }, 'destination'));
  server.response(200);
  server.end({ bytesSent: 2 });
  client.response(200);
  client.end({ bytesSent: 2, upstream: '10.0.0.7:9080' });
  return { client, server };
}

interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  kind: string;
  name: string;
  localEndpoint: { serviceName: string };
  tags: Record<string, string>;
}

function zipkinSpans(c: Collector): ZipkinSpan[] {
  return c.received.flatMap((r) => r.body as ZipkinSpan[]);
}

describe('startTelemetrySdk with Zipkin', () => {
  it('exports the client and server spans of a call as Zipkin v2 JSON', async () => {
    collector = await startCollector();
    start({ exporter: 'zipkin', endpoint: collector.url('/api/v2/spans'), sampleRate: 1 });
    const t = telemetry();
    const { client } = call(t, { traceparent: `00-${APP_TRACE}-${APP_SPAN}-01` });
    const forwarded = extract(client.upstreamHeaders());
    const c = collector;
    await c.waitFor(() => zipkinSpans(c).length >= 2);

    expect(c.received[0]?.path).toBe('/api/v2/spans');
    expect(c.received[0]?.contentType).toBe('application/json');
    const spans = zipkinSpans(c);
    const clientSpan = spans.find((s) => s.kind === 'CLIENT');
    const serverSpan = spans.find((s) => s.kind === 'SERVER');
    expect(clientSpan).toMatchObject({ traceId: APP_TRACE, parentId: APP_SPAN, id: forwarded?.spanId, name: 'GET' });
    expect(serverSpan).toMatchObject({ traceId: APP_TRACE, parentId: clientSpan?.id });
    expect(clientSpan?.localEndpoint.serviceName).toBe('productpage-v1');
    expect(clientSpan?.tags).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/reviews/1',
      'http.response.status_code': '200',
      'server.address': 'reviews.bookinfo',
      'server.port': '9080',
      'network.peer.address': '10.0.0.7',
      'tsmesh.source.identity': CALLER,
      'tsmesh.destination.identity': CALLEE,
      'tsmesh.mtls': 'true',
    });
  });

  it('at sample rate 0 exports only calls the caller sampled', async () => {
    collector = await startCollector();
    start({ exporter: 'zipkin', endpoint: collector.url('/api/v2/spans'), sampleRate: 0 });
    const t = telemetry(0);
    const unsampled = call(t, {});
    call(t, { traceparent: `00-${APP_TRACE}-${APP_SPAN}-01` });
    // forceFlush resolves once the collector has answered every export: whatever was exported is there.
    await sdk?.forceFlush();
    const c = collector;
    expect(zipkinSpans(c).map((s) => s.traceId)).toEqual([APP_TRACE, APP_TRACE]);
    // The unsampled call still carried a trace, marked unsampled, to the next hop.
    expect(extract(unsampled.client.upstreamHeaders())).toMatchObject({ sampled: false });
  });

  it('at sample rate 1 exports every new trace', async () => {
    collector = await startCollector();
    start({ exporter: 'zipkin', endpoint: collector.url('/api/v2/spans'), sampleRate: 1 });
    const t = telemetry(1);
    for (let i = 0; i < 10; i++) call(t, {});
    const c = collector;
    await c.waitFor(() => zipkinSpans(c).length >= 20);
    expect(new Set(zipkinSpans(c).map((s) => s.traceId)).size).toBe(10);
  });
});

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: OtlpValue }[];
}
interface OtlpRequest {
  resourceSpans: { resource: { attributes: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

function otlpSpans(c: Collector): OtlpSpan[] {
  return c.received.flatMap((r) => (r.body as OtlpRequest).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)));
}

function attrs(list: { key: string; value: OtlpValue }[]): Record<string, unknown> {
  return Object.fromEntries(list.map((a) => [a.key, a.value.stringValue ?? a.value.boolValue ?? Number(a.value.intValue)]));
}

describe('startTelemetrySdk with OTLP/HTTP', () => {
  it('exports the spans of a call as OTLP JSON with the workload resource', async () => {
    collector = await startCollector();
    start({ exporter: 'otlp', endpoint: collector.url('/v1/traces'), sampleRate: 1 });
    const t = telemetry();
    const { client } = call(t, { b3: `${APP_TRACE}-${APP_SPAN}-1` });
    const forwarded = extract(client.upstreamHeaders());
    const c = collector;
    await c.waitFor(() => otlpSpans(c).length >= 2);

    expect(c.received[0]?.path).toBe('/v1/traces');
    expect(c.received[0]?.contentType).toBe('application/json');
    const resource = attrs((c.received[0]?.body as OtlpRequest).resourceSpans[0]?.resource.attributes ?? []);
    expect(resource).toMatchObject({
      'service.name': 'productpage-v1',
      'k8s.namespace.name': 'bookinfo',
      'k8s.pod.name': 'productpage-v1-7d9f8c6b5-x2kqz',
    });
    const spans = otlpSpans(c);
    const clientSpan = spans.find((s) => s.kind === 3);
    const serverSpan = spans.find((s) => s.kind === 2);
    expect(clientSpan).toMatchObject({ traceId: APP_TRACE, parentSpanId: APP_SPAN, spanId: forwarded?.spanId, name: 'GET' });
    expect(serverSpan).toMatchObject({ traceId: APP_TRACE, parentSpanId: clientSpan?.spanId });
    expect(attrs(serverSpan?.attributes ?? [])).toMatchObject({
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'tsmesh.mtls': true,
      'tsmesh.source.identity': CALLER,
    });
  });
});

describe('startTelemetrySdk with a collector that is down', () => {
  it('never throws into requests and keeps at most the queue limit of spans', async () => {
    const log = captureLog('info');
    const port = await closedPort();
    start(
      { exporter: 'zipkin', endpoint: `http://127.0.0.1:${port}/api/v2/spans`, sampleRate: 1 },
      { batch: { maxQueueSize: 16, maxExportBatchSize: 8, scheduledDelayMillis: 10 } },
      log,
    );
    const t = telemetry();
    const begun = performance.now();
    expect(() => {
      for (let i = 0; i < 5000; i++) call(t, {});
    }).not.toThrow();
    expect(performance.now() - begun).toBeLessThan(10_000);
    await sdk?.forceFlush();
    const current = sdk;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stats = current?.stats();
    // 10,000 spans ended; what reached the exporter is bounded by the queue, not by the load.
    expect(stats?.attemptedSpans).toBeLessThanOrEqual(2 * 16 + 2 * 8);
    expect(stats?.exportedSpans).toBe(0);
    expect(stats?.failedExports).toBeGreaterThan(0);
    // Failures are logged once per interval, not once per export.
    expect(log.lines().filter((l) => (l.level as number) >= 40)).toHaveLength(1);
  });

  it('drops batches while a collector that never answers holds earlier exports, and still shuts down', async () => {
    collector = await startCollector({ answer: false });
    start(
      { exporter: 'zipkin', endpoint: collector.url('/api/v2/spans'), sampleRate: 1 },
      { batch: { maxQueueSize: 8, maxExportBatchSize: 4, scheduledDelayMillis: 5, exportTimeoutMillis: 50 }, shutdownTimeoutMs: 200 },
    );
    const t = telemetry();
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < 4; i++) call(t, {});
      await new Promise((resolve) => setTimeout(resolve, 80));
    }
    const stats = sdk?.stats();
    expect(stats?.droppedBatches).toBeGreaterThan(0);
    expect(stats?.attemptedSpans).toBeLessThanOrEqual(2 * 4);
    const begun = Date.now();
    await sdk?.shutdown();
    expect(Date.now() - begun).toBeLessThan(2000);
  });
});

describe('startTelemetrySdk', () => {
  it('starts nothing when tracing is none', async () => {
    const none = await startLazily({ tracing: { exporter: 'none', sampleRate: 1 }, service: { name: 'x' } });
    expect(none.tracing).toBe(false);
    expect(new ProxyTracer().startSpan({ kind: 'client', name: 'GET' }).recording).toBe(false);
  });

  it('loads and starts the SDK on demand through the library entry', async () => {
    collector = await startCollector();
    sdk = await startLazily(
      { tracing: { exporter: 'zipkin', endpoint: collector.url('/api/v2/spans'), sampleRate: 1 }, service: { name: 'reviews-v1' } },
      captureLog('silent').logger,
    );
    expect(sdk.tracing).toBe(true);
    expect(new ProxyTracer().startSpan({ kind: 'client', name: 'GET' }).recording).toBe(true);
  });

  it('refuses a second SDK while one runs, without throwing', async () => {
    collector = await startCollector();
    const log = captureLog('info');
    start({ exporter: 'zipkin', endpoint: collector.url('/api/v2/spans'), sampleRate: 1 });
    const second = startTelemetrySdk(
      { tracing: { exporter: 'otlp', endpoint: collector.url('/v1/traces'), sampleRate: 1 }, service: { name: 'x' } },
      log.logger,
    );
    expect(second.tracing).toBe(false);
    expect(log.lines()[0]).toMatchObject({ level: 40 });
  });
});
