import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, type KubeObject } from '@tsmesh/common';
import { pino } from 'pino';
import { KubernetesSource } from '../kube/kubernetes.js';
import { eventually, pause } from '../testing/eventually.js';
import { FakeApiServer } from '../testing/fake-apiserver.js';
import { namespace } from '../testing/fixtures.js';
import { TRUST_BUNDLE_LABELS, TrustBundlePublisher, type TrustBundlePublisherOptions } from './publisher.js';

const silent = pino({ level: 'silent' });
const ROOT_A = '-----BEGIN CERTIFICATE-----\nroot A\n-----END CERTIFICATE-----\n';
const ROOT_B = '-----BEGIN CERTIFICATE-----\nroot B\n-----END CERTIFICATE-----\n';

interface LogLine {
  level: number;
  msg: string;
  namespace?: string;
}

const configMapPath = (ns: string): string => `/api/v1/namespaces/${ns}/configmaps/${TRUST_BUNDLE_CONFIGMAP}`;

describe('TrustBundlePublisher', () => {
  let fake: FakeApiServer;
  let source: KubernetesSource | undefined;
  let publisher: TrustBundlePublisher | undefined;
  let logs: LogLine[];

  beforeEach(async () => {
    fake = await FakeApiServer.start({ bookmarkIntervalMs: 100 });
    for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease', 'tsmesh-system', 'shop']) fake.create(namespace(name));
    logs = [];
  });

  afterEach(async () => {
    await publisher?.close();
    await source?.close();
    publisher = undefined;
    source = undefined;
    await fake.close();
  });

  async function start(bundle = ROOT_A, options: TrustBundlePublisherOptions = {}): Promise<TrustBundlePublisher> {
    source = new KubernetesSource(fake.kubeConfig(), { debounceMs: 10, backoff: { initialMs: 20, maxMs: 200 }, syncTimeoutMs: 5000, log: silent });
    const first = await source.start();
    if (!first.ok) throw first.error;
    const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    publisher = new TrustBundlePublisher(source, fake.kubeConfig(), bundle, { debounceMs: 10, backoff: { initialMs: 20, maxMs: 200 }, log, ...options });
    publisher.start();
    return publisher;
  }

  const held = (ns: string): KubeObject | undefined => fake.list('configmaps', ns).find((cm) => cm.metadata.name === TRUST_BUNDLE_CONFIGMAP);
  const bundleIn = (ns: string): unknown => (held(ns)?.['data'] as Record<string, unknown> | undefined)?.[TRUST_BUNDLE_KEY];
  /** Writes the API server took (a stale one, refused with 409, changes nothing and is not counted). */
  const writes = (ns: string): number =>
    [...fake.requestsFor(`/api/v1/namespaces/${ns}/configmaps`), ...fake.requestsFor(configMapPath(ns))].filter(
      (r) => (r.method === 'POST' || r.method === 'PUT') && r.status < 300,
    ).length;

  async function published(namespaces: readonly string[], bundle = ROOT_A): Promise<void> {
    await eventually(() => namespaces.every((ns) => bundleIn(ns) === bundle), `the bundle in ${namespaces.join(', ')}`);
  }

  it('publishes the bundle in every namespace but kube-system, kube-public and kube-node-lease', async () => {
    const p = await start();
    await published(['default', 'tsmesh-system', 'shop']);
    for (const ns of ['kube-system', 'kube-public', 'kube-node-lease']) expect(held(ns)).toBeUndefined();
    const shop = held('shop');
    expect(shop?.metadata.labels).toEqual(TRUST_BUNDLE_LABELS);
    expect(shop?.['data']).toEqual({ [TRUST_BUNDLE_KEY]: ROOT_A });
    await eventually(() => p.status().current === 3 && p.status(), 'status counts them');
    expect(p.status()).toEqual({ namespaces: 3, current: 3, watching: true, lastError: undefined });
  });

  it('gives a namespace created later its ConfigMap, and leaves a terminating one alone', async () => {
    await start();
    await published(['shop']);
    fake.create(namespace('payments'));
    fake.create({ ...namespace('leaving'), metadata: { name: 'leaving', deletionTimestamp: new Date().toISOString() }, status: { phase: 'Terminating' } });
    await published(['payments']);
    await pause(150);
    expect(held('leaving')).toBeUndefined();
    expect(writes('leaving')).toBe(0);
  });

  it('puts back a ConfigMap someone deleted, and a bundle someone edited, keeping their other keys and labels', async () => {
    await start();
    await published(['shop', 'default']);
    fake.delete({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: TRUST_BUNDLE_CONFIGMAP, namespace: 'shop' } });
    const edited = held('default') as KubeObject;
    fake.update({
      ...edited,
      metadata: { ...edited.metadata, labels: { ...edited.metadata.labels, team: 'a' } },
      data: { [TRUST_BUNDLE_KEY]: 'tampered', 'extra.txt': 'kept' },
    });
    await published(['shop', 'default']);
    expect(held('default')?.['data']).toEqual({ [TRUST_BUNDLE_KEY]: ROOT_A, 'extra.txt': 'kept' });
    expect(held('default')?.metadata.labels?.['team']).toBe('a');
  });

  it('writes nothing where the ConfigMap already holds the bundle (the chart made it, or an earlier run did)', async () => {
    fake.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: TRUST_BUNDLE_CONFIGMAP, namespace: 'tsmesh-system', labels: { 'helm.sh/chart': 'tsmesh' } }, data: { [TRUST_BUNDLE_KEY]: ROOT_A } });
    const before = held('tsmesh-system')?.metadata['resourceVersion'];
    await start();
    await published(['default', 'shop']);
    await publisher?.settled();
    await pause(100);
    expect(writes('tsmesh-system')).toBe(0);
    expect(held('tsmesh-system')?.metadata['resourceVersion']).toBe(before);
    expect(writes('shop')).toBe(1);
  });

  it('a new bundle (root rotation) reaches every namespace', async () => {
    const p = await start();
    await published(['default', 'tsmesh-system', 'shop']);
    const both = `${ROOT_A}${ROOT_B}`;
    p.setBundle(both);
    await published(['default', 'tsmesh-system', 'shop'], both);
    p.setBundle(ROOT_B);
    await published(['default', 'tsmesh-system', 'shop'], ROOT_B);
    expect(writes('shop')).toBe(3);
  });

  it('retries a refused write with backoff, naming the permission it lacks', async () => {
    fake.fail({ method: 'POST', path: '/api/v1/namespaces/shop/configmaps', status: 403, times: 2 });
    await start();
    await published(['shop', 'default']);
    const refusals = logs.filter((l) => l.msg.includes('cannot write the trust bundle ConfigMap') && l.namespace === 'shop');
    expect(refusals).toHaveLength(2);
    expect(refusals[0]?.msg).toContain(`grant create on configmaps and update on configmaps named ${TRUST_BUNDLE_CONFIGMAP}`);
    expect(logs.some((l) => l.msg === 'some trust bundle ConfigMaps could not be written; retrying')).toBe(true);
  });

  it('when the ConfigMaps cannot be listed it says which permissions it needs, keeps trying, and publishes once allowed', async () => {
    fake.fail({ path: '/api/v1/configmaps', watch: false, status: 403, times: 3 });
    const p = await start();
    await eventually(() => logs.find((l) => l.level === 50 && l.msg.startsWith('cannot watch the trust bundle ConfigMaps')), 'the error');
    expect(logs.find((l) => l.level === 50)?.msg).toContain(`grant list, watch and update on configmaps named ${TRUST_BUNDLE_CONFIGMAP}, and create on configmaps`);
    expect(p.status().lastError).toMatch(/403/);
    await published(['default', 'tsmesh-system', 'shop']);
    // Only ConfigMaps of that one name were ever asked for: what RBAC with resourceNames allows.
    const lists = fake.requestsFor('/api/v1/configmaps');
    expect(lists.length).toBeGreaterThan(3);
    for (const request of lists) expect(request.query['fieldSelector']).toBe(`metadata.name=${TRUST_BUNDLE_CONFIGMAP}`);
  });

  it('a ConfigMap written concurrently by someone else (409) is compared again, not overwritten blindly', async () => {
    fake.fail({ method: 'POST', path: '/api/v1/namespaces/shop/configmaps', status: 409, times: 1 });
    await start();
    await published(['shop']);
    expect(logs.some((l) => l.msg === 'trust bundle ConfigMap changed meanwhile; comparing again' && l.namespace === 'shop')).toBe(true);
  });

  it('writes nothing after close()', async () => {
    const p = await start();
    await published(['shop']);
    await p.close();
    fake.create(namespace('late'));
    await pause(200);
    expect(held('late')).toBeUndefined();
  });
});
