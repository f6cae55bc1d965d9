import { describe, expect, it, test } from '@jest/globals';
import { buildSnapshot, validateObject, type KubeObject, type MeshAuthorizationPolicy } from '@tsmesh/common';
import { compileAuthorization, compileWorkloadAuthorization, principalOf, type AuthzRequest } from './authorization.js';

const WORKLOAD = { namespace: 'shop', labels: { app: 'backend' } };

function raw(name: string, spec: unknown, namespace = 'shop'): KubeObject {
  return { apiVersion: 'security.tsmesh.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec } as KubeObject;
}

function policy(name: string, spec: unknown, namespace = 'shop'): MeshAuthorizationPolicy {
  const checked = validateObject(raw(name, spec, namespace));
  if (!checked.ok) throw checked.error;
  if (checked.value.kind !== 'AuthorizationPolicy') throw new Error('wrong kind');
  return checked.value.value;
}

const FRONTEND = 'cluster.local/ns/shop/sa/frontend';
const INTRUDER = 'cluster.local/ns/evil/sa/intruder';

function http(principal: string | undefined, method: string, path: string, extra: { port?: number; host?: string; headers?: Record<string, string> } = {}): AuthzRequest {
  const headers = extra.headers ?? {};
  return {
    ...principalOf(principal === undefined ? undefined : `spiffe://${principal}`),
    port: extra.port ?? 8080,
    http: { method, path, host: extra.host ?? 'backend.shop.svc.cluster.local', header: (n) => headers[n] },
  };
}

function tcp(principal: string | undefined, port = 9000): AuthzRequest {
  return { ...principalOf(principal === undefined ? undefined : `spiffe://${principal}`), port, http: undefined };
}

const allowApiGet = policy('frontend-api', {
  selector: { matchLabels: { app: 'backend' } },
  action: 'ALLOW',
  rules: [{ from: [{ source: { principals: [FRONTEND] } }], to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }] }],
});

