import { describe, expect, it } from '@jest/globals';
import { addedLatency, cpuPer1k, latencyFigures, medianFigures, ratioOf, roundOrder } from './mesh-figures.js';

describe('latencyFigures', () => {
  it('gives nearest-rank percentiles of 1..1000 µs in milliseconds', () => {
    const us = Float64Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(latencyFigures(us)).toMatchObject({ p50Ms: 0.5, p90Ms: 0.9, p99Ms: 0.99, maxMs: 1 });
  });

  it('gives the mean and keeps microseconds', () => {
    expect(latencyFigures(Float64Array.from([1000, 2001, 3002]))).toMatchObject({ p50Ms: 2.001, meanMs: 2.001, maxMs: 3.002 });
  });

  it('is NaN throughout for a run with no answer', () => {
    expect(latencyFigures(new Float64Array(0)).p99Ms).toBeNaN();
  });
});

describe('addedLatency', () => {
  it('subtracts the direct path percentile by percentile', () => {
    expect(addedLatency({ p50Ms: 1.2, p90Ms: 1.9, p99Ms: 4.5 }, { p50Ms: 0.7, p90Ms: 1.1, p99Ms: 2.0 })).toEqual({ p50Ms: 0.5, p90Ms: 0.8, p99Ms: 2.5 });
  });

  it('keeps a negative difference (noise) rather than hiding it', () => {
    expect(addedLatency({ p50Ms: 0.9, p90Ms: 1, p99Ms: 2 }, { p50Ms: 1, p90Ms: 1, p99Ms: 2 }).p50Ms).toBe(-0.1);
  });
});

describe('ratioOf and cpuPer1k', () => {
  it('gives the tsmesh / HAProxy ratio of added p99 to two decimals, NaN over a non-positive base', () => {
    expect(ratioOf(2.5, 1)).toBe(2.5);
    expect(ratioOf(1, 3)).toBe(0.33);
    expect(ratioOf(1, 0)).toBeNaN();
    expect(ratioOf(1, -0.2)).toBeNaN();
  });

  it('turns 3 CPU seconds over 20,000 requests into 0.15 s per 1,000 (0.15 cores at 1,000 req/s)', () => {
    expect(cpuPer1k(3, 20_000)).toBe(0.15);
    expect(cpuPer1k(1, 0)).toBeNaN();
  });
});

describe('medianFigures', () => {
  it('takes the median of every field over the rounds', () => {
    const rounds = [
      { p50Ms: 1, p99Ms: 9 },
      { p50Ms: 3, p99Ms: 5 },
      { p50Ms: 2, p99Ms: 7 },
    ];
    expect(medianFigures(rounds)).toEqual({ p50Ms: 2, p99Ms: 7 });
  });
});

describe('roundOrder', () => {
  it('rotates the variants every round', () => {
    const v = ['direct', 'tsmesh', 'haproxy'];
    expect(roundOrder(v, 0)).toEqual(['direct', 'tsmesh', 'haproxy']);
    expect(roundOrder(v, 1)).toEqual(['tsmesh', 'haproxy', 'direct']);
    expect(roundOrder(v, 2)).toEqual(['haproxy', 'direct', 'tsmesh']);
    expect(roundOrder(v, 3)).toEqual(['direct', 'tsmesh', 'haproxy']);
  });
});
