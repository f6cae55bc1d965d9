import { describe, expect, it } from '@jest/globals';
import { buildSnapshot, type KubeObject } from '@tsmesh/common';
import { UpstreamManager } from '../upstream/manager.js';
import { SharedCounts, sharedCountsBuffer } from '../upstream/shared-counts.js';
import { callerZone, ZONE_LABEL } from './locality.js';

const service = (annotations: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop', annotations },
  spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
});

interface Ep {
  ip: string;
  zone?: string;
  ready?: boolean;
}

const slice = (endpoints: readonly Ep[]): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080 }],
  endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true }, ...(e.zone === undefined ? {} : { zone: e.zone }) })),
});

const pod = (ip: string, labels: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'client', namespace: 'shop', labels },
  spec: { serviceAccountName: 'client' },
  status: { podIP: ip },
});

const ENDPOINTS: readonly Ep[] = [
  { ip: '10.0.0.1', zone: 'a' },
  { ip: '10.0.0.2', zone: 'a' },
  { ip: '10.0.0.3', zone: 'b' },
];

describe('callerZone', () => {
  const snapshot = buildSnapshot([service(), slice([...ENDPOINTS, { ip: '10.0.9.9', zone: 'c' }]), pod('10.0.8.8', { [ZONE_LABEL]: 'b' })]);

  it('takes --zone / TSMESH_ZONE first', () => {
    expect(callerZone(snapshot, { zone: 'x', podIp: '10.0.8.8' })).toBe('x');
  });

  it("takes the pod's topology.kubernetes.io/zone label", () => {
    expect(callerZone(snapshot, { zone: undefined, podIp: '10.0.8.8' })).toBe('b');
  });

  it('takes the zone an EndpointSlice gives the pod IP', () => {
    expect(callerZone(snapshot, { zone: undefined, podIp: '10.0.9.9' })).toBe('c');
  });

  it('knows no zone for an IP the mesh does not place, or without a pod IP', () => {
    expect(callerZone(snapshot, { zone: undefined, podIp: '10.0.7.7' })).toBeUndefined();
    expect(callerZone(snapshot, { zone: undefined, podIp: undefined })).toBeUndefined();
  });
});

describe('Service clusters with a caller zone', () => {
  function localityOf(objects: KubeObject[], zone: string | undefined) {
    const upstream = new UpstreamManager({ locality: { zoneOf: () => zone } });
    upstream.update(buildSnapshot(objects));
    const view = upstream.stats()[0];
    upstream.close();
    return view?.locality;
  }

  it('prefers the caller zone, with every pick local while the zone is whole', () => {
    expect(localityOf([service(), slice(ENDPOINTS)], 'a')).toEqual({ zone: 'a', mode: 'zone', localShare: 1 });
  });

  it('does not prefer a zone for a Service annotated tsmesh.io/locality: off, or without a caller zone', () => {
    expect(localityOf([service({ 'tsmesh.io/locality': 'off' }), slice(ENDPOINTS)], 'a')).toBeUndefined();
    expect(localityOf([service(), slice(ENDPOINTS)], undefined)).toBeUndefined();
  });

  it('counts local endpoints that are not ready against the zone, and fails over when none is ready', () => {
    const degraded = [...ENDPOINTS, { ip: '10.0.0.4', zone: 'a', ready: false }, { ip: '10.0.0.5', zone: 'a', ready: false }];
    expect(localityOf([service(), slice(degraded)], 'a')?.localShare).toBeCloseTo((2 / 4) * 1.4);
    const down = ENDPOINTS.map((e) => (e.zone === 'a' ? { ...e, ready: false } : e));
    expect(localityOf([service(), slice(down)], 'a')?.localShare).toBe(0);
  });

  it('counts picks in the tally the metrics hand out', () => {
    const tally = { local: 0, crossZone: 0 };
    const upstream = new UpstreamManager({ locality: { zoneOf: () => 'b', tally: () => tally } });
    upstream.update(buildSnapshot([service(), slice(ENDPOINTS)]));
    const entry = upstream.clusters.get(upstream.stats()[0]?.cluster ?? '');
    expect(entry).toBeDefined();
    for (let i = 0; i < 5; i++) {
      const picked = entry?.cluster.pick();
      if (picked?.ok) picked.value.release();
    }
    upstream.close();
    expect(tally).toEqual({ local: 5, crossZone: 0 });
  });

  it("shows on every event loop's /clusters the failover that ejections on another loop caused", () => {
    const buffer = sharedCountsBuffer(2);
    const loops = [0, 1].map((loop) => new UpstreamManager({ shared: new SharedCounts(buffer, loop), locality: { zoneOf: () => 'a' } }));
    const snapshot = buildSnapshot([service(), slice(ENDPOINTS)]);
    for (const loop of loops) loop.update(snapshot);
    const [first, second] = loops as [UpstreamManager, UpstreamManager];
    const cluster = first.clusters.get(first.stats()[0]?.cluster ?? '')?.cluster;
    cluster?.reportFailure('10.0.0.1:8080');
    cluster?.reportFailure('10.0.0.2:8080');
    expect(first.stats()[0]?.locality?.localShare).toBe(0);
    // The second loop has picked nothing since: its view still follows the shared ejections.
    expect(second.stats()[0]?.locality?.localShare).toBe(0);
    for (const loop of loops) loop.close();
  });
});
