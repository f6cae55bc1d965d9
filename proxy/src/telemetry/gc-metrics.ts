// `nodejs_gc_duration_seconds`, the garbage collection histogram of prom-client's default metrics
// (same name, help, `kind` label and buckets), fed by a v8.GCProfiler read in batches instead of a
// perf_hooks 'gc' PerformanceObserver. The observer makes a PerformanceEntry per collection that
// lives until the next setImmediate; under load those entries were most of what the scavenger
// promoted (docs/benchmarks.md, "Memory"). The profiler records in C++; JavaScript sees a batch
// per read, consumed at once.
import { GCProfiler } from 'node:v8';
import { Histogram, type Registry } from 'prom-client';

export const GC_DURATION_METRIC = 'nodejs_gc_duration_seconds';
/** prom-client's buckets for it, kept so that dashboards and alerts read the same series. */
export const GC_DURATION_BUCKETS: readonly number[] = [0.001, 0.01, 0.1, 1, 2, 5];
/** How often the profiler's records are moved into the histograms (and at every scrape). */
export const GC_READ_INTERVAL_MS = 1000;

/** V8's collection types (GCProfiler's `gcType`) by prom-client's `kind` label values. */
const KIND: Readonly<Record<string, string>> = {
  Scavenge: 'minor',
  MinorMarkSweep: 'minor',
  MarkSweepCompact: 'major',
  IncrementalMarking: 'incremental',
  ProcessWeakCallbacks: 'weakcb',
};

interface GcRecord {
  readonly gcType: string;
  /** Microseconds. */
  readonly cost: number;
}

/** One profiler per isolate, whichever number of registries count its collections. */
class GcRecorder {
  private readonly histograms = new Set<Histogram<'kind'>>();
  private profiler: GCProfiler | undefined;

  add(histogram: Histogram<'kind'>): void {
    this.histograms.add(histogram);
    if (this.profiler !== undefined) return;
    this.profiler = new GCProfiler();
    this.profiler.start();
    setInterval(() => this.read(), GC_READ_INTERVAL_MS).unref();
  }

  /** Moves what the profiler recorded into every histogram. */
  read(): void {
    const done = this.profiler;
    if (done === undefined) return;
    // The next profiler starts first: a collection while the batch is parsed is counted by it.
    this.profiler = new GCProfiler();
    this.profiler.start();
    const records = (done.stop() as { statistics?: readonly GcRecord[] } | undefined)?.statistics ?? [];
    for (const record of records) {
      const kind = KIND[record.gcType] ?? 'unknown';
      const seconds = record.cost / 1e6;
      for (const histogram of this.histograms) histogram.observe({ kind }, seconds);
    }
  }
}

const recorder = new GcRecorder();

/** Registers `nodejs_gc_duration_seconds` on `registry`, counting this isolate's collections from now on. */
export function registerGcDuration(registry: Registry): Histogram<'kind'> {
  const histogram: Histogram<'kind'> = new Histogram({
    name: GC_DURATION_METRIC,
    help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
    labelNames: ['kind'],
    buckets: [...GC_DURATION_BUCKETS],
    registers: [registry],
    collect: () => recorder.read(),
  });
  recorder.add(histogram);
  return histogram;
}
