// Builds an immutable MeshSnapshot from validated objects: every lookup the proxy makes per
// connection (original destination → Service port or pod, Service port → endpoints) is a map read.
import { createHash } from 'node:crypto';
import { logger } from '../logger.js';
import { canonicalIp, unmapIPv4 } from './ip.js';
import type { MeshEndpointSlice } from './kinds/endpoint-slice.js';
import type { MeshPodDetails } from './kinds/pod.js';
import { validateObject, type MeshObject } from './objects.js';
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
  const snapshot = new IndexedSnapshot(objects, version ?? contentVersion(objects));
  sources.set(snapshot, Object.freeze(objects.map((o) => o.object)));
  return snapshot;
}

/**
 * The Kubernetes-format objects a snapshot was built from (plain data, fit for structured clone):
 * `buildSnapshot(snapshotObjects(s), s.version)` rebuilds it, e.g. in a worker thread. Undefined
 * for a MeshSnapshot not made by buildSnapshot/buildSnapshotFrom.
 */
export function snapshotObjects(snapshot: MeshSnapshot): readonly KubeObject[] | undefined {
  return sources.get(snapshot);
}

/** A short content hash: equal content, equal version, across processes and restarts. */
export function contentVersion(objects: readonly MeshObject[]): string {
  const hash = createHash('sha256');
  for (const object of objects) hash.update(JSON.stringify(object.object)).update('\n');
  return hash.digest('hex').slice(0, 16);
}

const key = (namespace: string, name: string): string => `${namespace}/${name}`;
const portKey = (port: ServicePort): string => `${port.name}/${port.protocol}`;

class IndexedSnapshot implements MeshSnapshot {
  readonly version: string;
  readonly services: readonly MeshService[];
  readonly pods: readonly MeshPod[];
  readonly others: readonly KubeObject[];

  private readonly servicesByName = new Map<string, MeshService>();
  /** cluster IP → port number → the Service port it serves. */
  private readonly clusterIps = new Map<string, Map<number, DestinationMatch>>();
  private readonly podsByIp = new Map<string, MeshPod>();
  /** Every IP an EndpointSlice lists, with its pod when known (a slice may name no Pod object). */
  private readonly endpointIps = new Map<string, MeshPod | undefined>();
  /** Fast path by the ServicePort objects of this snapshot... */
  private readonly endpointsByPort = new Map<ServicePort, readonly MeshEndpoint[]>();
  /** ...and by namespace/name and port name/protocol for Services held from an older snapshot. */
  private readonly endpointsByName = new Map<string, Map<string, readonly MeshEndpoint[]>>();

  constructor(objects: readonly MeshObject[], version: string) {
    this.version = version;
    const services: MeshService[] = [];
    const pods: MeshPodDetails[] = [];
    const slices: MeshEndpointSlice[] = [];
    const others: KubeObject[] = [];
    for (const object of objects) {
      if (object.kind === 'Service') services.push(object.value);
      else if (object.kind === 'Pod') pods.push(object.value);
      else if (object.kind === 'EndpointSlice') slices.push(object.value);
      else others.push(object.object);
    }
    this.services = Object.freeze(services);
    this.pods = Object.freeze(pods);
    this.others = Object.freeze(others);
    const podsByName = this.indexPods(pods);
    this.indexServices(services);
    this.indexEndpoints(services, slices, podsByName);
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

  private indexPods(pods: readonly MeshPodDetails[]): Map<string, MeshPod> {
    const byName = new Map<string, MeshPod>();
    for (const pod of pods) {
      byName.set(key(pod.namespace, pod.name), pod);
      if (pod.hostNetwork) continue;
      for (const ip of pod.ips) {
        const owner = this.podsByIp.get(ip);
        if (owner === undefined) this.podsByIp.set(ip, pod);
        else log.warn({ ip, pods: [key(owner.namespace, owner.name), key(pod.namespace, pod.name)] }, 'two pods claim one IP; the first keeps it');
      }
    }
    return byName;
  }

  private indexServices(services: readonly MeshService[]): void {
    for (const service of services) {
      this.servicesByName.set(key(service.namespace, service.name), service);
      for (const ip of service.clusterIPs) {
        let ports = this.clusterIps.get(ip);
        if (ports === undefined) this.clusterIps.set(ip, (ports = new Map()));
        for (const port of service.ports) {
          const taken = ports.get(port.port);
          // The proxy carries TCP: when a number is declared for TCP and UDP, the TCP port answers.
          if (taken?.kind === 'service' && (taken.port.protocol === 'TCP' || port.protocol !== 'TCP')) continue;
          ports.set(port.port, Object.freeze({ kind: 'service', service, port }));
        }
      }
    }
  }

  private indexEndpoints(services: readonly MeshService[], slices: readonly MeshEndpointSlice[], podsByName: Map<string, MeshPod>): void {
    const slicesByService = new Map<string, MeshEndpointSlice[]>();
    for (const slice of slices) {
      const serviceKey = key(slice.namespace, slice.serviceName);
      const forService = slicesByService.get(serviceKey);
      if (forService === undefined) slicesByService.set(serviceKey, [slice]);
      else forService.push(slice);
      if (slice.addressType === 'FQDN') continue;
      for (const endpoint of slice.endpoints) {
        const pod = endpoint.pod === undefined ? undefined : podsByName.get(key(endpoint.pod.namespace, endpoint.pod.name));
        for (const address of endpoint.addresses) {
          // A Pod object without status IPs is still found by the address its slice gives it.
          if (pod !== undefined && !this.podsByIp.has(address)) this.podsByIp.set(address, pod);
          if (!this.endpointIps.has(address)) this.endpointIps.set(address, pod);
        }
      }
    }
    for (const service of services) {
      const serviceKey = key(service.namespace, service.name);
      const byName = new Map<string, readonly MeshEndpoint[]>();
      this.endpointsByName.set(serviceKey, byName);
      for (const port of service.ports) {
        const endpoints = Object.freeze(endpointsOf(slicesByService.get(serviceKey) ?? [], port, primaryFamily(service)));
        this.endpointsByPort.set(port, endpoints);
        byName.set(portKey(port), endpoints);
      }
    }
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
