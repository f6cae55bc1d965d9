import { jest } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { BalancedCluster, loadBalancerNames, type BalancedEndpoint } from './index.js';
import { LOCALITY_OVERPROVISIONING, planLocality, type ZonePickTally } from './locality.js';

interface ZonedEndpoint extends BalancedEndpoint {
  readonly zone?: string;
  readonly forZones?: readonly string[];
}

const at = (i: number, zone: string | undefined, forZones?: readonly string[]): ZonedEndpoint => ({
  key: `10.0.0.${i}:8080`,
  address: `10.0.0.${i}`,
  port: 8080,
  ...(zone === undefined ? {} : { zone }),
  ...(forZones === undefined ? {} : { forZones }),
});

// Two endpoints in the caller's zone (a), three in zone b.
const A1 = at(1, 'a');
const A2 = at(2, 'a');
const B1 = at(3, 'b');
const B2 = at(4, 'b');
const B3 = at(5, 'b');
const ALL = [A1, A2, B1, B2, B3];
const LOCAL = new Set([A1.key, A2.key]);

let clusters: BalancedCluster<ZonedEndpoint>[] = [];

/** `zone` null: the caller's zone is unknown. */
function make(loadBalancer: string, endpoints: readonly ZonedEndpoint[] = ALL, zone: string | null = 'a', tally?: ZonePickTally): BalancedCluster<ZonedEndpoint> {
  const { cluster } = BalancedCluster.create<ZonedEndpoint>({ name: 'reviews.default:9080', loadBalancer, ...(tally ? { zonePicks: tally } : {}) });
  cluster.setLocality(zone ?? undefined);
  cluster.setEndpoints(endpoints);
  clusters.push(cluster);
  return cluster;
}

function picks(cluster: BalancedCluster<ZonedEndpoint>, n: number, keyOf: (i: number) => string | undefined = () => undefined): string[] {
  return Array.from({ length: n }, (_, i) => {
    const hashKey = keyOf(i);
    const result = cluster.pick(hashKey === undefined ? undefined : { hashKey });
    if (!result.ok) throw result.error;
    result.value.release();
    return result.value.endpoint.key;
  });
}

const localShare = (keys: readonly string[]): number => keys.filter((k) => LOCAL.has(k)).length / keys.length;

beforeAll(() => setLogLevel('silent'));
beforeEach(() => jest.useFakeTimers());
afterEach(() => {
  for (const cluster of clusters) cluster.close();
  clusters = [];
  jest.useRealTimers();
});

