import { MESH_ERRORS } from '../../errors.js';
import { validateObject, type MeshObject } from '../objects.js';
import type { MeshTrafficPolicy } from '../traffic-policy.js';

function valid(raw: unknown): MeshObject {
  const result = validateObject(raw);
  if (!result.ok) throw new Error(`expected a valid object, got: ${result.error.message}`);
  return result.value;
}

function reasonOf(raw: unknown): string {
  const result = validateObject(raw);
  if (result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
  expect(result.error.code).toBe(MESH_ERRORS.MESH_INVALID_OBJECT);
  return result.error.message;
}

const WEB = [{ group: '', kind: 'Service', name: 'web' }];

const trafficPolicy = (spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): unknown => ({
  apiVersion: 'policy.tsmesh.io/v1alpha1',
  kind: 'TrafficPolicy',
  metadata: { name: 'p', namespace: 'shop', ...metadata },
  spec: { targetRefs: WEB, ...spec },
});

const backendPolicy = (spec: Record<string, unknown>): unknown => ({
  apiVersion: 'gateway.networking.x-k8s.io/v1alpha1',
  kind: 'XBackendTrafficPolicy',
  metadata: { name: 'b', namespace: 'shop' },
  spec: { targetRefs: WEB, ...spec },
});

describe('TrafficPolicy (policy.tsmesh.io/v1alpha1)', () => {
  it('normalises every section, durations in ms, minRetriesPerSecond as a count per second', () => {
    const object = valid(
      trafficPolicy(
        {
          targetRefs: [{ group: '', kind: 'Service', name: 'web', sectionName: 'http' }, { kind: 'Service', name: 'api' }],
          loadBalancer: { algorithm: 'ring-hash', hash: { header: 'X-User' } },
          connectionPool: { maxConnections: 100, maxPendingRequests: 10, maxRequests: 200, maxRetries: 5 },
          outlierDetection: { consecutive5xxErrors: 3, consecutiveGatewayErrors: 0, consecutiveConnectFailures: 2, interval: '5s', baseEjectionTime: '1m', maxEjectionPercent: 50 },
          retryBudget: { percent: 25, minRetriesPerSecond: 5, interval: '30s' },
        },
        { creationTimestamp: '2026-01-02T03:04:05Z' },
      ),
    );
    expect(object.kind).toBe('TrafficPolicy');
    expect(object.warnings).toBeUndefined();
    expect(object.value).toEqual({
      namespace: 'shop',
      name: 'p',
      createdAt: Date.parse('2026-01-02T03:04:05Z'),
      targetRefs: [
        { name: 'web', sectionName: 'http' },
        { name: 'api', sectionName: undefined },
      ],
      loadBalancer: { algorithm: 'ring-hash', hash: { type: 'header', name: 'x-user' } },
      connectionPool: { maxConnections: 100, maxPendingRequests: 10, maxRequests: 200, maxRetries: 5 },
      outlierDetection: { consecutive5xxErrors: 3, consecutiveGatewayErrors: 0, consecutiveConnectFailures: 2, intervalMs: 5_000, baseEjectionTimeMs: 60_000, maxEjectionPercent: 50 },
      retryBudget: { percent: 25, minRetryCount: 5, minRetryIntervalMs: 1_000, intervalMs: 30_000 },
    });
  });

  it('reads the default retry: codes and gRPC code names sorted and without repeats, backoff in ms', () => {
    const object = valid(trafficPolicy({ retry: { attempts: 2, backoff: '50ms', codes: [503, 502, 503], grpcCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED', 'UNAVAILABLE'] } }));
    expect(object.warnings).toBeUndefined();
    expect((object.value as MeshTrafficPolicy).retry).toEqual({ attempts: 2, backoffMs: 50, codes: [502, 503], grpcCodes: [8, 14] });
  });

  it('reads connectionPool.idleTimeout in ms, and turns success-rate ejection on with Envoy defaults for the fields left out', () => {
    const object = valid(trafficPolicy({ connectionPool: { idleTimeout: '1m30s' }, outlierDetection: { successRateStdevFactor: 1000 } }));
    const value = object.value as MeshTrafficPolicy;
    expect(value.connectionPool).toEqual({ idleTimeoutMs: 90_000 });
    expect(value.outlierDetection).toEqual({ successRateStdevFactor: 1000, successRateMinimumHosts: 5, successRateRequestVolume: 100 });
    const volume = valid(trafficPolicy({ outlierDetection: { successRateRequestVolume: 20 } })).value as MeshTrafficPolicy;
    expect(volume.outlierDetection).toEqual({ successRateStdevFactor: 1900, successRateMinimumHosts: 5, successRateRequestVolume: 20 });
  });

  it('leaves unset sections undefined and dates a policy without creationTimestamp last', () => {
    const object = valid(trafficPolicy({}));
    expect(object.value).toEqual(
      expect.objectContaining({ createdAt: Number.POSITIVE_INFINITY, loadBalancer: undefined, connectionPool: undefined, outlierDetection: undefined, retryBudget: undefined, retry: undefined }),
    );
  });

  it.each([
    [{ cookie: 'session' }, { type: 'cookie', name: 'session' }],
    [{ queryParameter: 'user' }, { type: 'queryParameter', name: 'user' }],
    [{ sourceIP: true }, { type: 'sourceIP' }],
  ])('takes the hash source %j', (hash, expected) => {
    const object = valid(trafficPolicy({ loadBalancer: { algorithm: 'ring-hash', hash } }));
    expect(object.kind === 'TrafficPolicy' && object.value.loadBalancer?.hash).toEqual(expected);
  });

  it('keeps an algorithm it does not know, for the proxy registry to decide, with a warning', () => {
    const object = valid(trafficPolicy({ loadBalancer: { algorithm: 'maglev' } }));
    expect(object.kind === 'TrafficPolicy' && object.value.loadBalancer?.algorithm).toBe('maglev');
    expect(object.warnings).toEqual([
      { path: 'spec.loadBalancer.algorithm', reason: '"maglev" is not one of round-robin, least-request, random, ring-hash, peak-ewma; the proxy uses least-request unless its registry knows the name' },
    ]);
  });

  it('warns that a hash has no effect with an algorithm other than ring-hash', () => {
    const object = valid(trafficPolicy({ loadBalancer: { algorithm: 'round-robin', hash: { sourceIP: true } } }));
    expect(object.warnings).toEqual([{ path: 'spec.loadBalancer.hash', reason: 'takes effect with the ring-hash algorithm only, not "round-robin"' }]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['no targetRefs', { targetRefs: undefined }, 'spec.targetRefs: required'],
    ['empty targetRefs', { targetRefs: [] }, 'spec.targetRefs: must list from 1 to 16 targets, got 0'],
    ['17 targetRefs', { targetRefs: Array.from({ length: 17 }, (_, i) => ({ kind: 'Service', name: `s${i}` })) }, 'spec.targetRefs: must list from 1 to 16 targets, got 17'],
    ['a target of another kind', { targetRefs: [{ group: '', kind: 'Deployment', name: 'web' }] }, 'spec.targetRefs[0].kind: must be "Service", got "Deployment"'],
    ['a target in another group', { targetRefs: [{ group: 'apps', kind: 'Service', name: 'web' }] }, 'spec.targetRefs[0].group: must be "" (the core API group of Service), got "apps"'],
    ['a target without a name', { targetRefs: [{ kind: 'Service' }] }, 'spec.targetRefs[0].name: required'],
    ['a target in another namespace', { targetRefs: [{ kind: 'Service', name: 'web', namespace: 'other' }] }, 'spec.targetRefs[0].namespace: is not a field of spec.targetRefs[0] (known: group, kind, name, sectionName)'],
    ['a sectionName that is not a port name', { targetRefs: [{ kind: 'Service', name: 'web', sectionName: 'HTTP' }] }, 'spec.targetRefs[0].sectionName: must be a DNS label'],
    ['an unknown section', { retries: {} }, 'spec.retries: is not a field of spec (known: targetRefs, loadBalancer, connectionPool, outlierDetection, retryBudget, retry)'],
    ['an empty algorithm', { loadBalancer: { algorithm: '' } }, 'spec.loadBalancer.algorithm: must be a non-empty string, got ""'],
    ['a hash without a source', { loadBalancer: { hash: {} } }, 'spec.loadBalancer.hash: must set exactly one of header, cookie, queryParameter, sourceIP, got none'],
    ['a hash with two sources', { loadBalancer: { hash: { header: 'x', cookie: 'c' } } }, 'spec.loadBalancer.hash: must set exactly one of header, cookie, queryParameter, sourceIP, got header and cookie'],
    ['sourceIP false', { loadBalancer: { hash: { sourceIP: false } } }, 'spec.loadBalancer.hash.sourceIP: must be true (leave it out to hash on something else), got false'],
    ['a header that is not a header name', { loadBalancer: { hash: { header: 'x user' } } }, 'spec.loadBalancer.hash.header: must be an HTTP header name, got "x user"'],
    ['a misspelt hash source', { loadBalancer: { hash: { headers: 'x' } } }, 'spec.loadBalancer.hash.headers: is not a field of spec.loadBalancer.hash'],
    ['zero maxConnections', { connectionPool: { maxConnections: 0 } }, 'spec.connectionPool.maxConnections: must be an integer from 1 to 2147483647, got 0'],
    ['fractional maxRequests', { connectionPool: { maxRequests: 1.5 } }, 'spec.connectionPool.maxRequests: must be an integer from 1 to 2147483647, got 1.5'],
    ['a quoted maxPendingRequests', { connectionPool: { maxPendingRequests: '10' } }, 'spec.connectionPool.maxPendingRequests: must be an integer from 1 to 2147483647, got "10"'],
    ['negative maxRetries', { connectionPool: { maxRetries: -1 } }, 'spec.connectionPool.maxRetries: must be an integer from 1 to 2147483647, got -1'],
    ['a misspelt pool field', { connectionPool: { maxConnection: 5 } }, 'spec.connectionPool.maxConnection: is not a field of spec.connectionPool (known: maxConnections, maxPendingRequests, maxRequests, maxRetries, idleTimeout)'],
    ['negative consecutive5xxErrors', { outlierDetection: { consecutive5xxErrors: -1 } }, 'spec.outlierDetection.consecutive5xxErrors: must be an integer from 0 to 2147483647, got -1'],
    ['a string consecutiveGatewayErrors', { outlierDetection: { consecutiveGatewayErrors: 'five' } }, 'spec.outlierDetection.consecutiveGatewayErrors: must be an integer from 0 to 2147483647, got "five"'],
    ['fractional consecutiveConnectFailures', { outlierDetection: { consecutiveConnectFailures: 0.5 } }, 'spec.outlierDetection.consecutiveConnectFailures: must be an integer from 0 to 2147483647, got 0.5'],
    ['an interval that is not a duration', { outlierDetection: { interval: '10 seconds' } }, 'spec.outlierDetection.interval: must be a Gateway API duration (1 to 4 of a 1-5 digit number and h, m, s or ms, e.g. "10s", "500ms", "1m30s"), got "10 seconds"'],
    ['a zero baseEjectionTime', { outlierDetection: { baseEjectionTime: '0s' } }, 'spec.outlierDetection.baseEjectionTime: must be longer than 0s, got "0s"'],
    ['a zero idleTimeout', { connectionPool: { idleTimeout: '0s' } }, 'spec.connectionPool.idleTimeout: must be longer than 0s, got "0s"'],
    ['a zero successRateMinimumHosts', { outlierDetection: { successRateMinimumHosts: 0 } }, 'spec.outlierDetection.successRateMinimumHosts: must be an integer from 1 to 2147483647, got 0'],
    ['a fractional successRateStdevFactor', { outlierDetection: { successRateStdevFactor: 1.5 } }, 'spec.outlierDetection.successRateStdevFactor: must be an integer from 1 to 2147483647, got 1.5'],
    ['maxEjectionPercent over 100', { outlierDetection: { maxEjectionPercent: 101 } }, 'spec.outlierDetection.maxEjectionPercent: must be an integer from 0 to 100, got 101'],
    ['percent over 100', { retryBudget: { percent: 150 } }, 'spec.retryBudget.percent: must be an integer from 0 to 100, got 150'],
    ['negative minRetriesPerSecond', { retryBudget: { minRetriesPerSecond: -2 } }, 'spec.retryBudget.minRetriesPerSecond: must be an integer from 0 to 2147483647, got -2'],
    ['a fractional interval', { retryBudget: { interval: '1.5s' } }, 'spec.retryBudget.interval: must be a Gateway API duration'],
    ['a section that is not a mapping', { retryBudget: 20 }, 'spec.retryBudget: must be a mapping, got 20'],
    ['a retry code outside 400-599', { retry: { codes: [503, 302] } }, 'spec.retry.codes[1]: must be an HTTP status code from 400 to 599, got 302'],
    ['a gRPC code that is not a name', { retry: { grpcCodes: ['UNAVAILABLE', 14] } }, 'spec.retry.grpcCodes[1]: must be a gRPC status code name (CANCELLED, UNKNOWN,'],
    ['a lowercase gRPC code name', { retry: { grpcCodes: ['unavailable'] } }, 'spec.retry.grpcCodes[0]: must be a gRPC status code name'],
    ['gRPC OK as a retry code', { retry: { grpcCodes: ['OK'] } }, 'spec.retry.grpcCodes[0]: must be a gRPC status code name'],
    ['negative retry attempts', { retry: { attempts: -1 } }, 'spec.retry.attempts: must be an integer from 0 to 100, got -1'],
    ['a retry backoff that is not a duration', { retry: { backoff: '100' } }, 'spec.retry.backoff: must be a Gateway API duration'],
    ['a misspelt retry field', { retry: { attempt: 2 } }, 'spec.retry.attempt: is not a field of spec.retry (known: attempts, backoff, codes, grpcCodes)'],
  ])('refuses %s, naming the field', (_what, spec, reason) => {
    expect(reasonOf(trafficPolicy(spec))).toContain(`TrafficPolicy shop/p: ${reason}`);
  });

  it('reports every bad field at once', () => {
    const message = reasonOf(trafficPolicy({ connectionPool: { maxConnections: 0 }, retryBudget: { percent: 101 } }));
    expect(message).toContain('spec.connectionPool.maxConnections');
    expect(message).toContain('spec.retryBudget.percent');
  });

  it('refuses another apiVersion', () => {
    const result = validateObject({ ...(trafficPolicy({}) as object), apiVersion: 'policy.tsmesh.io/v1' });
    expect(result.ok ? '' : result.error.message).toContain('unsupported apiVersion "policy.tsmesh.io/v1" for kind TrafficPolicy (expected policy.tsmesh.io/v1alpha1)');
  });
});

const IDLE_TIMEOUT_UNSUPPORTED = 'spec.sessionPersistence.idleTimeout is not enforced by tsmesh: a session ends with absoluteTimeout or the client';

describe('XBackendTrafficPolicy (gateway.networking.x-k8s.io/v1alpha1)', () => {
  it('maps retryConstraint onto the retry budget and sessionPersistence, reporting idleTimeout as not enforced', () => {
    const object = valid(
      backendPolicy({
        retryConstraint: { budget: { percent: 30, interval: '20s' }, minRetryRate: { count: 4, interval: '2s' } },
        sessionPersistence: { sessionName: 'route', type: 'Cookie', absoluteTimeout: '1h', idleTimeout: '10m', cookieConfig: { lifetimeType: 'Permanent' } },
      }),
    );
    expect(object.value).toEqual({
      namespace: 'shop',
      name: 'b',
      createdAt: Number.POSITIVE_INFINITY,
      targetRefs: [{ name: 'web', sectionName: undefined }],
      retryConstraint: { percent: 30, intervalMs: 20_000, minRetryCount: 4, minRetryIntervalMs: 2_000 },
      sessionPersistence: { sessionName: 'route', absoluteTimeoutMs: 3_600_000, idleTimeoutMs: 600_000, type: 'Cookie', cookieLifetimeType: 'Permanent' },
      unsupported: [IDLE_TIMEOUT_UNSUPPORTED],
    });
    // The same, as warnings: the control plane logs them and posts them as Events.
    expect(object.warnings).toEqual([{ path: '', reason: IDLE_TIMEOUT_UNSUPPORTED }]);
  });

  it('enforces a plain cookie or header sessionPersistence without reporting anything', () => {
    expect(valid(backendPolicy({ sessionPersistence: { sessionName: 'route' } })).value).toMatchObject({ unsupported: [] });
    expect(valid(backendPolicy({ sessionPersistence: { type: 'Header', absoluteTimeout: '1h' } })).value).toMatchObject({ unsupported: [] });
  });

  it('reports an absoluteTimeout that a Session cookie cannot carry', () => {
    const object = valid(backendPolicy({ sessionPersistence: { absoluteTimeout: '1h', cookieConfig: { lifetimeType: 'Session' } } }));
    expect(object.value).toMatchObject({
      unsupported: ['spec.sessionPersistence.absoluteTimeout is not enforced with cookieConfig.lifetimeType Session: a session cookie carries no lifetime'],
    });
  });

  it('skips targets that are not Services (a ServiceImport), reporting them', () => {
    const object = valid(backendPolicy({ targetRefs: [...WEB, { group: 'multicluster.x-k8s.io', kind: 'ServiceImport', name: 'web' }] }));
    expect(object.kind === 'XBackendTrafficPolicy' && object.value.targetRefs).toEqual([{ name: 'web', sectionName: undefined }]);
    expect(object.kind === 'XBackendTrafficPolicy' && object.value.unsupported).toEqual([
      'spec.targetRefs[1] names ServiceImport in group "multicluster.x-k8s.io"; only Services are supported (target skipped)',
    ]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a sectionName (BackendTrafficPolicy targets whole Services)', { targetRefs: [{ group: '', kind: 'Service', name: 'web', sectionName: 'http' }] }, 'spec.targetRefs[0].sectionName: is not a field of spec.targetRefs[0] (known: group, kind, name)'],
    ['a budget percent over 100', { retryConstraint: { budget: { percent: 101 } } }, 'spec.retryConstraint.budget.percent: must be an integer from 0 to 100, got 101'],
    ['a budget interval that is not a duration', { retryConstraint: { budget: { interval: 10 } } }, 'spec.retryConstraint.budget.interval: must be a Gateway API duration'],
    ['a negative minRetryRate count', { retryConstraint: { minRetryRate: { count: -1 } } }, 'spec.retryConstraint.minRetryRate.count: must be an integer from 0 to 2147483647, got -1'],
    ['a session type that does not exist', { sessionPersistence: { type: 'IP' } }, 'spec.sessionPersistence.type: must be one of Cookie, Header, got "IP"'],
  ])('refuses %s, naming the field', (_what, spec, reason) => {
    expect(reasonOf(backendPolicy(spec))).toContain(`XBackendTrafficPolicy shop/b: ${reason}`);
  });
});
