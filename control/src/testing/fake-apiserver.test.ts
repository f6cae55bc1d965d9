import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { KubeObject } from '@tsmesh/common';
import { FakeApiServer } from './fake-apiserver.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';

interface WatchEvent {
  type: string;
  object: KubeObject & { code?: number; reason?: string };
}

const service = (name: string, namespace = 'default', labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace, labels },
  spec: { clusterIP: '10.0.0.1', ports: [{ port: 80 }] },
});

describe('FakeApiServer', () => {
  let fake: FakeApiServer;
  const controllers: AbortController[] = [];

  beforeEach(async () => {
    fake = await FakeApiServer.start();
  });

  afterEach(async () => {
    for (const controller of controllers.splice(0)) controller.abort();
    await fake.close();
  });

  async function get(path: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${fake.url}${path}`, init);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  /** Opens a watch and collects its events until `count` arrived or the server ended it. */
  async function watch(path: string, count: number, timeoutMs = 2000): Promise<{ events: WatchEvent[]; ended: boolean }> {
    const controller = new AbortController();
    controllers.push(controller);
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const response = await fetch(`${fake.url}${path}`, { signal: controller.signal });
    const events: WatchEvent[] = [];
    let buffer = '';
    let ended = false;
    try {
      const reader = response.body?.getReader();
      while (reader !== undefined && events.length < count) {
        const { done, value } = await reader.read();
        if (done) {
          ended = true;
          break;
        }
        buffer += new TextDecoder().decode(value);
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) if (line !== '') events.push(JSON.parse(line) as WatchEvent);
      }
    } catch {
      // aborted at the timeout
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    return { events, ended };
  }

  it('lists with the current resourceVersion and leaves apiVersion and kind off built-in items', async () => {
    fake.create(service('b'));
    fake.create(service('a'));
    const { status, body } = await get('/api/v1/services');
    expect(status).toBe(200);
    expect(body['kind']).toBe('ServiceList');
    expect(body['metadata']).toEqual({ resourceVersion: '2' });
    const items = body['items'] as KubeObject[];
    expect(items.map((i) => i.metadata.name)).toEqual(['a', 'b']);
    expect(items[0]?.kind).toBeUndefined();
    expect(items[0]?.metadata['resourceVersion']).toBe('2');
  });

  it('keeps apiVersion and kind on custom resource list items', async () => {
    fake.create({ apiVersion: 'security.tsmesh.io/v1', kind: 'PeerAuthentication', metadata: { name: 'pa', namespace: 'shop' }, spec: {} });
    const { body } = await get('/apis/security.tsmesh.io/v1/namespaces/shop/peerauthentications');
    expect((body['items'] as KubeObject[])[0]?.kind).toBe('PeerAuthentication');
  });

  it('lists one namespace, and pages with limit and continue', async () => {
    for (const name of ['a', 'b', 'c']) fake.create(service(name, 'shop'));
    fake.create(service('x', 'other'));
    const first = await get('/api/v1/namespaces/shop/services?limit=2');
    const meta = first.body['metadata'] as { continue?: string; resourceVersion: string };
    expect((first.body['items'] as KubeObject[]).map((i) => i.metadata.name)).toEqual(['a', 'b']);
    fake.create(service('d', 'shop'));
    const second = await get(`/api/v1/namespaces/shop/services?limit=2&continue=${meta.continue ?? ''}`);
    expect((second.body['items'] as KubeObject[]).map((i) => i.metadata.name)).toEqual(['c']);
    expect(second.body['metadata']).toEqual({ resourceVersion: meta.resourceVersion });
  });

  it('answers an expired continue token with 410 Gone', async () => {
    for (const name of ['a', 'b']) fake.create(service(name));
    const first = await get('/api/v1/services?limit=1');
    fake.compact();
    const token = (first.body['metadata'] as { continue: string }).continue;
    const second = await get(`/api/v1/services?limit=1&continue=${token}`);
    expect(second.status).toBe(410);
    expect(second.body['reason']).toBe('Expired');
  });

  it('watches from a resourceVersion, replaying later changes then streaming new ones', async () => {
    fake.create(service('a'));
    const rv = fake.resourceVersion;
    fake.update({ ...service('a'), spec: { clusterIP: '10.0.0.2', ports: [{ port: 81 }] } });
    const watching = watch(`/api/v1/services?watch=true&resourceVersion=${rv}`, 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    fake.create(service('b'));
    fake.delete(service('a'));
    const { events } = await watching;
    expect(events.map((e) => [e.type, e.object.metadata.name, e.object.metadata['resourceVersion']])).toEqual([
      ['MODIFIED', 'a', '2'],
      ['ADDED', 'b', '3'],
      ['DELETED', 'a', '4'],
    ]);
    expect(events[0]?.object.kind).toBe('Service');
  });

  it('starts a watch without a resourceVersion with the current objects as ADDED', async () => {
    fake.create(service('a'));
    const { events } = await watch('/api/v1/services?watch=true', 1);
    expect(events.map((e) => e.type)).toEqual(['ADDED']);
  });

  it('answers a watch from a compacted resourceVersion with a 410 Expired ERROR event and ends it', async () => {
    fake.create(service('a'));
    fake.create(service('b'));
    fake.compact();
    fake.create(service('c'));
    const { events, ended } = await watch('/api/v1/services?watch=true&resourceVersion=1', 5);
    expect(ended).toBe(true);
    expect(events).toHaveLength(1);
    expect(events[0]?.type).toBe('ERROR');
    expect(events[0]?.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
  });

  it('turns changes into ADDED and DELETED as objects start and stop matching a selector', async () => {
    fake.create(service('a', 'default', { app: 'web' }));
    const rv = fake.resourceVersion;
    const watching = watch(`/api/v1/services?watch=true&resourceVersion=${rv}&labelSelector=app%3Dweb`, 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    fake.update(service('a', 'default', { app: 'api' }));
    fake.update(service('a', 'default', { app: 'web' }));
    const { events } = await watching;
    expect(events.map((e) => e.type)).toEqual(['DELETED', 'ADDED']);
  });

  it('sends bookmarks with the latest resourceVersion to watches that allow them', async () => {
    await fake.close();
    fake = await FakeApiServer.start({ bookmarkIntervalMs: 20 });
    fake.create(service('a'));
    fake.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
    const { events } = await watch('/api/v1/services?watch=true&resourceVersion=2&allowWatchBookmarks=true', 1);
    expect(events[0]).toEqual({ type: 'BOOKMARK', object: { kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: '2' } } });
  });

  it('ends open watches on dropWatches', async () => {
    const watching = watch('/api/v1/pods?watch=true', 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.watchCount('pods')).toBe(1);
    expect(fake.dropWatches()).toBe(1);
    expect((await watching).ended).toBe(true);
    expect(fake.watchCount()).toBe(0);
  });

  it('answers 404 for a custom resource that is not installed, until it is', async () => {
    await fake.close();
    fake = await FakeApiServer.start({ absent: ['httproutes'] });
    expect((await get('/apis/gateway.networking.k8s.io/v1/httproutes')).status).toBe(404);
    fake.install('httproutes');
    expect((await get('/apis/gateway.networking.k8s.io/v1/httproutes')).status).toBe(200);
  });

  it('requires the bearer token when one is set', async () => {
    await fake.close();
    fake = await FakeApiServer.start({ token: 'secret' });
    expect((await get('/api/v1/pods')).status).toBe(401);
    expect((await get('/api/v1/pods', { headers: { authorization: 'Bearer secret' } })).status).toBe(200);
  });

  it('fails matching requests as often as told, and logs every request', async () => {
    fake.fail({ path: '/api/v1/pods', status: 500, times: 2 });
    expect((await get('/api/v1/pods')).status).toBe(500);
    expect((await get('/api/v1/pods')).status).toBe(500);
    expect((await get('/api/v1/pods')).status).toBe(200);
    expect(fake.requestsFor('/api/v1/pods').map((r) => r.status)).toEqual([500, 500, 200]);
  });

  it('creates objects posted to a collection, such as Events', async () => {
    const { status, body } = await get('/api/v1/namespaces/shop/events', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { generateName: 'web.' }, reason: 'Test' }),
    });
    expect(status).toBe(201);
    expect(body['kind']).toBe('Event');
    expect(fake.list('events', 'shop')).toHaveLength(1);
  });

  it('refuses new objects in a namespace being deleted with 403, as NamespaceLifecycle does', async () => {
    fake.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'leaving', deletionTimestamp: '2026-01-01T00:00:00Z' }, status: { phase: 'Terminating' } });
    fake.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'staying' } });
    const post = (ns: string) =>
      get(`/api/v1/namespaces/${ns}/configmaps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ metadata: { name: 'roots' }, data: {} }) });
    const refused = await post('leaving');
    expect(refused.status).toBe(403);
    expect(refused.body['message']).toBe('unable to create new content in namespace leaving because it is being terminated');
    expect((await post('staying')).status).toBe(201);
    expect(fake.list('configmaps').map((cm) => cm.metadata.namespace)).toEqual(['staying']);
  });
});

