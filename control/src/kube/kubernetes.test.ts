import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { KubeObject, MeshService, MeshSnapshot, ServicePort } from '@tsmesh/common';
import { pino } from 'pino';
import { CONTROL_ERRORS } from '../errors.js';
import { eventually, pause } from '../testing/eventually.js';
import { FakeApiServer, type FakeApiServerOptions } from '../testing/fake-apiserver.js';
import { endpointSlice, namespace, peerAuthentication, pod, route, service, serviceAccount, trafficPolicy } from '../testing/fixtures.js';
import { KubernetesSource, type KubernetesSourceOptions } from './kubernetes.js';
import { WATCHED_RESOURCES } from './resources.js';

const TOKEN = 'test-token';

interface LogLine {
  level: number;
  msg: string;
  kind?: string;
  [key: string]: unknown;
}

describe('KubernetesSource', () => {
  let fake: FakeApiServer;
  let sources: KubernetesSource[];
  let logs: LogLine[];

  beforeEach(async () => {
    fake = await FakeApiServer.start({ token: TOKEN, bookmarkIntervalMs: 100 });
    sources = [];
    logs = [];
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await fake.close();
  });

  async function restartFake(options: FakeApiServerOptions): Promise<void> {
    await fake.close();
    fake = await FakeApiServer.start({ token: TOKEN, bookmarkIntervalMs: 100, ...options });
  }

  function source(options: KubernetesSourceOptions = {}): KubernetesSource {
    const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    const created = new KubernetesSource(fake.kubeConfig(), {
      debounceMs: 10,
      backoff: { initialMs: 20, maxMs: 200 },
      absentRetryMs: 100,
      syncTimeoutMs: 5000,
      log,
      ...options,
    });
    sources.push(created);
    return created;
  }

  async function started(s: KubernetesSource): Promise<MeshSnapshot> {
    const result = await s.start();
    if (!result.ok) throw result.error;
    return result.value;
  }

  /** Waits until the source's current snapshot satisfies `check`. */
  function until(s: KubernetesSource, check: (snapshot: MeshSnapshot) => boolean, what: string): Promise<MeshSnapshot> {
    return eventually(() => {
      const snapshot = s.current();
      return snapshot !== undefined && check(snapshot) ? snapshot : undefined;
    }, what);
  }

  const svc = (snapshot: MeshSnapshot, name: string, ns = 'shop'): MeshService | undefined => snapshot.service(ns, name);
  /** The endpoints of a Service's first port as `ip state` strings, sorted. */
  function endpointsOf(snapshot: MeshSnapshot, name: string): string[] {
    const found = svc(snapshot, name);
    const port = found?.ports[0];
    if (found === undefined || port === undefined) return [];
    return snapshot
      .endpoints(found, port)
      .map((e) => `${e.address} ${e.ready ? 'ready' : e.terminating ? 'terminating' : 'not-ready'}`)
      .sort();
  }
  const othersOf = (snapshot: MeshSnapshot, kind: string): string[] => snapshot.others.filter((o) => o.kind === kind).map((o) => o.metadata.name ?? '');
  const listsOf = (path: string): number => fake.requestsFor(path, false).length;

  function seedShop(): void {
    fake.create(namespace('shop', { 'tsmesh-injection': 'enabled' }));
    fake.create(service('web', { clusterIP: '10.96.0.10' }));
    fake.create(endpointSlice('web-abc', 'web', [{ ip: '10.1.0.1', pod: 'web-1' }]));
    fake.create(pod('web-1', '10.1.0.1', { labels: { app: 'web' } }));
    fake.create(serviceAccount('default'));
  }

  it('puts every watched kind into the first snapshot', async () => {
    seedShop();
    fake.create(peerAuthentication('strict', 'shop', 'STRICT'));
    fake.create(route('HTTPRoute', 'web-split', 'web'));
    fake.create(route('GRPCRoute', 'web-grpc', 'web'));
    const s = source();
    const snapshot = await started(s);

    const web = svc(snapshot, 'web');
    expect(web?.clusterIPs).toEqual(['10.96.0.10']);
    expect(snapshot.resolve('10.96.0.10', 80)).toMatchObject({ kind: 'service', service: { name: 'web' } });
    expect(endpointsOf(snapshot, 'web')).toEqual(['10.1.0.1 ready']);
    expect(snapshot.podByIp('10.1.0.1')).toMatchObject({ name: 'web-1', serviceAccount: 'default', meshed: true });
    expect(othersOf(snapshot, 'Namespace')).toEqual(['shop']);
    expect(othersOf(snapshot, 'ServiceAccount')).toEqual(['default']);
    expect(othersOf(snapshot, 'PeerAuthentication')).toEqual(['strict']);
    expect(othersOf(snapshot, 'HTTPRoute')).toEqual(['web-split']);
    expect(othersOf(snapshot, 'GRPCRoute')).toEqual(['web-grpc']);
    expect(s.status().every((st) => st.state === 'synced')).toBe(true);
  });

  it('puts valid AuthorizationPolicies into the snapshot and reports the refused ones with the reason', async () => {
    seedShop();
    const authz = (name: string, spec: unknown): KubeObject => ({ apiVersion: 'security.tsmesh.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'shop' }, spec });
    fake.create(authz('deny-evil', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['evil'] } }] }] }));
    fake.create(authz('half-istio', { rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] }));
    const s = source();
    const snapshot = await started(s);
    expect(othersOf(snapshot, 'AuthorizationPolicy')).toEqual(['deny-evil']);
    expect(s.rejected('AuthorizationPolicy').map((r) => [r.object.metadata.name, r.reason])).toEqual([
      ['half-istio', expect.stringContaining('spec.rules[0].from[0].source.requestPrincipals: is not supported by tsmesh')],
    ]);
  });

  it('keeps the last valid version of an AuthorizationPolicy through an invalid update, until it is fixed or deleted', async () => {
    seedShop();
    const authz = (action: string): KubeObject => ({ apiVersion: 'security.tsmesh.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-evil', namespace: 'shop' }, spec: { action, rules: [{ from: [{ source: { namespaces: ['evil'] } }] }] } });
    const actionOf = (snapshot: MeshSnapshot): unknown => (snapshot.others.find((o) => o.kind === 'AuthorizationPolicy')?.['spec'] as { action?: unknown } | undefined)?.action;
    fake.create(authz('DENY'));
    const s = source();
    await started(s);
    // A broken edit does not lift the DENY in force; the refusal says so.
    fake.update(authz('CUSTOM'));
    await until(s, () => s.rejected('AuthorizationPolicy').length === 1, 'the refused update');
    // A later change makes sure the snapshot was rebuilt with the refused update in the informer.
    fake.create(service('later', { clusterIP: '10.96.0.40' }));
    const rebuilt = await until(s, (snap) => svc(snap, 'later') !== undefined, 'a snapshot built after the refused update');
    expect(actionOf(rebuilt)).toBe('DENY');
    expect(s.rejected('AuthorizationPolicy')[0]?.reason).toContain('its last valid version stays in force');
    // Fixed, the new version applies; deleted, it is gone.
    fake.update(authz('AUDIT'));
    await until(s, (snap) => actionOf(snap) === 'AUDIT', 'the fixed policy');
    fake.update(authz('CUSTOM'));
    await until(s, () => s.rejected('AuthorizationPolicy').length === 1, 'the second refused update');
    fake.delete(authz('CUSTOM'));
    await until(s, (snap) => actionOf(snap) === undefined, 'the deleted policy gone');
  });

  it('keeps the last valid version of an HTTPLocalRateLimitPolicy through an invalid update, so a broken edit never lifts a limit', async () => {
    seedShop();
    const limit = (requestsPerSecond: unknown): KubeObject => ({ apiVersion: 'policy.tsmesh.io/v1', kind: 'HTTPLocalRateLimitPolicy', metadata: { name: 'rl', namespace: 'shop' }, spec: { total: { requestsPerSecond } } });
    const rateOf = (snapshot: MeshSnapshot): unknown => (snapshot.others.find((o) => o.kind === 'HTTPLocalRateLimitPolicy')?.['spec'] as { total?: { requestsPerSecond?: unknown } } | undefined)?.total?.requestsPerSecond;
    fake.create(limit(10));
    const s = source();
    expect(rateOf(await started(s))).toBe(10);
    fake.update(limit(0));
    await until(s, () => s.rejected('HTTPLocalRateLimitPolicy').length === 1, 'the refused update');
    fake.create(service('later', { clusterIP: '10.96.0.40' }));
    const rebuilt = await until(s, (snap) => svc(snap, 'later') !== undefined, 'a snapshot built after the refused update');
    expect(rateOf(rebuilt)).toBe(10);
    expect(s.rejected('HTTPLocalRateLimitPolicy')[0]?.reason).toContain('spec.total.requestsPerSecond');
    expect(s.rejected('HTTPLocalRateLimitPolicy')[0]?.reason).toContain('its last valid version stays in force');
    fake.update(limit(20));
    await until(s, (snap) => rateOf(snap) === 20, 'the fixed policy');
  });

  it('lists with the selectors that narrow slices to Services and pods to running ones, and watches every kind', async () => {
    seedShop();
    await started(source());
    const [sliceList] = fake.requestsFor('/apis/discovery.k8s.io/v1/endpointslices', false);
    expect(sliceList?.query['labelSelector']).toBe('kubernetes.io/service-name');
    const [podList] = fake.requestsFor('/api/v1/pods', false);
    expect(podList?.query['fieldSelector']).toBe('status.phase!=Succeeded,status.phase!=Failed');
    await eventually(() => fake.watchCount() === WATCHED_RESOURCES.length, 'a watch per kind');
    const [podWatch] = fake.requestsFor('/api/v1/pods', true);
    expect(podWatch?.query).toMatchObject({ allowWatchBookmarks: 'true', fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' });
  });

  it('follows endpoints as they are added, start terminating and are removed', async () => {
    seedShop();
    const s = source();
    await started(s);

    fake.update(endpointSlice('web-abc', 'web', [{ ip: '10.1.0.1' }, { ip: '10.1.0.2' }]));
    await until(s, (snap) => endpointsOf(snap, 'web').length === 2, 'a second endpoint');

    fake.update(endpointSlice('web-abc', 'web', [{ ip: '10.1.0.1', ready: false, serving: true, terminating: true }, { ip: '10.1.0.2' }]));
    const terminating = await until(s, (snap) => endpointsOf(snap, 'web').includes('10.1.0.1 terminating'), 'a terminating endpoint');
    const [first] = terminating.endpoints(svc(terminating, 'web') as MeshService, (svc(terminating, 'web') as MeshService).ports[0]!).filter((e) => e.address === '10.1.0.1');
    expect(first).toMatchObject({ ready: false, serving: true, terminating: true });

    fake.update(endpointSlice('web-abc', 'web', [{ ip: '10.1.0.2' }]));
    const after = await until(s, (snap) => endpointsOf(snap, 'web').length === 1, 'the endpoint removed');
    expect(endpointsOf(after, 'web')).toEqual(['10.1.0.2 ready']);
  });

  it('merges the EndpointSlices of one Service and drops a deleted one', async () => {
    seedShop();
    fake.create(endpointSlice('web-def', 'web', [{ ip: '10.1.0.3' }, { ip: '10.1.0.4' }]));
    const s = source();
    const snapshot = await started(s);
    expect(endpointsOf(snapshot, 'web')).toEqual(['10.1.0.1 ready', '10.1.0.3 ready', '10.1.0.4 ready']);

    fake.delete(endpointSlice('web-abc', 'web', []));
    const after = await until(s, (snap) => endpointsOf(snap, 'web').length === 2, 'one slice gone');
    expect(endpointsOf(after, 'web')).toEqual(['10.1.0.3 ready', '10.1.0.4 ready']);
  });

  it('follows a Service switching between a cluster IP and headless', async () => {
    seedShop();
    const s = source();
    await started(s);

    // The cluster IP is immutable in Kubernetes: switching means delete and create again.
    fake.delete(service('web'));
    fake.create(service('web', { clusterIP: 'None' }));
    const headless = await until(s, (snap) => svc(snap, 'web')?.headless === true, 'a headless web');
    expect(svc(headless, 'web')?.clusterIPs).toEqual([]);
    expect(headless.resolve('10.96.0.10', 80)).toEqual({ kind: 'passthrough' });
    expect(headless.resolve('10.1.0.1', 8080)).toMatchObject({ kind: 'endpoint', address: '10.1.0.1' });

    fake.update(service('web', { clusterIP: '10.96.0.20' }));
    const clustered = await until(s, (snap) => svc(snap, 'web')?.headless === false, 'web with a cluster IP again');
    expect(clustered.resolve('10.96.0.20', 80)).toMatchObject({ kind: 'service', service: { name: 'web' } });
  });

  it('leaves out a malformed Service with a warning and an Event naming it, and keeps the rest', async () => {
    seedShop();
    const s = source();
    await started(s);

    fake.create(service('bad', { clusterIP: '10.96.0.300' }));
    fake.create(service('good', { clusterIP: '10.96.0.31' }));
    const snapshot = await until(s, (snap) => svc(snap, 'good') !== undefined, 'the good Service');
    expect(svc(snapshot, 'bad')).toBeUndefined();
    expect(svc(snapshot, 'web')).toBeDefined();

    const warning = logs.find((l) => l.level === 40 && l.msg.startsWith('Service shop/bad left out of the mesh'));
    expect(warning?.msg).toContain('spec.clusterIP');
    const event = (await eventually(() => fake.list('events', 'shop')[0], 'an Event')) as KubeObject & Record<string, unknown>;
    expect(event).toMatchObject({ type: 'Warning', reason: 'InvalidMeshObject', involvedObject: { kind: 'Service', name: 'bad', namespace: 'shop' } });
    expect(event['message']).toContain('10.96.0.300');

    // Fixed, it joins the mesh.
    fake.update(service('bad', { clusterIP: '10.96.0.30', annotations: { 'tsmesh.io/load-balancer': 'round-robin' } }));
    const fixed = await until(s, (snap) => svc(snap, 'bad') !== undefined, 'the fixed Service');
    expect(svc(fixed, 'bad')?.loadBalancer).toBe('round-robin');
  });

  it('keeps a Service naming an algorithm it does not know, for the proxy registry to decide, with a warning and an Event', async () => {
    seedShop();
    const s = source();
    await started(s);
    fake.create(service('odd', { clusterIP: '10.96.0.32', annotations: { 'tsmesh.io/load-balancer': 'fastest' } }));
    const snapshot = await until(s, (snap) => svc(snap, 'odd') !== undefined, 'the Service');
    expect(svc(snapshot, 'odd')?.loadBalancer).toBe('fastest');
    expect(logs.find((l) => l.level === 40 && l.msg.startsWith('Service shop/odd: '))?.msg).toContain('"fastest" is not one of round-robin');
    const event = (await eventually(() => fake.list('events', 'shop')[0], 'an Event')) as KubeObject & Record<string, unknown>;
    expect(event).toMatchObject({ type: 'Warning', reason: 'MeshObjectWarning', involvedObject: { kind: 'Service', name: 'odd', namespace: 'shop' } });
    expect(event['message']).toContain('metadata.annotations["tsmesh.io/load-balancer"]');
  });

  it('warns once per version of a malformed object, not on every rebuild', async () => {
    seedShop();
    fake.create(peerAuthentication('odd', 'shop', 'SOMETIMES'));
    const s = source();
    await started(s);
    fake.create(service('other', { clusterIP: '10.96.0.40' }));
    await until(s, (snap) => svc(snap, 'other') !== undefined, 'another change');
    expect(logs.filter((l) => l.msg.startsWith('PeerAuthentication shop/odd left out'))).toHaveLength(1);
  });

  it('resumes closed watches from their resourceVersion without losing events or listing again', async () => {
    seedShop();
    const s = source();
    await started(s);
    await eventually(() => fake.watchCount() === WATCHED_RESOURCES.length, 'every watch open');
    const rv = String(fake.resourceVersion);

    expect(fake.dropWatches()).toBe(WATCHED_RESOURCES.length);
    // Changed while no watch is open: only the resumed watches can tell.
    fake.create(service('api', { clusterIP: '10.96.0.50' }));
    fake.delete(pod('web-1', '10.1.0.1'));
    const snapshot = await until(s, (snap) => svc(snap, 'api') !== undefined && snap.pods.length === 0, 'the changes made while disconnected');
    expect(snapshot.podByIp('10.1.0.1')).toBeUndefined();
    expect(listsOf('/api/v1/services')).toBe(1);
    expect(listsOf('/api/v1/pods')).toBe(1);
    expect(fake.requestsFor('/api/v1/services', true).map((r) => r.query['resourceVersion'])).toContain(rv);
  });

  it('restarts watches reset by the server, with backoff, and resumes them', async () => {
    seedShop();
    const s = source();
    await started(s);
    await eventually(() => fake.watchCount() === WATCHED_RESOURCES.length, 'every watch open');

    fake.fail({ path: '/api/v1/services', watch: true, status: 500, times: 2 });
    fake.dropWatches({ abrupt: true });
    fake.create(service('api', { clusterIP: '10.96.0.50' }));
    await until(s, (snap) => svc(snap, 'api') !== undefined, 'the change made while reset');
    await eventually(() => fake.watchCount() === WATCHED_RESOURCES.length, 'every watch open again');
    const restarts = logs.filter((l) => l.kind === 'Service' && l.msg === 'Service list/watch failed; restarting');
    expect(restarts.map((l) => l['attempt'])).toEqual([1, 2, 3]);
    expect(listsOf('/api/v1/services')).toBe(1);
  });

  it('lists again after 410 Gone and converges, deletions included', async () => {
    seedShop();
    fake.create(service('old', { clusterIP: '10.96.0.60' }));
    const s = source();
    await started(s);
    await eventually(() => fake.watchCount() === WATCHED_RESOURCES.length, 'every watch open');

    fake.dropWatches();
    fake.delete(service('old'));
    fake.create(service('new', { clusterIP: '10.96.0.61' }));
    fake.compact();
    const snapshot = await until(s, (snap) => svc(snap, 'new') !== undefined && svc(snap, 'old') === undefined, 'the state after 410');
    expect(snapshot.resolve('10.96.0.60', 80)).toEqual({ kind: 'passthrough' });
    expect(listsOf('/api/v1/services')).toBe(2);
    await eventually(() => fake.watchCount() === WATCHED_RESOURCES.length, 'every watch open again');
  });

  it('keeps working without the custom resources when their CRDs are absent, and picks them up when installed', async () => {
    await restartFake({ absent: ['peerauthentications', 'httproutes', 'grpcroutes', 'trafficpolicies', 'xbackendtrafficpolicies'] });
    seedShop();
    const s = source();
    const snapshot = await started(s);
    expect(svc(snapshot, 'web')).toBeDefined();
    const absentKinds = ['PeerAuthentication', 'HTTPRoute', 'GRPCRoute', 'TrafficPolicy', 'XBackendTrafficPolicy'];
    expect(s.status().filter((st) => st.state === 'absent').map((st) => st.kind)).toEqual(absentKinds);

    await pause(350); // several looks again
    const notServed = logs.filter((l) => l.msg.includes('is not served by the API server'));
    expect(notServed.map((l) => l.kind)).toEqual(absentKinds);

    fake.install('httproutes');
    fake.create(route('HTTPRoute', 'web-split', 'web'));
    const withRoute = await until(s, (snap) => othersOf(snap, 'HTTPRoute').length === 1, 'the HTTPRoute');
    expect(othersOf(withRoute, 'HTTPRoute')).toEqual(['web-split']);

    fake.install('trafficpolicies');
    fake.create(trafficPolicy('web-pool', 'web'));
    const withPolicy = await until(s, (snap) => othersOf(snap, 'TrafficPolicy').length === 1, 'the TrafficPolicy');
    const web = svc(withPolicy, 'web');
    expect(web === undefined ? undefined : withPolicy.trafficPolicyFor(web, web.ports[0] as ServicePort).connectionPool.maxConnections).toBe(7);

    // The CRD removed again: its objects leave the mesh.
    fake.uninstall('httproutes');
    await until(s, (snap) => othersOf(snap, 'HTTPRoute').length === 0, 'the HTTPRoute gone');
    expect(s.status().find((st) => st.kind === 'HTTPRoute')?.state).toBe('absent');
  });

  it('drops a pod once it has finished, as its IP may go to another pod', async () => {
    seedShop();
    const s = source();
    await started(s);
    fake.update(pod('web-1', '10.1.0.1', { phase: 'Succeeded' }));
    const snapshot = await until(s, (snap) => snap.pods.length === 0, 'the finished pod gone');
    expect(snapshot.podByIp('10.1.0.1')?.name).toBeUndefined();
  });

  it('lists page by page', async () => {
    seedShop();
    for (let i = 0; i < 5; i += 1) fake.create(service(`svc-${i}`, { clusterIP: `10.96.1.${i}` }));
    const snapshot = await started(source({ pageSize: 2 }));
    expect(snapshot.services).toHaveLength(6);
    expect(fake.requestsFor('/api/v1/services', false).map((r) => r.query['continue'] !== undefined)).toEqual([false, true, true]);
  });

  it('coalesces a burst of changes into few snapshots', async () => {
    seedShop();
    // A window wide enough that the burst's watch events (one HTTP stream) land inside it on a loaded machine.
    const s = source({ debounceMs: 200 });
    await started(s);
    const seen: MeshSnapshot[] = [];
    s.subscribe((snapshot) => seen.push(snapshot));
    for (let i = 0; i < 20; i += 1) fake.create(service(`burst-${i}`, { clusterIP: `10.96.2.${i}` }));
    await until(s, (snap) => snap.services.length === 21, 'every Service of the burst');
    await pause(400);
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(seen.length).toBeLessThanOrEqual(3);
    expect(seen.at(-1)?.services).toHaveLength(21);
  });

  it('gives equal content the same version, and a change a new one', async () => {
    seedShop();
    const first = await started(source());
    const second = await started(source());
    expect(second.version).toBe(first.version);
    fake.create(service('api', { clusterIP: '10.96.0.50' }));
    const changed = await until(sources[0]!, (snap) => svc(snap, 'api') !== undefined, 'the change');
    expect(changed.version).not.toBe(first.version);
  });

  it('fails to start, naming the resource, when access is refused', async () => {
    seedShop();
    fake.fail({ path: '/api/v1/pods', status: 403, times: 100 });
    const result = await source().start();
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(CONTROL_ERRORS.KUBE_SYNC);
    expect(result.error.message).toContain('/api/v1/pods');
    expect(result.error.message).toContain('403');
  });

  it('fails to start when the API server cannot be reached in time, naming what it waited for', async () => {
    const s = source({ syncTimeoutMs: 300 });
    await fake.close();
    const result = await s.start();
    fake = await FakeApiServer.start();
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.message).toMatch(/^the first list of Namespace, ServiceAccount, Service, .*XBackendTrafficPolicy did not complete within 0.3s; last errors: GET \/api\/v1\/namespaces: fetch failed: connect ECONNREFUSED/);
  });

  it('keeps retrying a failing first list until it succeeds', async () => {
    seedShop();
    fake.fail({ path: '/api/v1/services', watch: false, status: 503, times: 3 });
    const snapshot = await started(source());
    expect(svc(snapshot, 'web')).toBeDefined();
    expect(fake.requestsFor('/api/v1/services', false).map((r) => r.status)).toEqual([503, 503, 503, 200]);
  });

  it('stops everything on close: no watches, requests or snapshots after it', async () => {
    seedShop();
    const s = source();
    await started(s);
    const seen: MeshSnapshot[] = [];
    s.subscribe((snapshot) => seen.push(snapshot));
    await eventually(() => fake.watchCount() === WATCHED_RESOURCES.length, 'every watch open');

    await s.close();
    await eventually(() => fake.watchCount() === 0, 'every watch closed');
    const requests = fake.requests.length;
    fake.create(service('late', { clusterIP: '10.96.0.70' }));
    fake.dropWatches();
    await pause(150);
    expect(seen).toHaveLength(0);
    expect(fake.requests.length).toBe(requests);
  });

  it('closes cleanly while the first list is still being retried', async () => {
    fake.fail({ path: '/api/v1/services', status: 503, times: 1000 });
    const s = source();
    const starting = s.start();
    await pause(100);
    await s.close();
    const result = await starting;
    expect(result.ok).toBe(false);
    // Requests sent before close() may reach the server after it on a loaded machine: let those
    // land, then no retry may follow (the test backoff starts at 20 ms and stops growing at 200 ms, so a retry loop would show).
    await pause(150);
    const requests = fake.requests.length;
    await pause(300);
    expect(fake.requests.length).toBe(requests);
  });
});
