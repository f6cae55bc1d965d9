import { readFileSync } from 'node:fs';
import { parseMeshFile, parseMeshObjects } from './file.js';
import { buildSnapshot, buildSnapshotFrom, buildSnapshotInSlices, snapshotObjects } from './snapshot.js';
import type { KubeObject, MeshService, MeshSnapshot, ServicePort } from './types.js';

const sampleText = readFileSync(new URL('./testdata/sample-mesh.yaml', import.meta.url), 'utf8');

function objectsOf(text: string): KubeObject[] {
  const parsed = parseMeshFile(text, 'test.yaml');
  if (!parsed.ok) throw parsed.error;
  return parsed.value;
}

const sample = (): MeshSnapshot => buildSnapshot(objectsOf(sampleText));

function servicePort(snapshot: MeshSnapshot, namespace: string, name: string, portName: string): [MeshService, ServicePort] {
  const service = snapshot.service(namespace, name);
  const port = service?.ports.find((p) => p.name === portName);
  if (service === undefined || port === undefined) throw new Error(`no ${namespace}/${name}:${portName}`);
  return [service, port];
}

const endpointsOf = (snapshot: MeshSnapshot, namespace: string, name: string, portName: string): string[] =>
  snapshot
    .endpoints(...servicePort(snapshot, namespace, name, portName))
    .map((e) => `${e.address}:${e.port} ${e.pod?.name ?? '-'} ready=${e.ready} serving=${e.serving} terminating=${e.terminating}`);

const service = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop' },
  spec,
});

const slice = (name: string, serviceName: string, fields: Record<string, unknown>): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': serviceName } },
  addressType: 'IPv4',
  ...fields,
});

