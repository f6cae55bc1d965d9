// The proxy's balancer registry is the source of truth for algorithm names: the mesh model passes
// any name through (common warns about names it does not list), and the registry falls back.
import { describe, expect, it } from '@jest/globals';
import * as common from '@tsmesh/common';
import { buildSnapshot, type KubeObject } from '@tsmesh/common';
import * as proxy from '@tsmesh/proxy';

const service = (annotations: Record<string, string>, extra: KubeObject[] = []): KubeObject[] => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', annotations }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] } },
  ...extra,
];

describe('load-balancer names', () => {
  it("lists in common exactly the algorithms the proxy's registry provides, with the same default", () => {
    expect([...common.LOAD_BALANCERS].sort()).toEqual([...proxy.loadBalancerNames()].sort());
    expect(common.DEFAULT_LOAD_BALANCER).toBe(proxy.DEFAULT_LOAD_BALANCER);
  });

  it.each([
    ['the Service annotation', service({ 'tsmesh.io/load-balancer': 'maglev' })],
    [
      'a TrafficPolicy',
      service({}, [
        {
          apiVersion: 'policy.tsmesh.io/v1alpha1',
          kind: 'TrafficPolicy',
          metadata: { name: 'p', namespace: 'shop' },
          spec: { targetRefs: [{ group: '', kind: 'Service', name: 'web' }], loadBalancer: { algorithm: 'maglev' } },
        },
      ]),
    ],
  ])('carries an unknown name from %s to the registry, which falls back to the default with TSMESH_ERR_UNKNOWN_LOAD_BALANCER', (_from, objects) => {
    const snapshot = buildSnapshot(objects);
    const web = snapshot.service('shop', 'web');
    const port = web?.ports[0];
    if (web === undefined || port === undefined) throw new Error('the Service was left out of the mesh');
    const algorithm = snapshot.trafficPolicyFor(web, port).loadBalancer.algorithm;
    expect(algorithm).toBe('maglev');
    const resolved = proxy.resolveLoadBalancer(algorithm);
    expect(resolved.factory.name).toBe(proxy.DEFAULT_LOAD_BALANCER);
    expect(resolved.warning?.code).toBe('TSMESH_ERR_UNKNOWN_LOAD_BALANCER');
  });
});
