import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { PerformanceObserver } from 'node:perf_hooks';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { GC_DURATION_BUCKETS, GC_DURATION_METRIC } from './gc-metrics.js';
import { ProxyMetrics } from './metrics.js';
import { find, parseExposition } from './testing/prometheus-text.js';

/** Enough short-lived garbage for several scavenges, whatever the young generation's size. */
function makeGarbage(): number {
  let kept = 0;
  for (let i = 0; i < 200; i++) {
    const batch = Array.from({ length: 10_000 }, (_, j) => ({ j, text: `x${j}` }));
    kept += batch.length;
  }
  return kept;
}

describe('nodejs_gc_duration_seconds', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('is recorded without a perf_hooks gc observer (whose entries the scavenger promoted under load)', () => {
    const observe = jest.spyOn(PerformanceObserver.prototype, 'observe');
    new ProxyMetrics();
    const observed = observe.mock.calls.flatMap(([options]) => [...((options as { entryTypes?: string[] }).entryTypes ?? []), (options as { type?: string }).type]);
    expect(observed).not.toContain('gc');
  });

  it('counts this isolate\'s collections by kind, in seconds, with prom-client\'s buckets', async () => {
    const metrics = new ProxyMetrics();
    makeGarbage();
    const text = parseExposition(await metrics.render());
    expect(text.types.get(GC_DURATION_METRIC)).toBe('histogram');
    const minor = find(text, `${GC_DURATION_METRIC}_count`, { kind: 'minor' });
    expect(minor).toHaveLength(1);
    expect(minor[0]?.value).toBeGreaterThan(0);
    const sum = find(text, `${GC_DURATION_METRIC}_sum`, { kind: 'minor' })[0]?.value ?? Number.NaN;
    // Seconds, not microseconds: a scavenge takes well under a second.
    expect(sum).toBeGreaterThan(0);
    expect(sum / (minor[0]?.value ?? 1)).toBeLessThan(1);
    const les = find(text, `${GC_DURATION_METRIC}_bucket`, { kind: 'minor' }).map((s) => s.labels.le);
    expect(les).toEqual([...GC_DURATION_BUCKETS.map(String), '+Inf']);
  });

  it('leaves every other default metric of prom-client in place, under the same names', async () => {
    const reference = new Registry();
    collectDefaultMetrics({ register: reference });
    const expected = (await reference.getMetricsAsJSON()).map((m) => m.name).sort();
    const names = new Set((await new ProxyMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    expect(expected).toContain(GC_DURATION_METRIC);
    for (const name of expected) expect(names).toContain(name);
  });
});
