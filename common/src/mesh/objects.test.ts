import { MESH_ERRORS } from '../errors.js';
import { validateObject, type MeshObject } from './objects.js';

function valid(raw: unknown): MeshObject {
  const result = validateObject(raw);
  if (!result.ok) throw new Error(`expected a valid object, got: ${result.error.message}`);
  return result.value;
}

function refusal(raw: unknown): { code: string; message: string } {
  const result = validateObject(raw);
  if (result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
  return { code: result.error.code, message: result.error.message };
}

const service = (spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): unknown => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop', ...metadata },
  spec,
});

const slice = (fields: Record<string, unknown>): unknown => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'web-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints: [],
  ...fields,
});

describe('validateObject', () => {
  describe('any kind', () => {
    it('refuses an unknown kind, naming it and the supported kinds', () => {
      const { code, message } = refusal({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' } });
      expect(code).toBe(MESH_ERRORS.MESH_UNKNOWN_KIND);
      expect(message).toContain('Deployment default/web');
      expect(message).toContain('unknown kind "Deployment" (apiVersion apps/v1)');
      expect(message).toContain('supported kinds: Service, EndpointSlice, Pod');
    });

    it('refuses a known kind under an apiVersion it does not have', () => {
      const { code, message } = refusal({ apiVersion: 'v2', kind: 'Service', metadata: { name: 'web' }, spec: {} });
      expect(code).toBe(MESH_ERRORS.MESH_UNKNOWN_KIND);
      expect(message).toBe('Service default/web: apiVersion: unsupported apiVersion "v2" for kind Service (expected v1)');
    });

    it('does not take an inherited property name for a kind', () => {
      expect(refusal({ apiVersion: 'v1', kind: 'toString', metadata: { name: 'x' } }).code).toBe(MESH_ERRORS.MESH_UNKNOWN_KIND);
    });

    it('refuses an object without kind or apiVersion', () => {
      const { code, message } = refusal({ metadata: { name: 'web' } });
      expect(code).toBe(MESH_ERRORS.MESH_INVALID_OBJECT);
      expect(message).toBe('object default/web: kind: required; apiVersion: required');
    });

    it('refuses something that is not a mapping', () => {
      expect(refusal(['a']).message).toBe('object (unnamed): must be a mapping, got ["a"]');
    });

    it('refuses a missing or badly formed name', () => {
      expect(refusal({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: {} }).message).toBe(
        'ServiceAccount default/(unnamed): metadata.name: required',
      );
      expect(refusal({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'Web_1' } }).message).toContain(
        'metadata.name: must be a DNS subdomain',
      );
    });

    it('refuses a label or annotation value that YAML read as something other than a string', () => {
      const { message } = refusal({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'a', annotations: { 'tsmesh.io/inject': true } } });
      expect(message).toBe('ServiceAccount default/a: metadata.annotations["tsmesh.io/inject"]: must be a string (quote it in YAML), got true');
    });

    it('defaults the namespace to default in the returned object', () => {
      const object = valid({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'a' } });
      expect(object.object.metadata.namespace).toBe('default');
    });

    it('reports every problem of an object at once', () => {
      const { message } = refusal(service({ clusterIP: 'nope', ports: [{ port: 0 }] }));
      expect(message).toBe(
        'Service shop/web: spec.clusterIP: must be an IP address, got "nope"; spec.ports[0].port: must be an integer from 1 to 65535, got 0',
      );
    });
  });

  describe('Service', () => {
    it('normalises ports, cluster IPs, selector and the load-balancer annotation', () => {
      const object = valid(
        service(
          {
            clusterIPs: ['10.96.0.10', 'FD00::0010'],
            selector: { app: 'web' },
            ports: [
              { name: 'http', port: 80, targetPort: 'http-web' },
              { name: 'grpc-api', port: 9090, targetPort: 9091, appProtocol: 'kubernetes.io/h2c' },
              { name: 'dns', port: 53, protocol: 'UDP' },
            ],
          },
          { annotations: { 'tsmesh.io/load-balancer': 'ring-hash' } },
        ),
      );
      expect(object.kind).toBe('Service');
      if (object.kind !== 'Service') return;
      expect(object.value).toEqual({
        namespace: 'shop',
        name: 'web',
        clusterIPs: ['10.96.0.10', 'fd00::10'],
        headless: false,
        ports: [
          { name: 'http', port: 80, targetPort: 'http-web', protocol: 'TCP', declaredProtocol: 'http' },
          { name: 'grpc-api', port: 9090, targetPort: 9091, protocol: 'TCP', declaredProtocol: 'http2' },
          { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP', declaredProtocol: undefined },
        ],
        selector: { app: 'web' },
        annotations: { 'tsmesh.io/load-balancer': 'ring-hash' },
        loadBalancer: 'ring-hash',
      });
    });

    it('uses least-request when no load balancer is annotated', () => {
      const object = valid(service({ clusterIP: '10.96.0.10', ports: [{ port: 80 }] }));
      expect(object.kind === 'Service' && object.value.loadBalancer).toBe('least-request');
      expect(object.kind === 'Service' && object.value.ports[0]?.name).toBe('');
    });

    it('marks clusterIP None as headless with no cluster IPs', () => {
      const object = valid(service({ clusterIP: 'None', ports: [{ name: 'grpc', port: 50051 }] }));
      expect(object.kind === 'Service' && object.value).toMatchObject({ headless: true, clusterIPs: [] });
      const listed = valid(service({ clusterIPs: ['None'] }));
      expect(listed.kind === 'Service' && listed.value).toMatchObject({ headless: true, ports: [] });
    });

    it.each([
      [{ clusterIP: '10.96.0.1', ports: [{ port: 70000 }] }, 'spec.ports[0].port: must be an integer from 1 to 65535, got 70000'],
      [{ clusterIP: '10.96.0.1' }, 'spec.ports: required'],
      [{ clusterIP: '10.96.0.1', ports: [] }, 'spec.ports: must list at least one port'],
      [{ clusterIP: '10.96.0.1', ports: [{ port: 80 }, { name: 'b', port: 81 }] }, 'spec.ports[0].name: required'],
      [{ ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] }, 'spec.ports[1].name: duplicate port name "a"'],
      [{ ports: [{ name: 'a', port: 80 }, { name: 'b', port: 80 }] }, 'spec.ports[1].port: duplicate port 80/TCP'],
      [{ ports: [{ port: 80, targetPort: '8080' }] }, 'spec.ports[0].targetPort: must be a number, not a string'],
      [{ ports: [{ port: 80, targetPort: 'Http_Port' }] }, 'spec.ports[0].targetPort: must be a port number or a container port name'],
      [{ ports: [{ port: 80, targetPort: 0 }] }, 'spec.ports[0].targetPort: must be an integer from 1 to 65535, got 0'],
      [{ ports: [{ port: 80, protocol: 'QUIC' }] }, 'spec.ports[0].protocol: must be one of TCP, UDP, SCTP, got "QUIC"'],
      [{ ports: [{ name: 'Web', port: 80 }] }, 'spec.ports[0].name: must be a DNS label'],
      [{ clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.2'], ports: [{ port: 80 }] }, 'spec.clusterIPs[0]: must equal spec.clusterIP "10.96.0.1", got "10.96.0.2"'],
      [{ clusterIPs: ['10.96.0.1', '10.96.0.2'], ports: [{ port: 80 }] }, 'spec.clusterIPs: must hold at most one IPv4 and one IPv6 address'],
      [{ clusterIPs: ['None', '10.96.0.2'] }, 'spec.clusterIPs: must be ["None"] for a headless Service'],
      [{ type: 'Magic', ports: [{ port: 80 }] }, 'spec.type: must be one of ClusterIP, NodePort, LoadBalancer, ExternalName, got "Magic"'],
      [{ ports: [{ port: 80 }], selector: { app: 1 } }, 'spec.selector["app"]: must be a string'],
    ])('refuses spec %j: %s', (spec, reason) => {
      const { code, message } = refusal(service(spec));
      expect(code).toBe(MESH_ERRORS.MESH_INVALID_OBJECT);
      expect(message).toContain('Service shop/web: ');
      expect(message).toContain(reason);
    });

    it('passes an algorithm it does not know through to the proxy registry, with a warning naming the annotation', () => {
      const object = valid(service({ ports: [{ port: 80 }] }, { annotations: { 'tsmesh.io/load-balancer': 'maglev' } }));
      expect(object.kind === 'Service' && object.value.loadBalancer).toBe('maglev');
      expect(object.warnings).toEqual([
        {
          path: 'metadata.annotations["tsmesh.io/load-balancer"]',
          reason: '"maglev" is not one of round-robin, least-request, random, ring-hash, peak-ewma; the proxy uses least-request unless its registry knows the name',
        },
      ]);
    });

    it('gives a Service without the annotation (or an empty one) the default algorithm, without warnings', () => {
      for (const annotations of [{}, { 'tsmesh.io/load-balancer': '' }]) {
        const object = valid(service({ ports: [{ port: 80 }] }, { annotations }));
        expect(object.kind === 'Service' && object.value.loadBalancer).toBe('least-request');
        expect(object.warnings).toBeUndefined();
      }
    });

    it('reads the locality annotation, and warns of a value other than zone or off, keeping the default', () => {
      const off = valid(service({ ports: [{ port: 80 }] }, { annotations: { 'tsmesh.io/locality': 'off' } }));
      expect(off.kind === 'Service' && off.value.locality).toBe('off');
      expect(off.warnings).toBeUndefined();
      const none = valid(service({ ports: [{ port: 80 }] }));
      expect(none.kind === 'Service' && none.value.locality).toBeUndefined();
      const bad = valid(service({ ports: [{ port: 80 }] }, { annotations: { 'tsmesh.io/locality': 'nearest' } }));
      expect(bad.kind === 'Service' && bad.value.locality).toBeUndefined();
      expect(bad.warnings).toEqual([{ path: 'metadata.annotations["tsmesh.io/locality"]', reason: 'must be one of zone, off, got "nearest"; the default (zone) applies' }]);
    });

    it('refuses a Service name that is not a DNS-1035 label', () => {
      expect(refusal(service({ ports: [{ port: 80 }] }, { name: '1web' })).message).toContain('metadata.name: must be a DNS label starting with a letter');
    });

    it('refuses a Service without spec', () => {
      expect(refusal({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' } }).message).toBe('Service default/web: spec: required');
    });
  });

  describe('EndpointSlice', () => {
    it('applies the Kubernetes condition defaults', () => {
      const object = valid(
        slice({
          endpoints: [
            { addresses: ['10.0.0.1'] },
            { addresses: ['10.0.0.2'], conditions: { ready: false } },
            { addresses: ['10.0.0.3'], conditions: { ready: false, serving: true, terminating: true } },
            { addresses: ['10.0.0.4'], conditions: {} },
          ],
        }),
      );
      if (object.kind !== 'EndpointSlice') throw new Error('wrong kind');
      expect(object.value.endpoints.map(({ ready, serving, terminating }) => [ready, serving, terminating])).toEqual([
        [true, true, false],
        [false, false, false],
        [false, true, true],
        [true, true, false],
      ]);
    });

    it('reads the service name, ports and pod references', () => {
      const object = valid(
        slice({
          addressType: 'IPv6',
          ports: [{ name: 'http', port: 8080, appProtocol: 'http' }, { port: 9000 }],
          endpoints: [
            { addresses: ['FD00::1'], targetRef: { kind: 'Pod', name: 'web-0' }, nodeName: 'node-a', zone: 'z1' },
            { addresses: ['fd00::2'], targetRef: { kind: 'Pod', name: 'web-1', namespace: 'other' } },
            { addresses: ['fd00::3'], targetRef: { kind: 'Node', name: 'node-a' } },
          ],
        }),
      );
      if (object.kind !== 'EndpointSlice') throw new Error('wrong kind');
      expect(object.value.serviceName).toBe('web');
      expect(object.value.ports).toEqual([
        { name: 'http', port: 8080, protocol: 'TCP', appProtocol: 'http' },
        { name: '', port: 9000, protocol: 'TCP', appProtocol: undefined },
      ]);
      expect(object.value.endpoints.map((e) => [e.addresses[0], e.pod])).toEqual([
        ['fd00::1', { namespace: 'shop', name: 'web-0' }],
        ['fd00::2', { namespace: 'other', name: 'web-1' }],
        ['fd00::3', undefined],
      ]);
      expect(object.value.endpoints[0]).toMatchObject({ nodeName: 'node-a', zone: 'z1' });
    });

    it('reads topology-aware routing hints as zone names, without repeats; no hints or an empty list is undefined', () => {
      const object = valid(
        slice({
          endpoints: [
            { addresses: ['10.0.0.1'], zone: 'z1', hints: { forZones: [{ name: 'z1' }, { name: 'z2' }, { name: 'z1' }] } },
            { addresses: ['10.0.0.2'], zone: 'z2', hints: { forZones: [] } },
            { addresses: ['10.0.0.3'], zone: 'z3' },
          ],
        }),
      );
      if (object.kind !== 'EndpointSlice') throw new Error('wrong kind');
      expect(object.value.endpoints.map((e) => e.forZones)).toEqual([['z1', 'z2'], undefined, undefined]);
    });

    it.each([
      [{ hints: { forZones: [{}] } }, 'endpoints[0].hints.forZones[0].name: required'],
      [{ hints: { forZones: ['z1'] } }, 'endpoints[0].hints.forZones[0]: must be a mapping'],
      [{ hints: { forZones: Array.from({ length: 9 }, (_, i) => ({ name: `z${i}` })) } }, 'endpoints[0].hints.forZones: must hold at most 8 zones, got 9'],
    ])('refuses the hints %j: %s', (fields, reason) => {
      expect(refusal(slice({ endpoints: [{ addresses: ['10.0.0.1'], ...fields }] })).message).toContain(reason);
    });

    it('accepts host names in an FQDN slice', () => {
      const object = valid(slice({ addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com'] }] }));
      expect(object.kind === 'EndpointSlice' && object.value.endpoints[0]?.addresses).toEqual(['db.example.com']);
    });

    it.each([
      [{ addressType: 'IPv5' }, 'addressType: must be one of IPv4, IPv6, FQDN, got "IPv5"'],
      [{ addressType: undefined }, 'addressType: required'],
      [{ endpoints: undefined }, 'endpoints: required'],
      [{ endpoints: [{ addresses: ['fd00::1'] }] }, 'endpoints[0].addresses[0]: must be an IPv4 address, got "fd00::1"'],
      [{ endpoints: [{ addresses: ['10.0.0.300'] }] }, 'endpoints[0].addresses[0]: must be an IP address, got "10.0.0.300"'],
      [{ endpoints: [{ addresses: [] }] }, 'endpoints[0].addresses: must hold 1 to 100 addresses, got 0'],
      [{ endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: 'yes' } }] }, 'endpoints[0].conditions.ready: must be true or false, got "yes"'],
      [{ endpoints: [{ addresses: ['10.0.0.1'], targetRef: { kind: 'Pod' } }] }, 'endpoints[0].targetRef.name: required'],
      [{ ports: [{ name: 'http', port: 0 }] }, 'ports[0].port: must be an integer from 1 to 65535, got 0'],
      [{ ports: [{ name: 'http', port: 80 }, { name: 'http', port: 81 }] }, 'ports[1].name: duplicate port name "http"'],
    ])('refuses %j: %s', (fields, reason) => {
      const { message } = refusal(slice(fields));
      expect(message).toContain('EndpointSlice shop/web-abc: ');
      expect(message).toContain(reason);
    });

    it('refuses a slice that does not name its Service', () => {
      const { message } = refusal({ ...(slice({}) as object), metadata: { name: 'orphan', namespace: 'shop' } });
      expect(message).toBe('EndpointSlice shop/orphan: metadata.labels["kubernetes.io/service-name"]: required');
    });
  });

  describe('Pod', () => {
    const pod = (fields: Record<string, unknown>, metadata: Record<string, unknown> = {}): unknown => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-0', namespace: 'shop', labels: { app: 'web' }, ...metadata },
      ...fields,
    });

    it('reads IPs, labels and the service account', () => {
      const object = valid(pod({ spec: { serviceAccountName: 'web', containers: [{ name: 'app' }] }, status: { podIP: '10.0.0.5', podIPs: [{ ip: '10.0.0.5' }, { ip: 'fd00::5' }] } }));
      expect(object.value).toEqual({
        namespace: 'shop',
        name: 'web-0',
        ips: ['10.0.0.5', 'fd00::5'],
        labels: { app: 'web' },
        annotations: {},
        serviceAccount: 'web',
        meshed: false,
        hostNetwork: false,
      });
    });

    it('defaults the service account to default and takes podIP alone', () => {
      const object = valid(pod({ status: { podIP: '10.0.0.5' } }));
      expect(object.value).toMatchObject({ serviceAccount: 'default', ips: ['10.0.0.5'] });
    });

    it('counts a pod as meshed by the status annotation or a tsmesh-proxy container', () => {
      expect(valid(pod({}, { annotations: { 'tsmesh.io/status': '{}' } })).value).toMatchObject({ meshed: true });
      expect(valid(pod({ spec: { containers: [{ name: 'app' }, { name: 'tsmesh-proxy' }] } })).value).toMatchObject({ meshed: true });
      expect(valid(pod({ spec: { initContainers: [{ name: 'tsmesh-proxy', restartPolicy: 'Always' }], containers: [{ name: 'app' }] } })).value).toMatchObject({ meshed: true });
      expect(valid(pod({ spec: { containers: [{ name: 'app' }] } })).value).toMatchObject({ meshed: false });
    });

    it.each([
      [{ status: { podIP: 'ten' } }, 'status.podIP: must be an IP address, got "ten"'],
      [{ status: { podIP: '10.0.0.5', podIPs: [{ ip: '10.0.0.6' }] } }, 'status.podIPs[0].ip: must equal status.podIP "10.0.0.5", got "10.0.0.6"'],
      [{ status: { podIPs: ['10.0.0.5'] } }, 'status.podIPs[0]: must be a mapping with an "ip" field, got "10.0.0.5"'],
      [{ spec: { serviceAccountName: 'Web SA' } }, 'spec.serviceAccountName: must be a DNS subdomain'],
      [{ spec: { containers: [{ image: 'x' }] } }, 'spec.containers[0].name: required'],
      [{ spec: { hostNetwork: 'yes' } }, 'spec.hostNetwork: must be true or false, got "yes"'],
    ])('refuses %j: %s', (fields, reason) => {
      const { message } = refusal(pod(fields));
      expect(message).toContain('Pod shop/web-0: ');
      expect(message).toContain(reason);
    });
  });

  describe('ServiceAccount and Namespace', () => {
    it('accepts a ServiceAccount and refuses a bad namespace name', () => {
      expect(valid({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'shop' } }).value).toEqual({
        namespace: 'shop',
        name: 'web',
        labels: {},
        annotations: {},
      });
      expect(refusal({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'Shop' } }).message).toContain(
        'ServiceAccount Shop/web: metadata.namespace: must be a DNS label',
      );
    });

    it('reads a Namespace as cluster-scoped, with its labels', () => {
      const object = valid({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'tsmesh-injection': 'enabled' } } });
      expect(object.value).toEqual({ name: 'shop', labels: { 'tsmesh-injection': 'enabled' }, annotations: {} });
      expect(object.object.metadata.namespace).toBeUndefined();
    });

    it('refuses a Namespace name that is not a DNS label, without a namespace in the message', () => {
      expect(refusal({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop.eu' } }).message).toMatch(
        /^Namespace shop\.eu: metadata\.name: must be a DNS label/,
      );
    });
  });

  describe('PeerAuthentication', () => {
    const policy = (spec: unknown): unknown => ({
      apiVersion: 'security.tsmesh.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'strict', namespace: 'shop' },
      spec,
    });

    it('reads the selector, the mode and the per-port modes', () => {
      const object = valid(policy({ selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '8080': { mode: 'DISABLE' } } }));
      if (object.kind !== 'PeerAuthentication') throw new Error('wrong kind');
      expect(object.value.selector).toEqual({ app: 'web' });
      expect(object.value.mode).toBe('STRICT');
      expect([...object.value.portLevelMtls]).toEqual([[8080, 'DISABLE']]);
    });

    it('treats a missing spec or mode as UNSET without selector', () => {
      const object = valid(policy(undefined));
      expect(object.value).toMatchObject({ selector: undefined, mode: 'UNSET' });
    });

    it.each([
      [{ mtls: { mode: 'strict' } }, 'spec.mtls.mode: must be one of UNSET, DISABLE, PERMISSIVE, STRICT, got "strict"'],
      [{ portLevelMtls: { '0': { mode: 'STRICT' } } }, 'spec.portLevelMtls["0"]: key must be a port number from 1 to 65535, got "0"'],
      [{ portLevelMtls: { '65536': { mode: 'STRICT' } } }, 'spec.portLevelMtls["65536"]: key must be a port number from 1 to 65535'],
      [{ portLevelMtls: { http: { mode: 'STRICT' } } }, 'spec.portLevelMtls["http"]: key must be a port number from 1 to 65535, got "http"'],
      [{ portLevelMtls: { '8080': { mode: 'OFF' } } }, 'spec.portLevelMtls["8080"].mode: must be one of UNSET, DISABLE, PERMISSIVE, STRICT, got "OFF"'],
      [{ portLevelMtls: { '8080': {} } }, 'spec.portLevelMtls["8080"].mode: required'],
      [{ selector: { matchLabels: { app: true } } }, 'spec.selector.matchLabels["app"]: must be a string'],
    ])('refuses spec %j: %s', (spec, reason) => {
      const { message } = refusal(policy(spec));
      expect(message).toContain('PeerAuthentication shop/strict: ');
      expect(message).toContain(reason);
    });
  });

  describe('HTTPRoute and GRPCRoute', () => {
    const route = (kind: string, spec: unknown): unknown => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind,
      metadata: { name: 'split', namespace: 'shop' },
      spec,
    });

    it.each(['HTTPRoute', 'GRPCRoute'])('keeps a %s raw, with its parentRefs', (kind) => {
      const spec = { parentRefs: [{ kind: 'Service', name: 'web', port: 80 }], rules: [{ backendRefs: [{ name: 'web-v2', weight: 10 }] }] };
      const object = valid(route(kind, spec));
      expect(object.value).toEqual({ kind, namespace: 'shop', name: 'split', parentRefs: spec.parentRefs, spec });
      expect(object.object.spec).toEqual(spec);
    });

    it.each([
      [{ parentRefs: { name: 'web' } }, 'spec.parentRefs: must be a list, got {"name":"web"}'],
      [{ rules: [] }, 'spec.parentRefs: required'],
      [{ parentRefs: [{ kind: 'Service' }] }, 'spec.parentRefs[0].name: required'],
      [undefined, 'spec: required'],
    ])('refuses spec %j: %s', (spec, reason) => {
      const { message } = refusal(route('HTTPRoute', spec));
      expect(message).toBe(`HTTPRoute shop/split: ${reason}`);
    });

    it('refuses a route under an older Gateway API version', () => {
      const { code, message } = refusal({ apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'HTTPRoute', metadata: { name: 'r' }, spec: { parentRefs: [] } });
      expect(code).toBe(MESH_ERRORS.MESH_UNKNOWN_KIND);
      expect(message).toContain('expected gateway.networking.k8s.io/v1');
    });
  });
});
