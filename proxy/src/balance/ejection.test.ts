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

describe('EndpointHealth: 5xx and gateway errors, maximum ejection percentage', () => {
  it('does not eject on 5xx responses unless a threshold is set', () => {
    for (let i = 0; i < 50; i++) expect(health.reportFailure(A, '5xx')).toBe(false);
    expect(health.isEjected(A)).toBe(false);
  });

  it('ejects after consecutive5xx server errors in a row; a good answer in between starts the run again', () => {
    health.configure({ consecutive5xx: 3 });
    health.setTotal(3);
    expect([health.reportFailure(A, '5xx'), health.reportFailure(A, 'gateway')]).toEqual([false, false]);
    health.reportSuccess(A);
    expect([health.reportFailure(A, '5xx'), health.reportFailure(A, '5xx')]).toEqual([false, false]);
    expect(health.reportFailure(A, 'gateway')).toBe(true); // a gateway error is a 5xx too
    expect(health.isEjected(A)).toBe(true);
  });

  it('ejects after consecutiveGatewayErrors 502/503/504 even when other 5xx are not counted', () => {
    health.configure({ consecutiveGatewayErrors: 2 });
    health.setTotal(3);
    expect(health.reportFailure(B, '5xx')).toBe(false);
    expect(health.reportFailure(B, 'gateway')).toBe(false);
    expect(health.reportFailure(B, 'gateway')).toBe(true);
  });

  it('a 5xx answer proves the connection: the connect-failure run starts again', () => {
    health.configure({ consecutiveFailures: 2 });
    expect(health.reportFailure(C, 'connect')).toBe(false);
    health.reportFailure(C, '5xx');
    expect(health.reportFailure(C, 'connect')).toBe(false);
    expect(health.reportFailure(C, 'connect')).toBe(true);
  });

  it('never ejects more than maxEjectionPercent of the cluster, but always one endpoint', () => {
    health.configure({ maxEjectionPercent: 40 });
    health.setTotal(5);
    const keys = ['10.0.0.1:1', '10.0.0.2:1', '10.0.0.3:1', '10.0.0.4:1', '10.0.0.5:1'];
    expect(keys.map((k) => health.reportFailure(k))).toEqual([true, true, false, false, false]);
    expect(health.ejected()).toEqual(keys.slice(0, 2));
    health.configure({ maxEjectionPercent: 0 });
    health.reportSuccess(keys[0]!);
    health.reportSuccess(keys[1]!);
    expect(health.reportFailure(keys[2]!)).toBe(true); // one may always be ejected
    expect(health.reportFailure(keys[3]!)).toBe(false);
  });

  it('refuses settings that make no sense, naming them', () => {
    expect(() => health.configure({ consecutive5xx: -1 })).toThrow('consecutive5xx must be an integer >= 0 (0: off), got -1');
    expect(() => health.configure({ consecutiveGatewayErrors: 1.5 })).toThrow('consecutiveGatewayErrors must be an integer >= 0 (0: off), got 1.5');
    expect(() => health.configure({ maxEjectionPercent: 101 })).toThrow('maxEjectionPercent must be 0-100, got 101');
  });
});

describe('EndpointHealth success-rate ejection', () => {
  const keys = ['10.0.0.1:1', '10.0.0.2:1', '10.0.0.3:1', '10.0.0.4:1'];
  /** `ok` of every 10 requests succeed at each endpoint, `rounds` times. */
  function traffic(okOf: Record<string, number>, rounds = 10): void {
    for (let r = 0; r < rounds; r++) for (const key of keys) for (let i = 0; i < 10; i++) health.recordOutcome(key, i < (okOf[key] ?? 10));
  }

  beforeEach(() => {
    health.setTotal(keys.length);
    health.configure({ successRateStdevFactor: 1000, successRateMinimumHosts: 3, successRateRequestVolume: 50, intervalMs: 10_000, baseEjectionMs: 30_000, maxEjectionPercent: 50 });
  });

  it('ejects the endpoint failing 30 % of its requests while the others succeed, at the interval', () => {
    traffic({ [keys[2]!]: 7 });
    expect(health.ejected()).toEqual([]);
    jest.advanceTimersByTime(10_000);
    expect(health.ejected()).toEqual([keys[2]]);
  });

  it('keeps the ejection for its time although answers in flight succeed', () => {
    traffic({ [keys[2]!]: 7 });
    expect(health.judgeSuccessRates()).toEqual([keys[2]]);
    health.reportSuccess(keys[2]!);
    expect(health.isEjected(keys[2]!)).toBe(true);
    jest.advanceTimersByTime(30_000);
    expect(health.isEjected(keys[2]!)).toBe(false);
  });

  it('judges nobody with fewer endpoints of enough volume than successRateMinimumHosts, and nobody when all fail alike', () => {
    for (let i = 0; i < 100; i++) for (const key of keys.slice(0, 2)) health.recordOutcome(key, key === keys[0]);
    expect(health.judgeSuccessRates()).toEqual([]);
    traffic({ [keys[0]!]: 5, [keys[1]!]: 5, [keys[2]!]: 5, [keys[3]!]: 5 });
    expect(health.judgeSuccessRates()).toEqual([]);
  });

  it('leaves out endpoints under successRateRequestVolume, and counts each interval afresh', () => {
    traffic({ [keys[2]!]: 7 }, 4); // 40 requests each: under the volume
    expect(health.judgeSuccessRates()).toEqual([]);
    traffic({ [keys[2]!]: 7 }, 4);
    expect(health.judgeSuccessRates()).toEqual([]);
  });

  it('stays within maxEjectionPercent', () => {
    health.configure({ successRateStdevFactor: 100, successRateMinimumHosts: 3, successRateRequestVolume: 50, maxEjectionPercent: 25 });
    traffic({ [keys[1]!]: 6, [keys[2]!]: 7 });
    expect(health.judgeSuccessRates()).toEqual([keys[1]]);
  });

  it('is off by default', () => {
    health.configure({});
    traffic({ [keys[2]!]: 0 });
    expect(health.judgeSuccessRates()).toEqual([]);
  });
});
