import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { mergeMetrics } from '../loops/merge.js';
import {
  BUILD_INFO,
  DURATION_BUCKETS,
  ISTIO_BUCKETS,
  ISTIO_METRIC_NAMES,
  ISTIO_REQUEST_LABELS,
  ISTIO_TCP_LABELS,
  METRIC_NAMES,
  ProxyMetrics,
  REQUEST_LABELS,
  TCP_LABELS,
  grpcStatusLabel,
  labelValue,
  responseCodeLabel,
  serviceLabels,
  type RequestSample,
} from './metrics.js';
import { find, parseExposition } from './testing/prometheus-text.js';

const peers = {
  reporter: 'source' as const,
  source: { workload: 'productpage-v1', namespace: 'bookinfo', identity: 'spiffe://cluster.local/ns/bookinfo/sa/productpage' },
  destination: { service: 'reviews.bookinfo.svc.cluster.local', workload: 'reviews-v2', namespace: 'bookinfo' },
  mtls: true,
};

function request(overrides: Partial<RequestSample> = {}): RequestSample {
  return { ...peers, responseCode: 200, grpc: false, grpcStatus: undefined, durationSeconds: 0.004, ...overrides };
}

async function scrape(metrics: ProxyMetrics) {
  return parseExposition(await metrics.render());
}

