import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { BACKOFF_CAP_FACTOR, backoffDelay, DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_BACKOFF_MS, RequestTimers, retriesGrpc, retriesStatus, retryPolicyOf } from './retry.js';

const route = Object.freeze({ codes: Object.freeze([502, 503]), attempts: 4, backoffMs: 100 });
const service = Object.freeze({ codes: Object.freeze([500]), grpcCodes: Object.freeze([14]), attempts: undefined, backoffMs: undefined });

describe('retryPolicyOf', () => {
  it("takes the route's retry whole over the Service's default", () => {
    const policy = retryPolicyOf(route, service);
    expect(policy && { codes: [...policy.codes], grpc: [...policy.grpcCodes], attempts: policy.attempts, backoff: policy.backoffMs }).toEqual({ codes: [502, 503], grpc: [], attempts: 4, backoff: 100 });
  });

  it("takes the Service's default without a route retry, with the proxy's defaults for what it leaves out", () => {
    const policy = retryPolicyOf(undefined, service);
    expect(policy && { codes: [...policy.codes], grpc: [...policy.grpcCodes], attempts: policy.attempts, backoff: policy.backoffMs }).toEqual({
      codes: [500],
      grpc: [14],
      attempts: DEFAULT_RETRY_ATTEMPTS,
      backoff: DEFAULT_RETRY_BACKOFF_MS,
    });
    expect(retryPolicyOf(undefined, undefined)).toBeUndefined();
  });

  it('compiles a source once', () => {
    expect(retryPolicyOf(route, undefined)).toBe(retryPolicyOf(route, service));
  });
});

describe('retriesStatus and retriesGrpc', () => {
  const policy = retryPolicyOf(undefined, service);
  it('retries a listed status of an idempotent method only', () => {
    expect(retriesStatus(policy, 'GET', 500)).toBe(true);
    expect(retriesStatus(policy, 'PUT', 500)).toBe(true);
    expect(retriesStatus(policy, 'POST', 500)).toBe(false);
    expect(retriesStatus(policy, 'GET', 503)).toBe(false);
    expect(retriesStatus(undefined, 'GET', 500)).toBe(false);
  });
  it('retries a listed gRPC status', () => {
    expect(retriesGrpc(policy, '14')).toBe(true);
    expect(retriesGrpc(policy, '0')).toBe(false);
    expect(retriesGrpc(policy, undefined)).toBe(false);
    expect(retriesGrpc(policy, 'x')).toBe(false);
  });
});

describe('backoffDelay', () => {
  const policy = retryPolicyOf(route, undefined)!;
  it('waits the base backoff at least, doubling per retry with jitter, capped', () => {
    expect(backoffDelay(policy, 1, () => 0.99)).toBe(100);
    expect(backoffDelay(policy, 2, () => 0)).toBe(200);
    expect(backoffDelay(policy, 2, () => 0.5)).toBe(150);
    expect(backoffDelay(policy, 3, () => 0)).toBe(400);
    expect(backoffDelay(policy, 30, () => 0)).toBe(100 * BACKOFF_CAP_FACTOR);
    for (let retry = 1; retry < 12; retry++) {
      const d = backoffDelay(policy, retry);
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(100 * BACKOFF_CAP_FACTOR);
    }
  });
});

describe('RequestTimers', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('fires the request deadline once, and a new try replaces the last try', () => {
    const timers = new RequestTimers();
    const fired: string[] = [];
    timers.startRequest(100, () => fired.push('request'));
    timers.startTry(30, () => fired.push('try 1'));
    timers.startTry(50, () => fired.push('try 2'));
    jest.advanceTimersByTime(200);
    expect(fired).toEqual(['try 2', 'request']);
  });

  it('does not schedule a retry whose backoff ends past the request deadline', () => {
    const timers = new RequestTimers();
    const fired: string[] = [];
    timers.startRequest(100, () => fired.push('request'));
    timers.startTry(20, () => fired.push('try'));
    expect(timers.retryAfter(40, () => fired.push('retry'))).toBe(true);
    jest.advanceTimersByTime(70);
    expect(timers.retryAfter(40, () => fired.push('late retry'))).toBe(false);
    jest.advanceTimersByTime(100);
    // The try's deadline stopped with the retry; the late retry was never scheduled.
    expect(fired).toEqual(['retry', 'request']);
  });

  it('stops every clock on clear', () => {
    const timers = new RequestTimers();
    const fired: string[] = [];
    timers.startRequest(100, () => fired.push('request'));
    timers.startTry(10, () => fired.push('try'));
    timers.retryAfter(5, () => fired.push('retry'));
    timers.clear();
    jest.advanceTimersByTime(500);
    expect(fired).toEqual([]);
  });
});
