import { describe, expect, test } from '@jest/globals';
import { counterDeltas, histogramQuantile, indexScrape, intervalStats, succeeded } from './golden.js';
import { parsePrometheusText, type Sample } from './prom-text.js';

const BOUNDS = ['0.005', '0.01', '0.025', '0.05', '0.1', '+Inf'];

/** One sidecar's /metrics for one edge: `ok` and `failed` requests, latencies given as bucket counts. */
function scrape(opts: { reporter: string; ok: number; failed?: number; buckets: number[]; grpcFailed?: number }): Sample[] {
  const peers = `reporter="${opts.reporter}",source_workload="client",source_namespace="demo",destination_service="greeter.demo.svc.cluster.local",destination_workload="greeter",destination_namespace="demo",connection_security_policy="mutual_tls"`;
  const lines = [
    `tsmesh_requests_total{${peers},response_code="200",grpc_status="0"} ${opts.ok}`,
    `tsmesh_requests_total{${peers},response_code="503",grpc_status=""} ${opts.failed ?? 0}`,
    `tsmesh_requests_total{${peers},response_code="200",grpc_status="14"} ${opts.grpcFailed ?? 0}`,
    ...BOUNDS.map((le, i) => `tsmesh_request_duration_seconds_bucket{${peers},le="${le}"} ${opts.buckets[i] ?? 0}`),
  ];
  return [...parsePrometheusText(lines.join('\n')).samples];
}

describe('counter deltas', () => {
  test('a counter that grew counts the growth, a new series counts from zero, a reset counts from zero', () => {
    const before = indexScrape(scrape({ reporter: 'source', ok: 100, failed: 10, buckets: [] }));
    const after = indexScrape(scrape({ reporter: 'source', ok: 130, failed: 4, buckets: [] }));
    const deltas = counterDeltas(before, after).filter((d) => d.name === 'tsmesh_requests_total');
    expect(deltas.map((d) => d.value)).toEqual([30, 4, 0]);
    expect(counterDeltas(new Map(), after).filter((d) => d.name === 'tsmesh_requests_total').map((d) => d.value)).toEqual([130, 4, 0]);
  });
});

describe('histogram quantiles from bucket counts', () => {
  const buckets = (pairs: [number, number][]): Map<number, number> => new Map(pairs);

  test('interpolates linearly within the bucket the rank falls in', () => {
    // 100 requests: 50 under 10 ms, 100 under 20 ms.
    const h = buckets([[0.01, 50], [0.02, 100], [Infinity, 100]]);
    expect(histogramQuantile(0.5, h)).toBeCloseTo(0.01);
    expect(histogramQuantile(0.99, h)).toBeCloseTo(0.0198);
    expect(histogramQuantile(0.25, h)).toBeCloseTo(0.005);
  });

  test('a rank in +Inf answers the largest finite bound; no requests answer null', () => {
    expect(histogramQuantile(0.99, buckets([[0.1, 10], [Infinity, 100]]))).toBe(0.1);
    expect(histogramQuantile(0.99, buckets([[0.1, 0], [Infinity, 0]]))).toBeNull();
    expect(histogramQuantile(0.5, buckets([[0.1, 3]]))).toBeNull();
  });
});

describe('success', () => {
  test('2xx-4xx without a gRPC error succeeds; 5xx, no response (0) and a gRPC error do not', () => {
    expect(succeeded({ response_code: '200', grpc_status: '0' })).toBe(true);
    expect(succeeded({ response_code: '404', grpc_status: '' })).toBe(true);
    expect(succeeded({ response_code: '503', grpc_status: '' })).toBe(false);
    expect(succeeded({ response_code: '0', grpc_status: '' })).toBe(false);
    expect(succeeded({ response_code: '200', grpc_status: '14' })).toBe(false);
  });
});

describe('edges and workloads over an interval', () => {
  test('rate from counter deltas over the interval, success rate and p99 from bucket deltas', () => {
    const before = indexScrape(scrape({ reporter: 'source', ok: 100, buckets: [50, 100, 100, 100, 100, 100] }));
    // 20 more in 2 s: 18 OK, 1 HTTP 503, 1 gRPC UNAVAILABLE; all 20 between 25 and 50 ms.
    const after = indexScrape(scrape({ reporter: 'source', ok: 118, failed: 1, grpcFailed: 1, buckets: [50, 100, 100, 120, 120, 120] }));
    const { edges, workloads } = intervalStats(counterDeltas(before, after), 2);
    expect(edges).toHaveLength(1);
    const edge = edges[0];
    expect(edge).toMatchObject({ source: 'client.demo', destination: 'greeter.demo', reporter: 'source', requests: 20, rps: 10, mtls: true });
    expect(edge?.successRate).toBeCloseTo(0.9);
    expect(edge?.p99).toBeCloseTo(0.025 + 0.025 * 0.99);
    expect(edge?.p50).toBeCloseTo(0.0375);
    expect(workloads.map((w) => [w.id, w.direction, w.rps])).toEqual([
      ['client.demo', 'outbound', 10],
      ['greeter.demo', 'inbound', 10],
    ]);
  });

  test('an edge both sidecars report is counted once, from the caller; one only the callee reports is kept', () => {
    const source = scrape({ reporter: 'source', ok: 10, buckets: [10, 10, 10, 10, 10, 10] });
    const destination = scrape({ reporter: 'destination', ok: 10, buckets: [10, 10, 10, 10, 10, 10] });
    const both = intervalStats([...counterDeltas(new Map(), indexScrape(source)), ...counterDeltas(new Map(), indexScrape(destination))], 1);
    expect(both.edges.map((e) => [e.reporter, e.requests])).toEqual([['source', 10]]);
    const calleeOnly = intervalStats(counterDeltas(new Map(), indexScrape(destination)), 1);
    expect(calleeOnly.edges.map((e) => [e.reporter, e.requests])).toEqual([['destination', 10]]);
  });

  test('a callee without a known workload is named by its service; an unknown caller is "unknown"', () => {
    const [s] = parsePrometheusText('tsmesh_requests_total{reporter="source",source_workload="unknown",destination_service="greeter",destination_workload="unknown",destination_namespace="demo",response_code="200"} 5').samples;
    const { edges } = intervalStats([s as Sample], 1);
    expect(edges.map((e) => [e.source, e.destination])).toEqual([['unknown', 'greeter.demo']]);
  });
});
