import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { HEAP_TRIM_GROWTH_BYTES, HEAP_TRIM_INTERVAL_MS, loadMallocTrim, startHeapTrim, type HeapTrim, type MallocTrim } from './heap-trim.js';

const MiB = 1024 * 1024;

describe('startHeapTrim', () => {
  let trimmer: HeapTrim | undefined;
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    trimmer?.stop();
    jest.useRealTimers();
  });

  it('calls malloc_trim(0) at the first tick, then only while RSS grows', () => {
    let rss = 80 * MiB;
    const calls: number[] = [];
    const trim: MallocTrim = (pad) => {
      calls.push(pad);
      rss -= 2 * MiB; // what the trim gave back
      return 1;
    };
    trimmer = startHeapTrim({ rss: () => rss, load: () => trim });
    expect(calls).toEqual([]);
    jest.advanceTimersByTime(HEAP_TRIM_INTERVAL_MS);
    expect(calls).toEqual([0]);
    // RSS steady (78 MiB after the trim): no trim.
    jest.advanceTimersByTime(HEAP_TRIM_INTERVAL_MS * 4);
    expect(calls).toHaveLength(1);
    // Growth under HEAP_TRIM_GROWTH_BYTES: no trim.
    rss += HEAP_TRIM_GROWTH_BYTES / 2;
    jest.advanceTimersByTime(HEAP_TRIM_INTERVAL_MS);
    expect(calls).toHaveLength(1);
    // Grown past it: trimmed at the next tick.
    rss += 10 * MiB;
    jest.advanceTimersByTime(HEAP_TRIM_INTERVAL_MS);
    expect(calls).toEqual([0, 0]);
    expect(trimmer.trims()).toBe(2);
  });

  it('binds malloc_trim once, lazily, at the first tick', () => {
    const load = jest.fn<() => MallocTrim | undefined>(() => () => 0);
    trimmer = startHeapTrim({ rss: () => 100 * MiB, load });
    expect(load).not.toHaveBeenCalled();
    jest.advanceTimersByTime(HEAP_TRIM_INTERVAL_MS * 5);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('is a no-op that stops its timer when malloc_trim cannot be bound', () => {
    const rss = jest.fn(() => 100 * MiB);
    trimmer = startHeapTrim({ rss, load: () => undefined });
    jest.advanceTimersByTime(HEAP_TRIM_INTERVAL_MS * 5);
    expect(trimmer.trims()).toBe(0);
    expect(rss).not.toHaveBeenCalled();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('stops trimming once stopped', () => {
    const trim = jest.fn<MallocTrim>(() => 1);
    let rss = 10 * MiB;
    trimmer = startHeapTrim({ rss: () => (rss += 5 * MiB), load: () => trim });
    jest.advanceTimersByTime(HEAP_TRIM_INTERVAL_MS);
    trimmer.stop();
    jest.advanceTimersByTime(HEAP_TRIM_INTERVAL_MS * 10);
    expect(trim).toHaveBeenCalledTimes(1);
  });
});

describe('loadMallocTrim', () => {
  it('returns undefined, without throwing, when koffi is missing', () => {
    expect(
      loadMallocTrim(() => {
        throw Object.assign(new Error("Cannot find module 'koffi'"), { code: 'MODULE_NOT_FOUND' });
      }),
    ).toBeUndefined();
  });

  it('returns undefined when the C library is not glibc (no libc.so.6, or no malloc_trim in it)', () => {
    const noLibc = { load: () => { throw new Error('Failed to load shared library: libc.so.6: cannot open shared object file'); } };
    expect(loadMallocTrim(() => noLibc)).toBeUndefined();
    const noSymbol = { load: () => ({ func: () => { throw new Error('Cannot find function "malloc_trim" in shared library'); } }) };
    expect(loadMallocTrim(() => noSymbol)).toBeUndefined();
  });

  it('binds glibc\'s malloc_trim through koffi on this Linux machine, and calling it is safe', () => {
    const trim = loadMallocTrim();
    expect(trim).toBeInstanceOf(Function);
    expect([0, 1]).toContain(trim?.(0));
  });
});
