import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { buildSnapshot, parseMeshFile, validateObject, type KubeObject, type MeshSnapshot } from '@tsmesh/common';
import { projectSnapshot } from './project.js';

const sampleText = readFileSync(new URL('../../../common/src/mesh/testdata/sample-mesh.yaml', import.meta.url), 'utf8');

function sampleObjects(): KubeObject[] {
  const parsed = parseMeshFile(sampleText, 'sample-mesh.yaml');
  if (!parsed.ok) throw parsed.error;
  return parsed.value;
}

const meta = (name: string, extra: Record<string, unknown> = {}): KubeObject['metadata'] => ({ name, namespace: 'shop', ...extra });

/** Shapes the model must carry through the wire form unchanged. */
const edgeCases: KubeObject[] = [
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta('multi', { annotations: { 'tsmesh.io/load-balancer': 'ring-hash', 'kubectl.kubernetes.io/last-applied-configuration': '{"huge":true}' } }),
    spec: {
      clusterIP: '10.96.1.1',
      clusterIPs: ['10.96.1.1', 'fd00::1'],
      selector: { app: 'multi' },
      ports: [
        { name: 'web', port: 80, targetPort: 'http', appProtocol: 'kubernetes.io/h2c' },
        { name: 'grpc-api', port: 9090, targetPort: 9090 },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    },
  },
  { apiVersion: 'v1', kind: 'Service', metadata: meta('headless'), spec: { clusterIP: 'None', selector: { app: 'db' }, ports: [{ port: 5432 }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: meta('external'), spec: { type: 'ExternalName', externalName: 'example.com' } },
  { apiVersion: 'v1', kind: 'Service', metadata: meta('unallocated'), spec: { ports: [{ port: 81, targetPort: 8081 }] } },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: meta('multi-v4', { labels: { 'kubernetes.io/service-name': 'multi' } }),
    addressType: 'IPv4',
    ports: [{ name: 'web', port: 8080 }, { name: 'grpc-api', port: 9090 }, { name: 'dns', port: 53, protocol: 'UDP' }],
    endpoints: [
      { addresses: ['10.1.0.1'], targetRef: { kind: 'Pod', name: 'multi-a' }, nodeName: 'n1', zone: 'z1', hints: { forZones: [{ name: 'z1' }, { name: 'z2' }] } },
      { addresses: ['10.1.0.2'], conditions: { ready: false, serving: true, terminating: true }, targetRef: { kind: 'Pod', name: 'multi-b' } },
      { addresses: ['10.1.0.3'], conditions: { ready: false } },
    ],
  },
  {
    // Another pod template names the container port `http` differently.
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: meta('multi-v4-other', { labels: { 'kubernetes.io/service-name': 'multi' } }),
    addressType: 'IPv4',
    ports: [{ name: 'web', port: 8081 }],
    endpoints: [{ addresses: ['10.1.0.4'], targetRef: { kind: 'Pod', name: 'multi-c' } }],
  },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: meta('multi-v6', { labels: { 'kubernetes.io/service-name': 'multi' } }),
    addressType: 'IPv6',
    ports: [{ name: 'web', port: 8080 }],
    endpoints: [{ addresses: ['fd00::a'], targetRef: { kind: 'Pod', name: 'multi-a' } }],
  },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: meta('headless-x', { labels: { 'kubernetes.io/service-name': 'headless' } }),
    addressType: 'IPv4',
    ports: [{ port: 5432 }],
    endpoints: [{ addresses: ['10.1.1.1'], targetRef: { kind: 'Pod', name: 'db-0' } }],
  },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: meta('unallocated-fqdn', { labels: { 'kubernetes.io/service-name': 'unallocated' } }),
    addressType: 'FQDN',
    ports: [{ port: 8081 }],
    endpoints: [{ addresses: ['db.example.com'] }],
  },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta('multi-a', { labels: { app: 'multi' }, annotations: { 'tsmesh.io/status': '{"v":1}' }, uid: 'u1', resourceVersion: '7' }),
    spec: { serviceAccountName: 'multi', containers: [{ name: 'app', image: 'multi:1', env: [{ name: 'TOKEN', value: 'secret' }] }], volumes: [{ name: 'v' }] },
    status: { phase: 'Running', podIP: '10.1.0.1', podIPs: [{ ip: '10.1.0.1' }, { ip: 'fd00::a' }], conditions: [{ type: 'Ready', status: 'True' }] },
  },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta('multi-b', { labels: { app: 'multi' } }),
    spec: { serviceAccount: 'legacy', containers: [{ name: 'app' }, { name: 'tsmesh-proxy' }] },
    status: { podIP: '10.1.0.2' },
  },
  // No status IPs yet: found by the address its slice gives it.
  { apiVersion: 'v1', kind: 'Pod', metadata: meta('multi-c', { labels: { app: 'multi' } }), spec: { containers: [{ name: 'app' }] } },
  { apiVersion: 'v1', kind: 'Pod', metadata: meta('node-agent'), spec: { hostNetwork: true, containers: [{ name: 'agent' }] }, status: { podIP: '192.168.0.5' } },
  { apiVersion: 'v1', kind: 'Pod', metadata: meta('db-0', { labels: { app: 'db' } }), spec: { containers: [{ name: 'db' }] }, status: { podIP: '10.1.1.1' } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'tsmesh-injection': 'enabled' }, uid: 'n1' } },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('multi') },
  {
    apiVersion: 'security.tsmesh.io/v1',
    kind: 'PeerAuthentication',
    metadata: meta('strict', { creationTimestamp: '2024-01-02T03:04:05Z', resourceVersion: '9', managedFields: [{}] }),
    spec: { selector: { matchLabels: { app: 'multi' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '9090': { mode: 'PERMISSIVE' } } },
    status: { whatever: true },
  },
  // Two policies on one port: only their creationTimestamps say which wins.
  {
    apiVersion: 'policy.tsmesh.io/v1alpha1',
    kind: 'TrafficPolicy',
    metadata: meta('pool-new', { creationTimestamp: '2025-01-01T00:00:00Z', resourceVersion: '11' }),
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'multi', sectionName: 'web' }], connectionPool: { maxConnections: 2 }, loadBalancer: { algorithm: 'maglev' } },
  },
  {
    apiVersion: 'policy.tsmesh.io/v1alpha1',
    kind: 'TrafficPolicy',
    metadata: meta('pool-old', { creationTimestamp: '2024-01-01T00:00:00Z' }),
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'multi', sectionName: 'web' }], connectionPool: { maxConnections: 1 } },
  },
  {
    apiVersion: 'gateway.networking.x-k8s.io/v1alpha1',
    kind: 'XBackendTrafficPolicy',
    metadata: meta('budget', { creationTimestamp: '2024-06-01T00:00:00Z' }),
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'multi' }], retryConstraint: { budget: { percent: 5 } }, sessionPersistence: { sessionName: 's' } },
    status: { ancestors: [] },
  },
];

