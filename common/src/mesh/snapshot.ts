// Builds an immutable MeshSnapshot from validated objects: every lookup the proxy makes per
// connection (original destination → Service port or pod, Service port → endpoints) is a map read.
import { logger } from '../logger.js';
import { canonicalIp, unmapIPv4 } from './ip.js';
import type { MeshEndpointSlice } from './kinds/endpoint-slice.js';
import type { MeshPodDetails } from './kinds/pod.js';
import { validateObject, type MeshObject } from './objects.js';
import { effectiveTrafficPolicy, type EffectiveTrafficPolicy, type MeshBackendTrafficPolicy, type MeshTrafficPolicy } from './traffic-policy.js';
import { contentVersion } from './version.js';
import type {
  DestinationMatch,
  KubeObject,
  MeshEndpoint,
  MeshPod,
  MeshService,
  MeshSnapshot,
  ServicePort,
} from './types.js';

const log = logger('mesh.snapshot');

const PASSTHROUGH: DestinationMatch = Object.freeze({ kind: 'passthrough' });
/** The objects each snapshot was built from, so it can be rebuilt elsewhere (another thread). */
const sources = new WeakMap<MeshSnapshot, readonly KubeObject[]>();
const NO_ENDPOINTS: readonly MeshEndpoint[] = Object.freeze([]);

/**
 * Builds a snapshot from raw Kubernetes-format objects (a mesh file's, or the API server's).
 * Objects that fail validation are left out and logged; parse a mesh file with parseMeshFile first
 * to refuse it whole instead. `version` defaults to a hash of the objects' content.
 */
export function buildSnapshot(objects: readonly KubeObject[], version?: string): MeshSnapshot {
  const valid: MeshObject[] = [];
  for (const object of objects) {
    const result = validateObject(object);
    if (result.ok) valid.push(result.value);
    else log.warn({ code: result.error.code, reason: result.error.message }, 'object left out of the mesh snapshot');
  }
  return buildSnapshotFrom(valid, version);
}

/** Builds a snapshot from objects already validated (parseMeshObjects, validateObject). */
export function buildSnapshotFrom(objects: readonly MeshObject[], version?: string): MeshSnapshot {
  const building = buildIndexes(objects);
  for (;;) {
    const step = building.next();
    if (step.done === true) return remember(new IndexedSnapshot(version ?? contentVersion(objects), step.value), objects);
  }
}

/**
 * As buildSnapshotFrom, letting the event loop run every `sliceMs` of work: the indexes of a mesh of
 * tens of thousands of objects take a hundred milliseconds and more, which the data path need not wait.
 */
