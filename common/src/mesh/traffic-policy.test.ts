import { buildSnapshot } from './snapshot.js';
import { DEFAULT_CONNECTION_POOL, DEFAULT_OUTLIER_DETECTION, DEFAULT_RETRY_BUDGET, NO_POLICY_OUTLIER_DETECTION } from './traffic-policy.js';
import type { KubeObject, MeshSnapshot, MeshService, ServicePort } from './types.js';

const service = (name: string, annotations: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop', annotations },
  spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }, { name: 'admin', port: 9000 }] },
});

interface Target {
  name?: string;
  sectionName?: string;
}

const policy = (name: string, spec: Record<string, unknown>, options: { created?: string; targets?: Target[]; namespace?: string } = {}): KubeObject => ({
  apiVersion: 'policy.tsmesh.io/v1alpha1',
  kind: 'TrafficPolicy',
  metadata: { name, namespace: options.namespace ?? 'shop', ...(options.created === undefined ? {} : { creationTimestamp: options.created }) },
  spec: { targetRefs: (options.targets ?? [{}]).map((t) => ({ group: '', kind: 'Service', name: t.name ?? 'web', ...(t.sectionName === undefined ? {} : { sectionName: t.sectionName }) })), ...spec },
});

const backendPolicy = (name: string, spec: Record<string, unknown>, created?: string): KubeObject => ({
  apiVersion: 'gateway.networking.x-k8s.io/v1alpha1',
  kind: 'XBackendTrafficPolicy',
  metadata: { name, namespace: 'shop', ...(created === undefined ? {} : { creationTimestamp: created }) },
  spec: { targetRefs: [{ group: '', kind: 'Service', name: 'web' }], ...spec },
});

function portOf(snapshot: MeshSnapshot, portName: string, serviceName = 'web'): [MeshService, ServicePort] {
  const svc = snapshot.service('shop', serviceName);
  const port = svc?.ports.find((p) => p.name === portName);
  if (svc === undefined || port === undefined) throw new Error(`no port ${portName}`);
  return [svc, port];
}

const policyFor = (objects: KubeObject[], portName = 'http', serviceName = 'web') => {
  const snapshot = buildSnapshot(objects);
  return snapshot.trafficPolicyFor(...portOf(snapshot, portName, serviceName));
};

