import { describe, expect, it } from '@jest/globals';
import { ALGORITHMS, formatTable, medianRun, overallVerdict, SCENARIOS, slowShare, verdict, type Algorithm, type BalancerRun, type Medians, type Scenario } from './balancer-figures.js';

const run = (over: Partial<BalancerRun> = {}): BalancerRun => ({ requestsPerSecond: 1000, p50Ms: 1, p99Ms: 10, failed: 0, slowShare: 0.33, ...over });

function medians(set: (scenario: Scenario, algorithm: Algorithm) => Partial<BalancerRun>): Medians {
  return Object.fromEntries(SCENARIOS.map((s) => [s, Object.fromEntries(ALGORITHMS.map((a) => [a, run(set(s, a))]))])) as unknown as Medians;
}

describe('slowShare', () => {
  it('counts only the requests between the two readings', () => {
    expect(slowShare([100, 100, 100], [110, 145, 145], 0)).toBe(0.1);
  });

  it('is NaN for a window in which no replica counted a request', () => {
    expect(slowShare([5, 5, 5], [5, 5, 5], 0)).toBeNaN();
  });
});

describe('medianRun', () => {
  it('takes the median of each figure and the sum of the failures', () => {
    const m = medianRun([run({ requestsPerSecond: 900, p99Ms: 30, failed: 1 }), run({ requestsPerSecond: 1100, p99Ms: 10 }), run({ requestsPerSecond: 1000, p99Ms: 20, failed: 2 })]);
    expect(m).toMatchObject({ requestsPerSecond: 1000, p99Ms: 20, failed: 3 });
  });
});

describe('verdict', () => {
  it('prefers a challenger that halves p99 under a slow replica and matches without one', () => {
    const m = medians((s, a) => (a === 'peak-ewma' && s !== 'none-slow' ? { p99Ms: 5 } : {}));
    expect(verdict(m, 'peak-ewma', 'least-request').better).toBe(true);
  });

  it('refuses one that is better with a slow replica but loses a fifth of the req/s without one', () => {
    const m = medians((s, a) => (a !== 'peak-ewma' ? {} : s === 'none-slow' ? { requestsPerSecond: 800 } : { p99Ms: 5 }));
    const v = verdict(m, 'peak-ewma', 'least-request');
    expect(v.better).toBe(false);
    expect(v.reasons.find((r) => r.startsWith('none-slow'))).toMatch(/fails/);
  });

  it('refuses one that is only slightly better under a slow replica', () => {
    const m = medians((s, a) => (a === 'peak-ewma' && s !== 'none-slow' ? { p99Ms: 9 } : {}));
    expect(verdict(m, 'peak-ewma', 'least-request').better).toBe(false);
  });

  it('refuses one with failed requests', () => {
    const m = medians((s, a) => (a === 'peak-ewma' ? (s === 'none-slow' ? { failed: 1 } : { p99Ms: 5 }) : {}));
    expect(verdict(m, 'peak-ewma', 'least-request').better).toBe(false);
  });
});

describe('overallVerdict', () => {
  it('needs the challenger to pass under every load measured', () => {
    const good = medians((s, a) => (a === 'peak-ewma' && s !== 'none-slow' ? { p99Ms: 5 } : {}));
    const bad = medians((s, a) => (a === 'peak-ewma' && s === 'turns-slow' ? { p99Ms: 15 } : {}));
    expect(overallVerdict({ h2load: good, 'open-loop': good }, 'peak-ewma', 'least-request').better).toBe(true);
    const mixed = overallVerdict({ h2load: good, 'open-loop': bad }, 'peak-ewma', 'least-request');
    expect(mixed.better).toBe(false);
    expect(mixed.reasons.filter((r) => r.startsWith('open-loop turns-slow'))).toHaveLength(1);
  });

  it('is not better when nothing was measured', () => {
    expect(overallVerdict({}, 'peak-ewma', 'least-request').better).toBe(false);
  });
});

describe('formatTable', () => {
  it('gives one row per scenario and algorithm with the slow share in percent', () => {
    const table = formatTable(medians(() => ({ slowShare: 0.0512 })), 50);
    expect(table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| scenario'))).toHaveLength(SCENARIOS.length * ALGORITHMS.length);
    expect(table).toContain('| one-slow | peak-ewma | 1000 | 1 | 10 | 5.1 % | 0 |');
    expect(table).toContain('turns-slow: replica 1 turns 50 ms late');
  });
});
