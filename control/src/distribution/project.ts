// The wire form of a snapshot: the model values a sidecar needs, turned back into Kubernetes-format
// objects holding only the fields the mesh model reads. A sidecar validates and indexes them with
// the same common code as a mesh file, and gets the same model back.
import { isIP } from 'node:net';
import {
  PROXY_CONTAINER,
  STATUS_ANNOTATION,
  type KubeObject,
  type MeshEndpoint,
  type MeshPod,
  type MeshService,
  type MeshSnapshot,
  type ServicePort,
} from '@tsmesh/common';

/** Kinds a snapshot keeps raw (`others`) that sidecars receive; ServiceAccounts stay in the control plane. */
const DISTRIBUTED_OTHERS: ReadonlySet<string> = new Set(['Namespace', 'PeerAuthentication', 'AuthorizationPolicy', 'HTTPLocalRateLimitPolicy', 'HTTPRoute', 'GRPCRoute', 'TrafficPolicy', 'XBackendTrafficPolicy']);

/** Annotations nothing in the mesh reads that can be large: never sent. */
const DROPPED_ANNOTATIONS: readonly string[] = ['kubectl.kubernetes.io/last-applied-configuration'];

/** One object in wire form, with what scoping needs to know of it. */
export interface WireObject {
  readonly kind: string;
  /** '' for cluster-scoped kinds. */
  readonly namespace: string;
  readonly object: KubeObject;
}

/**
 * Every object of a snapshot a sidecar may receive, in a stable order: Namespaces, Services,
 * EndpointSlices, Pods, then PeerAuthentications, routes and traffic policies.
 */
export function projectSnapshot(snapshot: MeshSnapshot): WireObject[] {
  const wire: WireObject[] = [];
  const others = snapshot.others.filter((o) => DISTRIBUTED_OTHERS.has(o.kind));
  for (const raw of others.filter((o) => o.kind === 'Namespace')) wire.push(otherObject(raw));
  for (const service of snapshot.services) wire.push({ kind: 'Service', namespace: service.namespace, object: serviceObject(service) });
  for (const service of snapshot.services) {
    for (const slice of sliceObjects(snapshot, service)) wire.push({ kind: 'EndpointSlice', namespace: service.namespace, object: slice });
  }
  for (const pod of snapshot.pods) wire.push({ kind: 'Pod', namespace: pod.namespace, object: podObject(pod) });
  for (const raw of others.filter((o) => o.kind !== 'Namespace')) wire.push(otherObject(raw));
  return wire;
}

function annotationsOf(annotations: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const kept: Record<string, string> = { ...annotations };
  for (const name of DROPPED_ANNOTATIONS) delete kept[name];
  return kept;
}

function meta(name: string, namespace: string, labels: Readonly<Record<string, string>>, annotations: Readonly<Record<string, string>>): KubeObject['metadata'] {
  return {
    name,
    namespace,
    ...(Object.keys(labels).length > 0 ? { labels: { ...labels } } : {}),
    ...(Object.keys(annotations).length > 0 ? { annotations: annotationsOf(annotations) } : {}),
  };
}

/** A Service as the model knows it: cluster IPs, ports (the declared protocol as appProtocol), selector, annotations. */
export function serviceObject(service: MeshService): KubeObject {
  const ports = service.ports.map((port) => ({
    ...(port.name === '' ? {} : { name: port.name }),
    port: port.port,
    targetPort: port.targetPort,
    protocol: port.protocol,
    ...(port.declaredProtocol === undefined ? {} : { appProtocol: port.declaredProtocol }),
  }));
  const [first] = service.clusterIPs;
  // The model keeps no Service type; only an ExternalName Service has neither cluster IP nor ports.
  const type = !service.headless && first === undefined && ports.length === 0 ? 'ExternalName' : 'ClusterIP';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(service.name, service.namespace, {}, service.annotations),
    spec: {
      type,
      ...(service.headless ? { clusterIP: 'None', clusterIPs: ['None'] } : first === undefined ? {} : { clusterIP: first, clusterIPs: [...service.clusterIPs] }),
      ...(ports.length > 0 ? { ports } : {}),
      ...(Object.keys(service.selector).length > 0 ? { selector: { ...service.selector } } : {}),
    },
  };
}