describe('snapshot.trafficPolicyFor', () => {
  it("gives a Service without policies the defaults, and its annotation's algorithm", () => {
    expect(policyFor([service('web')])).toEqual({
      loadBalancer: { algorithm: 'least-request', hash: undefined },
      connectionPool: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, idleTimeoutMs: 0 },
      // No 5xx counting and no cap without a policy: passive health as it has always been.
      outlierDetection: NO_POLICY_OUTLIER_DETECTION,
      retryBudget: { percent: 20, intervalMs: 10_000, minRetryCount: 10, minRetryIntervalMs: 1_000, source: 'default' },
      sessionPersistence: undefined,
      sources: [],
    });
    expect(policyFor([service('web', { 'tsmesh.io/load-balancer': 'round-robin' })]).loadBalancer.algorithm).toBe('round-robin');
  });

  it("gives an outlierDetection section Envoy's defaults for the fields it leaves out", () => {
    expect(NO_POLICY_OUTLIER_DETECTION).toEqual({
      consecutive5xxErrors: 0,
      consecutiveGatewayErrors: 0,
      consecutiveConnectFailures: 1,
      intervalMs: 10_000,
      baseEjectionTimeMs: 5_000,
      maxEjectionPercent: 100,
      // Success-rate ejection is off unless a policy turns it on.
      successRateMinimumHosts: 5,
      successRateRequestVolume: 100,
      successRateStdevFactor: 0,
    });
    const effective = policyFor([service('web'), policy('p', { outlierDetection: { consecutiveGatewayErrors: 3 } })]);
    expect(effective.outlierDetection).toEqual({ ...DEFAULT_OUTLIER_DETECTION, consecutiveGatewayErrors: 3 });
    expect(effective.outlierDetection.consecutive5xxErrors).toBe(5);
    expect(effective.outlierDetection.maxEjectionPercent).toBe(10);
  });

  it('fills the fields a policy leaves out with the defaults', () => {
    const effective = policyFor([service('web'), policy('p', { connectionPool: { maxConnections: 10 }, retryBudget: { percent: 50 } })]);
    expect(effective.connectionPool).toEqual({ ...DEFAULT_CONNECTION_POOL, maxConnections: 10 });
    expect(effective.retryBudget).toEqual({ ...DEFAULT_RETRY_BUDGET, percent: 50, source: 'TrafficPolicy' });
    expect(effective.sources).toEqual([{ kind: 'TrafficPolicy', namespace: 'shop', name: 'p' }]);
  });

  it("lets a TrafficPolicy's algorithm win over the Service annotation, and passes an unknown one through", () => {
    const objects = [service('web', { 'tsmesh.io/load-balancer': 'round-robin' })];
    expect(policyFor([...objects, policy('p', { loadBalancer: { algorithm: 'ring-hash', hash: { sourceIP: true } } })]).loadBalancer).toEqual({
      algorithm: 'ring-hash',
      hash: { type: 'sourceIP' },
    });
    expect(policyFor([...objects, policy('p', { loadBalancer: { algorithm: 'maglev' } })]).loadBalancer.algorithm).toBe('maglev');
  });

  it('lets a policy naming the port (sectionName) win over one naming the whole Service, even an older one', () => {
    const objects = [
      service('web'),
      policy('whole', { connectionPool: { maxConnections: 1, maxRequests: 7 } }, { created: '2020-01-01T00:00:00Z' }),
      policy('port', { connectionPool: { maxConnections: 2 } }, { created: '2026-01-01T00:00:00Z', targets: [{ sectionName: 'http' }] }),
    ];
    const http = policyFor(objects, 'http');
    // Field by field: the port policy's maxConnections, the whole-Service policy's maxRequests.
    expect(http.connectionPool).toEqual({ ...DEFAULT_CONNECTION_POOL, maxConnections: 2, maxRequests: 7 });
    expect(http.sources.map((s) => s.name)).toEqual(['port', 'whole']);
    // The other port is named by the whole-Service policy only.
    expect(policyFor(objects, 'admin').connectionPool.maxConnections).toBe(1);
  });

  it('among equals, lets the oldest win, then the first by name (Gateway API conflict rule)', () => {
    const older = policy('zeta', { connectionPool: { maxConnections: 1 } }, { created: '2025-01-01T00:00:00Z' });
    const newer = policy('alpha', { connectionPool: { maxConnections: 2 } }, { created: '2026-01-01T00:00:00Z' });
    expect(policyFor([service('web'), newer, older]).connectionPool.maxConnections).toBe(1);
    const undatedB = policy('b', { connectionPool: { maxConnections: 3 } });
    const undatedA = policy('a', { connectionPool: { maxConnections: 4 } });
    expect(policyFor([service('web'), undatedB, undatedA]).connectionPool.maxConnections).toBe(4);
    // A dated policy is older than one without a timestamp (a mesh file's).
    expect(policyFor([service('web'), undatedA, newer]).connectionPool.maxConnections).toBe(2);
  });

  it('takes the default retry whole from the winning policy that has one; none without', () => {
    expect(policyFor([service('web')]).retry).toBeUndefined();
    const objects = [
      service('web'),
      policy('whole', { retry: { attempts: 1, codes: [503], grpcCodes: ['UNAVAILABLE'] } }, { created: '2020-01-01T00:00:00Z' }),
      policy('port', { retry: { backoff: '10ms' } }, { created: '2026-01-01T00:00:00Z', targets: [{ sectionName: 'http' }] }),
      policy('other', { connectionPool: { maxConnections: 2 } }, { created: '2019-01-01T00:00:00Z', targets: [{ sectionName: 'http' }] }),
    ];
    expect(policyFor(objects, 'http').retry).toEqual({ attempts: undefined, backoffMs: 10, codes: [], grpcCodes: [] });
    expect(policyFor(objects, 'admin').retry).toEqual({ attempts: 1, backoffMs: undefined, codes: [503], grpcCodes: [14] });
  });

  it('takes the hash whole from one policy, never mixing sources', () => {
    const objects = [
      service('web'),
      policy('a', { loadBalancer: { algorithm: 'ring-hash', hash: { header: 'x-user' } } }, { created: '2025-01-01T00:00:00Z' }),
      policy('b', { loadBalancer: { hash: { cookie: 'sid' } } }, { created: '2026-01-01T00:00:00Z' }),
    ];
    expect(policyFor(objects).loadBalancer).toEqual({ algorithm: 'ring-hash', hash: { type: 'header', name: 'x-user' } });
  });

  it("lets an XBackendTrafficPolicy's retryConstraint win over a TrafficPolicy's retryBudget, whole, with Gateway API's defaults", () => {
    const objects = [
      service('web'),
      policy('p', { retryBudget: { percent: 50, minRetriesPerSecond: 1, interval: '1m' } }, { targets: [{ sectionName: 'http' }] }),
      backendPolicy('b', { retryConstraint: { budget: { percent: 5 } } }),
    ];
    const effective = policyFor(objects);
    expect(effective.retryBudget).toEqual({ percent: 5, intervalMs: 10_000, minRetryCount: 10, minRetryIntervalMs: 1_000, source: 'XBackendTrafficPolicy' });
    expect(effective.sources).toEqual([
      { kind: 'TrafficPolicy', namespace: 'shop', name: 'p' },
      { kind: 'XBackendTrafficPolicy', namespace: 'shop', name: 'b' },
    ]);
    // Without a retryConstraint, the XBackendTrafficPolicy leaves the TrafficPolicy's budget in force.
    const sessionOnly = policyFor([objects[0] as KubeObject, objects[1] as KubeObject, backendPolicy('b', { sessionPersistence: { sessionName: 's' } })]);
    expect(sessionOnly.retryBudget).toEqual({ percent: 50, intervalMs: 60_000, minRetryCount: 1, minRetryIntervalMs: 1_000, source: 'TrafficPolicy' });
    expect(sessionOnly.sessionPersistence).toEqual(expect.objectContaining({ sessionName: 's', type: 'Cookie' }));
  });

  it('among XBackendTrafficPolicies, takes the budget of the oldest', () => {
    const objects = [
      service('web'),
      backendPolicy('new', { retryConstraint: { budget: { percent: 1 } } }, '2026-01-01T00:00:00Z'),
      backendPolicy('old', { retryConstraint: { budget: { percent: 2 } } }, '2025-01-01T00:00:00Z'),
    ];
    expect(policyFor(objects).retryBudget.percent).toBe(2);
  });

  it('applies a policy only to the Services of its namespace it names', () => {
    const objects = [service('web'), service('api'), policy('p', { connectionPool: { maxConnections: 5 } }, { namespace: 'other' }), policy('q', { connectionPool: { maxConnections: 6 } }, { targets: [{ name: 'api' }] })];
    expect(policyFor(objects).connectionPool.maxConnections).toBe(1024);
    expect(policyFor(objects, 'http', 'api').connectionPool.maxConnections).toBe(6);
  });

  it('ignores a sectionName that names no port of the Service', () => {
    expect(policyFor([service('web'), policy('p', { connectionPool: { maxConnections: 5 } }, { targets: [{ sectionName: 'grpc' }] })]).connectionPool.maxConnections).toBe(1024);
  });

  it('answers the same frozen value for the same port', () => {
    const snapshot = buildSnapshot([service('web'), policy('p', {})]);
    const [svc, port] = portOf(snapshot, 'http');
    const first = snapshot.trafficPolicyFor(svc, port);
    expect(snapshot.trafficPolicyFor(svc, port)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.connectionPool)).toBe(true);
  });
});