describe('ProxyMetrics', () => {
  it('renders the request counter with exactly the SPEC labels', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    metrics.recordRequest(request());
    const text = await scrape(metrics);
    expect(text.types.get(METRIC_NAMES.requests)).toBe('counter');
    const [sample, ...rest] = find(text, 'tsmesh_requests_total');
    expect(rest).toHaveLength(0);
    expect(sample?.labels).toEqual({
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_namespace: 'bookinfo',
      destination_service: 'reviews.bookinfo.svc.cluster.local',
      destination_workload: 'reviews-v2',
      destination_namespace: 'bookinfo',
      response_code: '200',
      grpc_status: '',
      connection_security_policy: 'mutual_tls',
    });
    expect(Object.keys(sample?.labels ?? {}).sort()).toEqual([...REQUEST_LABELS].sort());
    expect(sample?.value).toBe(1);
  });

  it('counts N requests as N and splits series by response code', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    for (let i = 0; i < 7; i++) metrics.recordRequest(request());
    for (let i = 0; i < 3; i++) metrics.recordRequest(request({ responseCode: 503 }));
    const text = await scrape(metrics);
    expect(find(text, 'tsmesh_requests_total', { response_code: '200' })[0]?.value).toBe(7);
    expect(find(text, 'tsmesh_requests_total', { response_code: '503' })[0]?.value).toBe(3);
  });

  it('observes durations into the mesh buckets from 0.5 ms to 30 s', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    for (const seconds of [0.0002, 0.003, 0.003, 0.2, 45]) metrics.recordRequest(request({ durationSeconds: seconds }));
    const text = await scrape(metrics);
    expect(text.types.get(METRIC_NAMES.requestDuration)).toBe('histogram');
    const buckets = find(text, 'tsmesh_request_duration_seconds_bucket');
    expect(buckets.map((b) => b.labels.le)).toEqual([...DURATION_BUCKETS.map(String), '+Inf']);
    const le = (bound: string) => find(text, 'tsmesh_request_duration_seconds_bucket', { le: bound })[0]?.value;
    expect(le('0.0005')).toBe(1);
    expect(le('0.005')).toBe(3);
    expect(le('0.25')).toBe(4);
    expect(le('30')).toBe(4);
    expect(le('+Inf')).toBe(5);
    expect(find(text, 'tsmesh_request_duration_seconds_count')[0]?.value).toBe(5);
    expect(find(text, 'tsmesh_request_duration_seconds_sum')[0]?.value).toBeCloseTo(45.2062, 6);
    // The histogram carries the request labels too.
    expect(find(text, 'tsmesh_request_duration_seconds_count')[0]?.labels.response_code).toBe('200');
  });

  it('turns missing peer fields into unknown and a missing response into code 0', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    metrics.recordRequest({
      reporter: 'destination',
      source: {},
      destination: { workload: '' },
      mtls: false,
      responseCode: undefined,
      grpc: true,
      grpcStatus: undefined,
      durationSeconds: 0.01,
    });
    const [sample] = find(await scrape(metrics), 'tsmesh_requests_total');
    expect(sample?.labels).toMatchObject({
      reporter: 'destination',
      source_workload: 'unknown',
      source_namespace: 'unknown',
      destination_service: 'unknown',
      destination_workload: 'unknown',
      response_code: '0',
      grpc_status: 'unknown',
      connection_security_policy: 'none',
    });
  });

  it('labels gRPC requests with their status', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    metrics.recordRequest(request({ grpc: true, grpcStatus: 14 }));
    expect(find(await scrape(metrics), 'tsmesh_requests_total')[0]?.labels.grpc_status).toBe('14');
  });

  it('renders the TCP metrics with the SPEC labels and no response labels', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    const a = metrics.tcpConnection(peers);
    const b = metrics.tcpConnection(peers);
    a.bytes(100, 40);
    a.bytes(1, 0);
    a.closed();
    b.bytes(0, 9);
    const text = await scrape(metrics);
    for (const name of [METRIC_NAMES.tcpOpened, METRIC_NAMES.tcpClosed, METRIC_NAMES.tcpSentBytes, METRIC_NAMES.tcpReceivedBytes]) {
      expect(text.types.get(name)).toBe('counter');
      expect(Object.keys(find(text, name)[0]?.labels ?? {}).sort()).toEqual([...TCP_LABELS].sort());
    }
    expect(find(text, 'tsmesh_tcp_opened_total')[0]?.value).toBe(2);
    expect(find(text, 'tsmesh_tcp_closed_total')[0]?.value).toBe(1);
    expect(find(text, 'tsmesh_tcp_sent_bytes_total')[0]?.value).toBe(101);
    expect(find(text, 'tsmesh_tcp_received_bytes_total')[0]?.value).toBe(49);
  });

  it('keeps one series per label set, however many requests and peer objects', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    for (let i = 0; i < 100; i++) {
      // Fresh objects with equal values, as the data path makes them: still the same series.
      metrics.recordRequest(request({ source: { ...peers.source }, destination: { ...peers.destination }, responseCode: i % 4 === 0 ? 503 : 200 }));
      metrics.recordRequest(request({ reporter: 'destination', mtls: false, grpc: true, grpcStatus: i % 2 }));
    }
    const text = await scrape(metrics);
    const counts = find(text, 'tsmesh_requests_total');
    expect(counts.map((s) => [s.labels.reporter, s.labels.response_code, s.labels.grpc_status, s.labels.connection_security_policy, s.value])).toEqual([
      ['source', '503', '', 'mutual_tls', 25],
      ['source', '200', '', 'mutual_tls', 75],
      ['destination', '200', '0', 'none', 50],
      ['destination', '200', '1', 'none', 50],
    ]);
    expect(find(text, 'tsmesh_request_duration_seconds_count').map((s) => s.value)).toEqual([25, 75, 50, 50]);
  });

  it('renders every family with its help and type before anything is recorded', async () => {
    const text = await scrape(new ProxyMetrics({ defaultMetrics: false }));
    for (const name of Object.values(METRIC_NAMES)) expect(text.types.has(name)).toBe(true);
    expect(text.types.get(METRIC_NAMES.requestDuration)).toBe('histogram');
    expect(find(text, METRIC_NAMES.requests)).toHaveLength(0);
  });

  it('escapes quotes, backslashes and newlines in label values', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    const odd = 'a"b\\c\nd';
    metrics.recordRequest(request({ source: { workload: odd } }));
    metrics.tcpConnection({ ...peers, destination: { service: odd } }).closed();
    const text = await scrape(metrics);
    expect(find(text, 'tsmesh_requests_total')[0]?.labels.source_workload).toBe(odd);
    expect(find(text, 'tsmesh_tcp_closed_total')[0]?.labels.destination_service).toBe(odd);
  });

  it('counts detect timeouts and upstream connect failures', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    metrics.protocolDetectTimeout('inbound');
    metrics.protocolDetectTimeout('inbound');
    metrics.upstreamConnectFailure('reviews.bookinfo.svc.cluster.local');
    metrics.upstreamConnectFailure(undefined);
    const text = await scrape(metrics);
    expect(find(text, METRIC_NAMES.detectTimeouts, { direction: 'inbound' })[0]?.value).toBe(2);
    expect(find(text, METRIC_NAMES.connectFailures, { destination_service: 'reviews.bookinfo.svc.cluster.local' })[0]?.value).toBe(1);
    expect(find(text, METRIC_NAMES.connectFailures, { destination_service: 'unknown' })[0]?.value).toBe(1);
  });

  it('counts local and cross-zone picks from the tallies it hands out, one tally per cluster', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    const tally = metrics.zonePickTally('shop/web:80');
    expect(metrics.zonePickTally('shop/web:80')).toBe(tally);
    tally.local += 3;
    tally.crossZone += 1;
    let text = await scrape(metrics);
    expect(text.types.get(METRIC_NAMES.zonePicks)).toBe('counter');
    expect(find(text, METRIC_NAMES.zonePicks, { destination_service: 'shop/web:80', locality: 'local' })[0]?.value).toBe(3);
    expect(find(text, METRIC_NAMES.zonePicks, { destination_service: 'shop/web:80', locality: 'cross_zone' })[0]?.value).toBe(1);
    tally.local += 2;
    text = await scrape(metrics);
    expect(find(text, METRIC_NAMES.zonePicks, { destination_service: 'shop/web:80', locality: 'local' })[0]?.value).toBe(5);
    expect(find(text, METRIC_NAMES.zonePicks, { destination_service: 'shop/web:80', locality: 'cross_zone' })[0]?.value).toBe(1);
  });

  it('counts accepted connections by event loop and direction', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    metrics.loopConnection(0, 'outbound');
    metrics.loopConnection(1, 'outbound');
    metrics.loopConnection(1, 'outbound');
    metrics.loopConnection(1, 'inbound');
    const text = await scrape(metrics);
    expect(text.types.get(METRIC_NAMES.loopConnections)).toBe('counter');
    expect(find(text, METRIC_NAMES.loopConnections, { loop: '0', direction: 'outbound' })[0]?.value).toBe(1);
    expect(find(text, METRIC_NAMES.loopConnections, { loop: '1', direction: 'outbound' })[0]?.value).toBe(2);
    expect(find(text, METRIC_NAMES.loopConnections, { loop: '1', direction: 'inbound' })[0]?.value).toBe(1);
  });

  it('publishes the certificate expiry only once there is a certificate', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    expect(find(await scrape(metrics), METRIC_NAMES.certExpiry)).toHaveLength(0);
    const identity = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';
    metrics.setCertExpiry(new Date('2030-01-02T03:04:05Z'), identity);
    metrics.setCertExpiry(new Date('2030-01-03T03:04:05Z'), identity);
    const samples = find(await scrape(metrics), METRIC_NAMES.certExpiry);
    expect(samples).toEqual([{ name: METRIC_NAMES.certExpiry, labels: { identity }, value: Date.parse('2030-01-03T03:04:05Z') / 1000 }]);
    metrics.setCertExpiry(undefined);
    expect(find(await scrape(metrics), METRIC_NAMES.certExpiry)).toHaveLength(0);
  });

  it('includes the standard process metrics and the Prometheus content type', async () => {
    const metrics = new ProxyMetrics();
    const text = await scrape(metrics);
    expect(find(text, 'process_cpu_user_seconds_total')).toHaveLength(1);
    expect(find(text, 'nodejs_heap_size_used_bytes')).toHaveLength(1);
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('says what runs in tsmesh_build_info: 1, with the proxy package\'s version and Node\'s', async () => {
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    expect(BUILD_INFO).toEqual({ component: 'proxy', version, node: process.version });
    const text = await scrape(new ProxyMetrics({ defaultMetrics: false }));
    expect(text.types.get(METRIC_NAMES.buildInfo)).toBe('gauge');
    expect(find(text, METRIC_NAMES.buildInfo)).toEqual([{ name: 'tsmesh_build_info', labels: { component: 'proxy', version, node_version: process.version }, value: 1 }]);
  });

  it('keeps tsmesh_build_info at 1 when several event loops are merged', async () => {
    const views = await Promise.all([new ProxyMetrics(), new ProxyMetrics({ defaultMetrics: false }), new ProxyMetrics({ defaultMetrics: false })].map((m) => m.json()));
    const text = parseExposition(await mergeMetrics(views).metrics());
    expect(find(text, METRIC_NAMES.buildInfo).map((s) => s.value)).toEqual([1]);
  });

  it('keeps separate registries per instance', async () => {
    const a = new ProxyMetrics({ defaultMetrics: false });
    const b = new ProxyMetrics({ defaultMetrics: false });
    a.recordRequest(request());
    expect(find(await scrape(b), 'tsmesh_requests_total')).toHaveLength(0);
  });
});

