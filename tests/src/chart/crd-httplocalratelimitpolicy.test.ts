// The HTTPLocalRateLimitPolicy CRD: names, columns, a status subresource, a structural schema, and
// sample objects judged by its openAPIV3Schema (ajv) and CEL rules the way the control plane's
// validator (@tsmesh/common validateObject) judges them.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { validateObject } from '@tsmesh/common';
import type { ValidateFunction } from 'ajv';
import { celPasses, expectStructural, loadCrd, type Crd, type SchemaNode } from './crd-schema.js';

function rateLimitPolicy(spec: unknown): Record<string, unknown> {
  return { apiVersion: 'policy.tsmesh.io/v1', kind: 'HTTPLocalRateLimitPolicy', metadata: { name: 'sample', namespace: 'shop' }, spec };
}

const VALID: Record<string, unknown> = {
  'a total limit for the namespace': { total: { requestsPerSecond: 100 } },
  'the full shape': {
    selector: { matchLabels: { app: 'backend' } },
    port: 8080,
    total: { requestsPerSecond: 100 },
    identity: { requestsPerSecond: 20 },
    overrides: [{ requestsPerSecond: 50, clientRefs: [{ kind: 'ServiceAccount', name: 'frontend' }, { kind: 'ServiceAccount', name: 'batch', namespace: 'jobs' }] }],
  },
  'one rule of a route': { route: { name: 'api', ruleName: 'search' }, total: { requestsPerSecond: 5 } },
  'a whole GRPCRoute': { route: { kind: 'GRPCRoute', name: 'greeter' }, identity: { requestsPerSecond: 5 } },
  'overrides alone': { overrides: [{ requestsPerSecond: 1, clientRefs: [{ kind: 'ServiceAccount', name: 'a' }] }] },
};

const INVALID_BY_SCHEMA: Record<string, unknown> = {
  'a rate of 0': { total: { requestsPerSecond: 0 } },
  'a rate that is a string': { identity: { requestsPerSecond: '10' } },
  'a fractional rate': { total: { requestsPerSecond: 2.5 } },
  'a limit without its rate': { total: {} },
  'a port out of range': { port: 70000, total: { requestsPerSecond: 1 } },
  'a clientRef of another kind': { overrides: [{ requestsPerSecond: 1, clientRefs: [{ kind: 'Deployment', name: 'a' }] }] },
  'a clientRef without kind': { overrides: [{ requestsPerSecond: 1, clientRefs: [{ name: 'a' }] }] },
  'an override without callers': { overrides: [{ requestsPerSecond: 1, clientRefs: [] }] },
  'a route without its name': { route: { ruleName: 'a' }, total: { requestsPerSecond: 1 } },
  'a route of another kind': { route: { kind: 'TCPRoute', name: 'a' }, total: { requestsPerSecond: 1 } },
  'a rule name that is not a name': { route: { name: 'a', ruleName: 'Bad_Name' }, total: { requestsPerSecond: 1 } },
  'a clientRef name that is not a name': { overrides: [{ requestsPerSecond: 1, clientRefs: [{ kind: 'ServiceAccount', name: 'Not_A_Name' }] }] },
};

describe('the HTTPLocalRateLimitPolicy CRD', () => {
  let crd: Crd;
  let schema: SchemaNode;
  let validate: ValidateFunction;

  beforeAll(async () => {
    ({ crd, schema, validate } = await loadCrd('httplocalratelimitpolicies.policy.tsmesh.io'));
  });

  test('is policy.tsmesh.io/v1 HTTPLocalRateLimitPolicy, namespaced, short name rlp, with a status subresource', () => {
    expect(crd.spec.group).toBe('policy.tsmesh.io');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual(
      expect.objectContaining({ kind: 'HTTPLocalRateLimitPolicy', listKind: 'HTTPLocalRateLimitPolicyList', plural: 'httplocalratelimitpolicies', singular: 'httplocalratelimitpolicy', shortNames: ['rlp'] }),
    );
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1', true, true]]);
    expect((crd.spec.versions[0] as unknown as { subresources: unknown }).subresources).toEqual({ status: {} });
  });

  test('shows Total, Identity, Accepted and Age columns', () => {
    expect(crd.spec.versions[0]?.additionalPrinterColumns.map((c) => [c.name, c.jsonPath])).toEqual([
      ['Total', '.spec.total.requestsPerSecond'],
      ['Identity', '.spec.identity.requestsPerSecond'],
      ['Accepted', '.status.conditions[?(@.type=="Accepted")].status'],
      ['Age', '.metadata.creationTimestamp'],
    ]);
  });

  test('has a structural schema', () => {
    expectStructural(schema);
  });

  test.each(Object.entries(VALID))('accepts %s, as the control plane does', (_name, spec) => {
    const object = rateLimitPolicy(spec);
    expect([validate(object), validate.errors ?? []]).toEqual([true, []]);
    expect(celPasses(schema.properties?.['spec'] as SchemaNode, spec)).toBe(true);
    expect(validateObject(object).ok).toBe(true);
  });

  test.each(Object.entries(INVALID_BY_SCHEMA))('rejects %s, as the control plane does', (_name, spec) => {
    const object = rateLimitPolicy(spec);
    expect(validate(object)).toBe(false);
    expect(validateObject(object).ok).toBe(false);
  });

  test('its CEL rule refuses a policy without any limit, as the control plane does', () => {
    const spec = schema.properties?.['spec'] as SchemaNode;
    for (const empty of [{}, { selector: { matchLabels: { app: 'x' } } }, { port: 80, overrides: [] }]) {
      expect([empty, celPasses(spec, empty)]).toEqual([empty, false]);
      expect(validateObject(rateLimitPolicy(empty)).ok).toBe(false);
    }
  });
});
