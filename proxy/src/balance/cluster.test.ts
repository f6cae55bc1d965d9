import { jest } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { BalancedCluster, resolveLoadBalancer, type BalancedClusterOptions, type BalancedEndpoint } from './index.js';

interface TestEndpoint extends BalancedEndpoint {
  readonly zone: string;
}

const endpoint = (i: number): TestEndpoint => ({
  key: `10.0.0.${i}:8080`,
  address: `10.0.0.${i}`,
  port: 8080,
  zone: `zone-${i}`,
});
const [A, B, C, D] = [endpoint(1), endpoint(2), endpoint(3), endpoint(4)] as [
  TestEndpoint,
  TestEndpoint,
  TestEndpoint,
  TestEndpoint,
];

let clusters: BalancedCluster<TestEndpoint>[] = [];

function make(options: Partial<BalancedClusterOptions> = {}, endpoints: TestEndpoint[] = [A, B, C]): BalancedCluster<TestEndpoint> {
  const { cluster, warning } = BalancedCluster.create<TestEndpoint>({ name: 'reviews.default:9080', ...options });
  expect(warning).toBeUndefined();
  cluster.setEndpoints(endpoints);
  clusters.push(cluster);
  return cluster;
}

function pickKey(cluster: BalancedCluster<TestEndpoint>, hashKey?: string): string {
  const result = cluster.pick(hashKey === undefined ? undefined : { hashKey });
  if (!result.ok) throw result.error;
  result.value.release();
  return result.value.endpoint.key;
}

function pickKeys(cluster: BalancedCluster<TestEndpoint>, n: number): string[] {
  return Array.from({ length: n }, () => pickKey(cluster));
}

beforeAll(() => setLogLevel('silent'));

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  for (const cluster of clusters) cluster.close();
  clusters = [];
  jest.useRealTimers();
});

describe('resolveLoadBalancer', () => {
  it('finds each algorithm a Service can name', () => {
    for (const name of ['round-robin', 'least-request', 'random', 'ring-hash']) {
      const { factory, warning } = resolveLoadBalancer(name);
      expect(factory.name).toBe(name);
      expect(warning).toBeUndefined();
    }
  });

  it('uses least-request when no algorithm is named', () => {
    expect(resolveLoadBalancer(undefined).factory.name).toBe('least-request');
  });

  it('falls back to least-request with a warning, not a throw, for an unknown name', () => {
    const { factory, warning } = resolveLoadBalancer('fastest');
    expect(factory.name).toBe('least-request');
    expect(warning?.code).toBe('TSMESH_ERR_UNKNOWN_LOAD_BALANCER');
    expect(warning?.message).toContain('"fastest"');
    expect(warning?.message).toContain('round-robin');
  });
});