// Istio's documented semantics, one row each: the policies, the request, allowed?, the deciding policy.
const TABLE: Array<[string, MeshAuthorizationPolicy[], AuthzRequest, boolean, string | undefined]> = [
  ['no policy: allowed', [], http(INTRUDER, 'DELETE', '/'), true, undefined],
  ['an ALLOW policy without rules matches nothing: denied (default deny)', [policy('deny-all', {})], http(FRONTEND, 'GET', '/'), false, undefined],
  ['an ALLOW policy with one empty rule matches everything', [policy('allow-all', { rules: [{}] })], http(INTRUDER, 'DELETE', '/x'), true, 'shop/allow-all'],
  ['a DENY policy with one empty rule denies everything', [policy('deny', { action: 'DENY', rules: [{}] }), policy('allow-all', { rules: [{}] })], http(FRONTEND, 'GET', '/'), false, 'shop/deny'],
  ['a DENY policy without rules matches nothing', [policy('deny', { action: 'DENY' })], http(FRONTEND, 'GET', '/'), true, undefined],
  ['ALLOW: principal, method and path all match', [allowApiGet], http(FRONTEND, 'GET', '/api/items'), true, 'shop/frontend-api'],
  ['ALLOW: fields of one rule AND (wrong method)', [allowApiGet], http(FRONTEND, 'POST', '/api/items'), false, undefined],
  ['ALLOW: fields of one rule AND (wrong path)', [allowApiGet], http(FRONTEND, 'GET', '/admin'), false, undefined],
  ['ALLOW: fields of one rule AND (wrong principal)', [allowApiGet], http(INTRUDER, 'GET', '/api/items'), false, undefined],
  ['ALLOW: a plaintext caller never matches principals', [allowApiGet], http(undefined, 'GET', '/api/items'), false, undefined],
  [
    'lists OR: any source, any operation',
    [policy('p', { rules: [{ from: [{ source: { principals: [FRONTEND] } }, { source: { namespaces: ['evil'] } }], to: [{ operation: { methods: ['PUT'] } }, { operation: { paths: ['/x'] } }] }] })],
    http(INTRUDER, 'GET', '/x'),
    true,
    'shop/p',
  ],
  ['rules OR: the second rule matches', [policy('p', { rules: [{ to: [{ operation: { methods: ['PUT'] } }] }, { to: [{ operation: { methods: ['GET'] } }] }] })], http(INTRUDER, 'GET', '/'), true, 'shop/p'],
  ['DENY beats ALLOW', [allowApiGet, policy('no-delete-api', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/api/secret'] } }] }] })], http(FRONTEND, 'GET', '/api/secret'), false, 'shop/no-delete-api'],
  ['DENY with notNamespaces denies everyone else', [policy('only-shop', { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['shop'] } }] }] })], http(INTRUDER, 'GET', '/'), false, 'shop/only-shop'],
  ['DENY with notNamespaces lets the namespace in', [policy('only-shop', { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['shop'] } }] }] })], http(FRONTEND, 'GET', '/'), true, undefined],
  ['DENY with notPrincipals denies a plaintext caller (it has no principal in the list)', [policy('mtls-only', { action: 'DENY', rules: [{ from: [{ source: { notPrincipals: ['*'] } }] }] })], http(undefined, 'GET', '/'), false, 'shop/mtls-only'],
  ['principals ["*"] requires an identity: a plaintext caller is refused by ALLOW', [policy('any-mtls', { rules: [{ from: [{ source: { principals: ['*'] } }] }] })], http(undefined, 'GET', '/'), false, undefined],
  ['principals ["*"] lets any identity in', [policy('any-mtls', { rules: [{ from: [{ source: { principals: ['*'] } }] }] })], http(INTRUDER, 'GET', '/'), true, 'shop/any-mtls'],
  ['suffix principal match', [policy('admins', { rules: [{ from: [{ source: { principals: ['*/sa/intruder'] } }] }] })], http(INTRUDER, 'GET', '/'), true, 'shop/admins'],
  ['notPaths: everything but /healthz denied', [policy('p', { action: 'DENY', rules: [{ to: [{ operation: { notPaths: ['/healthz'] } }] }] })], http(FRONTEND, 'GET', '/healthz'), true, undefined],
  ['ports: another port does not match', [policy('p', { rules: [{ to: [{ operation: { ports: ['9090'] } }] }] })], http(FRONTEND, 'GET', '/', { port: 8080 }), false, undefined],
  ['hosts compare without case', [policy('p', { rules: [{ to: [{ operation: { hosts: ['Backend.shop*'] } }] }] })], http(FRONTEND, 'GET', '/', { host: 'backend.shop.svc' }), true, 'shop/p'],
  ['when: a header value', [policy('p', { rules: [{ when: [{ key: 'request.headers[X-Tenant]', values: ['blue'] }] }] })], http(FRONTEND, 'GET', '/', { headers: { 'x-tenant': 'blue' } }), true, 'shop/p'],
  ['when: a missing header does not match values', [policy('p', { rules: [{ when: [{ key: 'request.headers[x-tenant]', values: ['*'] }] }] })], http(FRONTEND, 'GET', '/'), false, undefined],
  ['when: notValues', [policy('p', { rules: [{ when: [{ key: 'request.headers[x-tenant]', notValues: ['red'] }] }] })], http(FRONTEND, 'GET', '/', { headers: { 'x-tenant': 'red' } }), false, undefined],
  // TCP: only ports, principals and namespaces can be judged.
  ['TCP: an ALLOW on principal and port lets the principal in', [policy('p', { rules: [{ from: [{ source: { principals: [FRONTEND] } }], to: [{ operation: { ports: ['9000'] } }] }] })], tcp(FRONTEND), true, 'shop/p'],
  ['TCP: an ALLOW on principal and port refuses another principal', [policy('p', { rules: [{ from: [{ source: { principals: [FRONTEND] } }], to: [{ operation: { ports: ['9000'] } }] }] })], tcp(INTRUDER), false, undefined],
  ['TCP: an ALLOW rule with HTTP-only fields is ignored (matches nothing)', [policy('p', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] })], tcp(FRONTEND), false, undefined],
  ['TCP: a DENY rule with HTTP-only fields applies without them', [policy('d', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['GET'], ports: ['9000'] } }] }] })], tcp(FRONTEND, 9000), false, 'shop/d'],
  ['TCP: such a DENY still keeps its port', [policy('d', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['GET'], ports: ['9000'] } }] }] })], tcp(FRONTEND, 9001), true, undefined],
  ['AUDIT never decides', [policy('a', { action: 'AUDIT', rules: [{}] })], http(INTRUDER, 'DELETE', '/'), true, undefined],
];

