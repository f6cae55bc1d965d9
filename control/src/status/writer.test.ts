import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { KubeObject } from '@tsmesh/common';
import { pino } from 'pino';
import { KubeHttp } from '../kube/kube-http.js';
import { KubernetesSource } from '../kube/kubernetes.js';
import { eventually, pause } from '../testing/eventually.js';
import { FakeApiServer } from '../testing/fake-apiserver.js';
import { namespace, route, service } from '../testing/fixtures.js';
import { MESH_CONTROLLER_NAME, type ConditionJson, type ParentStatusJson } from './parents.js';
import { RouteStatusWriter, statusPath, type StatusClient } from './writer.js';

const ROUTE_PATH = statusPath('HTTPRoute', 'shop', 'canary');
const silent = pino({ level: 'silent' });

interface LogLine {
  level: number;
  msg: string;
}

describe('RouteStatusWriter', () => {
  let fake: FakeApiServer;
  let source: KubernetesSource;
  let writer: RouteStatusWriter;
  let logs: LogLine[];
  let started = false;

  beforeEach(async () => {
    fake = await FakeApiServer.start({ bookmarkIntervalMs: 100 });
    fake.create(namespace('shop'));
    fake.create(service('web'));
    fake.create(service('web-v2', { clusterIP: '10.96.0.11' }));
    logs = [];
  });

  afterEach(async () => {
    if (started) {
      await writer.close();
      await source.close();
    }
    started = false;
    await fake.close();
  });

  async function start(options: { maxAttempts?: number; client?: StatusClient } = {}): Promise<void> {
    source = new KubernetesSource(fake.kubeConfig(), { debounceMs: 10, backoff: { initialMs: 20, maxMs: 200 }, syncTimeoutMs: 5000, log: silent });
    const first = await source.start();
    if (!first.ok) {
      await source.close();
      throw first.error;
    }
    const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    const { client, ...rest } = options;
    writer = new RouteStatusWriter(source, client ?? fake.kubeConfig(), { debounceMs: 10, conflictWaitMs: 200, log, ...rest });
    writer.start();
    started = true;
  }

  function stored(name = 'canary', plural = 'httproutes'): KubeObject {
    const object = fake.list(plural, 'shop').find((o) => o.metadata.name === name);
    if (object === undefined) throw new Error(`no ${plural} ${name}`);
    return object;
  }

  function parents(object: KubeObject): ParentStatusJson[] {
    return ((object['status'] as { parents?: ParentStatusJson[] } | undefined)?.parents ?? []) as ParentStatusJson[];
  }

  function ours(object: KubeObject): ParentStatusJson | undefined {
    return parents(object).find((p) => p.controllerName === MESH_CONTROLLER_NAME);
  }

  function conditionOf(object: KubeObject, type: string): ConditionJson | undefined {
    return ours(object)?.conditions.find((c) => c.type === type);
  }

  const puts = (path = ROUTE_PATH): number => fake.requestsFor(path).filter((r) => r.method === 'PUT').length;

  function canary(rules: unknown[]): KubeObject {
    const object = route('HTTPRoute', 'canary', 'web');
    return { ...object, spec: { ...(object['spec'] as object), rules } };
  }

  const corsRule = { filters: [{ type: 'CORS', cors: { allowOrigins: ['https://shop.example'] } }], backendRefs: [{ name: 'web', port: 80 }] };
  const plainRule = { backendRefs: [{ name: 'web', port: 80 }] };

  it('reports an unsupported filter as PartiallyInvalid, naming the filter, and keeps the route Accepted', async () => {
    fake.create(canary([corsRule, plainRule]));
    await start();
    const object = await eventually(() => (ours(stored()) === undefined ? undefined : stored()), 'the status to be written');
    expect(ours(object)).toMatchObject({
      controllerName: MESH_CONTROLLER_NAME,
      parentRef: { group: '', kind: 'Service', namespace: 'shop', name: 'web', port: 80 },
    });
    expect(conditionOf(object, 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted', observedGeneration: 1 });
    expect(conditionOf(object, 'ResolvedRefs')).toMatchObject({ status: 'True', reason: 'ResolvedRefs' });
    const partial = conditionOf(object, 'PartiallyInvalid');
    expect(partial).toMatchObject({ status: 'True', reason: 'UnsupportedValue' });
    expect(partial?.message).toContain('CORS');
    expect(partial?.lastTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Writing the status changed only the status.
    expect(object.metadata['generation']).toBe(1);
  });

  it('reports a backend Service that does not exist as ResolvedRefs=False/BackendNotFound', async () => {
    fake.create(canary([{ backendRefs: [{ name: 'ghost', port: 80 }] }]));
    await start();
    const condition = await eventually(() => conditionOf(stored(), 'ResolvedRefs'), 'ResolvedRefs to be written');
    expect(condition).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    expect(condition.message).toContain('ghost');
  });

  it('updates the status when the route is fixed, moving lastTransitionTime only for conditions whose status changed', async () => {
    fake.create(canary([{ backendRefs: [{ name: 'ghost', port: 80 }] }, corsRule]));
    await start();
    const broken = await eventually(() => (conditionOf(stored(), 'ResolvedRefs')?.status === 'False' ? stored() : undefined), 'the broken status');
    const acceptedBefore = conditionOf(broken, 'Accepted');
    expect(conditionOf(broken, 'PartiallyInvalid')?.status).toBe('True');
    await pause(1100); // lastTransitionTime has seconds precision
    fake.update({ ...canary([plainRule]), metadata: { ...broken.metadata, resourceVersion: undefined } });
    const fixed = await eventually(() => (conditionOf(stored(), 'ResolvedRefs')?.status === 'True' ? stored() : undefined), 'the fixed status');
    expect(fixed.metadata['generation']).toBe(2);
    expect(conditionOf(fixed, 'PartiallyInvalid')).toBeUndefined();
    expect(conditionOf(fixed, 'Accepted')).toMatchObject({ status: 'True', observedGeneration: 2, lastTransitionTime: acceptedBefore?.lastTransitionTime });
    expect(conditionOf(fixed, 'ResolvedRefs')?.lastTransitionTime).not.toBe(conditionOf(broken, 'ResolvedRefs')?.lastTransitionTime);
  });

  it("keeps another controller's parent entry as it is", async () => {
    const created = fake.create(canary([plainRule]));
    const theirs: ParentStatusJson = {
      parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'shop', name: 'edge' },
      controllerName: 'example.com/gateway-controller',
      conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'theirs', lastTransitionTime: '2020-01-01T00:00:00Z', observedGeneration: 1 }],
    };
    fake.updateStatus({ ...created, status: { parents: [theirs] } });
    await start();
    const object = await eventually(() => (ours(stored()) === undefined ? undefined : stored()), 'our entry to be written');
    expect(parents(object)).toHaveLength(2);
    expect(parents(object)[0]).toEqual(theirs);
  });

  it('does not write again when nothing changed, neither on other changes nor on its own status updates', async () => {
    fake.create(canary([corsRule, plainRule]));
    await start();
    await eventually(() => ours(stored()), 'the status to be written');
    await pause(200);
    await writer.idle();
    expect(puts()).toBe(1);
    // An unrelated change: a new snapshot, the same statuses.
    fake.create(service('other', { clusterIP: '10.96.0.12' }));
    await eventually(() => source.current()?.service('shop', 'other'), 'the new Service to be seen');
    await pause(200);
    await writer.idle();
    expect(puts()).toBe(1);
  });

  it('retries a write the API server answers with 409 Conflict', async () => {
    fake.create(canary([corsRule, plainRule]));
    fake.fail({ method: 'PUT', path: ROUTE_PATH, status: 409, times: 2 });
    await start();
    await eventually(() => ours(stored()), 'the status to be written after the conflicts');
    const answers = fake.requestsFor(ROUTE_PATH).filter((r) => r.method === 'PUT').map((r) => r.status);
    expect(answers).toEqual([409, 409, 200]);
  });

  it('after a real conflict, writes from the newer object the watch brings, keeping what the other writer added', async () => {
    const created = fake.create(canary([corsRule, plainRule]));
    const theirs: ParentStatusJson = {
      parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'shop', name: 'edge' },
      controllerName: 'example.com/gateway-controller',
      conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'theirs', lastTransitionTime: '2020-01-01T00:00:00Z' }],
    };
    // Another controller writes its entry between our read and our first write: that write is stale.
    const http = new KubeHttp(fake.kubeConfig());
    let raced = false;
    const client: StatusClient = {
      request: (method, path, options) => {
        if (!raced) {
          raced = true;
          fake.updateStatus({ ...created, status: { parents: [theirs] } });
        }
        return http.request(method, path, options);
      },
    };
    await start({ client });
    const object = await eventually(() => (ours(stored()) === undefined ? undefined : stored()), 'our entry to be written');
    expect(fake.requestsFor(ROUTE_PATH).filter((r) => r.method === 'PUT').map((r) => r.status)).toEqual([409, 200]);
    expect(parents(object)[0]).toEqual(theirs);
  });

  it('gives up after maxAttempts conflicts, logging it, and never throws', async () => {
    fake.create(canary([plainRule]));
    fake.fail({ method: 'PUT', path: ROUTE_PATH, status: 409, times: 2 });
    await start({ maxAttempts: 2 });
    await eventually(() => logs.find((l) => l.msg.includes('still conflicts')), 'the give-up warning');
    expect(ours(stored())).toBeUndefined();
    // The next snapshot tries again.
    fake.create(service('other', { clusterIP: '10.96.0.12' }));
    await eventually(() => ours(stored()), 'the status written on the next change');
  });

  it('writes GRPCRoute status too', async () => {
    fake.create(route('GRPCRoute', 'rpc', 'web'));
    await start();
    const object = await eventually(() => (ours(stored('rpc', 'grpcroutes')) === undefined ? undefined : stored('rpc', 'grpcroutes')), 'the GRPCRoute status');
    expect(conditionOf(object, 'Accepted')?.status).toBe('True');
  });
});
