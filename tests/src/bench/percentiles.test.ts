import { describe, expect, it } from '@jest/globals';
import { parseH2loadSummary, parseRequestLog, percentile, summarizeLatency } from './percentiles.js';

describe('percentile', () => {
  it('takes the nearest rank of ascending values', () => {
    const values = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
  });

  it('is NaN without values and refuses a percentile outside 0..100', () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe('parseRequestLog', () => {
  it('sorts the durations and counts the statuses of an h2load --log-file', () => {
    const log = parseRequestLog('1795307319006043\t200\t291\n1795307319006043\t200\t90\n1795307319006044\t503\t331\n');
    expect([...log.latenciesUs]).toEqual([90, 291, 331]);
    expect(Object.fromEntries(log.statuses)).toEqual({ 200: 2, 503: 1 });
    expect(summarizeLatency(log.latenciesUs)).toEqual({ p50Ms: 0.291, p99Ms: 0.331, meanMs: 0.237, maxMs: 0.331 });
  });

  it('refuses a line that is not three tab-separated numbers', () => {
    expect(() => parseRequestLog('garbage\n')).toThrow(/unexpected line "garbage"/);
  });
});

describe('parseH2loadSummary', () => {
  it('reads the measured requests and rate from h2load output', () => {
    const stdout = [
      'finished in 3.00s, 146699.00 req/s, 12.17MB/s',
      'requests: 293398 total, 293398 started, 293398 done, 293390 succeeded, 8 failed, 8 errored, 0 timeout',
      'status codes: 293390 2xx, 0 3xx, 0 4xx, 0 5xx',
    ].join('\n');
    expect(parseH2loadSummary(stdout)).toEqual({ requestsPerSecond: 146699, total: 293398, succeeded: 293390, failed: 8, errored: 8, timeout: 0 });
  });

  it('names the output when h2load printed no summary', () => {
    expect(() => parseH2loadSummary('connect to 127.0.0.1:1 failed\nNo protocol negotiated\n')).toThrow(/no summary: connect to 127.0.0.1:1 failed/);
  });
});