/** A Pod reduced to its identity: IPs, labels, annotations, service account, host network, sidecar. */
export function podObject(pod: MeshPod): KubeObject {
  const hostNetwork = 'hostNetwork' in pod && pod.hostNetwork === true;
  const [first] = pod.ips;
  const spec: Record<string, unknown> = { serviceAccountName: pod.serviceAccount };
  if (hostNetwork) spec['hostNetwork'] = true;
  // `meshed` comes from the status annotation or the sidecar container; keep whichever says so.
  if (pod.meshed && pod.annotations[STATUS_ANNOTATION] === undefined) spec['containers'] = [{ name: PROXY_CONTAINER }];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta(pod.name, pod.namespace, pod.labels, pod.annotations),
    spec,
    status: first === undefined ? {} : { podIP: first, podIPs: pod.ips.map((ip) => ({ ip })) },
  };
}

/**
 * The endpoints of a Service as EndpointSlices: one per (Service port, target port number, address
 * type), so every endpoint keeps its own port number, conditions, zone and hints. Names are made up (`<service>-<n>`):
 * nothing in the mesh reads a slice's name.
 */
export function sliceObjects(snapshot: MeshSnapshot, service: MeshService): KubeObject[] {
  const groups = new Map<string, { port: ServicePort; number: number; addressType: string; endpoints: MeshEndpoint[] }>();
  for (const port of service.ports) {
    for (const endpoint of snapshot.endpoints(service, port)) {
      const family = isIP(endpoint.address);
      const addressType = family === 4 ? 'IPv4' : family === 6 ? 'IPv6' : 'FQDN';
      const key = `${port.name}/${port.protocol}/${endpoint.port}/${addressType}`;
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { port, number: endpoint.port, addressType, endpoints: [] }));
      group.endpoints.push(endpoint);
    }
  }
  return [...groups.values()].map((group, i) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service.name}-${i}`, namespace: service.namespace, labels: { 'kubernetes.io/service-name': service.name } },
    addressType: group.addressType,
    ports: [{ ...(group.port.name === '' ? {} : { name: group.port.name }), port: group.number, protocol: group.port.protocol }],
    endpoints: group.endpoints.map((endpoint) => ({
      addresses: [endpoint.address],
      conditions: { ready: endpoint.ready, serving: endpoint.serving, terminating: endpoint.terminating },
      ...(endpoint.pod === undefined ? {} : { targetRef: { kind: 'Pod', name: endpoint.pod.name, namespace: endpoint.pod.namespace } }),
      // Locality (zone preference, topology-aware routing hints) reads these.
      ...(endpoint.zone === undefined ? {} : { zone: endpoint.zone }),
      ...(endpoint.forZones === undefined ? {} : { hints: { forZones: endpoint.forZones.map((name) => ({ name })) } }),
    })),
  }));
}

/** A raw object (Namespace, PeerAuthentication, route, traffic policy) without status and server-side metadata. */
export function otherObject(raw: KubeObject): WireObject {
  const { metadata, status: _status, ...rest } = raw;
  const namespace = metadata.namespace ?? '';
  const kept: KubeObject['metadata'] = { ...meta(metadata.name ?? '', namespace, metadata.labels ?? {}, metadata.annotations ?? {}) };
  if (namespace === '') delete kept.namespace;
  // PeerAuthentication, route and traffic-policy precedence among equals is by age.
  if (typeof metadata['creationTimestamp'] === 'string') kept['creationTimestamp'] = metadata['creationTimestamp'];
  return { kind: raw.kind, namespace, object: { ...rest, metadata: kept } };
}