/** Validates the wire objects as a sidecar does and builds its snapshot. */
function throughTheWire(snapshot: MeshSnapshot): MeshSnapshot {
  const wire = projectSnapshot(snapshot).map((w) => JSON.parse(JSON.stringify(w.object)) as KubeObject);
  for (const object of wire) {
    const result = validateObject(object);
    if (!result.ok) throw result.error;
  }
  return buildSnapshot(wire, snapshot.version);
}

/** Everything a sidecar can ask a snapshot, as plain data. */
function observe(snapshot: MeshSnapshot): Record<string, unknown> {
  const addresses = new Set<string>(['10.9.9.9', 'fd00::9']);
  for (const service of snapshot.services) service.clusterIPs.forEach((ip) => addresses.add(ip));
  for (const pod of snapshot.pods) pod.ips.forEach((ip) => addresses.add(ip));
  const endpoints: Record<string, unknown> = {};
  const policies: Record<string, unknown> = {};
  for (const service of snapshot.services) {
    for (const port of service.ports) {
      policies[`${service.namespace}/${service.name}:${port.name}/${port.protocol}`] = snapshot.trafficPolicyFor(service, port);
      endpoints[`${service.namespace}/${service.name}:${port.name}/${port.protocol}`] = snapshot
        .endpoints(service, port)
        .map((e) => JSON.stringify(e))
        .sort();
      for (const endpoint of snapshot.endpoints(service, port)) addresses.add(endpoint.address);
    }
  }
  const resolved: Record<string, unknown> = {};
  for (const address of addresses) {
    for (const port of [53, 80, 81, 5432, 8080, 9090]) resolved[`${address} ${port}`] = snapshot.resolve(address, port);
    resolved[address] = snapshot.podByIp(address);
  }
  return { services: snapshot.services, pods: snapshot.pods, endpoints, resolved, policies };
}