describe('FakeApiServer status subresource', () => {
  let fake: FakeApiServer;
  const controllers: AbortController[] = [];
  const ROUTES = '/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes';
  const httpRoute = (): KubeObject => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'canary', namespace: 'shop' },
    spec: { parentRefs: [{ kind: 'Service', name: 'web' }] },
  });

  beforeEach(async () => {
    fake = await FakeApiServer.start();
  });

  afterEach(async () => {
    for (const controller of controllers.splice(0)) controller.abort();
    await fake.close();
  });

  async function send(method: string, path: string, body: unknown, contentType = 'application/json'): Promise<{ status: number; body: KubeObject }> {
    const response = await fetch(`${fake.url}${path}`, { method, headers: { 'Content-Type': contentType }, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as KubeObject };
  }

  /** The first `count` lines of a watch from resourceVersion `from`. */
  async function events(from: number, count: number): Promise<{ type: string; object: KubeObject }[]> {
    const controller = new AbortController();
    controllers.push(controller);
    const response = await fetch(`${fake.url}${ROUTES}?watch=true&resourceVersion=${from}`, { signal: controller.signal });
    const reader = response.body?.getReader();
    let text = '';
    while (reader !== undefined && text.split('\n').filter((l) => l !== '').length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { type: string; object: KubeObject });
  }

  it('replaces only the status on PUT, bumping resourceVersion but not generation, and tells the watches', async () => {
    const created = fake.create(httpRoute());
    const from = fake.resourceVersion;
    const put = await send('PUT', `${ROUTES}/canary/status`, { ...created, spec: { changed: true }, status: { parents: [] } });
    expect(put.status).toBe(200);
    expect(put.body['spec']).toEqual(created['spec']);
    expect(put.body['status']).toEqual({ parents: [] });
    expect(put.body.metadata['generation']).toBe(1);
    expect(Number(put.body.metadata['resourceVersion'])).toBeGreaterThan(Number(created.metadata['resourceVersion']));
    const [event] = await events(from, 1);
    expect(event?.type).toBe('MODIFIED');
    expect(event?.object['status']).toEqual({ parents: [] });
  });

  it('answers 409 Conflict to a PUT with a stale resourceVersion', async () => {
    const created = fake.create(httpRoute());
    fake.updateStatus({ ...created, status: { parents: [] } });
    const put = await send('PUT', `${ROUTES}/canary/status`, { ...created, status: { parents: [{ controllerName: 'x' }] } });
    expect(put.status).toBe(409);
    expect(put.body['reason']).toBe('Conflict');
  });

  it('merges a PATCH into the status', async () => {
    const created = fake.create(httpRoute());
    fake.updateStatus({ ...created, status: { parents: [], other: 'kept' } });
    const patched = await send('PATCH', `${ROUTES}/canary/status`, { status: { parents: [{ controllerName: 'x' }] } }, 'application/merge-patch+json');
    expect(patched.status).toBe(200);
    expect(patched.body['status']).toEqual({ parents: [{ controllerName: 'x' }], other: 'kept' });
  });

  it('keeps the status when the object itself is written, bumping generation only for a spec change', () => {
    const created = fake.create(httpRoute());
    fake.updateStatus({ ...created, status: { parents: [] } });
    const relabelled = fake.update({ ...httpRoute(), metadata: { ...httpRoute().metadata, labels: { a: 'b' } } });
    expect(relabelled['status']).toEqual({ parents: [] });
    expect(relabelled.metadata['generation']).toBe(1);
    const changed = fake.update({ ...httpRoute(), spec: { parentRefs: [] } });
    expect(changed.metadata['generation']).toBe(2);
    expect(changed['status']).toEqual({ parents: [] });
  });

  it('serves no status subresource for kinds without one', async () => {
    fake.create(service('web'));
    const put = await send('PUT', '/api/v1/namespaces/default/services/web/status', { status: {} });
    expect(put.status).toBe(404);
  });
});

