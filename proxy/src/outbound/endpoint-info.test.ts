import { describe, expect, test } from '@jest/globals';
import { buildSnapshot, type KubeObject, type MeshEndpoint, type ServicePort } from '@tsmesh/common';
import { endpointInfo } from './endpoint-info.js';

const PORT: ServicePort = { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', declaredProtocol: undefined };

function pod(name: string, ip: string, meshed: boolean, labels: Record<string, string> = { app: name }): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', labels, annotations: meshed ? { 'tsmesh.io/status': '{}' } : {} },
    spec: { serviceAccountName: `${name}-sa`, containers: [{ name: 'app', image: 'x' }] },
    status: { podIP: ip, podIPs: [{ ip }] },
  };
}

function disable(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'security.tsmesh.io/v1', kind: 'PeerAuthentication', metadata: { name, namespace: 'shop' }, spec };
}

function endpoint(address: string, port: number, podName?: string): MeshEndpoint {
  return { address, port, ready: true, serving: true, terminating: false, pod: podName ? { namespace: 'shop', name: podName } : undefined };
}

describe('endpointInfo', () => {
  const info = endpointInfo('cluster.local', 'tsmesh-system');

  test('expects the SPIFFE ID of a meshed pod, found by its targetRef or by its IP', () => {
    const snapshot = buildSnapshot([pod('web', '10.1.0.1', true)]);
    const expected = { identity: 'spiffe://cluster.local/ns/shop/sa/web-sa', peer: { workload: 'web', namespace: 'shop', identity: 'spiffe://cluster.local/ns/shop/sa/web-sa', app: 'web' } };
    expect(info(snapshot, endpoint('10.1.0.1', 8080, 'web'), PORT)).toEqual(expected);
    expect(info(snapshot, endpoint('10.1.0.1', 8080), PORT)).toEqual(expected);
  });

  test('sends plaintext (no expected identity) to a pod without a sidecar, and nothing is known of an unknown address', () => {
    const snapshot = buildSnapshot([pod('legacy', '10.1.0.2', false)]);
    expect(info(snapshot, endpoint('10.1.0.2', 8080), PORT)).toEqual({ peer: { workload: 'legacy', namespace: 'shop', identity: 'spiffe://cluster.local/ns/shop/sa/legacy-sa', app: 'legacy' } });
    expect(info(snapshot, endpoint('10.9.9.9', 8080), PORT)).toEqual({});
  });

  test("sends plaintext to a meshed pod whose PeerAuthentication DISABLEs mTLS, on exactly the ports it covers", () => {
    const snapshot = buildSnapshot([
      pod('web', '10.1.0.1', true),
      pod('api', '10.1.0.3', true),
      disable('web-port', { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '9090': { mode: 'DISABLE' } } }),
      disable('api-off', { selector: { matchLabels: { app: 'api' } }, mtls: { mode: 'DISABLE' } }),
    ]);
    expect(info(snapshot, endpoint('10.1.0.1', 8080), PORT).identity).toBe('spiffe://cluster.local/ns/shop/sa/web-sa');
    expect(info(snapshot, endpoint('10.1.0.1', 9090), PORT).identity).toBeUndefined();
    expect(info(snapshot, endpoint('10.1.0.3', 8080), PORT).identity).toBeUndefined();
  });

  test('reads each snapshot on its own: a policy added in a later snapshot applies there', () => {
    const before = buildSnapshot([pod('web', '10.1.0.1', true)]);
    const after = buildSnapshot([pod('web', '10.1.0.1', true), disable('all-off', { mtls: { mode: 'DISABLE' } })]);
    expect(info(before, endpoint('10.1.0.1', 8080), PORT).identity).toBeDefined();
    expect(info(after, endpoint('10.1.0.1', 8080), PORT).identity).toBeUndefined();
    expect(info(before, endpoint('10.1.0.1', 8080), PORT).identity).toBeDefined();
  });
});