describe('label values', () => {
  it('maps empty and missing values to unknown and cuts overlong ones', () => {
    expect(labelValue(undefined)).toBe('unknown');
    expect(labelValue('')).toBe('unknown');
    expect(labelValue('x'.repeat(300))).toHaveLength(253);
  });

  it('accepts only real HTTP status codes', () => {
    expect(responseCodeLabel(204)).toBe('204');
    expect(responseCodeLabel(0)).toBe('0');
    expect(responseCodeLabel(999)).toBe('unknown');
    expect(responseCodeLabel(20.5)).toBe('unknown');
  });

  it('leaves grpc_status empty for plain HTTP and bounds it for gRPC', () => {
    expect(grpcStatusLabel(false, 3)).toBe('');
    expect(grpcStatusLabel(true, 0)).toBe('0');
    expect(grpcStatusLabel(true, 17)).toBe('unknown');
  });
});

describe("ProxyMetrics in Istio's vocabulary", () => {
  const istioPeers = {
    reporter: 'destination' as const,
    source: { workload: 'productpage-v1', namespace: 'bookinfo', identity: 'spiffe://cluster.local/ns/bookinfo/sa/productpage', app: 'productpage', version: 'v1' },
    destination: { service: 'reviews.bookinfo', workload: 'reviews-v2', namespace: 'bookinfo', identity: 'spiffe://cluster.local/ns/bookinfo/sa/reviews', app: 'reviews', version: 'v2' },
    mtls: true,
  };
  const sample = (overrides: Partial<RequestSample> = {}): RequestSample => ({
    ...istioPeers,
    responseCode: 200,
    grpc: false,
    grpcStatus: undefined,
    durationSeconds: 0.004,
    requestBytes: 120,
    responseBytes: 5000,
    ...overrides,
  });

  it("writes istio_requests_total with Istio's labels and their values", async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    metrics.recordRequest(sample());
    metrics.recordRequest(sample({ grpc: true, grpcStatus: 14, flags: ['UF', 'UR'] }));
    const text = await scrape(metrics);
    expect(text.types.get(ISTIO_METRIC_NAMES.requests)).toBe('counter');
    const [http, grpc, ...rest] = find(text, 'istio_requests_total');
    expect(rest).toHaveLength(0);
    expect(http?.labels).toEqual({
      reporter: 'destination',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'bookinfo',
      source_principal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage',
      source_app: 'productpage',
      source_version: 'v1',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'bookinfo',
      destination_principal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_service: 'reviews.bookinfo.svc.cluster.local',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_service_name: 'reviews',
      destination_service_namespace: 'bookinfo',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
    expect(Object.keys(http?.labels ?? {})).toEqual([...ISTIO_REQUEST_LABELS]);
    expect(grpc?.labels).toMatchObject({ request_protocol: 'grpc', grpc_response_status: '14', response_flags: 'UR,UF' });
    expect([http?.value, grpc?.value]).toEqual([1, 1]);
  });

  it('counts what differs only in Istio labels once in tsmesh_requests_total, split in istio_requests_total', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    for (let i = 0; i < 10; i++) metrics.recordRequest(sample({ flags: i % 2 === 0 ? ['UR'] : undefined, source: { ...istioPeers.source, version: `v${i % 3}` } }));
    const text = await scrape(metrics);
    expect(find(text, 'tsmesh_requests_total').map((s) => s.value)).toEqual([10]);
    expect(find(text, 'tsmesh_request_duration_seconds_count').map((s) => s.value)).toEqual([10]);
    expect(find(text, 'tsmesh_request_duration_seconds_bucket', { le: '0.005' }).map((s) => s.value)).toEqual([10]);
    const istio = find(text, 'istio_requests_total');
    expect(istio).toHaveLength(6);
    expect(istio.reduce((n, s) => n + s.value, 0)).toBe(10);
  });

  it("observes durations in milliseconds into Istio's buckets, exactly as tsmesh's seconds", async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    for (const seconds of [0.0002, 0.003, 0.003, 0.2, 45, 4000]) metrics.recordRequest(sample({ durationSeconds: seconds }));
    const text = await scrape(metrics);
    expect(text.types.get(ISTIO_METRIC_NAMES.requestDuration)).toBe('histogram');
    const buckets = find(text, 'istio_request_duration_milliseconds_bucket');
    expect(buckets.map((b) => b.labels.le)).toEqual([...ISTIO_BUCKETS.map(String), '+Inf']);
    const le = (bound: string) => find(text, 'istio_request_duration_milliseconds_bucket', { le: bound })[0]?.value;
    expect(le('0.5')).toBe(1);
    expect(le('5')).toBe(3);
    expect(le('250')).toBe(4);
    expect(le('30000')).toBe(4);
    expect(le('60000')).toBe(5);
    expect(le('3600000')).toBe(5);
    expect(le('+Inf')).toBe(6);
    expect(find(text, 'istio_request_duration_milliseconds_sum')[0]?.value).toBeCloseTo(4045206.2, 3);
    // tsmesh's own buckets are unchanged by the finer observation.
    expect(find(text, 'tsmesh_request_duration_seconds_bucket').map((b) => b.labels.le)).toEqual([...DURATION_BUCKETS.map(String), '+Inf']);
    expect(find(text, 'tsmesh_request_duration_seconds_bucket', { le: '0.0025' })[0]?.value).toBe(1);
    expect(find(text, 'tsmesh_request_duration_seconds_bucket', { le: '30' })[0]?.value).toBe(4);
  });

  it('observes request and response body sizes in istio_request_bytes and istio_response_bytes', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    metrics.recordRequest(sample({ requestBytes: 0, responseBytes: 5000 }));
    metrics.recordRequest(sample({ requestBytes: 120, responseBytes: 2_000_000 }));
    const text = await scrape(metrics);
    for (const name of [ISTIO_METRIC_NAMES.requestBytes, ISTIO_METRIC_NAMES.responseBytes]) expect(text.types.get(name)).toBe('histogram');
    const req = (bound: string) => find(text, 'istio_request_bytes_bucket', { le: bound })[0]?.value;
    const res = (bound: string) => find(text, 'istio_response_bytes_bucket', { le: bound })[0]?.value;
    expect([req('0.5'), req('100'), req('250'), req('+Inf')]).toEqual([1, 1, 2, 2]);
    expect([res('2500'), res('5000'), res('1800000'), res('3600000')]).toEqual([0, 1, 1, 2]);
    expect(find(text, 'istio_request_bytes_sum')[0]?.value).toBe(120);
    expect(find(text, 'istio_response_bytes_sum')[0]?.value).toBe(2_005_000);
    expect(find(text, 'istio_response_bytes_count')[0]?.value).toBe(2);
  });

  it("writes the TCP families with Istio's names and labels", async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    const conn = metrics.tcpConnection({ ...istioPeers, mtls: false });
    conn.bytes(300, 40);
    conn.closed();
    const text = await scrape(metrics);
    const opened = find(text, 'istio_tcp_connections_opened_total');
    expect(opened).toHaveLength(1);
    expect(Object.keys(opened[0]?.labels ?? {})).toEqual([...ISTIO_TCP_LABELS]);
    // Plaintext: no certificate proved who either side is.
    expect(opened[0]?.labels).toMatchObject({ request_protocol: 'tcp', response_flags: '-', connection_security_policy: 'none', destination_service: 'reviews.bookinfo.svc.cluster.local', source_principal: 'unknown', destination_principal: 'unknown' });
    metrics.tcpConnection(istioPeers).closed();
    expect(find(await scrape(metrics), 'istio_tcp_connections_opened_total', { connection_security_policy: 'mutual_tls' })[0]?.labels).toMatchObject({ source_principal: istioPeers.source.identity, destination_principal: istioPeers.destination.identity });
    expect(find(text, 'istio_tcp_connections_closed_total')[0]?.value).toBe(1);
    expect(find(text, 'istio_tcp_sent_bytes_total')[0]?.value).toBe(300);
    expect(find(text, 'istio_tcp_received_bytes_total')[0]?.value).toBe(40);
  });

  it('labels what is not known unknown, and a peer without app or version by its workload and latest', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    metrics.recordRequest({ reporter: 'source', source: { workload: 'loadgen' }, destination: { service: '10.0.0.9:8080' }, mtls: false, responseCode: undefined, grpc: false, grpcStatus: undefined, durationSeconds: 0.1 });
    const [only] = find(await scrape(metrics), 'istio_requests_total');
    expect(only?.labels).toMatchObject({
      source_canonical_service: 'loadgen',
      source_canonical_revision: 'latest',
      source_app: 'unknown',
      source_version: 'unknown',
      source_principal: 'unknown',
      destination_service: '10.0.0.9:8080',
      destination_service_name: '10.0.0.9:8080',
      destination_service_namespace: 'unknown',
      destination_canonical_service: 'unknown',
      response_code: '0',
    });
  });

  it('merges several event loops exactly, both vocabularies', async () => {
    const loops = [new ProxyMetrics({ defaultMetrics: false }), new ProxyMetrics({ defaultMetrics: false })];
    loops[0]?.recordRequest(sample({ flags: ['UR'] }));
    loops[0]?.recordRequest(sample());
    loops[1]?.recordRequest(sample());
    const text = parseExposition(await mergeMetrics(await Promise.all(loops.map((m) => m.json()))).metrics());
    expect(find(text, 'tsmesh_requests_total').map((s) => s.value)).toEqual([3]);
    expect(find(text, 'istio_requests_total', { response_flags: '-' }).map((s) => s.value)).toEqual([2]);
    expect(find(text, 'istio_requests_total', { response_flags: 'UR' }).map((s) => s.value)).toEqual([1]);
    expect(find(text, 'istio_request_duration_milliseconds_bucket', { le: '5', response_flags: '-' }).map((s) => s.value)).toEqual([2]);
    expect(find(text, 'istio_response_bytes_sum', { response_flags: '-' }).map((s) => s.value)).toEqual([10000]);
  });

  it("derives Istio's service labels from a mesh Service's name", () => {
    expect(serviceLabels('web.shop')).toEqual({ fqdn: 'web.shop.svc.cluster.local', name: 'web', namespace: 'shop' });
    expect(serviceLabels('reviews.bookinfo.svc.cluster.local')).toEqual({ fqdn: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' });
    expect(serviceLabels('10.0.0.9:8080')).toEqual({ fqdn: '10.0.0.9:8080', name: '10.0.0.9:8080', namespace: 'unknown' });
    expect(serviceLabels(undefined)).toEqual({ fqdn: 'unknown', name: 'unknown', namespace: 'unknown' });
  });
});

