import { afterEach, describe, expect, it } from '@jest/globals';
import { BalancedCluster } from '../balance/index.js';
import { DEFAULT_RTT_MS } from '../balance/peak-ewma.js';
import { MAX_ATTEMPTS, UpstreamCall, type AttemptFailure, type UpstreamProtocol } from './call.js';
import { ClusterLimits, type OverflowKind } from './limits.js';
import { clusterSelector, endpointOf, fixedSelector, type UpstreamEndpoint } from './selector.js';

const clusters: Array<BalancedCluster<UpstreamEndpoint>> = [];
afterEach(() => {
  for (const c of clusters.splice(0)) c.close();
});

function cluster(loadBalancer: string, n: number): BalancedCluster<UpstreamEndpoint> {
  const { cluster: c } = BalancedCluster.create<UpstreamEndpoint>({ name: 'shop/api:80', loadBalancer });
  c.setEndpoints(Array.from({ length: n }, (_, i) => endpointOf(`10.0.0.${i + 1}`, 8080)));
  clusters.push(c);
  return c;
}

function recorder() {
  const seen = { connectFailures: [] as string[], retries: [] as Array<[string, UpstreamProtocol, AttemptFailure]>, overflows: [] as Array<[string, OverflowKind]> };
  return {
    seen,
    connectFailure: (c: string) => void seen.connectFailures.push(c),
    retry: (c: string, p: UpstreamProtocol, r: AttemptFailure) => void seen.retries.push([c, p, r]),
    overflow: (c: string, k: OverflowKind) => void seen.overflows.push([c, k]),
  };
}

function key(call: UpstreamCall): string {
  const lease = call.next();
  if (!lease.ok) throw lease.error;
  return lease.value.endpoint.key;
}

