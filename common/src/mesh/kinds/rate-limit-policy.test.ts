import fc from 'fast-check';
import { MESH_ERRORS } from '../../errors.js';
import { parseMeshFile } from '../file.js';
import { validateObject } from '../objects.js';
import type { MeshHTTPLocalRateLimitPolicy } from './rate-limit-policy.js';

const policy = (spec: unknown): unknown => ({
  apiVersion: 'policy.tsmesh.io/v1',
  kind: 'HTTPLocalRateLimitPolicy',
  metadata: { name: 'rl', namespace: 'shop' },
  spec,
});

function valid(raw: unknown): MeshHTTPLocalRateLimitPolicy {
  const result = validateObject(raw);
  if (!result.ok) throw new Error(`expected a valid object, got: ${result.error.message}`);
  if (result.value.kind !== 'HTTPLocalRateLimitPolicy') throw new Error('wrong kind');
  return result.value.value;
}

function reasonOf(raw: unknown): string {
  const result = validateObject(raw);
  if (result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
  expect(result.error.code).toBe(MESH_ERRORS.MESH_INVALID_OBJECT);
  return result.error.message;
}

describe('HTTPLocalRateLimitPolicy', () => {
  test('reads selector, port, total, identity and overrides; a clientRef namespace defaults to the policy\'s', () => {
    const p = valid(
      policy({
        selector: { matchLabels: { app: 'web' } },
        port: 8080,
        total: { requestsPerSecond: 100 },
        identity: { requestsPerSecond: 20 },
        overrides: [{ requestsPerSecond: 50, clientRefs: [{ kind: 'ServiceAccount', name: 'frontend' }, { kind: 'ServiceAccount', name: 'batch', namespace: 'jobs' }] }],
      }),
    );
    expect(p).toEqual({
      namespace: 'shop',
      name: 'rl',
      selector: { app: 'web' },
      port: 8080,
      route: undefined,
      total: 100,
      identity: 20,
      overrides: [
        {
          requestsPerSecond: 50,
          clientRefs: [
            { kind: 'ServiceAccount', name: 'frontend', namespace: 'shop' },
            { kind: 'ServiceAccount', name: 'batch', namespace: 'jobs' },
          ],
        },
      ],
    });
  });

  test('without selector (or with empty matchLabels) it selects the namespace, on every port', () => {
    expect(valid(policy({ total: { requestsPerSecond: 1 } }))).toMatchObject({ selector: undefined, port: undefined, total: 1, identity: undefined, overrides: [] });
    expect(valid(policy({ selector: { matchLabels: {} }, identity: { requestsPerSecond: 3 } })).selector).toBeUndefined();
  });

  test('spec.route names a route of the policy\'s namespace (HTTPRoute by default) and optionally one rule of it', () => {
    expect(valid(policy({ route: { name: 'api', ruleName: 'search' }, total: { requestsPerSecond: 1 } })).route).toEqual({ kind: 'HTTPRoute', name: 'api', ruleName: 'search' });
    expect(valid(policy({ route: { kind: 'GRPCRoute', name: 'greeter' }, total: { requestsPerSecond: 1 } })).route).toEqual({ kind: 'GRPCRoute', name: 'greeter', ruleName: undefined });
  });

  test.each([
    [{}, 'spec: must set at least one of total, identity or overrides'],
    [{ total: { requestsPerSecond: 0 } }, 'spec.total.requestsPerSecond: must be an integer from 1 to 1000000, got 0'],
    [{ total: { requestsPerSecond: 1.5 } }, 'spec.total.requestsPerSecond: must be an integer from 1 to 1000000, got 1.5'],
    [{ total: { requestsPerSecond: '10' } }, 'spec.total.requestsPerSecond: must be an integer'],
    [{ total: {} }, 'spec.total.requestsPerSecond: required'],
    [{ identity: { requestsPerSecond: 5, burst: 10 } }, 'spec.identity.burst: is not a field of spec.identity'],
    [{ total: { requestsPerSecond: 5 }, port: 70000 }, 'spec.port: must be an integer from 1 to 65535, got 70000'],
    [{ total: { requestsPerSecond: 5 }, route: { ruleName: 'a' } }, 'spec.route.name: required'],
    [{ total: { requestsPerSecond: 5 }, route: { kind: 'TCPRoute', name: 'a' } }, 'spec.route.kind: must be one of HTTPRoute, GRPCRoute'],
    [{ total: { requestsPerSecond: 5 }, route: { name: 'a', ruleName: 'Bad_Name' } }, 'spec.route.ruleName: must be a rule name'],
    [{ total: { requestsPerSecond: 5 }, route: { name: 'a', namespace: 'b' } }, 'spec.route.namespace: is not a field of spec.route'],
    [{ total: { requestsPerSecond: 5 }, targetRef: { kind: 'Server', name: 'web' } }, 'spec.targetRef: is not a field of spec'],
    [{ total: { requestsPerSecond: 5 }, selector: { matchExpressions: [] } }, 'spec.selector.matchExpressions: is not a field of spec.selector'],
    [{ overrides: [{ requestsPerSecond: 5, clientRefs: [{ kind: 'Deployment', name: 'web' }] }] }, 'spec.overrides[0].clientRefs[0].kind: must be ServiceAccount'],
    [{ overrides: [{ requestsPerSecond: 5, clientRefs: [{ name: 'web' }] }] }, 'spec.overrides[0].clientRefs[0].kind: required'],
    [{ overrides: [{ requestsPerSecond: 5, clientRefs: [] }] }, 'spec.overrides[0].clientRefs: must name at least one ServiceAccount'],
    [{ overrides: [{ requestsPerSecond: 5 }] }, 'spec.overrides[0].clientRefs: required'],
    [{ overrides: [{ clientRefs: [{ kind: 'ServiceAccount', name: 'a' }] }] }, 'spec.overrides[0].requestsPerSecond: required'],
    [{ overrides: [{ requestsPerSecond: 5, clientRefs: [{ kind: 'ServiceAccount', name: 'Not_A_Name' }] }] }, 'spec.overrides[0].clientRefs[0].name'],
    [
      {
        overrides: [
          { requestsPerSecond: 5, clientRefs: [{ kind: 'ServiceAccount', name: 'a' }] },
          { requestsPerSecond: 9, clientRefs: [{ kind: 'ServiceAccount', name: 'a', namespace: 'shop' }] },
        ],
      },
      'spec.overrides[1].clientRefs[0]: ServiceAccount shop/a is already named by spec.overrides[0].clientRefs[0]',
    ],
  ])('refuses %j naming the field', (spec, reason) => {
    const message = reasonOf(policy(spec));
    expect(message).toContain('HTTPLocalRateLimitPolicy shop/rl: ');
    expect(message).toContain(reason);
  });

  test('refuses another apiVersion', () => {
    const result = validateObject({ ...(policy({ total: { requestsPerSecond: 1 } }) as object), apiVersion: 'policy.linkerd.io/v1alpha1' });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toContain('unsupported apiVersion "policy.linkerd.io/v1alpha1" for kind HTTPLocalRateLimitPolicy (expected policy.tsmesh.io/v1)');
  });

  test('a mesh file with a bad HTTPLocalRateLimitPolicy is refused whole, naming the file, the object and the field', () => {
    const text = 'apiVersion: policy.tsmesh.io/v1\nkind: HTTPLocalRateLimitPolicy\nmetadata:\n  name: rl\n  namespace: shop\nspec:\n  total:\n    requestsPerSecond: -1\n';
    const parsed = parseMeshFile(text, 'mesh.yaml');
    if (parsed.ok) throw new Error('expected a refusal');
    expect(parsed.error.message).toContain('mesh.yaml');
    expect(parsed.error.message).toContain('HTTPLocalRateLimitPolicy shop/rl');
    expect(parsed.error.message).toContain('spec.total.requestsPerSecond');
  });

  test('any spec (arbitrary JSON) is either accepted with limits from 1 to 1e6 or refused naming a field under spec; never a throw', () => {
    const limit = fc.oneof(fc.record({ requestsPerSecond: fc.oneof(fc.integer({ min: -5, max: 2_000_000 }), fc.double(), fc.string()) }), fc.anything());
    const spec = fc.oneof(
      fc.anything(),
      fc.record(
        {
          selector: fc.oneof(fc.record({ matchLabels: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())) }), fc.anything()),
          port: fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.anything()),
          route: fc.oneof(fc.record({ name: fc.string(), ruleName: fc.string() }), fc.anything()),
          total: limit,
          identity: limit,
          overrides: fc.array(fc.record({ requestsPerSecond: fc.integer({ min: -1, max: 10 }), clientRefs: fc.array(fc.record({ kind: fc.constantFrom('ServiceAccount', 'User', ''), name: fc.string(), namespace: fc.string() }), { maxLength: 3 }) }), { maxLength: 3 }),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(spec, (value) => {
        const result = validateObject(policy(value));
        if (result.ok) {
          if (result.value.kind !== 'HTTPLocalRateLimitPolicy') throw new Error('wrong kind');
          const p = result.value.value;
          const rates = [p.total, p.identity, ...p.overrides.map((o) => o.requestsPerSecond)].filter((r): r is number => r !== undefined);
          expect(rates.length).toBeGreaterThan(0);
          for (const r of rates) expect(Number.isInteger(r) && r >= 1 && r <= 1_000_000).toBe(true);
          for (const o of p.overrides) for (const ref of o.clientRefs) expect(ref.kind).toBe('ServiceAccount');
        } else {
          expect(result.error.problems.length).toBeGreaterThan(0);
          for (const problem of result.error.problems) expect(problem.path).toMatch(/^spec($|\.|\[)/);
        }
      }),
      { numRuns: 500 },
    );
  });
});
