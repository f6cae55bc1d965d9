// maxRequests and maxRetries bound the sidecar, not each event loop: two loops' ClusterLimits over
// one shared buffer admit at most the threshold together; a loop that starts again forgets what it
// had in flight; each cluster has its own count, at the same slot in every loop.
import { describe, expect, test } from '@jest/globals';
import { ClusterLimits, type ConnectionGate } from './limits.js';
import { REQUESTS, SharedCounts, SHARED_SLOTS, sharedCountsBuffer } from './shared-counts.js';

const BUDGET = { percent: 100, intervalMs: 10_000, minRetryCount: 100, minRetryIntervalMs: 1000 };

function twoLoops(cluster: string, thresholds: { maxRequests: number; maxRetries: number; maxConnections?: number; maxPendingRequests?: number } = { maxRequests: 4, maxRetries: 2 }, budget = BUDGET): [ClusterLimits, ClusterLimits, SharedCounts[]] {
  const buffer = sharedCountsBuffer(2);
  const counts = [new SharedCounts(buffer, 0), new SharedCounts(buffer, 1)];
  const limits = counts.map((c) => new ClusterLimits(thresholds, budget, undefined, { counts: c, slot: c.slotOf(cluster) ?? -1 }));
  return [limits[0] as ClusterLimits, limits[1] as ClusterLimits, counts];
}

describe('cluster limits shared by the event loops', () => {
  test('two loops admit maxRequests requests together, not each', () => {
    const [a, b] = twoLoops('shop/cart:80');
    const admitted = [a, b, a, b, a, b, a, b].map((l) => l.admitRequest());
    expect(admitted).toEqual([undefined, undefined, undefined, undefined, 'max_requests', 'max_requests', 'max_requests', 'max_requests']);
    b.done(false);
    expect(a.admitRequest()).toBeUndefined();
    expect(b.admitRequest()).toBe('max_requests');
  });

  test('two loops hold maxRetries retries together', () => {
    const [a, b] = twoLoops('shop/cart:80');
    for (const l of [a, b, a]) expect(l.admitRequest()).toBeUndefined();
    expect(a.admitRetry(false)).toBeUndefined();
    expect(b.admitRetry(false)).toBeUndefined();
    expect(a.admitRetry(false)).toBe('max_retries');
    b.done(true);
    expect(a.admitRetry(false)).toBeUndefined();
  });

  test('each cluster is counted apart, at the same slot in every loop', () => {
    const buffer = sharedCountsBuffer(2);
    const [x, y] = [new SharedCounts(buffer, 0), new SharedCounts(buffer, 1)];
    const names = Array.from({ length: 200 }, (_, i) => `ns/svc-${i}:80`);
    const slots = names.map((n) => x.slotOf(n));
    expect(names.map((n) => y.slotOf(n))).toEqual(slots);
    expect(new Set(slots).size).toBe(names.length);
    expect(x.tryTake(slots[0] ?? -1, REQUESTS, 1)).toBe(true);
    expect(y.tryTake(slots[1] ?? -1, REQUESTS, 1)).toBe(true);
    expect(y.tryTake(slots[0] ?? -1, REQUESTS, 1)).toBe(false);
  });

  test('a loop that starts again forgets what it had in flight', () => {
    const [a, b, counts] = twoLoops('shop/cart:80', { maxRequests: 2, maxRetries: 2 });
    expect(a.admitRequest()).toBeUndefined();
    expect(a.admitRequest()).toBeUndefined();
    expect(b.admitRequest()).toBe('max_requests');
    counts[0]?.reset(); // loop 0 ended with two requests in flight and was started again
    expect(b.admitRequest()).toBeUndefined();
  });

  test('a full table leaves no slot; the buffer is checked', () => {
    const counts = new SharedCounts(sharedCountsBuffer(1), 0);
    for (let i = 0; i < SHARED_SLOTS; i++) expect(counts.slotOf(`c${i}`)).toBeDefined();
    expect(counts.slotOf('one too many')).toBeUndefined();
    expect(() => new SharedCounts(sharedCountsBuffer(2), 2)).toThrow(RangeError);
  });
});

describe('connection slots and the retry budget shared by the event loops', () => {
  const gates = (thresholds: { maxConnections: number; maxPendingRequests: number }): [ConnectionGate, ConnectionGate] => {
    const [a, b] = twoLoops('shop/cart:80', { maxRequests: 100, maxRetries: 3, ...thresholds });
    return [a.gate, b.gate];
  };

  test('two loops open maxConnections connections together, not each', () => {
    const [a, b] = gates({ maxConnections: 3, maxPendingRequests: 10 });
    expect([a.open(), b.open(), a.open(), b.open(), a.open()]).toEqual([true, true, true, false, false]);
    b.closed();
    expect(a.open()).toBe(true);
    expect(b.open()).toBe(false);
  });

  test('two loops hold maxPendingRequests waiting requests together, each its own queue', () => {
    const [a, b] = gates({ maxConnections: 1, maxPendingRequests: 2 });
    expect(a.open()).toBe(true);
    const wake = (): void => {};
    expect([a.wait(wake), b.wait(wake), b.wait(wake), a.wait(wake)]).toEqual([true, true, false, false]);
    expect([a.pending, b.pending]).toEqual([2, 2]);
    a.cancel(wake);
    expect(b.wait(wake)).toBe(true);
  });

  test('a slot freed on one loop wakes a request waiting on the other, which then has it', async () => {
    const [a, b] = gates({ maxConnections: 1, maxPendingRequests: 5 });
    expect(a.open()).toBe(true);
    expect(b.open()).toBe(false);
    const woken = new Promise<boolean>((resolve) => expect(b.wait(() => resolve(b.open()))).toBe(true));
    a.closed();
    expect(await woken).toBe(true);
    expect([a.pending, a.open()]).toEqual([0, false]);
  });

  test('a freed slot goes to the longest waiting of the same loop first, without a round through the others', () => {
    const [a, b] = gates({ maxConnections: 1, maxPendingRequests: 5 });
    expect(a.open()).toBe(true);
    let got = false;
    expect(a.wait(() => (got = a.open()))).toBe(true);
    a.closed();
    expect(got).toBe(true);
    expect(b.open()).toBe(false);
  });

  test('the retry budget is spent once per sidecar: retries on either loop draw on the requests of both', () => {
    const budget = { percent: 50, intervalMs: 10_000, minRetryCount: 0, minRetryIntervalMs: 1_000 };
    const [a, b] = twoLoops('shop/cart:80', { maxRequests: 100, maxRetries: 100 }, budget);
    for (let i = 0; i < 4; i++) expect(a.admitRequest()).toBeUndefined();
    // 4 requests, all on loop a, at 50 %: 2 retries in all, wherever they are sent.
    expect(b.admitRetry(false)).toBeUndefined();
    expect(a.admitRetry(false)).toBeUndefined();
    expect(b.admitRetry(false)).toBe('retry_budget');
    expect(a.admitRetry(false)).toBe('retry_budget');
  });
});