describe('UpstreamCall', () => {
  it.each(['random', 'least-request', 'round-robin'])('tries a different endpoint on every attempt while the cluster has one (%s)', (lb) => {
    const c = cluster(lb, 3);
    for (let i = 0; i < 200; i++) {
      const call = new UpstreamCall(clusterSelector('shop/api:80', c), 'http2');
      const keys = [key(call), key(call), key(call)];
      call.release();
      expect(new Set(keys).size).toBe(3);
    }
    expect(c.stats().map((e) => e.inFlight)).toEqual([0, 0, 0]);
  });

  it('has MAX_ATTEMPTS attempts at most, and no more than the cluster has endpoints unless the same endpoint may serve again', () => {
    const two = new UpstreamCall(clusterSelector('a', cluster('round-robin', 2)), 'tcp');
    key(two);
    expect(two.mayRetry()).toBe(true);
    key(two);
    expect(two.mayRetry()).toBe(false);
    expect(two.mayRetry('transparent')).toBe(true);
    key(two);
    expect(two.attempts).toBe(MAX_ATTEMPTS);
    expect(two.mayRetry('transparent')).toBe(false);

    const many = new UpstreamCall(clusterSelector('b', cluster('round-robin', 10)), 'tcp');
    for (let i = 0; i < MAX_ATTEMPTS; i++) key(many);
    expect(many.mayRetry()).toBe(false);
  });

  it('records a connect failure on the endpoint (ejected) and in the metrics; the retry is counted with its reason', () => {
    const c = cluster('round-robin', 2);
    const rec = recorder();
    const call = new UpstreamCall(clusterSelector('shop/api:80', c), 'http1', rec);
    const first = key(call);
    call.failed('connect');
    expect(c.stats().find((e) => e.key === first)?.ejected).toBe(true);
    const second = key(call);
    expect(second).not.toBe(first);
    call.succeeded();
    call.release();
    expect(rec.seen).toEqual({ connectFailures: ['shop/api:80'], retries: [['shop/api:80', 'http1', 'connect']], overflows: [] });
  });

  it('does not hold a refusal (REFUSED_STREAM, GOAWAY) against the endpoint, nor a timeout', () => {
    const c = cluster('round-robin', 1);
    const rec = recorder();
    const call = new UpstreamCall(clusterSelector('shop/api:80', c), 'http2', rec);
    key(call);
    call.failed('refused');
    key(call);
    call.failed('timeout');
    call.release();
    expect(c.stats()[0]?.ejected).toBe(false);
    expect(rec.seen.retries).toEqual([['shop/api:80', 'http2', 'refused']]);
    expect(rec.seen.connectFailures).toEqual([]);
  });

  it('releases the previous lease when the next attempt starts, and the last one on release (least-request sees none left)', () => {
    const c = cluster('least-request', 3);
    const call = new UpstreamCall(clusterSelector('a', c), 'http1');
    key(call);
    key(call);
    expect(c.stats().reduce((n, e) => n + e.inFlight, 0)).toBe(1);
    call.release();
    call.release();
    expect(c.stats().reduce((n, e) => n + e.inFlight, 0)).toBe(0);
    expect(call.lease).toBeUndefined();
  });

  it('goes back to a tried endpoint when no other is eligible (a one-endpoint cluster; every other one ejected)', () => {
    const one = new UpstreamCall(clusterSelector('a', cluster('random', 1)), 'http1');
    expect([key(one), key(one)]).toEqual(['10.0.0.1:8080', '10.0.0.1:8080']);
    one.release();
    const c = cluster('round-robin', 3);
    c.reportFailure('10.0.0.2:8080');
    c.reportFailure('10.0.0.3:8080');
    const call = new UpstreamCall(clusterSelector('b', c), 'http1');
    expect([key(call), key(call)]).toEqual(['10.0.0.1:8080', '10.0.0.1:8080']);
    call.release();
  });

  it('fails as a value when there is no endpoint, and starts no attempt', () => {
    const call = new UpstreamCall(fixedSelector('inbound:8080', undefined), 'tcp');
    const result = call.next();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('TSMESH_ERR_NO_ENDPOINTS');
    expect(call.attempts).toBe(0);
  });

  it('passes the pick context to the balancer (ring-hash keeps a key on one endpoint)', () => {
    const c = cluster('ring-hash', 5);
    const keys = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const call = new UpstreamCall(clusterSelector('a', c), 'http1', undefined, { hashKey: 'user-42' });
      keys.add(key(call));
      call.release();
    }
    expect(keys.size).toBe(1);
  });

  it('fails fast past the cluster\'s maxRequests (counted), and lets requests in again as calls end', () => {
    const c = cluster('round-robin', 2);
    const limits = new ClusterLimits({ maxRequests: 2, maxRetries: 3 });
    const rec = recorder();
    const calls = [1, 2, 3].map(() => new UpstreamCall(clusterSelector('shop/api:80', c), 'http2', rec, undefined, limits));
    const results = calls.map((call) => call.next());
    expect(results.map((r) => r.ok)).toEqual([true, true, false]);
    const refused = results[2]!;
    if (!refused.ok) expect(refused.error.code).toBe('TSMESH_ERR_OVERFLOW');
    expect(calls[2]!.overflow).toBe('max_requests');
    expect(rec.seen.overflows).toEqual([['shop/api:80', 'max_requests']]);
    calls[0]!.release();
    calls[0]!.release();
    expect(limits.requests).toBe(1);
    expect(new UpstreamCall(clusterSelector('shop/api:80', c), 'http2', rec, undefined, limits).next().ok).toBe(true);
  });

  it('does not fail over past the retry budget (counted), but a transparent resend spends nothing', () => {
    const c = cluster('round-robin', 3);
    const limits = new ClusterLimits({ maxRequests: 100, maxRetries: 100 }, { percent: 0, minRetryCount: 1, minRetryIntervalMs: 10_000, intervalMs: 10_000 });
    const rec = recorder();
    const first = new UpstreamCall(clusterSelector('a', c), 'http1', rec, undefined, limits);
    key(first);
    first.failed('connect');
    expect(first.mayRetry()).toBe(true); // the one retry the floor allows in 10 s
    key(first);
    first.failed('connect');
    expect(first.mayRetry()).toBe(false);
    expect(first.overflow).toBe('retry_budget');
    expect(first.mayRetry('transparent')).toBe(true);
    first.release();
    expect([limits.requests, limits.retries]).toEqual([0, 0]);
    expect(rec.seen.overflows).toEqual([['a', 'retry_budget']]);
  });

  it("retries for a policy up to its own attempts, to the one endpoint again when there is no other, counted with reason 'status'", () => {
    const c = cluster('round-robin', 1);
    const rec = recorder();
    const call = new UpstreamCall(clusterSelector('a', c), 'http1', rec);
    key(call);
    call.responded(503);
    call.failed('status');
    expect(call.mayRetry()).toBe(false); // a failover: the cluster has no other endpoint
    for (let i = 0; i < 4; i++) {
      expect(call.mayRetry('policy', 4)).toBe(true);
      key(call);
      call.failed('status');
    }
    expect(call.attempts).toBe(5);
    expect(call.mayRetry('policy', 4)).toBe(false);
    call.release();
    expect(c.stats()[0]?.ejected).toBe(false);
    expect(rec.seen.retries).toEqual(Array.from({ length: 4 }, () => ['a', 'http1', 'status']));
  });

  it('spends the retry budget and a maxRetries slot on a policy retry', () => {
    const c = cluster('round-robin', 3);
    const limits = new ClusterLimits({ maxRequests: 100, maxRetries: 1 }, { percent: 0, minRetryCount: 1, minRetryIntervalMs: 10_000, intervalMs: 10_000 });
    const rec = recorder();
    const first = new UpstreamCall(clusterSelector('a', c), 'http1', rec, undefined, limits);
    key(first);
    first.failed('status');
    expect(first.mayRetry('policy', 5)).toBe(true);
    expect(limits.retries).toBe(1);
    const second = new UpstreamCall(clusterSelector('a', c), 'http1', rec, undefined, limits);
    key(second);
    second.failed('status');
    expect(second.mayRetry('policy', 5)).toBe(false);
    expect(second.overflow).toBe('max_retries');
    key(first);
    first.failed('timeout');
    expect(first.mayRetry('policy', 5)).toBe(false);
    expect(first.overflow).toBe('retry_budget');
    first.release();
    second.release();
    expect([limits.requests, limits.retries]).toEqual([0, 0]);
  });

  it('reports the response status and latency of an attempt to its cluster (outlier detection, peak-ewma)', () => {
    const c = cluster('peak-ewma', 2);
    c.configureHealth({ consecutive5xx: 2 });
    const call = new UpstreamCall(clusterSelector('a', c), 'http1');
    const first = key(call);
    call.responded(503);
    call.release();
    const again = new UpstreamCall(clusterSelector('a', c), 'http1', undefined, { avoid: [] });
    let k = key(again);
    while (k !== first) {
      again.release();
      k = key(again);
    }
    again.responded(500);
    again.release();
    expect(c.stats().find((e) => e.key === first)?.ejected).toBe(true);
    expect(c.latencyEstimate(first)).toBeLessThan(DEFAULT_RTT_MS);
  });
});
