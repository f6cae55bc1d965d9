// The TrafficPolicy CRD: names and columns, a structural schema, and sample objects judged by its
// openAPIV3Schema (ajv) and its CEL rule (@bufbuild/cel) the same way the control plane's own
// validator (@tsmesh/common validateObject) judges them.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { validateObject } from '@tsmesh/common';
import type { ValidateFunction } from 'ajv';
import { celPasses, expectStructural, loadCrd, type Crd, type SchemaNode } from './crd-schema.js';

const WEB = [{ group: '', kind: 'Service', name: 'web' }];

function trafficPolicy(spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'policy.tsmesh.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'sample', namespace: 'shop' }, spec: { targetRefs: WEB, ...spec } };
}

const VALID: Record<string, Record<string, unknown>> = {
  'targets only': {},
  'a port target and every section': {
    targetRefs: [{ group: '', kind: 'Service', name: 'web', sectionName: 'http' }, { kind: 'Service', name: 'api' }],
    loadBalancer: { algorithm: 'ring-hash', hash: { header: 'x-user-id' } },
    connectionPool: { maxConnections: 100, maxPendingRequests: 50, maxRequests: 200, maxRetries: 3 },
    outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, consecutiveConnectFailures: 1, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 },
    retryBudget: { percent: 20, minRetriesPerSecond: 10, interval: '1m30s' },
  },
  'a cookie hash': { loadBalancer: { hash: { cookie: 'session' } } },
  'a query-parameter hash': { loadBalancer: { hash: { queryParameter: 'user' } } },
  'a source-IP hash': { loadBalancer: { algorithm: 'ring-hash', hash: { sourceIP: true } } },
  'an algorithm the registry may add later': { loadBalancer: { algorithm: 'maglev' } },
  'a default retry with HTTP and gRPC codes': { retry: { attempts: 2, backoff: '25ms', codes: [502, 503], grpcCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] } },
  'a retry with zero attempts': { retry: { attempts: 0 } },
  'an idle timeout and success-rate ejection': { connectionPool: { idleTimeout: '90s' }, outlierDetection: { successRateMinimumHosts: 3, successRateRequestVolume: 50, successRateStdevFactor: 1000 } },
  'zero counters and percentages': { outlierDetection: { consecutive5xxErrors: 0, maxEjectionPercent: 0 }, retryBudget: { percent: 0, minRetriesPerSecond: 0 } },
};

const INVALID_BY_SCHEMA: Record<string, Record<string, unknown>> = {
  'no targetRefs': { targetRefs: undefined },
  'empty targetRefs': { targetRefs: [] },
  'seventeen targetRefs': { targetRefs: Array.from({ length: 17 }, (_, i) => ({ kind: 'Service', name: `s${i}` })) },
  'a Deployment target': { targetRefs: [{ group: 'apps', kind: 'Deployment', name: 'web' }] },
  'a target in the apps group': { targetRefs: [{ group: 'apps', kind: 'Service', name: 'web' }] },
  'a target without a name': { targetRefs: [{ kind: 'Service' }] },
  'a sectionName in upper case': { targetRefs: [{ kind: 'Service', name: 'web', sectionName: 'HTTP' }] },
  'an empty algorithm': { loadBalancer: { algorithm: '' } },
  'a header that is not a header name': { loadBalancer: { hash: { header: 'x user' } } },
  'sourceIP false': { loadBalancer: { hash: { sourceIP: false } } },
  'zero maxConnections': { connectionPool: { maxConnections: 0 } },
  'fractional maxRequests': { connectionPool: { maxRequests: 2.5 } },
  'a quoted maxRetries': { connectionPool: { maxRetries: '3' } },
  'negative consecutive5xxErrors': { outlierDetection: { consecutive5xxErrors: -1 } },
  'an interval in words': { outlierDetection: { interval: '10 seconds' } },
  'a fractional baseEjectionTime': { outlierDetection: { baseEjectionTime: '1.5s' } },
  'maxEjectionPercent over 100': { outlierDetection: { maxEjectionPercent: 101 } },
  'an idle timeout in words': { connectionPool: { idleTimeout: 'an hour' } },
  'a zero successRateMinimumHosts': { outlierDetection: { successRateMinimumHosts: 0 } },
  'a fractional successRateStdevFactor': { outlierDetection: { successRateStdevFactor: 1.5 } },
  'a budget percent over 100': { retryBudget: { percent: 101 } },
  'negative minRetriesPerSecond': { retryBudget: { minRetriesPerSecond: -1 } },
  'a budget interval with days': { retryBudget: { interval: '1d' } },
  'a retry code outside 400-599': { retry: { codes: [302] } },
  'a gRPC retry code as a number': { retry: { grpcCodes: [14] } },
  'a lowercase gRPC code name': { retry: { grpcCodes: ['unavailable'] } },
  'retry attempts over 100': { retry: { attempts: 101 } },
  'a retry backoff in words': { retry: { backoff: 'a bit' } },
};