describe('planLocality', () => {
  const healthy = (list: readonly ZonedEndpoint[]) => list;

  it('makes no plan without a caller zone', () => {
    expect(planLocality(undefined, ALL, healthy(ALL))).toBeUndefined();
  });

  it('makes no plan when no endpoint says where it runs (nothing to prefer, nothing to count)', () => {
    const unzoned = [at(1, undefined), at(2, undefined)];
    expect(planLocality('a', unzoned, unzoned)).toBeUndefined();
  });

  it('keeps every pick local while the local zone is healthy', () => {
    const plan = planLocality('a', ALL, healthy(ALL));
    expect(plan).toMatchObject({ mode: 'zone', localShare: 1 });
    expect(plan?.local.map((e) => e.key)).toEqual([A1.key, A2.key]);
    expect(plan?.remote.map((e) => e.key)).toEqual([B1.key, B2.key, B3.key]);
  });

  it('spills the share the local zone cannot carry: healthy fraction times the overprovisioning factor', () => {
    const local = [at(11, 'a'), at(12, 'a'), at(13, 'a'), at(14, 'a'), at(15, 'a')];
    const plan = planLocality('a', [...local, B1], [local[0]!, local[1]!, B1]);
    expect(plan?.localShare).toBeCloseTo((2 / 5) * LOCALITY_OVERPROVISIONING);
  });

  it('counts local endpoints that are not ready against the local zone', () => {
    const plan = planLocality('a', ALL, healthy(ALL), [at(9, 'a'), at(10, 'a'), at(11, 'b')]);
    expect(plan?.localShare).toBeCloseTo((2 / 4) * LOCALITY_OVERPROVISIONING);
  });

  it('sends everything to the other zones when no local endpoint is healthy', () => {
    const plan = planLocality('a', ALL, [B1, B2, B3]);
    expect(plan).toMatchObject({ localShare: 0, local: [] });
  });

  it('uses topology-aware routing hints when every endpoint has them', () => {
    const hinted = [at(1, 'a', ['a']), at(2, 'b', ['a']), at(3, 'b', ['b'])];
    const plan = planLocality('a', hinted, hinted);
    expect(plan?.mode).toBe('hints');
    expect(plan?.local.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('ignores hints unless every endpoint has them, as kube-proxy does', () => {
    const partly = [at(1, 'a', ['b']), at(2, 'b'), at(3, 'a')];
    const plan = planLocality('a', partly, partly);
    expect(plan?.mode).toBe('zone');
    expect(plan?.local.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.3']);
  });
});

describe('BalancedCluster with a caller zone', () => {
  it.each(loadBalancerNames())('sends every pick to the local zone under %s while it is healthy', (algorithm) => {
    const cluster = make(algorithm);
    const keys = picks(cluster, 200, (i) => `user-${i}`);
    expect(localShare(keys)).toBe(1);
    // Both local endpoints take a share (ring-hash spreads the keys over them).
    expect(new Set(keys)).toEqual(LOCAL);
  });

  it('balances over every zone without a caller zone', () => {
    expect(new Set(picks(make('round-robin', ALL, null), 5))).toEqual(new Set(ALL.map((e) => e.key)));
  });

  it('fails over to the other zones when every local endpoint is ejected, and comes back when they recover', () => {
    const cluster = make('round-robin');
    cluster.reportFailure(A1.key);
    cluster.reportFailure(A2.key);
    const away = picks(cluster, 30);
    expect(localShare(away)).toBe(0);
    expect(new Set(away)).toEqual(new Set([B1.key, B2.key, B3.key]));
    jest.advanceTimersByTime(5_000); // the ejections end
    expect(localShare(picks(cluster, 30))).toBe(1);
  });

  it('fails over when no local endpoint is ready, and comes back when one is', () => {
    const cluster = make('least-request');
    cluster.setEndpoints([B1, B2, B3], [A1, A2]);
    expect(localShare(picks(cluster, 30))).toBe(0);
    cluster.setEndpoints(ALL);
    expect(localShare(picks(cluster, 30))).toBe(1);
  });

  it('spills part of the traffic when the local zone is degraded (one of two local endpoints ejected)', () => {
    const cluster = make('least-request');
    cluster.reportFailure(A1.key);
    const keys = picks(cluster, 2_000);
    expect(keys).not.toContain(A1.key);
    // 1 of 2 healthy × 1.4 = 70 % local.
    expect(localShare(keys)).toBeGreaterThan(0.6);
    expect(localShare(keys)).toBeLessThan(0.8);
  });

  it('keeps a ring-hash key on one endpoint while the zone is degraded (the spill decision hashes the key)', () => {
    const cluster = make('ring-hash');
    cluster.reportFailure(A1.key);
    for (const key of ['alice', 'bob', 'carol', 'dave']) expect(new Set(picks(cluster, 20, () => key)).size).toBe(1);
  });

  it('honours topology-aware routing hints', () => {
    const hinted = [at(1, 'a', ['a']), at(2, 'b', ['a']), at(3, 'b', ['b'])];
    const cluster = make('round-robin', hinted);
    expect(new Set(picks(cluster, 30))).toEqual(new Set([hinted[0]!.key, hinted[1]!.key]));
  });

  it('counts local and cross-zone picks in the tally it was given', () => {
    const tally: ZonePickTally = { local: 0, crossZone: 0 };
    const cluster = make('round-robin', ALL, 'a', tally);
    picks(cluster, 10);
    expect(tally).toEqual({ local: 10, crossZone: 0 });
    cluster.reportFailure(A1.key);
    cluster.reportFailure(A2.key);
    picks(cluster, 4);
    expect(tally).toEqual({ local: 10, crossZone: 4 });
  });

  it('counts nothing without a caller zone', () => {
    const tally: ZonePickTally = { local: 0, crossZone: 0 };
    picks(make('round-robin', ALL, null, tally), 10);
    expect(tally).toEqual({ local: 0, crossZone: 0 });
  });

  it('stops preferring a zone when the caller zone is cleared', () => {
    const cluster = make('round-robin');
    cluster.setLocality(undefined);
    expect(new Set(picks(cluster, 5))).toEqual(new Set(ALL.map((e) => e.key)));
  });
});
