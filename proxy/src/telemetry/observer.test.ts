import { describe, expect, it } from '@jest/globals';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AccessLog } from './access-log.js';
import { TRACE_HEADERS, extract } from './context.js';
import { METRIC_NAMES, ProxyMetrics } from './metrics.js';
import { RequestTelemetry, type RequestInfo } from './observer.js';
import { captureLog } from './testing/log-capture.js';
import { memoryTracer } from './testing/memory-tracer.js';
import { find, parseExposition } from './testing/prometheus-text.js';
import { ProxyTracer } from './tracing.js';

const APP_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const APP_SPAN = '00f067aa0ba902b7';

const productpage = {
  workload: 'productpage-v1',
  namespace: 'bookinfo',
  identity: 'spiffe://cluster.local/ns/bookinfo/sa/productpage',
};
const reviews = {
  service: 'reviews.bookinfo.svc.cluster.local',
  namespace: 'bookinfo',
  identity: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
};

function outbound(headers: Record<string, string>, overrides: Partial<RequestInfo> = {}): RequestInfo {
  return {
    reporter: 'source',
    method: 'GET',
    authority: 'reviews.bookinfo:9080',
    path: '/reviews/1?token=secret',
    protocol: 'http1',
    headers,
    source: productpage,
    destination: reviews,
    mtls: true,
    downstream: '127.0.0.1:40312',
    ...overrides,
  };
}

function setup(sampleRate = 1) {
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  const memory = memoryTracer(sampleRate);
  const log = captureLog('info', { component: 'access' });
  const failures = captureLog('info', { component: 'telemetry' });
  let clock = 1000;
  const telemetry = new RequestTelemetry({
    metrics,
    tracer: memory.tracer,
    accessLog: new AccessLog(log.logger),
    log: failures.logger,
    now: () => clock,
  });
  return { telemetry, metrics, exporter: memory.exporter, log, failures, advance: (ms: number) => (clock += ms) };
}

