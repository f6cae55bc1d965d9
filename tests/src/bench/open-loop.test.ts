import { describe, expect, it } from '@jest/globals';
import { sendTimeNs, spreadSchedule } from './open-loop.js';

describe('spreadSchedule', () => {
  it('gives 16 connections at 1,000 req/s a 16 ms period and 1 ms apart phases', () => {
    const s = spreadSchedule(1000, 16);
    expect(s.periodNs).toBe(16_000_000n);
    expect(s.phasesNs).toHaveLength(16);
    expect(s.phasesNs[0]).toBe(0n);
    expect(s.phasesNs[1]).toBe(1_000_000n);
    expect(s.phasesNs[15]).toBe(15_000_000n);
  });

  it('schedules every send of a tick at a distinct time', () => {
    const s = spreadSchedule(1000, 16);
    const times = new Set(s.phasesNs.map((_, c) => sendTimeNs(s, c, 3)));
    expect(times.size).toBe(16);
    expect(sendTimeNs(s, 2, 3)).toBe(2_000_000n + 3n * 16_000_000n);
  });

  it('refuses a zero rate and a fractional connection count', () => {
    expect(() => spreadSchedule(0, 16)).toThrow(RangeError);
    expect(() => spreadSchedule(1000, 1.5)).toThrow(RangeError);
  });
});