describe('buildSnapshot', () => {
  it('sorts the objects into services, pods and others', () => {
    const snapshot = sample();
    expect(snapshot.services.map((s) => s.name)).toEqual(['greeter', 'web']);
    expect(snapshot.pods.map((p) => p.name)).toEqual(['greeter-0', 'greeter-1', 'greeter-2', 'greeter-client', 'web-0']);
    expect(snapshot.others.map((o) => o.kind)).toEqual(['Namespace', 'ServiceAccount', 'ServiceAccount', 'ServiceAccount', 'PeerAuthentication', 'GRPCRoute']);
  });

  it('reads the load balancer from the annotation, least-request by default', () => {
    const snapshot = sample();
    expect(snapshot.service('demo', 'greeter')?.loadBalancer).toBe('round-robin');
    expect(snapshot.service('demo', 'web')?.loadBalancer).toBe('least-request');
    expect(snapshot.service('default', 'web')).toBeUndefined();
  });

  it('gives the same content the same version, and other content another', () => {
    expect(sample().version).toBe(sample().version);
    expect(sample().version).toMatch(/^[0-9a-f]{16}$/);
    const fewer = buildSnapshot(objectsOf(sampleText).slice(1));
    expect(fewer.version).not.toBe(sample().version);
    expect(buildSnapshot([], 'v7').version).toBe('v7');
  });

  describe('resolve', () => {
    it('maps a cluster IP and service port to the Service port, on either family', () => {
      const snapshot = sample();
      for (const ip of ['10.96.0.20', 'fd00:10:96::20']) {
        const match = snapshot.resolve(ip, 50051);
        expect(match.kind).toBe('service');
        if (match.kind !== 'service') return;
        expect(match.service.name).toBe('greeter');
        expect(match.port).toMatchObject({ name: 'grpc', port: 50051, declaredProtocol: 'grpc' });
      }
      const web = snapshot.resolve('10.96.0.30', 80);
      expect(web.kind === 'service' && [web.service.name, web.port.name, web.port.declaredProtocol]).toEqual(['web', 'http', 'http']);
      const admin = snapshot.resolve('10.96.0.30', 9000);
      expect(admin.kind === 'service' && admin.port.declaredProtocol).toBe('tcp');
    });

    it('matches a cluster IP however the socket spells it', () => {
      const snapshot = sample();
      expect(snapshot.resolve('::ffff:10.96.0.20', 50051).kind).toBe('service');
      expect(snapshot.resolve('FD00:10:96:0:0:0:0:20', 50051).kind).toBe('service');
    });

    it('passes through a cluster IP on a port its Service does not declare', () => {
      expect(sample().resolve('10.96.0.20', 8080)).toEqual({ kind: 'passthrough' });
    });

    it('maps a pod IP on any port to that pod', () => {
      const snapshot = sample();
      const match = snapshot.resolve('10.244.1.11', 50051);
      expect(match.kind).toBe('endpoint');
      if (match.kind !== 'endpoint') return;
      expect(match).toMatchObject({ address: '10.244.1.11', port: 50051 });
      expect(match.pod).toMatchObject({ namespace: 'demo', name: 'greeter-0', serviceAccount: 'greeter-server', meshed: true });
      const v6 = snapshot.resolve('fd00:10:244:1::12', 8080);
      expect(v6.kind === 'endpoint' && v6.pod?.name).toBe('greeter-1');
    });

    it('passes through an address the mesh does not know', () => {
      expect(sample().resolve('93.184.216.34', 443)).toEqual({ kind: 'passthrough' });
      expect(sample().resolve('2001:db8::1', 443)).toEqual({ kind: 'passthrough' });
    });

    it('maps an EndpointSlice address without a Pod object to an endpoint without pod', () => {
      const snapshot = buildSnapshot([
        service('db', { clusterIP: '10.96.1.1', ports: [{ name: 'tcp', port: 5432 }] }),
        slice('db-1', 'db', { ports: [{ name: 'tcp', port: 5432 }], endpoints: [{ addresses: ['10.1.0.9'] }] }),
      ]);
      expect(snapshot.resolve('10.1.0.9', 5432)).toEqual({ kind: 'endpoint', pod: undefined, address: '10.1.0.9', port: 5432 });
    });

    it('resolves a headless Service only by its pods', () => {
      const snapshot = buildSnapshot([
        service('cache', { clusterIP: 'None', selector: { app: 'cache' }, ports: [{ name: 'tcp-redis', port: 6379 }] }),
        slice('cache-1', 'cache', {
          ports: [{ name: 'tcp-redis', port: 6379 }],
          endpoints: [{ addresses: ['10.1.0.21'], targetRef: { kind: 'Pod', name: 'cache-0' } }],
        }),
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'cache-0', namespace: 'shop', labels: { app: 'cache' } } },
      ]);
      const cache = snapshot.service('shop', 'cache');
      expect(cache).toMatchObject({ headless: true, clusterIPs: [] });
      const match = snapshot.resolve('10.1.0.21', 6379);
      expect(match.kind === 'endpoint' && match.pod?.name).toBe('cache-0');
      // The Pod has no status IP: the slice's address identifies it.
      expect(snapshot.podByIp('10.1.0.21')?.name).toBe('cache-0');
    });

    it('does not identify a host-network pod by its IP', () => {
      const snapshot = buildSnapshot([
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'agent' }, spec: { hostNetwork: true }, status: { podIP: '192.168.1.10' } },
      ]);
      expect(snapshot.podByIp('192.168.1.10')).toBeUndefined();
      expect(snapshot.resolve('192.168.1.10', 22)).toEqual({ kind: 'passthrough' });
    });

    it('prefers the TCP port when TCP and UDP share a number', () => {
      const snapshot = buildSnapshot([
        service('dns', { clusterIP: '10.96.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53 }] }),
      ]);
      const match = snapshot.resolve('10.96.0.10', 53);
      expect(match.kind === 'service' && match.port.name).toBe('dns-tcp');
    });
  });

  describe('podByIp', () => {
    it('finds a pod by any of its IPs, in any spelling', () => {
      const snapshot = sample();
      expect(snapshot.podByIp('10.244.1.30')?.name).toBe('greeter-client');
      expect(snapshot.podByIp('FD00:10:244:1:0::11')?.name).toBe('greeter-0');
      expect(snapshot.podByIp('10.0.0.1')).toBeUndefined();
    });
  });

  describe('endpoints', () => {
    it('gathers a Service port from several slices, with their conditions; a dual-stack one has each pod once, at its primary-family address', () => {
      // greeter is dual-stack (clusterIPs v4 then v6): its IPv6 slice names greeter-0 and greeter-1 again.
      expect(endpointsOf(sample(), 'demo', 'greeter', 'grpc')).toEqual([
        '10.244.1.11:50051 greeter-0 ready=true serving=true terminating=false',
        // ready unset: treated as ready; serving unset: as ready
        '10.244.1.12:50051 greeter-1 ready=true serving=true terminating=false',
        '10.244.2.13:50051 greeter-2 ready=false serving=true terminating=true',
      ]);
    });

    describe('of a dual-stack Service', () => {
      const v6Slice = (name: string, serviceName: string, endpoints: unknown[]): KubeObject =>
        slice(name, serviceName, { addressType: 'IPv6', ports: [{ name: 'http', port: 8080 }], endpoints });
      const v4Slice = (name: string, serviceName: string, endpoints: unknown[]): KubeObject => slice(name, serviceName, { ports: [{ name: 'http', port: 8080 }], endpoints });
      const ref = (pod: string): Record<string, unknown> => ({ kind: 'Pod', name: pod, namespace: 'shop' });
      const both = (spec: Record<string, unknown>, extra: KubeObject[] = []): MeshSnapshot =>
        buildSnapshot([
          service('api', { ports: [{ name: 'http', port: 80 }], ...spec }),
          v4Slice('api-v4', 'api', [{ addresses: ['10.2.0.1'], targetRef: ref('a') }, { addresses: ['10.2.0.2'], targetRef: ref('b') }]),
          v6Slice('api-v6', 'api', [{ addresses: ['fd00::1'], targetRef: ref('a') }, { addresses: ['fd00::2'], targetRef: ref('b') }]),
          ...extra,
        ]);

      it('uses the family of its first cluster IP', () => {
        const v6First = both({ clusterIP: 'fd00:96::1', clusterIPs: ['fd00:96::1', '10.96.2.1'], ipFamilies: ['IPv6', 'IPv4'] });
        expect(endpointsOf(v6First, 'shop', 'api', 'http').map((e) => e.split(' ')[0])).toEqual(['fd00::1:8080', 'fd00::2:8080']);
        const v4First = both({ clusterIP: '10.96.2.1', clusterIPs: ['10.96.2.1', 'fd00:96::1'], ipFamilies: ['IPv4', 'IPv6'] });
        expect(endpointsOf(v4First, 'shop', 'api', 'http').map((e) => e.split(' ')[0])).toEqual(['10.2.0.1:8080', '10.2.0.2:8080']);
      });

      it('adds a pod found only in the other family, but no unnamed address of it', () => {
        const snapshot = both({ clusterIP: '10.96.2.1', clusterIPs: ['10.96.2.1', 'fd00:96::1'] }, [
          v6Slice('api-v6-more', 'api', [{ addresses: ['fd00::3'], targetRef: ref('c') }, { addresses: ['fd00::9'] }]),
        ]);
        expect(endpointsOf(snapshot, 'shop', 'api', 'http').map((e) => e.split(' ').slice(0, 2).join(' '))).toEqual(['10.2.0.1:8080 a', '10.2.0.2:8080 b', 'fd00::3:8080 c']);
      });

      it('keeps the other family when the primary one has no slice yet', () => {
        const snapshot = buildSnapshot([
          service('api', { clusterIP: '10.96.2.1', clusterIPs: ['10.96.2.1', 'fd00:96::1'], ports: [{ name: 'http', port: 80 }] }),
          v6Slice('api-v6', 'api', [{ addresses: ['fd00::1'], targetRef: ref('a') }, { addresses: ['fd00::9'] }]),
        ]);
        expect(endpointsOf(snapshot, 'shop', 'api', 'http').map((e) => e.split(' ')[0])).toEqual(['fd00::1:8080', 'fd00::9:8080']);
      });

      it('a headless one keeps every address of both families', () => {
        const snapshot = both({ clusterIP: 'None', clusterIPs: ['None'] });
        expect(endpointsOf(snapshot, 'shop', 'api', 'http').map((e) => e.split(' ')[0])).toEqual(['10.2.0.1:8080', '10.2.0.2:8080', 'fd00::1:8080', 'fd00::2:8080']);
      });
    });

    it('takes the slice port of the same name, whose number is the target port', () => {
      const snapshot = sample();
      expect(endpointsOf(snapshot, 'demo', 'web', 'http')).toEqual(['10.244.3.21:8080 web-0 ready=true serving=true terminating=false']);
      expect(endpointsOf(snapshot, 'demo', 'web', 'admin')).toEqual(['10.244.3.21:9000 web-0 ready=true serving=true terminating=false']);
    });

    it('matches an unnamed Service port to the unnamed slice port', () => {
      const snapshot = buildSnapshot([
        service('api', { clusterIP: '10.96.2.1', ports: [{ port: 80, targetPort: 8080 }] }),
        slice('api-1', 'api', { ports: [{ port: 8080 }], endpoints: [{ addresses: ['10.2.0.1'] }] }),
        slice('api-2', 'api', { ports: [{ name: 'other', port: 9999 }], endpoints: [{ addresses: ['10.2.0.2'] }] }),
      ]);
      expect(endpointsOf(snapshot, 'shop', 'api', '')).toEqual(['10.2.0.1:8080 - ready=true serving=true terminating=false']);
    });

    it('lists an address found in two slices once, keeping the healthier entry', () => {
      const snapshot = buildSnapshot([
        service('api', { clusterIP: '10.96.2.1', ports: [{ name: 'http', port: 80 }] }),
        slice('api-old', 'api', { ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['10.2.0.1'], conditions: { ready: false } }] }),
        slice('api-new', 'api', { ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['10.2.0.1'] }, { addresses: ['10.2.0.2'] }] }),
      ]);
      expect(endpointsOf(snapshot, 'shop', 'api', 'http')).toEqual([
        '10.2.0.1:8080 - ready=true serving=true terminating=false',
        '10.2.0.2:8080 - ready=true serving=true terminating=false',
      ]);
    });

    it('ignores slices of other Services, other namespaces and slice ports without a number', () => {
      const snapshot = buildSnapshot([
        service('api', { clusterIP: '10.96.2.1', ports: [{ name: 'http', port: 80 }] }),
        slice('other', 'other', { ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['10.2.0.1'] }] }),
        { ...slice('elsewhere', 'api', { ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['10.2.0.2'] }] }), metadata: { name: 'elsewhere', namespace: 'prod', labels: { 'kubernetes.io/service-name': 'api' } } },
        slice('any-port', 'api', { ports: [{ name: 'http' }], endpoints: [{ addresses: ['10.2.0.3'] }] }),
      ]);
      expect(endpointsOf(snapshot, 'shop', 'api', 'http')).toEqual([]);
    });

    it('answers for a Service object held from an older snapshot', () => {
      const old = sample();
      const [service, port] = servicePort(old, 'demo', 'greeter', 'grpc');
      expect(sample().endpoints(service, port)).toHaveLength(3);
    });

    it('returns no endpoints for a Service without slices', () => {
      const snapshot = buildSnapshot([service('lonely', { clusterIP: '10.96.3.1', ports: [{ name: 'http', port: 80 }] })]);
      expect(endpointsOf(snapshot, 'shop', 'lonely', 'http')).toEqual([]);
    });
  });

  it('leaves out objects that fail validation', () => {
    const snapshot = buildSnapshot([
      service('good', { clusterIP: '10.96.4.1', ports: [{ port: 80 }] }),
      service('bad', { clusterIP: 'nope', ports: [{ port: 80 }] }),
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } },
    ]);
    expect(snapshot.services.map((s) => s.name)).toEqual(['good']);
    expect(snapshot.others).toEqual([]);
  });

  it('is frozen', () => {
    const snapshot = sample();
    expect(Object.isFrozen(snapshot)).toBe(true);
    expect(Object.isFrozen(snapshot.services)).toBe(true);
    expect(Object.isFrozen(snapshot.services[0])).toBe(true);
    expect(Object.isFrozen(snapshot.endpoints(...servicePort(snapshot, 'demo', 'greeter', 'grpc')))).toBe(true);
  });
});

