// Outlier detection for the sidecar, not each event loop: two loops' clusters over one shared
// buffer count consecutive errors together, and an endpoint ejected (or returned) on one loop is
// ejected (or returned) on the other, at its next pick.
import { afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { BalancedCluster } from '../balance/index.js';
import { SharedCounts, sharedCountsBuffer } from './shared-counts.js';

beforeAll(() => setLogLevel('silent'));

const KEYS = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80'];
const endpoints = KEYS.map((key) => ({ key, address: key.split(':')[0]!, port: 80 }));
const clusters: Array<BalancedCluster<(typeof endpoints)[number]>> = [];

afterEach(() => {
  for (const c of clusters.splice(0)) c.close();
  jest.useRealTimers();
});

/** The same cluster on `loops` event loops over one buffer. */
function onLoops(loops: number, name = 'shop/cart:80', health = { consecutive5xx: 3, maxEjectionPercent: 50, baseEjectionMs: 1_000 }) {
  const buffer = sharedCountsBuffer(loops);
  return Array.from({ length: loops }, (_, loop) => {
    const shared = new SharedCounts(buffer, loop).ejectionsFor(name);
    const { cluster } = BalancedCluster.create<(typeof endpoints)[number]>({ name, loadBalancer: 'round-robin', health: { ...health, shared } });
    cluster.setEndpoints(endpoints);
    clusters.push(cluster);
    return cluster;
  });
}

const picked = (cluster: BalancedCluster<(typeof endpoints)[number]>, n: number): Set<string> => {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const pick = cluster.pick();
    if (!pick.ok) throw pick.error;
    seen.add(pick.value.endpoint.key);
    pick.value.release();
  }
  return seen;
};

describe('outlier detection shared by the event loops', () => {
  it('counts consecutive 5xx across loops and ejects on both', () => {
    const [a, b] = onLoops(2) as [BalancedCluster<(typeof endpoints)[number]>, BalancedCluster<(typeof endpoints)[number]>];
    a.reportResponse(KEYS[0]!, 500);
    b.reportResponse(KEYS[0]!, 500);
    expect(a.health.isEjected(KEYS[0]!)).toBe(false);
    a.reportResponse(KEYS[0]!, 503); // the third in a row, counted over both loops
    expect(a.health.isEjected(KEYS[0]!)).toBe(true);
    expect(picked(b, 20).has(KEYS[0]!)).toBe(false);
    expect(b.health.isEjected(KEYS[0]!)).toBe(true);
  });

  it('a success on one loop starts the run again for both', () => {
    const [a, b] = onLoops(2) as [BalancedCluster<(typeof endpoints)[number]>, BalancedCluster<(typeof endpoints)[number]>];
    a.reportResponse(KEYS[1]!, 500);
    a.reportResponse(KEYS[1]!, 500);
    b.reportResponse(KEYS[1]!, 200);
    a.reportResponse(KEYS[1]!, 500);
    expect(a.health.isEjected(KEYS[1]!)).toBe(false);
  });

  it('the ejection ends on both loops at its time, and the next lasts twice as long', () => {
    jest.useFakeTimers();
    const [a, b] = onLoops(2) as [BalancedCluster<(typeof endpoints)[number]>, BalancedCluster<(typeof endpoints)[number]>];
    for (let i = 0; i < 3; i++) b.reportResponse(KEYS[2]!, 502);
    picked(a, 1);
    expect(a.health.isEjected(KEYS[2]!)).toBe(true);
    jest.advanceTimersByTime(1_000);
    expect([a.health.isEjected(KEYS[2]!), b.health.isEjected(KEYS[2]!)]).toEqual([false, false]);
    expect(picked(a, 20).has(KEYS[2]!)).toBe(true);
    const start = Date.now();
    for (let i = 0; i < 3; i++) a.reportResponse(KEYS[2]!, 500);
    picked(b, 1);
    expect(b.health.ejectedUntil(KEYS[2]!)).toBe(start + 2_000);
  });

  it('holds maxEjectionPercent for the loops together', () => {
    const [a, b] = onLoops(2) as [BalancedCluster<(typeof endpoints)[number]>, BalancedCluster<(typeof endpoints)[number]>];
    for (let i = 0; i < 3; i++) a.reportResponse(KEYS[0]!, 500);
    for (let i = 0; i < 3; i++) b.reportResponse(KEYS[1]!, 500);
    for (let i = 0; i < 3; i++) b.reportResponse(KEYS[2]!, 500); // a third would be 75 % > 50 %
    picked(a, 1);
    expect(a.health.ejected()).toEqual([KEYS[0], KEYS[1]]);
    expect(b.health.ejected()).toEqual([KEYS[0], KEYS[1]]);
  });

  it('a connect success returns an endpoint on every loop; a loop started later sees ejections already made', () => {
    const buffer = sharedCountsBuffer(2);
    const make = (loop: number) => {
      const { cluster } = BalancedCluster.create<(typeof endpoints)[number]>({ name: 'c', loadBalancer: 'round-robin', health: { shared: new SharedCounts(buffer, loop).ejectionsFor('c') } });
      clusters.push(cluster);
      return cluster;
    };
    const a = make(0);
    a.setEndpoints(endpoints);
    a.reportFailure(KEYS[3]!);
    const b = make(1);
    b.setEndpoints(endpoints);
    expect(b.health.isEjected(KEYS[3]!)).toBe(true);
    b.reportSuccess(KEYS[3]!);
    expect(picked(a, 20).has(KEYS[3]!)).toBe(true);
  });

  it('keeps clusters apart: the same address in two clusters is judged in each alone', () => {
    const buffer = sharedCountsBuffer(1);
    const counts = new SharedCounts(buffer, 0);
    const make = (name: string) => {
      const { cluster } = BalancedCluster.create<(typeof endpoints)[number]>({ name, loadBalancer: 'round-robin', health: { shared: counts.ejectionsFor(name) } });
      cluster.setEndpoints(endpoints);
      clusters.push(cluster);
      return cluster;
    };
    const [x, y] = [make('x'), make('y')];
    x.reportFailure(KEYS[0]!);
    expect(picked(y, 20).has(KEYS[0]!)).toBe(true);
  });
});
