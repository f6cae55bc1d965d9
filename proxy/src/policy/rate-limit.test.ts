import { buildSnapshot, parseMeshFile, requestView, validateObject, type KubeObject, type MeshHTTPLocalRateLimitPolicy } from '@tsmesh/common';
import { stringify } from 'yaml';
import { testMeshYaml } from '../testing/mesh.js';
import { RateBuckets, rateBucketsBuffer } from './rate-buckets.js';
import { compileRateLimits, compileWorkloadRateLimits, rateLimitSelects, type RateLimitVerdict, type WorkloadRateLimits } from './rate-limit.js';

const SECOND = 1_000_000_000n;
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const BATCH = 'spiffe://cluster.local/ns/jobs/sa/batch';
const OTHER = 'spiffe://cluster.local/ns/shop/sa/other';

function policy(name: string, spec: Record<string, unknown>, namespace = 'shop'): MeshHTTPLocalRateLimitPolicy {
  const result = validateObject({ apiVersion: 'policy.tsmesh.io/v1', kind: 'HTTPLocalRateLimitPolicy', metadata: { name, namespace }, spec });
  if (!result.ok || result.value.kind !== 'HTTPLocalRateLimitPolicy') throw new Error(result.ok ? 'wrong kind' : result.error.message);
  return result.value.value;
}

const web = { namespace: 'shop', labels: { app: 'web' } };

function setup(policies: MeshHTTPLocalRateLimitPolicy[], workload = web): { limits: WorkloadRateLimits; advance(ns: bigint): void; counted: Map<string, number> } {
  let t = 7n * SECOND;
  const counted = new Map<string, number>();
  const limits = compileRateLimits(policies, workload, {
    trustDomain: 'cluster.local',
    buckets: new RateBuckets(rateBucketsBuffer(), () => t),
    counters: (p, decision, reason) => ({ inc: () => void counted.set(`${p} ${decision} ${reason}`, (counted.get(`${p} ${decision} ${reason}`) ?? 0) + 1) }),
  });
  return { limits, advance: (ns) => void (t += ns), counted };
}

/** How many of `n` requests at one instant are admitted, and the last refusal. */
function send(limits: WorkloadRateLimits, n: number, identity: string | undefined, port = 8080): { admitted: number; refusal: RateLimitVerdict | undefined } {
  let admitted = 0;
  let refusal: RateLimitVerdict | undefined;
  for (let i = 0; i < n; i++) {
    const verdict = limits.check(port, identity);
    if (verdict === undefined) admitted++;
    else refusal = verdict;
  }
  return { admitted, refusal };
}

describe('which HTTPLocalRateLimitPolicy applies to which workload', () => {
  test('a selector selects matching workloads of its own namespace; without one, the whole namespace; never another namespace', () => {
    expect(rateLimitSelects(policy('a', { selector: { matchLabels: { app: 'web' } }, total: { requestsPerSecond: 1 } }), web)).toBe(true);
    expect(rateLimitSelects(policy('a', { selector: { matchLabels: { app: 'api' } }, total: { requestsPerSecond: 1 } }), web)).toBe(false);
    expect(rateLimitSelects(policy('a', { selector: { matchLabels: { app: 'web', tier: 'x' } }, total: { requestsPerSecond: 1 } }), web)).toBe(false);
    expect(rateLimitSelects(policy('a', { total: { requestsPerSecond: 1 } }), web)).toBe(true);
    expect(rateLimitSelects(policy('a', { total: { requestsPerSecond: 1 } }, 'tsmesh-system'), web)).toBe(false);
    expect(rateLimitSelects(policy('a', { total: { requestsPerSecond: 1 } }, 'other'), web)).toBe(false);
  });

  test('no policy: inactive, every request admitted', () => {
    const { limits } = setup([policy('api', { selector: { matchLabels: { app: 'api' } }, total: { requestsPerSecond: 1 } })]);
    expect(limits.active).toBe(false);
    expect(send(limits, 100, FRONTEND).admitted).toBe(100);
  });

  test('a policy with a port limits that port only', () => {
    const { limits } = setup([policy('p', { port: 8080, total: { requestsPerSecond: 2 } })]);
    expect(send(limits, 10, FRONTEND, 8080).admitted).toBe(2);
    expect(send(limits, 10, FRONTEND, 9090).admitted).toBe(10);
  });

  test('compiled from a snapshot, an invalid policy is left out and reported', () => {
    const bad = { apiVersion: 'policy.tsmesh.io/v1', kind: 'HTTPLocalRateLimitPolicy', metadata: { name: 'bad', namespace: 'shop' }, spec: { total: { requestsPerSecond: 0 } } };
    const good = { apiVersion: 'policy.tsmesh.io/v1', kind: 'HTTPLocalRateLimitPolicy', metadata: { name: 'good', namespace: 'shop' }, spec: { total: { requestsPerSecond: 3 } } };
    const limits = compileWorkloadRateLimits({ version: '1', others: [bad, good], services: [], endpoints: () => [], service: () => undefined }, web, { trustDomain: 'cluster.local', buckets: new RateBuckets(rateBucketsBuffer(), () => SECOND) });
    expect(limits.policies).toEqual(['shop/good']);
    expect(limits.problems).toEqual([{ object: 'HTTPLocalRateLimitPolicy shop/bad', reason: expect.stringContaining('spec.total.requestsPerSecond') }]);
  });
});