describe('buildSnapshotInSlices', () => {
  it('builds the snapshot buildSnapshotFrom builds', async () => {
    const parsed = parseMeshObjects(sampleText, 'sample-mesh.yaml');
    if (!parsed.ok) throw parsed.error;
    const whole = buildSnapshotFrom(parsed.value, 'v1');
    const sliced = await buildSnapshotInSlices(parsed.value, 'v1');
    expect(sliced.version).toBe('v1');
    expect(sliced.services).toEqual(whole.services);
    expect(sliced.pods).toEqual(whole.pods);
    expect(sliced.others).toEqual(whole.others);
    expect(endpointsOf(sliced, 'demo', 'greeter', 'grpc')).toEqual(endpointsOf(whole, 'demo', 'greeter', 'grpc'));
    expect(sliced.resolve('10.96.0.20', 50051)).toEqual(whole.resolve('10.96.0.20', 50051));
    expect(Object.isFrozen(sliced)).toBe(true);
  });

  it('lets the event loop run between slices of a large mesh', async () => {
    const objects = Array.from({ length: 20_000 }, (_, i) => service(`svc-${i}`, { clusterIP: `10.96.${i >> 8}.${i & 255}`, ports: [{ name: 'http', port: 80 }] }));
    const parsed = parseMeshObjects(objects.map((o) => JSON.stringify(o)).join('\n---\n'), 'large.json');
    if (!parsed.ok) throw parsed.error;
    let turns = 0;
    const tick = setInterval(() => turns++, 0);
    const snapshot = await buildSnapshotInSlices(parsed.value, 'v1', 1);
    clearInterval(tick);
    expect(snapshot.services).toHaveLength(20_000);
    expect(snapshot.resolve('10.96.78.31', 80).kind).toBe('service');
    expect(turns).toBeGreaterThan(0);
  });
});

describe('snapshotObjects', () => {
  it('gives the valid objects a snapshot was built from, as plain data that rebuilds the same snapshot after a structured clone', () => {
    const original = buildSnapshot([...objectsOf(sampleText), service('bad', { clusterIP: 'nope', ports: [{ port: 80 }] })]);
    const objects = snapshotObjects(original);
    expect(objects?.map((o) => o.metadata.name)).not.toContain('bad');
    const rebuilt = buildSnapshot(structuredClone(objects ?? []), original.version);
    expect(rebuilt.version).toBe(original.version);
    expect(rebuilt.services).toEqual(original.services);
    expect(rebuilt.pods).toEqual(original.pods);
    expect(rebuilt.others).toEqual(original.others);
    expect(endpointsOf(rebuilt, 'demo', 'greeter', 'grpc')).toEqual(endpointsOf(original, 'demo', 'greeter', 'grpc'));
    expect(snapshotObjects(rebuilt)).toEqual(objects);
  });

  it('knows nothing of a snapshot it did not build', () => {
    const fake = { ...sample() };
    expect(snapshotObjects(fake)).toBeUndefined();
  });
});
