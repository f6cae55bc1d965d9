import { describe, expect, it } from '@jest/globals';
import { ClusterLimits, DEFAULT_BREAKER, DEFAULT_RETRY_BUDGET, RetryBudget, sameValues } from './limits.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('RetryBudget (Linkerd: a percentage of recent requests plus a floor per second)', () => {
  it('allows minRetriesPerSecond × interval retries with no requests at all, then no more', () => {
    const c = clock();
    const budget = new RetryBudget({ percent: 20, minRetryCount: 2, minRetryIntervalMs: 1000, intervalMs: 10_000 }, c.now);
    const allowed = Array.from({ length: 25 }, () => budget.tryRetry()).filter(Boolean).length;
    expect(allowed).toBe(20);
  });

  it('adds percent of the requests in the window', () => {
    const c = clock();
    const budget = new RetryBudget({ percent: 20, minRetryCount: 0, minRetryIntervalMs: 1000, intervalMs: 10_000 }, c.now);
    for (let i = 0; i < 1000; i++) budget.request();
    const allowed = Array.from({ length: 300 }, () => budget.tryRetry()).filter(Boolean).length;
    expect(allowed).toBe(200);
  });

  it('forgets requests and retries older than the window, a bucket at a time', () => {
    const c = clock();
    const budget = new RetryBudget({ percent: 10, minRetryCount: 0, minRetryIntervalMs: 1000, intervalMs: 10_000 }, c.now);
    for (let i = 0; i < 100; i++) budget.request();
    for (let i = 0; i < 10; i++) expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
    c.advance(5_000);
    expect(budget.tryRetry()).toBe(false); // the 100 requests still count, and so do the 10 retries
    c.advance(5_000);
    // The first bucket (requests and retries alike) has left the window.
    expect(budget.tryRetry()).toBe(false);
    for (let i = 0; i < 50; i++) budget.request();
    expect(Array.from({ length: 10 }, () => budget.tryRetry()).filter(Boolean).length).toBe(5);
    c.advance(60_000); // long silence: the whole window is empty
    expect(budget.tryRetry()).toBe(false);
  });

  it('refuses settings that make no sense, naming them', () => {
    expect(() => new RetryBudget({ ...DEFAULT_RETRY_BUDGET, percent: 150 })).toThrow('retry budget percent must be 0-100, got 150');
    expect(() => new RetryBudget({ ...DEFAULT_RETRY_BUDGET, minRetryCount: -1 })).toThrow('minRetryCount must be >= 0, got -1');
    expect(() => new RetryBudget({ ...DEFAULT_RETRY_BUDGET, minRetryIntervalMs: 0 })).toThrow('minRetryIntervalMs must be > 0, got 0');
    expect(() => new RetryBudget({ ...DEFAULT_RETRY_BUDGET, intervalMs: 0 })).toThrow('retry budget interval must be at least 10 ms, got 0');
  });
});

describe('ClusterLimits (circuit breaking)', () => {
  it('admits requests up to maxRequests, and again as they end', () => {
    const limits = new ClusterLimits({ maxRequests: 2, maxRetries: 1 });
    expect([limits.admitRequest(), limits.admitRequest(), limits.admitRequest()]).toEqual([undefined, undefined, 'max_requests']);
    limits.done(false);
    expect(limits.admitRequest()).toBeUndefined();
    expect(limits.requests).toBe(2);
  });

  it('admits one retry slot per request up to maxRetries; a second retry of the same request takes no second slot', () => {
    const limits = new ClusterLimits({ maxRequests: 10, maxRetries: 1 });
    limits.admitRequest();
    limits.admitRequest();
    expect(limits.admitRetry(false)).toBeUndefined();
    expect(limits.admitRetry(false)).toBe('max_retries');
    expect(limits.admitRetry(true)).toBeUndefined();
    limits.done(true);
    expect(limits.retries).toBe(0);
    expect(limits.admitRetry(false)).toBeUndefined();
  });

  it('stops retries past the budget even under maxRetries', () => {
    const c = clock();
    const limits = new ClusterLimits({ maxRequests: 100, maxRetries: 100 }, { percent: 0, minRetryCount: 1, minRetryIntervalMs: 10_000, intervalMs: 10_000 }, c.now);
    limits.admitRequest();
    expect(limits.admitRetry(false)).toBeUndefined();
    expect(limits.admitRetry(true)).toBe('retry_budget');
  });

  it("has Envoy's and Linkerd's defaults", () => {
    expect(DEFAULT_BREAKER).toEqual({ maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, idleTimeoutMs: 0 });
    expect(DEFAULT_RETRY_BUDGET).toEqual({ percent: 20, minRetryCount: 10, minRetryIntervalMs: 1_000, intervalMs: 10_000 });
  });
});

describe('sameValues', () => {
  it('says equal for the same fields and values, in any order', () => {
    expect(sameValues({ a: 1, b: 'x' }, { b: 'x', a: 1 })).toBe(true);
  });
  it('says different for a changed value, a missing field or an extra one', () => {
    expect(sameValues({ a: 1, b: 2 }, { a: 1, b: 3 })).toBe(false);
    expect(sameValues({ a: 1, b: undefined }, { a: 1, c: undefined })).toBe(false);
    expect(sameValues({ a: 1 }, { a: 1, b: 2 })).toBe(false);
  });
});

describe('ConnectionGate (maxConnections, maxPendingRequests)', () => {
  it('gives a slot per connection up to maxConnections, then queues up to maxPendingRequests', () => {
    const limits = new ClusterLimits({ maxRequests: 100, maxRetries: 3, maxConnections: 2, maxPendingRequests: 1 });
    const gate = limits.gate;
    expect([gate.open(), gate.open(), gate.open()]).toEqual([true, true, false]);
    const woken: string[] = [];
    expect(gate.wait(() => woken.push('first'))).toBe(true);
    expect(gate.wait(() => woken.push('second'))).toBe(false);
    expect(gate.pending).toBe(1);
    gate.closed();
    expect(woken).toEqual(['first']);
    expect([gate.pending, gate.connections]).toEqual([0, 1]);
    // The woken request takes the freed slot at once.
    expect(gate.open()).toBe(true);
    expect(gate.open()).toBe(false);
  });

  it('forgets a request that gave up, and wakes waiters when the cap is raised', () => {
    const limits = new ClusterLimits({ maxRequests: 100, maxRetries: 3, maxConnections: 1, maxPendingRequests: 5 });
    const gate = limits.gate;
    expect(gate.open()).toBe(true);
    const woken: number[] = [];
    const gone = (): void => void woken.push(0);
    gate.wait(gone);
    gate.wait(() => woken.push(1));
    gate.wait(() => woken.push(2));
    gate.cancel(gone);
    limits.reconfigure({ maxRequests: 100, maxRetries: 3, maxConnections: 2, maxPendingRequests: 5 }, DEFAULT_RETRY_BUDGET);
    expect(woken).toEqual([1]);
    gate.closed();
    expect(woken).toEqual([1, 2]);
  });
});