describe('rate limit buckets', () => {
  test('total: every caller shares one bucket; plaintext callers count against it', () => {
    const { limits, counted } = setup([policy('t', { total: { requestsPerSecond: 5 } })]);
    expect(send(limits, 3, FRONTEND).admitted).toBe(3);
    expect(send(limits, 3, undefined).admitted).toBe(2);
    const { refusal } = send(limits, 1, BATCH);
    expect(refusal).toEqual({ policy: 'shop/t', reason: 'total', retryAfterSeconds: 1 });
    expect(counted.get('shop/t limited total')).toBe(2);
    expect(counted.get('shop/t admitted within_limit')).toBe(5);
  });

  test('identity: each caller has its own bucket, independent of the others; plaintext callers have none', () => {
    const { limits, advance } = setup([policy('i', { identity: { requestsPerSecond: 4 } })]);
    expect(send(limits, 10, FRONTEND).admitted).toBe(4);
    expect(send(limits, 10, OTHER).admitted).toBe(4);
    expect(send(limits, 10, FRONTEND).refusal?.reason).toBe('identity');
    expect(send(limits, 50, undefined).admitted).toBe(50);
    advance(SECOND / 2n);
    expect(send(limits, 10, FRONTEND).admitted).toBe(2);
  });

  test('overrides: the named callers share the override\'s bucket instead of their per-identity ones', () => {
    const { limits } = setup([
      policy('o', {
        identity: { requestsPerSecond: 2 },
        overrides: [{ requestsPerSecond: 6, clientRefs: [{ kind: 'ServiceAccount', name: 'frontend' }, { kind: 'ServiceAccount', name: 'batch', namespace: 'jobs' }] }],
      }),
    ]);
    expect(send(limits, 4, FRONTEND).admitted).toBe(4);
    const batch = send(limits, 4, BATCH);
    expect(batch.admitted).toBe(2);
    expect(batch.refusal?.reason).toBe('override');
    expect(send(limits, 4, OTHER).admitted).toBe(2);
  });

  test('a request refused by the total bucket gives its identity token back', () => {
    const { limits, advance } = setup([policy('both', { total: { requestsPerSecond: 3 }, identity: { requestsPerSecond: 3 } })]);
    expect(send(limits, 3, OTHER).admitted).toBe(3);
    // The total is spent: FRONTEND is refused, and its own bucket stays full.
    expect(send(limits, 5, FRONTEND).refusal?.reason).toBe('total');
    advance(SECOND);
    expect(send(limits, 3, FRONTEND).admitted).toBe(3);
  });

  test('every policy that applies must admit; a refusal by the second gives back the first one\'s tokens', () => {
    const { limits, advance } = setup([
      policy('a-loose', { total: { requestsPerSecond: 10 } }),
      policy('b-tight', { port: 8080, total: { requestsPerSecond: 2 } }),
    ]);
    const { admitted, refusal } = send(limits, 5, FRONTEND, 8080);
    expect(admitted).toBe(2);
    expect(refusal?.policy).toBe('shop/b-tight');
    // a-loose lost only the 2 admitted tokens: 8 left for another port.
    expect(send(limits, 20, FRONTEND, 9090).admitted).toBe(8);
    advance(SECOND);
    expect(send(limits, 20, FRONTEND, 9090).admitted).toBe(10);
  });

  test('retry-after counts the whole seconds until a token is available', () => {
    const { limits, advance } = setup([policy('slow', { total: { requestsPerSecond: 1 } })]);
    expect(send(limits, 1, FRONTEND).admitted).toBe(1);
    expect(limits.check(8080, FRONTEND)?.retryAfterSeconds).toBe(1);
    advance(SECOND / 10n);
    expect(limits.check(8080, FRONTEND)?.retryAfterSeconds).toBe(1);
  });

  test('a new snapshot keeps the buckets (same policy, same key): an update does not refill them', () => {
    let t = 3n * SECOND;
    const buckets = new RateBuckets(rateBucketsBuffer(), () => t);
    const p = policy('keep', { total: { requestsPerSecond: 4 } });
    const first = compileRateLimits([p], web, { trustDomain: 'cluster.local', buckets });
    expect(send(first, 4, FRONTEND).admitted).toBe(4);
    const second = compileRateLimits([p], web, { trustDomain: 'cluster.local', buckets });
    expect(send(second, 4, FRONTEND).admitted).toBe(0);
    t += SECOND;
    expect(send(second, 4, FRONTEND).admitted).toBe(4);
  });
});