describe('the TrafficPolicy CRD', () => {
  let crd: Crd;
  let schema: SchemaNode;
  let validate: ValidateFunction;

  beforeAll(async () => {
    ({ crd, schema, validate } = await loadCrd('trafficpolicies.policy.tsmesh.io'));
  });

  test('is policy.tsmesh.io/v1alpha1 TrafficPolicy, namespaced, short name tp', () => {
    expect(crd.spec.group).toBe('policy.tsmesh.io');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual(
      expect.objectContaining({ kind: 'TrafficPolicy', listKind: 'TrafficPolicyList', plural: 'trafficpolicies', singular: 'trafficpolicy', shortNames: ['tp'] }),
    );
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1alpha1', true, true]]);
  });

  test('shows Algorithm and Age columns', () => {
    expect(crd.spec.versions[0]?.additionalPrinterColumns).toEqual([
      expect.objectContaining({ name: 'Algorithm', type: 'string', jsonPath: '.spec.loadBalancer.algorithm' }),
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
  });

  test('has a structural schema: every node typed, objects only under properties or additionalProperties', () => {
    expectStructural(schema);
  });

  test('describes every field the control plane reads, and no other', () => {
    const spec = schema.properties?.['spec'];
    const fields = (node: SchemaNode | undefined): string[] => Object.keys(node?.properties ?? {}).sort();
    expect(fields(spec)).toEqual(['connectionPool', 'loadBalancer', 'outlierDetection', 'retry', 'retryBudget', 'targetRefs']);
    expect(fields(spec?.properties?.['targetRefs']?.items)).toEqual(['group', 'kind', 'name', 'sectionName']);
    expect(fields(spec?.properties?.['loadBalancer'])).toEqual(['algorithm', 'hash']);
    expect(fields(spec?.properties?.['loadBalancer']?.properties?.['hash'])).toEqual(['cookie', 'header', 'queryParameter', 'sourceIP']);
    expect(fields(spec?.properties?.['connectionPool'])).toEqual(['idleTimeout', 'maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries']);
    expect(fields(spec?.properties?.['outlierDetection'])).toEqual([
      'baseEjectionTime',
      'consecutive5xxErrors',
      'consecutiveConnectFailures',
      'consecutiveGatewayErrors',
      'interval',
      'maxEjectionPercent',
      'successRateMinimumHosts',
      'successRateRequestVolume',
      'successRateStdevFactor',
    ]);
    expect(fields(spec?.properties?.['retryBudget'])).toEqual(['interval', 'minRetriesPerSecond', 'percent']);
    expect(fields(spec?.properties?.['retry'])).toEqual(['attempts', 'backoff', 'codes', 'grpcCodes']);
  });

  test.each(Object.entries(VALID))('accepts %s, as the control plane does', (_name, spec) => {
    const object = trafficPolicy(spec);
    expect([validate(object), validate.errors ?? []]).toEqual([true, []]);
    const result = validateObject(object);
    expect(result.ok ? [] : result.error.message).toEqual([]);
  });

  test.each(Object.entries(INVALID_BY_SCHEMA))('rejects %s, as the control plane does', (_name, spec) => {
    const object = trafficPolicy(spec);
    expect(validate(object)).toBe(false);
    expect(validateObject(object).ok).toBe(false);
  });

  describe('the hash source (CEL rule, evaluated with @bufbuild/cel)', () => {
    const hashNode = (): SchemaNode => schema.properties?.['spec']?.properties?.['loadBalancer']?.properties?.['hash'] as SchemaNode;
    const passes = (hash: Record<string, unknown>): boolean => celPasses(hashNode(), hash);

    test('has one rule with a message that names the sources', () => {
      expect(hashNode()['x-kubernetes-validations']).toEqual([{ rule: expect.any(String), message: 'spec.loadBalancer.hash must set exactly one of header, cookie, queryParameter, sourceIP' }]);
    });

    test.each([[{ header: 'x' }], [{ cookie: 'c' }], [{ queryParameter: 'q' }], [{ sourceIP: true }]])('accepts the single source %j', (hash) => {
      expect(passes(hash)).toBe(true);
      expect(validateObject(trafficPolicy({ loadBalancer: { hash } })).ok).toBe(true);
    });

    test.each([[{}], [{ header: 'x', cookie: 'c' }], [{ queryParameter: 'q', sourceIP: true }]])('rejects %j, as the control plane does', (hash) => {
      expect(passes(hash)).toBe(false);
      expect(validate(trafficPolicy({ loadBalancer: { hash } }))).toBe(true); // only the CEL rule counts sources
      expect(validateObject(trafficPolicy({ loadBalancer: { hash } })).ok).toBe(false);
    });
  });
});
