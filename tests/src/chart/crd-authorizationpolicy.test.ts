// The AuthorizationPolicy CRD: names, columns, a status subresource, a structural schema, and
// sample objects judged by its openAPIV3Schema (ajv) and CEL rules the way the control plane's
// validator (@tsmesh/common validateObject) judges them.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { validateObject } from '@tsmesh/common';
import type { ValidateFunction } from 'ajv';
import { celPasses, expectStructural, loadCrd, nodes, type Crd, type SchemaNode } from './crd-schema.js';

function authorizationPolicy(spec: unknown): Record<string, unknown> {
  return { apiVersion: 'security.tsmesh.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'sample', namespace: 'shop' }, spec };
}

const VALID: Record<string, unknown> = {
  'a mesh-wide default deny (empty spec)': {},
  'an allow-all rule': { rules: [{}] },
  'the full rule shape': {
    selector: { matchLabels: { app: 'backend' } },
    action: 'ALLOW',
    rules: [
      {
        from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend', '*/sa/admin'], notNamespaces: ['dev-*'] } }],
        to: [{ operation: { methods: ['GET'], paths: ['/api/*'], ports: ['8080'], notHosts: ['*.internal'] } }],
        when: [{ key: 'request.headers[x-tenant]', values: ['a', 'b'] }, { key: 'source.namespace', notValues: ['x'] }],
      },
    ],
  },
  'a DENY': { action: 'DENY', rules: [{ to: [{ operation: { notPaths: ['/healthz'] } }] }] },
  'an AUDIT': { action: 'AUDIT', rules: [{ from: [{ source: { namespaces: ['*'] } }] }] },
};

const INVALID_BY_SCHEMA: Record<string, unknown> = {
  'an action that does not exist': { action: 'CUSTOM' },
  'a port that is not a number': { rules: [{ to: [{ operation: { ports: ['http'] } }] }] },
  'a "*" inside a path': { rules: [{ to: [{ operation: { paths: ['/a/*/b'] } }] }] },
  'a "*" at both ends': { rules: [{ from: [{ source: { principals: ['*x*'] } }] }] },
  'an empty source': { rules: [{ from: [{ source: {} }] }] },
  'a from entry without source': { rules: [{ from: [{}] }] },
  'an empty operation': { rules: [{ to: [{ operation: {} }] }] },
  'a condition key it cannot evaluate': { rules: [{ when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] }] },
  'an empty principal': { rules: [{ from: [{ source: { principals: [''] } }] }] },
};

describe('the AuthorizationPolicy CRD', () => {
  let crd: Crd;
  let schema: SchemaNode;
  let validate: ValidateFunction;

  beforeAll(async () => {
    ({ crd, schema, validate } = await loadCrd('authorizationpolicies.security.tsmesh.io'));
  });

  test('is security.tsmesh.io/v1 AuthorizationPolicy, namespaced, short name ap, with a status subresource', () => {
    expect(crd.spec.group).toBe('security.tsmesh.io');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual(
      expect.objectContaining({ kind: 'AuthorizationPolicy', listKind: 'AuthorizationPolicyList', plural: 'authorizationpolicies', singular: 'authorizationpolicy', shortNames: ['ap'] }),
    );
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1', true, true]]);
    expect((crd.spec.versions[0] as unknown as { subresources: unknown }).subresources).toEqual({ status: {} });
  });

  test('shows Action, Accepted and Age columns', () => {
    expect(crd.spec.versions[0]?.additionalPrinterColumns.map((c) => [c.name, c.jsonPath])).toEqual([
      ['Action', '.spec.action'],
      ['Accepted', '.status.conditions[?(@.type=="Accepted")].status'],
      ['Age', '.metadata.creationTimestamp'],
    ]);
  });

  test('has a structural schema', () => {
    expectStructural(schema);
  });

  test.each(Object.entries(VALID))('accepts %s, as the control plane does', (_name, spec) => {
    const object = authorizationPolicy(spec);
    expect([validate(object), validate.errors ?? []]).toEqual([true, []]);
    expect(validateObject(object).ok).toBe(true);
  });

  test.each(Object.entries(INVALID_BY_SCHEMA))('rejects %s, as the control plane does', (_name, spec) => {
    const object = authorizationPolicy(spec);
    expect(validate(object)).toBe(false);
    expect(validateObject(object).ok).toBe(false);
  });

  test('its CEL rules refuse the Istio source fields tsmesh cannot evaluate, even empty, as the control plane does', () => {
    const sources = [...nodes(schema)].filter(([path]) => path.endsWith('.from[].source'));
    expect(sources).toHaveLength(1);
    const [, node] = sources[0] as [string, SchemaNode];
    for (const field of ['requestPrincipals', 'notRequestPrincipals', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']) {
      for (const value of [[], ['x']]) {
        const source = { principals: ['*'], [field]: value };
        expect([field, value, celPasses(node, source)]).toEqual([field, value, false]);
        expect(validateObject(authorizationPolicy({ rules: [{ from: [{ source }] }] })).ok).toBe(false);
      }
    }
    expect(celPasses(node, { principals: ['*'], notNamespaces: ['x'] })).toBe(true);
  });

  test('its CEL rules refuse ports out of range, as the control plane does', () => {
    const portItems = [...nodes(schema)].filter(([path]) => path.endsWith('.ports[]') || path.endsWith('.notPorts[]'));
    expect(portItems).toHaveLength(2);
    for (const [, node] of portItems) {
      expect(['1', '8080', '65535'].map((p) => celPasses(node, p))).toEqual([true, true, true]);
      expect(['0', '65536', '99999'].map((p) => celPasses(node, p))).toEqual([false, false, false]);
    }
    expect(validateObject(authorizationPolicy({ rules: [{ to: [{ operation: { ports: ['65536'] } }] }] })).ok).toBe(false);
  });
});