export async function buildSnapshotInSlices(objects: readonly MeshObject[], version: string, sliceMs = 4): Promise<MeshSnapshot> {
  const building = buildIndexes(objects);
  let sliceStart = performance.now();
  for (;;) {
    const step = building.next();
    if (step.done === true) return remember(new IndexedSnapshot(version, step.value), objects);
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

function remember(snapshot: MeshSnapshot, objects: readonly MeshObject[]): MeshSnapshot {
  sources.set(snapshot, Object.freeze(objects.map((o) => o.object)));
  return snapshot;
}

/**
 * The Kubernetes-format objects a snapshot was built from (plain data, fit for structured clone):
 * `buildSnapshot(snapshotObjects(s), s.version)` rebuilds it, e.g. in a worker thread. Undefined
 * for a MeshSnapshot not made by buildSnapshot/buildSnapshotFrom/buildSnapshotInSlices.
 */
export function snapshotObjects(snapshot: MeshSnapshot): readonly KubeObject[] | undefined {
  return sources.get(snapshot);
}

/** A short content hash: equal content, equal version, across processes and restarts. */
export { contentVersion };

const key = (namespace: string, name: string): string => `${namespace}/${name}`;
const portKey = (port: ServicePort): string => `${port.name}/${port.protocol}`;

/** Items indexed between two points where building may pause. */
const STEP = 256;

/** Every map a snapshot answers from. */
interface Indexes {
  readonly services: readonly MeshService[];
  readonly pods: readonly MeshPod[];
  readonly others: readonly KubeObject[];
  readonly servicesByName: Map<string, MeshService>;
  /** cluster IP → port number → the Service port it serves. */
  readonly clusterIps: Map<string, Map<number, DestinationMatch>>;
  readonly podsByIp: Map<string, MeshPod>;
  /** Every IP an EndpointSlice lists, with its pod when known (a slice may name no Pod object). */
  readonly endpointIps: Map<string, MeshPod | undefined>;
  /** Fast path by the ServicePort objects of this snapshot... */
  readonly endpointsByPort: Map<ServicePort, readonly MeshEndpoint[]>;
  /** ...and by namespace/name and port name/protocol for Services held from an older snapshot. */
  readonly endpointsByName: Map<string, Map<string, readonly MeshEndpoint[]>>;
  /** namespace/name of a Service → the policies whose targetRefs name it (whole or a port). */
  readonly policiesByService: Map<string, ServicePolicies>;
}

interface ServicePolicies {
  readonly traffic: MeshTrafficPolicy[];
  readonly backend: MeshBackendTrafficPolicy[];
}

/** Builds the indexes, pausing (yield) every STEP items so a caller can let the event loop run. */
function* buildIndexes(objects: readonly MeshObject[]): Generator<void, Indexes> {
  const services: MeshService[] = [];
  const pods: MeshPodDetails[] = [];
  const slices: MeshEndpointSlice[] = [];
  const others: KubeObject[] = [];
  const policiesByService = new Map<string, ServicePolicies>();
  const policiesOf = (namespace: string, service: string): ServicePolicies => {
    let found = policiesByService.get(key(namespace, service));
    if (found === undefined) policiesByService.set(key(namespace, service), (found = { traffic: [], backend: [] }));
    return found;
  };
  for (const [i, object] of objects.entries()) {
    if (object.kind === 'Service') services.push(object.value);
    else if (object.kind === 'Pod') pods.push(object.value);
    else if (object.kind === 'EndpointSlice') slices.push(object.value);
    else others.push(object.object);
    // Policies stay in `others` too (they are distributed raw); indexed here by the Services they name.
    if (object.kind === 'TrafficPolicy') {
      for (const name of new Set(object.value.targetRefs.map((r) => r.name))) policiesOf(object.value.namespace, name).traffic.push(object.value);
    } else if (object.kind === 'XBackendTrafficPolicy') {
      for (const name of new Set(object.value.targetRefs.map((r) => r.name))) policiesOf(object.value.namespace, name).backend.push(object.value);
    }
    if (i % (STEP * 8) === 0) yield;
  }
  const indexes: Indexes = {
    services: Object.freeze(services),
    pods: Object.freeze(pods),
    others: Object.freeze(others),
    servicesByName: new Map(),
    clusterIps: new Map(),
    podsByIp: new Map(),
    endpointIps: new Map(),
    endpointsByPort: new Map(),
    endpointsByName: new Map(),
    policiesByService,
  };
  const podsByName = yield* indexPods(indexes, pods);
  yield* indexServices(indexes, services);
  yield* indexEndpoints(indexes, services, slices, podsByName);
  return indexes;
}

function* indexPods(indexes: Indexes, pods: readonly MeshPodDetails[]): Generator<void, Map<string, MeshPod>> {
  const byName = new Map<string, MeshPod>();
  for (const [i, pod] of pods.entries()) {
    if (i % STEP === 0) yield;
    byName.set(key(pod.namespace, pod.name), pod);
    if (pod.hostNetwork) continue;
    for (const ip of pod.ips) {
      const owner = indexes.podsByIp.get(ip);
      if (owner === undefined) indexes.podsByIp.set(ip, pod);
      else log.warn({ ip, pods: [key(owner.namespace, owner.name), key(pod.namespace, pod.name)] }, 'two pods claim one IP; the first keeps it');
    }
  }
  return byName;
}

function* indexServices(indexes: Indexes, services: readonly MeshService[]): Generator<void> {
  for (const [i, service] of services.entries()) {
    if (i % STEP === 0) yield;
    indexes.servicesByName.set(key(service.namespace, service.name), service);
    for (const ip of service.clusterIPs) {
      let ports = indexes.clusterIps.get(ip);
      if (ports === undefined) indexes.clusterIps.set(ip, (ports = new Map()));
      for (const port of service.ports) {
        const taken = ports.get(port.port);
        // The proxy carries TCP: when a number is declared for TCP and UDP, the TCP port answers.
        if (taken?.kind === 'service' && (taken.port.protocol === 'TCP' || port.protocol !== 'TCP')) continue;
        ports.set(port.port, Object.freeze({ kind: 'service', service, port }));
      }
    }
  }
}

function* indexEndpoints(indexes: Indexes, services: readonly MeshService[], slices: readonly MeshEndpointSlice[], podsByName: Map<string, MeshPod>): Generator<void> {
  const slicesByService = new Map<string, MeshEndpointSlice[]>();
  for (const [i, slice] of slices.entries()) {
    if (i % STEP === 0) yield;
    const serviceKey = key(slice.namespace, slice.serviceName);
    const forService = slicesByService.get(serviceKey);
    if (forService === undefined) slicesByService.set(serviceKey, [slice]);
    else forService.push(slice);
    if (slice.addressType === 'FQDN') continue;
    for (const endpoint of slice.endpoints) {
      const pod = endpoint.pod === undefined ? undefined : podsByName.get(key(endpoint.pod.namespace, endpoint.pod.name));
      for (const address of endpoint.addresses) {
        // A Pod object without status IPs is still found by the address its slice gives it.
        if (pod !== undefined && !indexes.podsByIp.has(address)) indexes.podsByIp.set(address, pod);
        if (!indexes.endpointIps.has(address)) indexes.endpointIps.set(address, pod);
      }
    }
  }
  for (const [i, service] of services.entries()) {
    if (i % STEP === 0) yield;
    const serviceKey = key(service.namespace, service.name);
    const byName = new Map<string, readonly MeshEndpoint[]>();
    indexes.endpointsByName.set(serviceKey, byName);
    for (const port of service.ports) {
      const endpoints = Object.freeze(endpointsOf(slicesByService.get(serviceKey) ?? [], port, primaryFamily(service)));
      indexes.endpointsByPort.set(port, endpoints);
      byName.set(portKey(port), endpoints);
    }
  }
}

class IndexedSnapshot implements MeshSnapshot {
  readonly version: string;
  readonly services: readonly MeshService[];
  readonly pods: readonly MeshPod[];
  readonly others: readonly KubeObject[];
  private readonly servicesByName: Indexes['servicesByName'];
  private readonly clusterIps: Indexes['clusterIps'];
  private readonly podsByIp: Indexes['podsByIp'];
  private readonly endpointIps: Indexes['endpointIps'];
  private readonly endpointsByPort: Indexes['endpointsByPort'];
  private readonly endpointsByName: Indexes['endpointsByName'];
  private readonly policiesByService: Indexes['policiesByService'];
  /** Effective policies computed so far, by Service port (filled lazily; the snapshot's content never changes). */
  private readonly policyCache = new WeakMap<ServicePort, EffectiveTrafficPolicy>();

  constructor(version: string, indexes: Indexes) {
    this.version = version;
    this.services = indexes.services;
    this.pods = indexes.pods;
    this.others = indexes.others;
    this.servicesByName = indexes.servicesByName;
    this.clusterIps = indexes.clusterIps;
    this.podsByIp = indexes.podsByIp;
    this.endpointIps = indexes.endpointIps;
    this.endpointsByPort = indexes.endpointsByPort;
    this.endpointsByName = indexes.endpointsByName;
    this.policiesByService = indexes.policiesByService;
    Object.freeze(this);
  }

  resolve(address: string, port: number): DestinationMatch {
    const match = this.lookup(address, port);
    if (match !== undefined || !address.includes(':')) return match ?? PASSTHROUGH;
    // Not in the canonical spelling (IPv4-mapped, upper-case, uncompressed IPv6): normalise once and retry.
    const canonical = canonicalIp(address);
    return (canonical !== undefined && canonical !== address ? this.lookup(canonical, port) : undefined) ?? PASSTHROUGH;
  }

  endpoints(service: MeshService, port: ServicePort): readonly MeshEndpoint[] {
    return (
      this.endpointsByPort.get(port) ??
      this.endpointsByName.get(key(service.namespace, service.name))?.get(portKey(port)) ??
      NO_ENDPOINTS
    );
  }

  podByIp(address: string): MeshPod | undefined {
    const pod = this.podsByIp.get(address);
    if (pod !== undefined || !address.includes(':')) return pod;
    const canonical = canonicalIp(address);
    return canonical === undefined ? undefined : this.podsByIp.get(canonical);
  }

  service(namespace: string, name: string): MeshService | undefined {
    return this.servicesByName.get(key(namespace, name));
  }

  trafficPolicyFor(service: MeshService, port: ServicePort): EffectiveTrafficPolicy {
    const cached = this.policyCache.get(port);
    if (cached !== undefined) return cached;
    const serviceKey = key(service.namespace, service.name);
    const policies = this.policiesByService.get(serviceKey);
    const effective = effectiveTrafficPolicy(service, port, policies?.traffic ?? [], policies?.backend ?? []);
    // Only this snapshot's own Services are memoised: one held from an older snapshot may differ (its annotation).
    if (this.servicesByName.get(serviceKey) === service) this.policyCache.set(port, effective);
    return effective;
  }

  private lookup(address: string, port: number): DestinationMatch | undefined {
    const ip = unmapIPv4(address);
    const ports = this.clusterIps.get(ip);
    // A cluster IP on a port its Service does not declare goes nowhere in the mesh: pass it through.
    if (ports !== undefined) return ports.get(port) ?? PASSTHROUGH;
    const pod = this.podsByIp.get(ip);
    if (pod !== undefined || this.endpointIps.has(ip)) {
      return { kind: 'endpoint', pod: pod ?? this.endpointIps.get(ip), address: ip, port };
    }
    return undefined;
  }
}

/** The endpoints of one Service port across all its slices: slice ports carry the Service port's name. */
/** The address family of a Service's first cluster IP (its primary family); undefined when headless. */
function primaryFamily(service: MeshService): 'IPv4' | 'IPv6' | undefined {
  const first = service.clusterIPs[0];
  return first === undefined ? undefined : first.includes(':') ? 'IPv6' : 'IPv4';
}

/**
 * The endpoints of one Service port. A dual-stack Service has one slice per family, each naming
 * every pod: a pod counted once per family would get twice its share of least-request picks and
 * stay in rotation through its other address when one is ejected. So the primary family's slices
 * give the endpoints, and the other family's add only pods they lack (a pod without an address in
 * the primary family). A Service without a primary family (headless) keeps every address.
 */
function endpointsOf(slices: readonly MeshEndpointSlice[], port: ServicePort, family: 'IPv4' | 'IPv6' | undefined): MeshEndpoint[] {
  const found = new Map<string, MeshEndpoint>();
  const primary = family === undefined ? [] : slices.filter((s) => s.addressType === family);
  const others = primary.length === 0 ? slices : slices.filter((s) => s.addressType !== family);
  const podsSeen = new Set<string>();
  const add = (slice: MeshEndpointSlice, onlyNewPods: boolean): void => {
    const slicePort = slice.ports.find((p) => p.name === port.name && p.protocol === port.protocol);
    if (slicePort?.port === undefined) return;
    for (const endpoint of slice.endpoints) {
      // Kubernetes: an endpoint's addresses are fungible; consumers use the first.
      const address = endpoint.addresses[0];
      if (address === undefined) continue;
      const podKey = endpoint.pod === undefined ? undefined : key(endpoint.pod.namespace, endpoint.pod.name);
      // Without a pod reference nothing says it is another pod: the primary family's list stands.
      if (onlyNewPods && (podKey === undefined || podsSeen.has(podKey))) continue;
      const candidate: MeshEndpoint = Object.freeze({
        address,
        port: slicePort.port,
        ready: endpoint.ready,
        serving: endpoint.serving,
        terminating: endpoint.terminating,
        pod: endpoint.pod,
        zone: endpoint.zone,
        forZones: endpoint.forZones,
      });
      // The same address may sit in two slices while the controller moves it; keep the healthier entry.
      const id = `${slicePort.port} ${address}`;
      const seen = found.get(id);
      if (seen === undefined || rank(candidate) > rank(seen)) found.set(id, candidate);
    }
  };
  for (const slice of primary) add(slice, false);
  for (const endpoint of found.values()) if (endpoint.pod !== undefined) podsSeen.add(key(endpoint.pod.namespace, endpoint.pod.name));
  for (const slice of others) add(slice, primary.length > 0);
  return [...found.values()];
}

function rank(endpoint: MeshEndpoint): number {
  return endpoint.ready ? 2 : endpoint.serving ? 1 : 0;
}
