import { describe, expect, it } from '@jest/globals';
import { DEFAULT_BACKOFF, renewalAtMs, retryDelayMs } from './backoff.js';

const ALMOST_ONE = 1 - Number.EPSILON;

describe('retryDelayMs', () => {
  it('doubles the ceiling per failure from 1 s up to 60 s', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => retryDelayMs(n, DEFAULT_BACKOFF, () => ALMOST_ONE));
    expect(ceilings).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('jitters between half the ceiling and the ceiling', () => {
    for (const failures of [1, 3, 10]) {
      const ceiling = Math.min(60_000, 1000 * 2 ** (failures - 1));
      expect(retryDelayMs(failures, DEFAULT_BACKOFF, () => 0)).toBe(ceiling / 2);
      expect(retryDelayMs(failures, DEFAULT_BACKOFF, () => 0.5)).toBe((ceiling * 3) / 4);
      for (let i = 0; i < 200; i++) {
        const delay = retryDelayMs(failures, DEFAULT_BACKOFF);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('keeps the bounds whatever the random source returns', () => {
    for (const value of [-1, 2, Number.NaN, Number.POSITIVE_INFINITY]) {
      const delay = retryDelayMs(2, DEFAULT_BACKOFF, () => value);
      expect(delay).toBeGreaterThanOrEqual(1000);
      expect(delay).toBeLessThanOrEqual(2000);
    }
  });

  it('waits at most half the remaining lifetime of a valid certificate', () => {
    expect(retryDelayMs(10, DEFAULT_BACKOFF, () => ALMOST_ONE, 20_000)).toBe(10_000);
    expect(retryDelayMs(10, DEFAULT_BACKOFF, () => ALMOST_ONE, 600_000)).toBe(60_000);
  });

  it('never goes below half the base delay near expiry, and ignores an expired certificate', () => {
    expect(retryDelayMs(10, DEFAULT_BACKOFF, () => ALMOST_ONE, 100)).toBe(500);
    expect(retryDelayMs(10, DEFAULT_BACKOFF, () => ALMOST_ONE, -5000)).toBe(60_000);
  });

  it('honours other base and maximum delays', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, { baseMs: 100, maxMs: 300 }, () => 0))).toEqual([50, 100, 150, 150]);
  });
});

describe('renewalAtMs', () => {
  it('renews after the fraction of the lifetime counted from the request', () => {
    expect(renewalAtMs(1000, 11_000, 0.5)).toBe(6000);
    expect(renewalAtMs(1000, 11_000, 0.8)).toBe(9000);
  });

  it('renews at once a certificate that is already expired', () => {
    expect(renewalAtMs(5000, 4000, 0.5)).toBe(5000);
  });
});
