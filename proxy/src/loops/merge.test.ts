import { describe, expect, it } from '@jest/globals';
import { ProxyMetrics } from '../telemetry/metrics.js';
import { find, parseExposition } from '../telemetry/testing/prometheus-text.js';
import { mergeClusters, mergeMetrics } from './merge.js';

const peers = {
  reporter: 'source' as const,
  source: { workload: 'web', namespace: 'shop' },
  destination: { service: 'api.shop.svc.cluster.local', workload: 'api', namespace: 'shop' },
  mtls: false,
};

describe('mergeMetrics', () => {
  it('sums counters and histograms of several loops exactly, by label set, next to the main thread\'s own metrics', async () => {
    const main = new ProxyMetrics();
    main.setCertExpiry(new Date('2030-01-01T00:00:00Z'), 'spiffe://cluster.local/ns/shop/sa/web');
    const loops = [new ProxyMetrics({ defaultMetrics: false }), new ProxyMetrics({ defaultMetrics: false })];
    for (let i = 0; i < 7; i++) loops[0]!.recordRequest({ ...peers, responseCode: 200, grpc: false, grpcStatus: undefined, durationSeconds: 0.002 });
    for (let i = 0; i < 5; i++) loops[1]!.recordRequest({ ...peers, responseCode: 200, grpc: false, grpcStatus: undefined, durationSeconds: 2 });
    loops[1]!.recordRequest({ ...peers, responseCode: 503, grpc: false, grpcStatus: undefined, durationSeconds: 0.002 });
    loops[0]!.loopConnection(0, 'outbound');
    loops[1]!.loopConnection(1, 'outbound');
    loops[1]!.loopConnection(1, 'outbound');

    const merged = mergeMetrics([await main.json(), ...(await Promise.all(loops.map((m) => m.json())))]);
    const text = parseExposition(await merged.metrics());
    expect(find(text, 'tsmesh_requests_total', { response_code: '200' })[0]?.value).toBe(12);
    expect(find(text, 'tsmesh_requests_total', { response_code: '503' })[0]?.value).toBe(1);
    expect(find(text, 'tsmesh_request_duration_seconds_count', { response_code: '200' })[0]?.value).toBe(12);
    expect(find(text, 'tsmesh_request_duration_seconds_bucket', { response_code: '200', le: '0.0025' })[0]?.value).toBe(7);
    expect(find(text, 'tsmesh_request_duration_seconds_bucket', { response_code: '200', le: '+Inf' })[0]?.value).toBe(12);
    expect(find(text, 'tsmesh_proxy_loop_connections_total', { loop: '0' })[0]?.value).toBe(1);
    expect(find(text, 'tsmesh_proxy_loop_connections_total', { loop: '1' })[0]?.value).toBe(2);
    // The main thread's alone: the certificate and the process.
    expect(find(text, 'tsmesh_workload_cert_expiry_timestamp_seconds')[0]?.value).toBe(Date.parse('2030-01-01T00:00:00Z') / 1000);
    expect(find(text, 'process_cpu_user_seconds_total')).toHaveLength(1);
    expect(merged.contentType).toBe(main.contentType);
  });
});

describe('mergeClusters', () => {
  const none = { http1: 0, http2: 0, tcp: 0 };
  const endpoint = (key: string, inFlight: number, ejected = false, connections = none) => ({ key, address: '10.0.0.1', port: Number(key.split(':')[1]), inFlight, ejected, connections });

  it('sums in-flight requests and open connections per endpoint, calls an endpoint ejected when any loop ejected it, and keeps each loop\'s view', () => {
    const c0 = { http1: 1, http2: 2, tcp: 0 };
    const c1 = { http1: 4, http2: 1, tcp: 3 };
    const merged = mergeClusters([
      { loop: 0, clusters: [{ cluster: 'shop/api:80', loadBalancer: 'least-request', endpoints: [endpoint('10.0.0.1:8080', 2, false, c0), endpoint('10.0.0.1:8081', 0)] }] },
      { loop: 1, clusters: [{ cluster: 'shop/api:80', loadBalancer: 'least-request', endpoints: [endpoint('10.0.0.1:8080', 3, false, c1), endpoint('10.0.0.1:8081', 1, true)] }] },
    ]);
    expect(merged).toEqual([
      {
        cluster: 'shop/api:80',
        loadBalancer: 'least-request',
        endpoints: [
          {
            key: '10.0.0.1:8080',
            address: '10.0.0.1',
            port: 8080,
            inFlight: 5,
            ejected: false,
            connections: { http1: 5, http2: 3, tcp: 3 },
            loops: [
              { loop: 0, inFlight: 2, ejected: false, connections: c0 },
              { loop: 1, inFlight: 3, ejected: false, connections: c1 },
            ],
          },
          {
            key: '10.0.0.1:8081',
            address: '10.0.0.1',
            port: 8081,
            inFlight: 1,
            ejected: true,
            connections: none,
            loops: [
              { loop: 0, inFlight: 0, ejected: false, connections: none },
              { loop: 1, inFlight: 1, ejected: true, connections: none },
            ],
          },
        ],
      },
    ]);
  });

  it("keeps a cluster's locality (the first loop's that has one: zone and ejections are the same on every loop)", () => {
    const merged = mergeClusters([
      { loop: 0, clusters: [{ cluster: 'shop/api:80', loadBalancer: 'least-request', endpoints: [endpoint('10.0.0.1:8080', 0)] }] },
      { loop: 1, clusters: [{ cluster: 'shop/api:80', loadBalancer: 'least-request', endpoints: [endpoint('10.0.0.1:8080', 0)], locality: { zone: 'a', mode: 'zone', localShare: 1 } }] },
    ]);
    expect(merged[0]?.locality).toEqual({ zone: 'a', mode: 'zone', localShare: 1 });
  });

  it('keeps clusters and endpoints only some loops have (a loop that has not applied the latest mesh yet)', () => {
    const merged = mergeClusters([
      { loop: 0, clusters: [{ cluster: 'a', loadBalancer: 'round-robin', endpoints: [endpoint('10.0.0.1:1', 0)] }] },
      { loop: 1, clusters: [{ cluster: 'b', loadBalancer: 'round-robin', endpoints: [endpoint('10.0.0.1:2', 1)] }] },
    ]);
    expect(merged.map((c) => [c.cluster, c.endpoints.map((e) => e.loops.map((l) => l.loop))])).toEqual([
      ['a', [[0]]],
      ['b', [[1]]],
    ]);
  });
});
