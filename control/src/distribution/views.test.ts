import { describe, expect, it } from '@jest/globals';
import { buildSnapshot, parseServerMessage, type KubeObject } from '@tsmesh/common';
import { SnapshotViews } from './views.js';

const namespaceObject = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
const peerAuthentication = (namespace: string, name: string, mode = 'STRICT'): KubeObject => ({
  apiVersion: 'security.tsmesh.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name, namespace },
  spec: { mtls: { mode } },
});
const service = (namespace: string, name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80 }] },
});

const mesh = (extra: KubeObject[] = []): KubeObject[] => [
  namespaceObject('a'),
  namespaceObject('b'),
  service('a', 'web'),
  service('b', 'api'),
  peerAuthentication('tsmesh-system', 'mesh'),
  peerAuthentication('a', 'a-strict'),
  peerAuthentication('b', 'b-off', 'DISABLE'),
  ...extra,
];

function objectsOf(views: SnapshotViews, namespace: string): string[] {
  const message = parseServerMessage(views.forNamespace(namespace).parts.join('').trimEnd());
  if (!message.ok) throw message.error;
  return message.value.objects.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`);
}

const authorizationPolicy = (namespace: string, name: string): KubeObject => ({
  apiVersion: 'security.tsmesh.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace },
  spec: { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['x'] } }] }] },
});

describe('SnapshotViews', () => {
  it("sends a workload the AuthorizationPolicies of its own namespace and the root namespace only (they govern its inbound side)", () => {
    const views = new SnapshotViews(
      buildSnapshot(mesh([authorizationPolicy('tsmesh-system', 'mesh-deny'), authorizationPolicy('a', 'a-deny'), authorizationPolicy('b', 'b-deny')])),
      'tsmesh-system',
    );
    const policies = (namespace: string): string[] => objectsOf(views, namespace).filter((o) => o.startsWith('AuthorizationPolicy'));
    expect(policies('a')).toEqual(['AuthorizationPolicy tsmesh-system/mesh-deny', 'AuthorizationPolicy a/a-deny']);
    expect(policies('b')).toEqual(['AuthorizationPolicy tsmesh-system/mesh-deny', 'AuthorizationPolicy b/b-deny']);
    expect(policies('empty')).toEqual(['AuthorizationPolicy tsmesh-system/mesh-deny']);
  });

  it('sends a workload the HTTPLocalRateLimitPolicies of its own namespace (and the root namespace\'s) only', () => {
    const limit = (namespace: string, name: string): KubeObject => ({ apiVersion: 'policy.tsmesh.io/v1', kind: 'HTTPLocalRateLimitPolicy', metadata: { name, namespace }, spec: { total: { requestsPerSecond: 5 } } });
    const views = new SnapshotViews(buildSnapshot(mesh([limit('a', 'a-rl'), limit('b', 'b-rl')])), 'tsmesh-system');
    const limits = (namespace: string): string[] => objectsOf(views, namespace).filter((o) => o.startsWith('HTTPLocalRateLimitPolicy'));
    expect(limits('a')).toEqual(['HTTPLocalRateLimitPolicy a/a-rl']);
    expect(limits('b')).toEqual(['HTTPLocalRateLimitPolicy b/b-rl']);
    expect(limits('empty')).toEqual([]);
  });

  it("sends every workload all Services and Namespaces, but only its namespace's and the root namespace's PeerAuthentications", () => {
    const views = new SnapshotViews(buildSnapshot(mesh()), 'tsmesh-system');
    expect(objectsOf(views, 'a')).toEqual([
      'Namespace /a',
      'Namespace /b',
      'Service a/web',
      'Service b/api',
      'PeerAuthentication tsmesh-system/mesh',
      'PeerAuthentication a/a-strict',
    ]);
    expect(objectsOf(views, 'b')).toContain('PeerAuthentication b/b-off');
    expect(objectsOf(views, 'b')).not.toContain('PeerAuthentication a/a-strict');
    expect(objectsOf(views, 'tsmesh-system').filter((o) => o.startsWith('PeerAuthentication'))).toEqual(['PeerAuthentication tsmesh-system/mesh']);
    expect(objectsOf(views, 'empty').filter((o) => o.startsWith('PeerAuthentication'))).toEqual(['PeerAuthentication tsmesh-system/mesh']);
  });

  it('derives versions from content: equal for equal views, different when a view changes', () => {
    const first = new SnapshotViews(buildSnapshot(mesh()), 'tsmesh-system');
    const again = new SnapshotViews(buildSnapshot(mesh()), 'tsmesh-system');
    expect(again.forNamespace('a').version).toBe(first.forNamespace('a').version);
    expect(first.forNamespace('a').version).not.toBe(first.forNamespace('b').version);
    // A policy change in namespace b changes b's view only.
    const changed = new SnapshotViews(buildSnapshot(mesh([peerAuthentication('b', 'b-more')])), 'tsmesh-system');
    expect(changed.forNamespace('a').version).toBe(first.forNamespace('a').version);
    expect(changed.forNamespace('b').version).not.toBe(first.forNamespace('b').version);
  });

  it('makes one valid snapshot line per view, memoised', () => {
    const views = new SnapshotViews(buildSnapshot([]), 'tsmesh-system');
    const view = views.forNamespace('a');
    expect(views.forNamespace('a')).toBe(view);
    expect(view.parts.join('')).toBe(`{"type":"snapshot","version":"${view.version}","objects":[]}\n`);
    expect(view.objectCount).toBe(0);
    const onlyPolicy = new SnapshotViews(buildSnapshot([peerAuthentication('a', 'p')]), 'tsmesh-system');
    expect(objectsOf(onlyPolicy, 'a')).toEqual(['PeerAuthentication a/p']);
  });

  it('gives every namespace the same bytes of the shared objects, so N streams never hold N copies', () => {
    const views = new SnapshotViews(buildSnapshot(mesh()), 'tsmesh-system');
    const [a, b] = [views.forNamespace('a'), views.forNamespace('b')];
    expect(a.parts.every((part) => Buffer.isBuffer(part))).toBe(true);
    expect(a.parts[1]).toBe(b.parts[1]);
  });

  it("sends every workload the TrafficPolicies and XBackendTrafficPolicies of the Services it may call, and its snapshot applies them", () => {
    const policy: KubeObject = {
      apiVersion: 'policy.tsmesh.io/v1alpha1',
      kind: 'TrafficPolicy',
      metadata: { name: 'api-pool', namespace: 'b', creationTimestamp: '2026-01-01T00:00:00Z', resourceVersion: '7' },
      spec: { targetRefs: [{ group: '', kind: 'Service', name: 'api', sectionName: 'http' }], connectionPool: { maxConnections: 9 }, retryBudget: { percent: 40 }, retry: { grpcCodes: ['UNAVAILABLE'] } },
    };
    const budget: KubeObject = {
      apiVersion: 'gateway.networking.x-k8s.io/v1alpha1',
      kind: 'XBackendTrafficPolicy',
      metadata: { name: 'api-budget', namespace: 'b', creationTimestamp: '2026-01-02T00:00:00Z' },
      spec: { targetRefs: [{ group: '', kind: 'Service', name: 'api' }], retryConstraint: { budget: { percent: 10, interval: '5s' } } },
      status: { ancestors: [] },
    };
    const views = new SnapshotViews(buildSnapshot(mesh([policy, budget])), 'tsmesh-system');
    // A workload of namespace a calls b/api: it receives b's policies.
    expect(objectsOf(views, 'a')).toEqual(expect.arrayContaining(['TrafficPolicy b/api-pool', 'XBackendTrafficPolicy b/api-budget']));
    const received = buildSnapshot(views.objectsFor('a') as KubeObject[]);
    const api = received.service('b', 'api');
    const port = api?.ports[0];
    if (api === undefined || port === undefined) throw new Error('b/api not received');
    const effective = received.trafficPolicyFor(api, port);
    expect(effective.connectionPool.maxConnections).toBe(9);
    expect(effective.retry?.grpcCodes).toEqual([14]);
    expect(effective.retryBudget).toEqual({ percent: 10, intervalMs: 5_000, minRetryCount: 10, minRetryIntervalMs: 1_000, source: 'XBackendTrafficPolicy' });
    // Age decides among equals, so creationTimestamp travels; status and server-side metadata do not.
    const sent = views.objectsFor('a').filter((o) => o.kind.endsWith('TrafficPolicy'));
    expect(sent.map((o) => o.metadata)).toEqual([
      { name: 'api-pool', namespace: 'b', creationTimestamp: '2026-01-01T00:00:00Z' },
      { name: 'api-budget', namespace: 'b', creationTimestamp: '2026-01-02T00:00:00Z' },
    ]);
    expect(sent.some((o) => 'status' in o)).toBe(false);
  });
});
