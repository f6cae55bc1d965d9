// Gives the memory malloc keeps back to the kernel while the sidecar's RSS grows. glibc returns a
// freed chunk to its arena, not to the kernel (only the top of the main heap is trimmed, and only
// past 128 KiB), so TLS records, socket buffers and V8's off-heap allocations freed after a burst
// stay resident and add up to the peak; malloc_trim(0) every 250 ms while RSS grew gives them back
// (h2-balance figures in docs/benchmarks.md, "Memory: malloc trim").
// One trimmer per process is enough (malloc_trim walks every arena, every thread's): loop 0 runs it.
// Disabled with TSMESH_HEAP_TRIM=off; a no-op where koffi or glibc's libc.so.6 cannot be loaded.
import { createRequire } from 'node:module';
import { logger } from '@tsmesh/common';

const log = logger('loop.heap-trim');

/** glibc's `int malloc_trim(size_t pad)`: 1 when memory was given back, 0 when none could be. */
export type MallocTrim = (pad: number) => number;

export const HEAP_TRIM_INTERVAL_MS = 250;
/** RSS must have grown this much since the last trim for the next one to run. */
export const HEAP_TRIM_GROWTH_BYTES = 1024 * 1024;

/** The subset of koffi this module uses. */
interface Koffi {
  load(path: string): { func(signature: string): (...args: unknown[]) => unknown };
}

/**
 * Binds malloc_trim through koffi (a prebuilt FFI, already the capture's way to reach libc), or
 * returns undefined: not Linux, koffi missing, or a libc without it (musl has no libc.so.6).
 * `requireKoffi` stands in for `require('koffi')` in tests.
 */
export function loadMallocTrim(requireKoffi: () => unknown = () => createRequire(import.meta.url)('koffi')): MallocTrim | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const koffi = requireKoffi() as Koffi;
    const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
    return (pad) => Number(trim(pad));
  } catch (error) {
    log.debug({ err: (error as Error).message }, 'malloc_trim unavailable; the heap is not trimmed');
    return undefined;
  }
}

export interface HeapTrimOptions {
  /** How often RSS is read (default HEAP_TRIM_INTERVAL_MS). */
  readonly intervalMs?: number;
  /** How much RSS must have grown since the last trim (default HEAP_TRIM_GROWTH_BYTES). */
  readonly growthBytes?: number;
  /** The process's resident set, bytes (default `process.memoryUsage.rss`). */
  readonly rss?: () => number;
  /** Binds malloc_trim; called once, at the first tick (default loadMallocTrim). */
  readonly load?: () => MallocTrim | undefined;
}

export interface HeapTrim {
  /** Trims done so far. */
  trims(): number;
  /** Stops the timer (the data plane's close). */
  stop(): void;
}

/**
 * Every `intervalMs`, reads RSS and calls malloc_trim(0) when it grew by `growthBytes` or more
 * since the last trim (the first tick always trims what start-up left). The timer never keeps the
 * process alive. When malloc_trim cannot be bound the timer stops at its first tick.
 */
export function startHeapTrim(options: HeapTrimOptions = {}): HeapTrim {
  const rss = options.rss ?? (() => process.memoryUsage.rss());
  const growth = options.growthBytes ?? HEAP_TRIM_GROWTH_BYTES;
  const load = options.load ?? loadMallocTrim;
  let trim: MallocTrim | undefined | null = null;
  let after = -Infinity;
  let trims = 0;
  const timer = setInterval(() => {
    if (trim === null) {
      trim = load();
      if (trim === undefined) {
        clearInterval(timer);
        return;
      }
    }
    if (trim === undefined || rss() - after < growth) return;
    trim(0);
    trims++;
    // Measured after the trim: the next one waits for new growth, not for what this one left.
    after = rss();
  }, options.intervalMs ?? HEAP_TRIM_INTERVAL_MS);
  timer.unref();
  return {
    trims: () => trims,
    stop: () => clearInterval(timer),
  };
}