describe('a policy for one route (spec.route)', () => {
  /** Service api (port 80 → this pod's 8080) with an HTTPRoute: rule "search" for /search, rule "rest" for the rest. */
  function snapshotWith(policies: object[]): ReturnType<typeof buildSnapshot> {
    const route = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'api', namespace: 'shop' },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'api', port: 80 }],
        rules: [
          { name: 'search', matches: [{ path: { type: 'PathPrefix', value: '/search' } }], backendRefs: [{ name: 'api', port: 80 }] },
          { name: 'rest', backendRefs: [{ name: 'api', port: 80 }] },
        ],
      },
    };
    const yaml = [testMeshYaml([{ name: 'api', namespace: 'shop', clusterIP: '10.96.0.50', port: 80, portName: 'http', endpoints: [{ port: 8080, address: '10.1.0.9' }] }]), stringify(route), ...policies.map((p) => stringify(p))].join('---\n');
    const parsed = parseMeshFile(yaml, 'mesh.yaml');
    if (!parsed.ok) throw parsed.error;
    return buildSnapshot(parsed.value as KubeObject[]);
  }
  const limitFor = (route: unknown): object => ({ apiVersion: 'policy.tsmesh.io/v1', kind: 'HTTPLocalRateLimitPolicy', metadata: { name: 'search-only', namespace: 'shop' }, spec: { route, total: { requestsPerSecond: 2 } } });

  function sendTo(limits: WorkloadRateLimits, path: string, n: number): number {
    let admitted = 0;
    for (let i = 0; i < n; i++) {
      const view = requestView({ method: 'GET', target: path, authority: 'api.shop', header: () => undefined }, 'shop');
      if (!view.ok) throw new Error(view.reason);
      const route = limits.needsRoute ? limits.routeOf(8080, view.request) : undefined;
      if (limits.check(8080, FRONTEND, route) === undefined) admitted++;
    }
    return admitted;
  }

  test('limits only the requests the named rule routes; the rest of the route is not limited', () => {
    const snapshot = snapshotWith([limitFor({ name: 'api', ruleName: 'search' })]);
    const limits = compileWorkloadRateLimits(snapshot, web, { trustDomain: 'cluster.local', buckets: new RateBuckets(rateBucketsBuffer(), () => SECOND), podIp: '10.1.0.9' });
    expect(limits.needsRoute).toBe(true);
    expect(sendTo(limits, '/search?q=1', 5)).toBe(2);
    expect(sendTo(limits, '/x/../search/deep', 3)).toBe(0);
    expect(sendTo(limits, '/items', 5)).toBe(5);
  });

  test('without ruleName, every rule of the route; another route\'s name limits nothing here', () => {
    const whole = compileWorkloadRateLimits(snapshotWith([limitFor({ name: 'api' })]), web, { trustDomain: 'cluster.local', buckets: new RateBuckets(rateBucketsBuffer(), () => SECOND), podIp: '10.1.0.9' });
    expect(sendTo(whole, '/search', 1) + sendTo(whole, '/items', 3)).toBe(2);
    const other = compileWorkloadRateLimits(snapshotWith([limitFor({ name: 'not-api' })]), web, { trustDomain: 'cluster.local', buckets: new RateBuckets(rateBucketsBuffer(), () => SECOND), podIp: '10.1.0.9' });
    expect(sendTo(other, '/search', 5)).toBe(5);
  });

  test('a policy without spec.route needs no route (nothing is matched per request)', () => {
    const limits = compileWorkloadRateLimits(snapshotWith([{ ...limitFor(undefined), spec: { total: { requestsPerSecond: 2 } } }]), web, { trustDomain: 'cluster.local', buckets: new RateBuckets(rateBucketsBuffer(), () => SECOND), podIp: '10.1.0.9' });
    expect(limits.needsRoute).toBe(false);
    expect(sendTo(limits, '/items', 5)).toBe(2);
  });
});