describe('projectSnapshot', () => {
  it('gives a sidecar the same model as the control plane has, for the sample mesh', () => {
    const original = buildSnapshot(sampleObjects());
    const received = throughTheWire(original);
    expect(observe(received)).toEqual(observe(original));
    expect(received.version).toBe(original.version);
  });

  it('carries multi-port, dual-stack, headless, FQDN and condition edge cases through unchanged', () => {
    const original = buildSnapshot(edgeCases);
    const received = throughTheWire(original);
    // Only the annotation nothing reads is gone.
    const withoutLastApplied = edgeCases.map((o) => {
      const { 'kubectl.kubernetes.io/last-applied-configuration': _dropped, ...annotations } = o.metadata.annotations ?? {};
      return o.metadata.annotations === undefined ? o : { ...o, metadata: { ...o.metadata, annotations } };
    });
    expect(observe(received)).toEqual(observe(buildSnapshot(withoutLastApplied)));
    expect(received.service('shop', 'multi')?.ports.map((p) => p.declaredProtocol)).toEqual(['http2', 'grpc', undefined]);
    expect(received.service('shop', 'external')).toMatchObject({ clusterIPs: [], headless: false, ports: [] });
    expect(received.podByIp('10.1.0.4')?.name).toBe('multi-c');
    // Locality: the endpoint's zone and topology-aware routing hints reach the sidecar.
    const multiWeb = received.service('shop', 'multi');
    expect(multiWeb && received.endpoints(multiWeb, multiWeb.ports[0]!).find((e) => e.address === '10.1.0.1')).toMatchObject({ zone: 'z1', forZones: ['z1', 'z2'] });
    expect(received.podByIp('192.168.0.5')).toBeUndefined();
    const multi = received.service('shop', 'multi');
    const web = multi?.ports[0];
    if (multi === undefined || web === undefined) throw new Error('shop/multi not received');
    expect(received.trafficPolicyFor(multi, web)).toMatchObject({
      loadBalancer: { algorithm: 'maglev' },
      connectionPool: { maxConnections: 1 },
      retryBudget: { percent: 5, source: 'XBackendTrafficPolicy' },
      sessionPersistence: { sessionName: 's' },
    });
  });

  it('sends pods with their identity fields only', () => {
    const wire = projectSnapshot(buildSnapshot(edgeCases));
    const pod = wire.find((w) => w.kind === 'Pod' && w.object.metadata.name === 'multi-a')?.object;
    expect(pod).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'multi-a', namespace: 'shop', labels: { app: 'multi' }, annotations: { 'tsmesh.io/status': '{"v":1}' } },
      spec: { serviceAccountName: 'multi' },
      status: { podIP: '10.1.0.1', podIPs: [{ ip: '10.1.0.1' }, { ip: 'fd00::a' }] },
    });
    const sidecarByContainer = wire.find((w) => w.object.metadata.name === 'multi-b')?.object;
    expect(sidecarByContainer?.['spec']).toEqual({ serviceAccountName: 'legacy', containers: [{ name: 'tsmesh-proxy' }] });
  });

  it('keeps raw objects without status and server-side metadata, and leaves ServiceAccounts out', () => {
    const wire = projectSnapshot(buildSnapshot(edgeCases));
    expect(wire.filter((w) => w.kind === 'ServiceAccount')).toEqual([]);
    expect(wire.find((w) => w.kind === 'PeerAuthentication')?.object).toEqual({
      apiVersion: 'security.tsmesh.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'strict', namespace: 'shop', creationTimestamp: '2024-01-02T03:04:05Z' },
      spec: { selector: { matchLabels: { app: 'multi' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '9090': { mode: 'PERMISSIVE' } } },
    });
    expect(wire.find((w) => w.kind === 'Namespace')).toEqual({
      kind: 'Namespace',
      namespace: '',
      object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'tsmesh-injection': 'enabled' } } },
    });
  });
});
