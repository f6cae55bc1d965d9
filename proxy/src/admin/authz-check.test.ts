import { describe, expect, test } from '@jest/globals';
import { validateObject, type MeshAuthorizationPolicy } from '@tsmesh/common';
import { compileAuthorization } from '../policy/authorization.js';
import { authzCheck } from './authz-check.js';

function policy(name: string, spec: unknown): MeshAuthorizationPolicy {
  const checked = validateObject({ apiVersion: 'security.tsmesh.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'shop' }, spec });
  if (!checked.ok || checked.value.kind !== 'AuthorizationPolicy') throw new Error('invalid policy');
  return checked.value.value;
}

const authz = compileAuthorization(
  [
    policy('frontend-api', { rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }], to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }] }] }),
    policy('no-secrets', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }, { to: [{ operation: { paths: ['/api/secret'] } }] }] }),
  ],
  { namespace: 'shop', labels: {} },
);

const query = (q: string): URLSearchParams => new URLSearchParams(q);

describe('GET /authz/check', () => {
  test('names the deciding DENY policy and the rule that matched, after normalising the path', () => {
    const answer = authzCheck(authz, query('principal=cluster.local/ns/shop/sa/frontend&method=GET&path=/api/x/../secret&port=8080'));
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      request: { principal: 'cluster.local/ns/shop/sa/frontend', namespace: 'shop', path: '/api/secret', port: 8080 },
      allowed: false,
      decidedBy: 'shop/no-secrets',
      policies: [
        { policy: 'shop/no-secrets', action: 'DENY', matchedRule: 1 },
        { policy: 'shop/frontend-api', action: 'ALLOW', matchedRule: 0 },
      ],
    });
  });

  test('says an ALLOW matched, or that none did', () => {
    expect(authzCheck(authz, query('principal=spiffe://cluster.local/ns/shop/sa/frontend&path=/api/items&port=8080')).body).toMatchObject({ allowed: true, decidedBy: 'shop/frontend-api' });
    expect(authzCheck(authz, query('path=/api/items&port=8080')).body).toMatchObject({ allowed: false, decidedBy: null, reason: expect.stringContaining('none matched') });
  });

  test('judges a TCP connection by what TCP can tell', () => {
    expect(authzCheck(authz, query('principal=cluster.local/ns/shop/sa/frontend&port=9000&protocol=tcp')).body).toMatchObject({ allowed: false, policies: [{ matchedRule: 0 }, { matchedRule: null }] });
  });

  test.each([
    ['path=/', 'port: must be a port number'],
    ['port=http', 'port: must be a port number'],
    ['port=80&protocol=udp', 'protocol: must be http or tcp'],
    ['port=80&path=/a%252Fb', 'path: the path contains an encoded "/"'],
  ])('refuses %s with a 400 naming the parameter', (q, reason) => {
    const answer = authzCheck(authz, query(q));
    expect(answer.status).toBe(400);
    expect((answer.body as { error: string }).error).toContain(reason);
  });
});
