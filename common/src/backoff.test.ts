import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Backoff, backoffDelayMs } from './backoff.js';

describe('backoffDelayMs', () => {
  it('doubles the window per failure up to the maximum, drawing from its upper half', () => {
    const window = { initialMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(n, window, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3].map((n) => backoffDelayMs(n, window, () => 0.5))).toEqual([75, 150, 300]);
    expect(backoffDelayMs(3, { initialMs: 100, maxMs: 10_000, multiplier: 3 }, () => 0)).toBe(450);
  });

  it('stays in [window/2, window] for any draw, even a broken one, and any attempt (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -5, max: 10_000 }), fc.double(), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 100_000 }), (attempt, draw, initialMs, extra) => {
        const maxMs = initialMs + extra;
        const delay = backoffDelayMs(attempt, { initialMs, maxMs }, () => draw);
        const window = Math.min(maxMs, initialMs * 2 ** Math.max(0, Math.min(attempt - 1, 60)));
        expect(delay).toBeGreaterThanOrEqual(Math.floor(window / 2));
        expect(delay).toBeLessThanOrEqual(window);
      }),
    );
  });
});

describe('Backoff', () => {
  it('counts its failures and starts over on reset', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0);
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([50, 100, 200]);
    expect(backoff.attempts).toBe(3);
    backoff.reset();
    expect(backoff.next()).toBe(50);
  });
});