describe('authorization evaluation (Istio\'s order and rule semantics)', () => {
  test.each(TABLE)('%s', (_name, policies, request, allowed, decidedBy) => {
    const decision = compileAuthorization(policies, WORKLOAD).check(request);
    expect([decision.allowed, decision.policy]).toEqual([allowed, decidedBy]);
  });

  it('says why: a DENY matched, an ALLOW matched, no ALLOW matched, or no policy', () => {
    const authz = compileAuthorization([allowApiGet, policy('d', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/api/secret'] } }] }] })], WORKLOAD);
    expect(authz.check(http(FRONTEND, 'GET', '/api/secret')).reason).toBe('deny_matched');
    expect(authz.check(http(FRONTEND, 'GET', '/api/x')).reason).toBe('allow_matched');
    expect(authz.check(http(INTRUDER, 'GET', '/api/x')).reason).toBe('no_allow_matched');
    expect(compileAuthorization([], WORKLOAD).check(http(INTRUDER, 'GET', '/')).reason).toBe('no_policy');
  });

  it('returns the same decision object every time (nothing allocated per request)', () => {
    const authz = compileAuthorization([allowApiGet], WORKLOAD);
    const request = http(FRONTEND, 'GET', '/api/x');
    expect(authz.check(request)).toBe(authz.check(request));
    expect(authz.check(http(INTRUDER, 'GET', '/'))).toBe(authz.check(http(INTRUDER, 'PUT', '/')));
  });

  it('reports the matching AUDIT policy without changing the decision', () => {
    const authz = compileAuthorization([policy('watch-evil', { action: 'AUDIT', rules: [{ from: [{ source: { namespaces: ['evil'] } }] }] })], WORKLOAD);
    expect(authz.audit(http(INTRUDER, 'GET', '/'))).toBe('shop/watch-evil');
    expect(authz.audit(http(FRONTEND, 'GET', '/'))).toBeUndefined();
    expect(authz.check(http(INTRUDER, 'GET', '/')).allowed).toBe(true);
  });

  it('explains every policy: which rule matched, and who decided', () => {
    const authz = compileAuthorization([allowApiGet, policy('d', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }, { to: [{ operation: { paths: ['/api/secret'] } }] }] })], WORKLOAD);
    expect(authz.explain(http(FRONTEND, 'GET', '/api/secret'))).toEqual({
      decision: { allowed: false, policy: 'shop/d', reason: 'deny_matched' },
      audited: [],
      policies: [
        { policy: 'shop/d', action: 'DENY', matchedRule: 1 },
        { policy: 'shop/frontend-api', action: 'ALLOW', matchedRule: 0 },
      ],
    });
  });
});

describe('which policies select a workload', () => {
  const other = { namespace: 'shop', labels: { app: 'web' } };
  it('a selector selects matching pods of its namespace; no selector, the namespace', () => {
    const policies = [allowApiGet, policy('ns-wide', { action: 'DENY', rules: [{}] })];
    expect(compileAuthorization(policies, WORKLOAD).policies).toEqual(['shop/ns-wide', 'shop/frontend-api']);
    expect(compileAuthorization(policies, other).policies).toEqual(['shop/ns-wide']);
    expect(compileAuthorization(policies, { namespace: 'elsewhere', labels: { app: 'backend' } }).active).toBe(false);
  });

  it('one empty ALLOW policy in the root namespace is a mesh-wide default deny', () => {
    const authz = compileAuthorization([policy('default-deny', {}, 'tsmesh-system')], { namespace: 'anywhere', labels: {} });
    expect(authz.active).toBe(true);
    expect(authz.check(http(FRONTEND, 'GET', '/')).allowed).toBe(false);
  });

  it('is inactive without policies, so the inbound side asks nothing', () => {
    expect(compileAuthorization([], WORKLOAD).active).toBe(false);
  });

  it('compiles from a snapshot, leaving other kinds alone', () => {
    const snapshot = buildSnapshot([raw('deny-evil', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['evil'] } }] }] })]);
    const authz = compileWorkloadAuthorization(snapshot, WORKLOAD);
    expect(authz.policies).toEqual(['shop/deny-evil']);
    expect(authz.check(tcp(INTRUDER)).allowed).toBe(false);
    expect(authz.needsHttp).toBe(false);
  });
});

describe('principalOf', () => {
  it('drops the scheme and reads the namespace', () => {
    expect(principalOf('spiffe://cluster.local/ns/shop/sa/frontend')).toEqual({ principal: FRONTEND, namespace: 'shop' });
    expect(principalOf(undefined)).toEqual({ principal: undefined, namespace: undefined });
  });
});