describe('BalancedCluster', () => {
  it('uses the default algorithm when the Service names none', () => {
    expect(make().loadBalancer).toBe('least-request');
  });

  it('reports an unknown algorithm as a warning and balances with the default', () => {
    const { cluster, warning } = BalancedCluster.create<TestEndpoint>({ name: 'x', loadBalancer: 'fastest' });
    clusters.push(cluster);
    cluster.setEndpoints([A]);
    expect(warning?.code).toBe('TSMESH_ERR_UNKNOWN_LOAD_BALANCER');
    expect(cluster.loadBalancer).toBe('least-request');
    expect(pickKey(cluster)).toBe(A.key);
  });

  it('fails with TSMESH_ERR_NO_ENDPOINTS naming the cluster while it has no endpoints', () => {
    const cluster = make({}, []);
    const result = cluster.pick();
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe('TSMESH_ERR_NO_ENDPOINTS');
      expect(result.error.message).toContain('reviews.default:9080');
    }
  });

  it('hands back the endpoint objects it was given', () => {
    const cluster = make({}, [A]);
    const result = cluster.pick();
    if (!result.ok) throw result.error;
    expect(result.value.endpoint).toBe(A);
    expect(result.value.endpoint.zone).toBe('zone-1');
    result.value.release();
  });

  it('builds a new picker whenever the endpoints change', () => {
    const cluster = make();
    const before = cluster.currentPicker;
    cluster.setEndpoints([A, B]);
    expect(cluster.currentPicker).not.toBe(before);
    expect(new Set(pickKeys(cluster, 200))).toEqual(new Set([A.key, B.key]));
  });

  it('keeps one endpoint per key', () => {
    const cluster = make({}, [A, B, { ...A, zone: 'other' }]);
    expect(cluster.endpoints).toEqual([A, B]);
  });

  it('keeps in-flight counts across a picker rebuild', () => {
    const cluster = make({ loadBalancer: 'least-request' }, [A]);
    const held = [];
    for (let i = 0; i < 10; i++) {
      const result = cluster.pick();
      if (!result.ok) throw result.error;
      held.push(result.value);
    }
    const before = cluster.currentPicker;
    cluster.setEndpoints([A, B]);
    expect(cluster.currentPicker).not.toBe(before);
    expect(cluster.inFlight.get(A.key)).toBe(10);
    // The new picker still sees A as busy, so new traffic goes to B.
    expect(new Set(pickKeys(cluster, 100))).toEqual(new Set([B.key]));
    // Picks made by the old picker release into the same counts.
    for (const pick of held) pick.release();
    expect(cluster.inFlight.get(A.key)).toBe(0);
    expect(new Set(pickKeys(cluster, 100))).toEqual(new Set([A.key, B.key]));
  });

  it('releases a pick only once however often release is called', () => {
    const cluster = make({}, [A]);
    const first = cluster.pick();
    const second = cluster.pick();
    if (!first.ok || !second.ok) throw new Error('pick failed');
    first.value.release();
    first.value.release();
    expect(cluster.inFlight.get(A.key)).toBe(1);
    second.value.release();
    expect(cluster.inFlight.get(A.key)).toBe(0);
  });

  it('does not pick an ejected endpoint', () => {
    const cluster = make();
    const before = cluster.currentPicker;
    cluster.reportFailure(B.key);
    expect(cluster.currentPicker).not.toBe(before);
    expect(pickKeys(cluster, 300)).not.toContain(B.key);
  });

  it('picks an ejected endpoint again once its ejection is over', () => {
    const cluster = make({ loadBalancer: 'round-robin' });
    cluster.reportFailure(B.key);
    jest.advanceTimersByTime(4_999);
    expect(pickKeys(cluster, 30)).not.toContain(B.key);
    jest.advanceTimersByTime(1);
    expect(pickKeys(cluster, 30)).toContain(B.key);
  });

  it('picks an ejected endpoint again at once when a connection to it succeeds', () => {
    const cluster = make({ loadBalancer: 'round-robin' });
    cluster.reportFailure(B.key);
    cluster.reportSuccess(B.key);
    expect(pickKeys(cluster, 3)).toContain(B.key);
  });

  it('balances over every endpoint when all of them are ejected (panic mode)', () => {
    const cluster = make({ loadBalancer: 'round-robin' });
    for (const e of [A, B, C]) cluster.reportFailure(e.key);
    expect(new Set(pickKeys(cluster, 3))).toEqual(new Set([A.key, B.key, C.key]));
  });

  it('leaves the others out again when one ejected endpoint returns from panic mode', () => {
    const cluster = make({ loadBalancer: 'round-robin' });
    cluster.reportFailure(A.key);
    jest.advanceTimersByTime(1_000);
    cluster.reportFailure(B.key);
    cluster.reportFailure(C.key);
    jest.advanceTimersByTime(4_000);
    expect(new Set(pickKeys(cluster, 30))).toEqual(new Set([A.key]));
  });

  it('ignores reports about endpoints it does not have', () => {
    const cluster = make();
    const before = cluster.currentPicker;
    cluster.reportFailure('192.168.9.9:80');
    expect(cluster.currentPicker).toBe(before);
    expect(cluster.health.ejected()).toEqual([]);
  });

  it('forgets the ejection of an endpoint that leaves and comes back', () => {
    const cluster = make({ loadBalancer: 'round-robin' });
    cluster.reportFailure(B.key);
    cluster.setEndpoints([A, C]);
    cluster.setEndpoints([A, B, C]);
    expect(pickKeys(cluster, 3)).toContain(B.key);
  });

  it('keeps round-robin fair across repeated updates of the same endpoints', () => {
    const cluster = make({ loadBalancer: 'round-robin' });
    const keys: string[] = [];
    while (keys.length < 3000) {
      cluster.setEndpoints([C, A, B]);
      keys.push(...pickKeys(cluster, 7));
    }
    for (const e of [A, B, C]) {
      expect(Math.abs(keys.filter((k) => k === e.key).length - keys.length / 3)).toBeLessThanOrEqual(1);
    }
  });

  it('moves only the keys of an ejected endpoint under ring-hash', () => {
    const cluster = make({ loadBalancer: 'ring-hash' }, [A, B, C, D]);
    const hashKeys = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
    const before = hashKeys.map((k) => pickKey(cluster, k));
    cluster.reportFailure(C.key);
    const after = hashKeys.map((k) => pickKey(cluster, k));
    hashKeys.forEach((_, i) => {
      if (before[i] === C.key) expect(after[i]).not.toBe(C.key);
      else expect(after[i]).toBe(before[i]);
    });
  });

  it('switches algorithm when the Service annotation changes', () => {
    const cluster = make({ loadBalancer: 'least-request' });
    const before = cluster.currentPicker;
    expect(cluster.setLoadBalancer('round-robin')).toBeUndefined();
    expect(cluster.loadBalancer).toBe('round-robin');
    expect(cluster.currentPicker).not.toBe(before);
    const keys = pickKeys(cluster, 6);
    expect(new Set(keys.slice(0, 3)).size).toBe(3);
    expect(keys.slice(3)).toEqual(keys.slice(0, 3));
  });

  it('returns a warning when switched to an unknown algorithm', () => {
    const cluster = make({ loadBalancer: 'round-robin' });
    expect(cluster.setLoadBalancer('fastest')?.code).toBe('TSMESH_ERR_UNKNOWN_LOAD_BALANCER');
    expect(cluster.loadBalancer).toBe('least-request');
  });

  it('describes its endpoints with their load and ejection', () => {
    const cluster = make({}, [A, B]);
    cluster.reportFailure(B.key);
    const result = cluster.pick();
    if (!result.ok) throw result.error;
    expect(cluster.stats()).toEqual([
      { key: A.key, address: A.address, port: 8080, inFlight: 1, ejected: false },
      { key: B.key, address: B.address, port: 8080, inFlight: 0, ejected: true },
    ]);
    result.value.release();
  });

  it('leaves no timer behind when closed', () => {
    const cluster = make();
    cluster.reportFailure(A.key);
    cluster.close();
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('BalancedCluster outlier detection on responses', () => {
  it('ejects an endpoint after consecutive 5xx answers when configured, and a 2xx in between starts the run again', () => {
    const cluster = make({ loadBalancer: 'round-robin' });
    cluster.configureHealth({ consecutive5xx: 2 });
    cluster.reportResponse(A.key, 500);
    cluster.reportResponse(A.key, 200);
    cluster.reportResponse(A.key, 503);
    expect(cluster.stats().find((e) => e.key === A.key)?.ejected).toBe(false);
    cluster.reportResponse(A.key, 500);
    expect(cluster.stats().find((e) => e.key === A.key)?.ejected).toBe(true);
    expect(new Set(pickKeys(cluster, 30))).toEqual(new Set([B.key, C.key]));
  });

  it('ignores 4xx answers and unknown endpoints', () => {
    const cluster = make({ loadBalancer: 'round-robin' });
    cluster.configureHealth({ consecutive5xx: 1 });
    cluster.reportResponse(A.key, 404);
    cluster.reportResponse(D.key, 500);
    expect(cluster.stats().map((e) => e.ejected)).toEqual([false, false, false]);
  });
});