describe('RequestTelemetry requests', () => {
  it('links app → client span → server span → app in one trace through the headers it writes', () => {
    const { telemetry, exporter } = setup();
    const app = { traceparent: `00-${APP_TRACE}-${APP_SPAN}-01` };
    const client = telemetry.startRequest(outbound(app));
    const forwarded = client.upstreamHeaders();

    // The receiving sidecar sees what the calling one forwarded.
    const server = telemetry.startRequest({ ...outbound(forwarded), reporter: 'destination', downstream: '10.0.0.3:51000' });
    const toApp = server.upstreamHeaders();
    server.response(200);
    server.end({ bytesSent: 10, bytesReceived: 0 });
    client.response(200);
    client.end({ bytesSent: 10, bytesReceived: 0, upstream: '10.0.0.7:9080' });

    const [serverSpan, clientSpan] = exporter.getFinishedSpans();
    expect(clientSpan?.kind).toBe(SpanKind.CLIENT);
    expect(serverSpan?.kind).toBe(SpanKind.SERVER);
    expect(clientSpan?.parentSpanContext?.spanId).toBe(APP_SPAN);
    expect(serverSpan?.parentSpanContext?.spanId).toBe(clientSpan?.spanContext().spanId);
    expect(new Set([clientSpan?.spanContext().traceId, serverSpan?.spanContext().traceId, client.traceId])).toEqual(new Set([APP_TRACE]));
    expect(extract(forwarded)).toMatchObject({ traceId: APP_TRACE, spanId: clientSpan?.spanContext().spanId, sampled: true });
    expect(extract(toApp)).toMatchObject({ traceId: APP_TRACE, spanId: serverSpan?.spanContext().spanId, sampled: true });
    expect(forwarded.b3).toBe(`${APP_TRACE}-${clientSpan?.spanContext().spanId}-1-${APP_SPAN}`);
  });

  it('writes the B3 multi set when the request came with it', () => {
    const { telemetry } = setup();
    const headers = telemetry.startRequest(outbound({ 'x-b3-traceid': APP_TRACE, 'x-b3-spanid': APP_SPAN, 'x-b3-sampled': '1' })).upstreamHeaders();
    expect(Object.keys(headers).sort()).toEqual(['traceparent', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']);
    expect(headers['x-b3-parentspanid']).toBe(APP_SPAN);
    for (const name of Object.keys(headers)) expect(TRACE_HEADERS).toContain(name);
  });

  it('sets semantic-convention attributes on the spans', () => {
    const { telemetry, exporter } = setup();
    const record = telemetry.startRequest(
      outbound({}, { protocol: 'grpc', method: 'POST', path: '/bookinfo.Reviews/Get', authority: 'reviews:9080' }),
    );
    record.response(200);
    record.response(200, '14');
    record.end({ upstream: '10.0.0.7:9080', flags: ['UR'] });
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('bookinfo.Reviews/Get');
    expect(span?.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': '/bookinfo.Reviews/Get',
      'http.response.status_code': 200,
      'rpc.system.name': 'grpc',
      'rpc.method': 'bookinfo.Reviews/Get',
      'rpc.status_code': 'UNAVAILABLE',
      'error.type': 'UNAVAILABLE',
      'server.address': 'reviews',
      'server.port': 9080,
      'network.peer.address': '10.0.0.7',
      'network.peer.port': 9080,
      'network.protocol.version': '2',
      'tsmesh.source.identity': productpage.identity,
      'tsmesh.destination.identity': reviews.identity,
      'tsmesh.mtls': true,
      'tsmesh.response_flags': 'UR',
    });
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('uses the current RPC attribute names, never the ones semantic conventions deprecate', () => {
    const { telemetry, exporter } = setup();
    const ok = telemetry.startRequest(outbound({}, { protocol: 'grpc', method: 'POST', path: '/bookinfo.Reviews/Get', authority: 'reviews:9080' }));
    ok.response(200, 0);
    ok.end();
    const odd = telemetry.startRequest(outbound({}, { protocol: 'grpc', method: 'POST', path: '/not-a-method', authority: 'reviews:9080' }));
    odd.end();
    const [a, b] = exporter.getFinishedSpans();
    expect(a?.attributes).toMatchObject({ 'rpc.system.name': 'grpc', 'rpc.method': 'bookinfo.Reviews/Get', 'rpc.status_code': 'OK' });
    expect(b?.attributes).toMatchObject({ 'rpc.system.name': 'grpc', 'rpc.method': '_OTHER', 'rpc.method_original': '/not-a-method' });
    for (const span of [a, b]) {
      for (const deprecated of ['rpc.system', 'rpc.service', 'rpc.grpc.status_code', 'rpc.response.status_code']) expect(span?.attributes).not.toHaveProperty([deprecated]);
    }
  });

  it('writes the request id, user agent, cluster and route of a request in its access-log line', () => {
    const { telemetry, log } = setup();
    const record = telemetry.startRequest(outbound({ 'x-request-id': 'req-1', 'user-agent': 'grpc-node-js/1.12.0' }));
    record.route('bookinfo/reviews:9080', 'bookinfo/reviews-split#1');
    record.response(200);
    record.end();
    telemetry.startRequest(outbound({})).end();
    const [routed, plain] = log.lines();
    expect(routed).toMatchObject({ request_id: 'req-1', user_agent: 'grpc-node-js/1.12.0', upstream_cluster: 'bookinfo/reviews:9080', route_name: 'bookinfo/reviews-split#1' });
    expect(plain).toMatchObject({ request_id: null, user_agent: null, upstream_cluster: null, route_name: null });
  });

  it('never puts the query string in a span or the access log', () => {
    const { telemetry, exporter, log } = setup();
    telemetry.startRequest(outbound({})).end();
    expect(exporter.getFinishedSpans()[0]?.attributes['url.path']).toBe('/reviews/1');
    expect(log.lines()[0]?.path).toBe('/reviews/1');
  });

  it('counts N requests as N and observes N durations', async () => {
    const { telemetry, metrics, advance } = setup();
    for (let i = 0; i < 25; i++) {
      const record = telemetry.startRequest(outbound({}));
      advance(3);
      record.response(200);
      record.end({ bytesSent: 1, bytesReceived: 1 });
    }
    const text = parseExposition(await metrics.render());
    expect(find(text, 'tsmesh_requests_total')[0]?.value).toBe(25);
    expect(find(text, 'tsmesh_request_duration_seconds_count')[0]?.value).toBe(25);
    expect(find(text, 'tsmesh_request_duration_seconds_bucket', { le: '0.0025' })[0]?.value).toBe(0);
    expect(find(text, 'tsmesh_request_duration_seconds_bucket', { le: '0.005' })[0]?.value).toBe(25);
  });

  it('records a request exactly once however often end is called', async () => {
    const { telemetry, metrics, exporter, log } = setup();
    const record = telemetry.startRequest(outbound({}));
    record.end();
    record.end();
    record.response(500);
    const text = parseExposition(await metrics.render());
    expect(find(text, 'tsmesh_requests_total')).toEqual([expect.objectContaining({ value: 1, labels: expect.objectContaining({ response_code: '0' }) })]);
    expect(exporter.getFinishedSpans()).toHaveLength(1);
    expect(log.lines()).toHaveLength(1);
  });

  it('labels metrics with the destination learned at end', async () => {
    const { telemetry, metrics } = setup();
    const record = telemetry.startRequest(outbound({}));
    record.response(503);
    record.end({ destination: { workload: 'reviews-v3' }, flags: ['UH'] });
    const [sample] = find(parseExposition(await metrics.render()), 'tsmesh_requests_total');
    expect(sample?.labels).toMatchObject({
      reporter: 'source',
      source_workload: 'productpage-v1',
      destination_service: reviews.service,
      destination_workload: 'reviews-v3',
      destination_namespace: 'bookinfo',
      response_code: '503',
      grpc_status: '',
      connection_security_policy: 'mutual_tls',
    });
  });

  it('writes one access-log line with the request, the peers and the trace id', () => {
    const { telemetry, log, advance } = setup();
    const record = telemetry.startRequest(outbound({ traceparent: `00-${APP_TRACE}-${APP_SPAN}-01` }));
    advance(7.5);
    record.response(201);
    record.end({ bytesSent: 300, bytesReceived: 20, upstream: '10.0.0.7:9080', flags: ['UT'] });
    expect(log.lines()).toEqual([
      expect.objectContaining({
        component: 'access',
        type: 'http',
        reporter: 'source',
        direction: 'outbound',
        method: 'GET',
        authority: 'reviews.bookinfo:9080',
        path: '/reviews/1',
        protocol: 'http1',
        status: 201,
        grpc_status: null,
        duration_ms: 7.5,
        bytes_sent: 300,
        bytes_received: 20,
        upstream: '10.0.0.7:9080',
        downstream: '127.0.0.1:40312',
        source_identity: productpage.identity,
        destination_identity: reviews.identity,
        trace_id: APP_TRACE,
        flags: 'UT',
        mtls: true,
      }),
    ]);
  });

  it('forwards the incoming context when no SDK runs', () => {
    const telemetry = new RequestTelemetry({
      metrics: new ProxyMetrics({ defaultMetrics: false }),
      tracer: new ProxyTracer(),
      accessLog: new AccessLog(captureLog('silent').logger),
    });
    const headers = telemetry.startRequest(outbound({ traceparent: `00-${APP_TRACE}-${APP_SPAN}-01`, tracestate: 'a=b' })).upstreamHeaders();
    expect(headers).toEqual({ traceparent: `00-${APP_TRACE}-${APP_SPAN}-01`, tracestate: 'a=b', b3: `${APP_TRACE}-${APP_SPAN}-1` });
  });

  it('never throws into the caller, and says what failed', () => {
    const { telemetry, failures } = setup();
    const broken = telemetry.startRequest(
      outbound({}, {
        headers: () => {
          throw new Error('bad headers');
        },
      }),
    );
    expect(broken.upstreamHeaders()).toEqual({});
    expect(() => broken.end()).not.toThrow();
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    metrics.recordRequest = () => {
      throw new Error('registry broke');
    };
    const failing = new RequestTelemetry({ metrics, tracer: new ProxyTracer(), log: failures.logger, accessLog: new AccessLog(captureLog('silent').logger) });
    expect(() => failing.startRequest(outbound({})).end()).not.toThrow();
    expect(failures.lines()[0]).toMatchObject({ level: 50, where: 'startRequest' });
  });
});

describe('RequestTelemetry TCP connections', () => {
  const info = {
    reporter: 'destination' as const,
    source: productpage,
    destination: { ...reviews, workload: 'reviews-v1' },
    mtls: true,
    upstream: '127.0.0.1:9080',
    downstream: '10.0.0.3:51000',
  };

  it('counts opened, closed and bytes, including progress on long connections', async () => {
    const { telemetry, metrics } = setup();
    const conn = telemetry.startTcp(info);
    conn.progress({ sent: 100, received: 10 });
    conn.progress({ sent: 150, received: 10 });
    conn.end({ sent: 200, received: 30 });
    conn.end({ sent: 999, received: 999 });
    const text = parseExposition(await metrics.render());
    expect(find(text, 'tsmesh_tcp_opened_total')[0]?.value).toBe(1);
    expect(find(text, 'tsmesh_tcp_closed_total')[0]?.value).toBe(1);
    expect(find(text, 'tsmesh_tcp_sent_bytes_total')[0]?.value).toBe(200);
    expect(find(text, 'tsmesh_tcp_received_bytes_total')[0]?.value).toBe(30);
    expect(find(text, 'tsmesh_tcp_opened_total')[0]?.labels).toMatchObject({ reporter: 'destination', destination_workload: 'reviews-v1' });
  });

  it('records a connection span and one access-log line', () => {
    const { telemetry, exporter, log } = setup();
    const conn = telemetry.startTcp(info);
    conn.end({ sent: 5, received: 6, flags: ['DT'] });
    const [span] = exporter.getFinishedSpans();
    expect(span?.kind).toBe(SpanKind.SERVER);
    expect(span?.name).toBe(`tcp ${reviews.service}`);
    expect(span?.attributes).toMatchObject({ 'network.transport': 'tcp', 'network.peer.address': '10.0.0.3', 'tsmesh.bytes_sent': 5, 'tsmesh.response_flags': 'DT' });
    expect(log.lines()).toEqual([
      expect.objectContaining({ type: 'tcp', direction: 'inbound', bytes_sent: 5, bytes_received: 6, flags: 'DT', trace_id: conn.traceId }),
    ]);
  });

  it('has no trace when tracing is off', () => {
    const telemetry = new RequestTelemetry({ metrics: new ProxyMetrics({ defaultMetrics: false }), accessLog: new AccessLog(captureLog('silent').logger) });
    expect(telemetry.startTcp(info).traceId).toBeUndefined();
  });
});

describe('RequestTelemetry denials', () => {
  it('counts a refused connection by reporter and reason and writes its access-log line with the flag and reason', async () => {
    const { telemetry, metrics, log, exporter } = setup();
    telemetry.denied({
      reporter: 'destination',
      reason: 'mtls_required',
      flags: ['RBAC'],
      source: {},
      destination: { ...reviews, workload: 'reviews-v1' },
      mtls: false,
      downstream: '10.0.0.3:51000',
      durationMs: 12.5,
    });
    telemetry.denied({ reporter: 'source', reason: 'incomplete_http', flags: ['DPE'], source: productpage, destination: reviews, mtls: false });
    const text = parseExposition(await metrics.render());
    expect(find(text, METRIC_NAMES.policyDenials, { reporter: 'destination', reason: 'mtls_required' })[0]?.value).toBe(1);
    expect(find(text, METRIC_NAMES.policyDenials, { reporter: 'source', reason: 'incomplete_http' })[0]?.value).toBe(1);
    expect(log.lines()).toEqual([
      expect.objectContaining({
        component: 'access',
        type: 'tcp',
        reporter: 'destination',
        direction: 'inbound',
        duration_ms: 12.5,
        bytes_sent: 0,
        bytes_received: 0,
        downstream: '10.0.0.3:51000',
        source_identity: null,
        destination_service: reviews.service,
        mtls: false,
        flags: 'RBAC',
        reason: 'mtls_required',
      }),
      expect.objectContaining({ reporter: 'source', direction: 'outbound', flags: 'DPE', reason: 'incomplete_http' }),
    ]);
    // A refusal is not a connection that was carried: no TCP series, no span.
    expect(text.samples.filter((s) => s.name.startsWith('tsmesh_tcp_'))).toEqual([]);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});
