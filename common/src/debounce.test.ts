import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { MaxDelayDebounce } from './debounce.js';

describe('MaxDelayDebounce', () => {
  let now = 0;
  beforeEach(() => {
    jest.useFakeTimers();
    now = 0;
  });
  afterEach(() => {
    jest.useRealTimers();
  });
  const advance = (ms: number): void => {
    now += ms;
    jest.advanceTimersByTime(ms);
  };

  it('runs once, debounceMs after the last of a burst', () => {
    let runs = 0;
    const d = new MaxDelayDebounce(() => runs++, { debounceMs: 100, maxDelayMs: 1000, now: () => now });
    for (let i = 0; i < 5; i++) {
      d.schedule();
      advance(50);
    }
    expect(runs).toBe(0);
    advance(60);
    expect(runs).toBe(1);
    expect(d.pending).toBe(false);
  });

  it('runs no later than maxDelayMs after the first change, however steady the stream', () => {
    const at: number[] = [];
    const d = new MaxDelayDebounce(() => at.push(now), { debounceMs: 100, maxDelayMs: 300, now: () => now });
    for (let i = 0; i < 20; i++) {
      d.schedule();
      advance(50);
    }
    expect(at[0]).toBe(300);
    expect(at.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < at.length; i++) expect((at[i] ?? 0) - (at[i - 1] ?? 0)).toBeLessThanOrEqual(350);
  });

  it('flush runs what is due at once; cancel forgets it', () => {
    let runs = 0;
    const d = new MaxDelayDebounce(() => runs++, { debounceMs: 100, maxDelayMs: 1000, now: () => now });
    d.flush();
    expect(runs).toBe(0);
    d.schedule();
    d.flush();
    expect(runs).toBe(1);
    d.schedule();
    d.cancel();
    advance(2000);
    expect(runs).toBe(1);
  });
});
