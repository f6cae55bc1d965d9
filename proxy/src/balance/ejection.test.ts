import { jest } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { EndpointHealth } from './ejection.js';

const A = '10.0.0.1:8080';
const B = '10.0.0.2:8080';
const C = '10.0.0.3:8080';
const endpoints = [A, B, C].map((key) => ({ key }));

let health: EndpointHealth;

beforeAll(() => setLogLevel('silent'));

beforeEach(() => {
  jest.useFakeTimers();
  health = new EndpointHealth();
});

afterEach(() => {
  health.close();
  jest.useRealTimers();
});

/** How long `key` stays ejected after a failure now, in ms. */
function ejectionLength(key: string): number {
  const start = Date.now();
  expect(health.reportFailure(key)).toBe(true);
  const until = health.ejectedUntil(key);
  if (until === undefined) throw new Error('not ejected');
  jest.advanceTimersByTime(until - start);
  expect(health.isEjected(key)).toBe(false);
  return until - start;
}

describe('EndpointHealth', () => {
  it('ejects an endpoint after one failed connection by default', () => {
    expect(health.reportFailure(A)).toBe(true);
    expect(health.isEjected(A)).toBe(true);
    expect(health.isEjected(B)).toBe(false);
  });

  it('waits for the configured number of consecutive failures', () => {
    health = new EndpointHealth({ consecutiveFailures: 3 });
    expect(health.reportFailure(A)).toBe(false);
    expect(health.reportFailure(A)).toBe(false);
    expect(health.isEjected(A)).toBe(false);
    expect(health.reportFailure(A)).toBe(true);
    expect(health.isEjected(A)).toBe(true);
  });

  it('starts counting again after a success', () => {
    health = new EndpointHealth({ consecutiveFailures: 2 });
    health.reportFailure(A);
    health.reportSuccess(A);
    expect(health.reportFailure(A)).toBe(false);
    expect(health.isEjected(A)).toBe(false);
  });

  it('returns an ejected endpoint after 5 seconds', () => {
    health.reportFailure(A);
    jest.advanceTimersByTime(4_999);
    expect(health.isEjected(A)).toBe(true);
    jest.advanceTimersByTime(1);
    expect(health.isEjected(A)).toBe(false);
  });

  it('doubles each ejection up to 5 minutes', () => {
    const lengths = Array.from({ length: 9 }, () => ejectionLength(A));
    expect(lengths).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });

  it('forgets the backoff after a success', () => {
    ejectionLength(A);
    ejectionLength(A);
    health.reportSuccess(A);
    expect(ejectionLength(A)).toBe(5_000);
  });

  it('honours configured ejection times', () => {
    health = new EndpointHealth({ baseEjectionMs: 100, maxEjectionMs: 250 });
    expect([ejectionLength(A), ejectionLength(A), ejectionLength(A)]).toEqual([100, 200, 250]);
  });

  it('ignores failures of an endpoint that is already ejected', () => {
    health.reportFailure(A);
    const until = health.ejectedUntil(A);
    jest.advanceTimersByTime(1_000);
    expect(health.reportFailure(A)).toBe(false);
    expect(health.ejectedUntil(A)).toBe(until);
  });

  it('returns an ejected endpoint at once when a connection to it succeeds', () => {
    health.reportFailure(A);
    health.reportSuccess(A);
    expect(health.isEjected(A)).toBe(false);
  });

  it('answers for a given time when asked', () => {
    health.reportFailure(A);
    const now = Date.now();
    expect(health.isEjected(A, now + 4_999)).toBe(true);
    expect(health.isEjected(A, now + 5_000)).toBe(false);
  });

  it('filters out ejected endpoints', () => {
    health.reportFailure(B);
    expect(health.filter(endpoints).map((e) => e.key)).toEqual([A, C]);
  });

  it('returns every endpoint when all of them are ejected (panic mode)', () => {
    for (const { key } of endpoints) health.reportFailure(key);
    expect(health.filter(endpoints)).toEqual(endpoints);
  });

  it('lists the ejected endpoints', () => {
    health.reportFailure(C);
    health.reportFailure(A);
    expect(health.ejected()).toEqual([A, C]);
  });

  it('notifies listeners when an endpoint is ejected and when it returns', () => {
    health = new EndpointHealth({ consecutiveFailures: 2 });
    const listener = jest.fn();
    health.onChange(listener);
    health.reportFailure(A);
    expect(listener).not.toHaveBeenCalled();
    health.reportFailure(A);
    expect(listener).toHaveBeenCalledTimes(1);
    health.reportFailure(A);
    expect(listener).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(5_000);
    expect(listener).toHaveBeenCalledTimes(2);
  });

  it('notifies listeners when a success returns an ejected endpoint, and only then', () => {
    const listener = jest.fn();
    health.onChange(listener);
    health.reportSuccess(A);
    health.reportFailure(A);
    health.reportSuccess(A);
    health.reportSuccess(A);
    expect(listener).toHaveBeenCalledTimes(2);
  });

  it('stops notifying a listener that unsubscribed', () => {
    const listener = jest.fn();
    const unsubscribe = health.onChange(listener);
    unsubscribe();
    health.reportFailure(A);
    expect(listener).not.toHaveBeenCalled();
  });

  it('keeps notifying other listeners when one throws', () => {
    const after = jest.fn();
    health.onChange(() => {
      throw new Error('boom');
    });
    health.onChange(after);
    health.reportFailure(A);
    expect(after).toHaveBeenCalledTimes(1);
  });

  it('returns an endpoint whose ejection has lapsed on an injected clock before its timer fires', () => {
    jest.useRealTimers();
    let now = 1_000_000;
    health = new EndpointHealth({ now: () => now, consecutiveFailures: 2 });
    const listener = jest.fn();
    health.onChange(listener);
    health.reportFailure(A);
    health.reportFailure(A);
    expect(health.isEjected(A)).toBe(true);
    now += 5_000;
    expect(health.isEjected(A)).toBe(false);
    // The lapsed ejection ends, and this failure counts afresh (1 of 2) instead of being ignored.
    expect(health.reportFailure(A)).toBe(false);
    expect(listener).toHaveBeenCalledTimes(2);
    // The backoff was not forgotten: the next ejection lasts twice as long.
    expect(health.reportFailure(A)).toBe(true);
    expect(health.ejectedUntil(A)).toBe(now + 10_000);
  });

  it('forgets endpoints that left the cluster', () => {
    health.reportFailure(A);
    health.reportFailure(B);
    health.retain(new Set([B]));
    expect(health.isEjected(A)).toBe(false);
    expect(health.isEjected(B)).toBe(true);
    expect(jest.getTimerCount()).toBe(1);
  });

  it('cancels pending returns when closed', () => {
    const listener = jest.fn();
    health.onChange(listener);
    health.reportFailure(A);
    listener.mockClear();
    health.close();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(10_000);
    expect(listener).not.toHaveBeenCalled();
  });

  it('refuses settings that make no sense', () => {
    expect(() => new EndpointHealth({ consecutiveFailures: 0 })).toThrow(RangeError);
    expect(() => new EndpointHealth({ consecutiveFailures: 1.5 })).toThrow(RangeError);
    expect(() => new EndpointHealth({ baseEjectionMs: 0 })).toThrow(RangeError);
    expect(() => new EndpointHealth({ baseEjectionMs: 10_000, maxEjectionMs: 5_000 })).toThrow(RangeError);
  });
});