describe('selectors', () => {
  const object = { metadata: { labels: { app: 'web', tier: 'front' } }, status: { phase: 'Running' }, spec: {} };

  it.each([
    ['app=web', true],
    ['app==web,tier=front', true],
    ['app!=web', false],
    ['app', true],
    ['!app', false],
    ['missing', false],
    ['app in (api, web)', true],
    ['app notin (api,web)', false],
  ])('reads the label selector %s', (selector, expected) => {
    expect(parseLabelSelector(selector)(object)).toBe(expected);
  });

  it.each([
    ['status.phase=Running', true],
    ['status.phase!=Succeeded,status.phase!=Failed', true],
    ['spec.hostNetwork=false', true],
    ['status.phase==Failed', false],
  ])('reads the field selector %s', (selector, expected) => {
    expect(parseFieldSelector(selector)(object)).toBe(expected);
  });

  it('refuses a selector it cannot read', () => {
    expect(() => parseLabelSelector('a b c')).toThrow('unable to parse');
  });
});

describe('FakeApiServer: what tsmesh check and proxy-status use', () => {
  let fake: FakeApiServer;
  beforeEach(async () => {
    fake = await FakeApiServer.start();
  });
  afterEach(() => fake.close());

  it('answers GET /version with the version a test sets', async () => {
    fake.version = { major: '1', minor: '24', gitVersion: 'v1.24.3' };
    expect(await (await fetch(`${fake.url}/version`)).json()).toMatchObject({ major: '1', minor: '24', gitVersion: 'v1.24.3' });
  });

  it('answers SelfSubjectAccessReviews with the test authorizer', async () => {
    fake.authorize = (a) => a.resource !== 'secrets';
    const ask = async (resource: string): Promise<unknown> => {
      const response = await fetch(`${fake.url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ spec: { resourceAttributes: { verb: 'create', resource } } }),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { status: { allowed: boolean } }).status.allowed;
    };
    expect(await ask('deployments')).toBe(true);
    expect(await ask('secrets')).toBe(false);
  });

  it('serves cluster-scoped CRDs and webhook configurations, and namespaced Deployments', async () => {
    fake.create({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'a.b.io' } });
    fake.create({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'ns' }, status: { readyReplicas: 1 } });
    expect((await fetch(`${fake.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/a.b.io`)).status).toBe(200);
    expect((await fetch(`${fake.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/c.d.io`)).status).toBe(404);
    expect((await fetch(`${fake.url}/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations`)).status).toBe(200);
    expect(await (await fetch(`${fake.url}/apis/apps/v1/namespaces/ns/deployments/d`)).json()).toMatchObject({ status: { readyReplicas: 1 } });
  });
});
