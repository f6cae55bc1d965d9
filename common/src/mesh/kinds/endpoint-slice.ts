// EndpointSlice (discovery.k8s.io/v1): the addresses behind one Service, with Kubernetes' condition
// defaults (ready unset → ready, serving unset → as ready, terminating unset → false).
import type { FieldChecker } from '../fields.js';
import { describeValue } from '../fields.js';
import type { PodRef } from '../types.js';
import type { KindDefinition } from './kind.js';
import { PROTOCOLS } from './service.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'] as const;
const MAX_ADDRESSES = 100;
/** Kubernetes' own limit on `hints.forZones`. */
const MAX_HINT_ZONES = 8;

export interface SliceEndpoint {
  /** Canonical IPs (or FQDNs); Kubernetes treats them as one endpoint, so consumers use the first. */
  readonly addresses: readonly string[];
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly pod: PodRef | undefined;
  readonly nodeName: string | undefined;
  readonly zone: string | undefined;
  /** `hints.forZones[].name` (topology-aware routing); undefined without hints. */
  readonly forZones: readonly string[] | undefined;
}

/** A slice port carries the Service port's name; its number is the target (container) port. */
export interface SlicePort {
  readonly name: string;
  /** Undefined means "all ports", which the mesh cannot route to. */
  readonly port: number | undefined;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  readonly appProtocol: string | undefined;
}

export interface MeshEndpointSlice {
  readonly namespace: string;
  readonly name: string;
  /** From the label `kubernetes.io/service-name`. */
  readonly serviceName: string;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints: readonly SliceEndpoint[];
  readonly ports: readonly SlicePort[];
}

export const endpointSliceKind: KindDefinition<MeshEndpointSlice> = {
  apiVersion: 'discovery.k8s.io/v1',
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const serviceName =
      check.dns1035Label(meta.labels[SERVICE_NAME_LABEL], `metadata.labels["${SERVICE_NAME_LABEL}"]`, true) ?? '';
    const addressType = check.oneOf(raw['addressType'], 'addressType', ADDRESS_TYPES, true) ?? 'IPv4';
    const endpoints: SliceEndpoint[] = [];
    (check.array(raw['endpoints'], 'endpoints', true) ?? []).forEach((item, i) => {
      const endpoint = sliceEndpoint(check, item, `endpoints[${i}]`, addressType, meta.namespace);
      if (endpoint !== undefined) endpoints.push(endpoint);
    });
    return Object.freeze({
      namespace: meta.namespace,
      name: meta.name,
      serviceName,
      addressType,
      endpoints: Object.freeze(endpoints),
      ports: slicePorts(check, raw['ports']),
    });
  },
};

function sliceEndpoint(
  check: FieldChecker,
  value: unknown,
  path: string,
  addressType: MeshEndpointSlice['addressType'],
  namespace: string,
): SliceEndpoint | undefined {
  const entry = check.object(value, path, true);
  if (entry === undefined) return undefined;
  const list = check.array(entry['addresses'], `${path}.addresses`, true) ?? [];
  if (list.length === 0 || list.length > MAX_ADDRESSES) {
    check.fail(`${path}.addresses`, `must hold 1 to ${MAX_ADDRESSES} addresses, got ${list.length}`);
  }
  const addresses: string[] = [];
  list.forEach((item, j) => {
    const where = `${path}.addresses[${j}]`;
    const address = addressType === 'FQDN' ? check.dnsSubdomain(item, where, true) : check.ip(item, where, addressType);
    if (address !== undefined) addresses.push(address);
  });
  const conditions = check.object(entry['conditions'], `${path}.conditions`) ?? {};
  const ready = check.boolean(conditions['ready'], `${path}.conditions.ready`) ?? true;
  const serving = check.boolean(conditions['serving'], `${path}.conditions.serving`) ?? ready;
  const terminating = check.boolean(conditions['terminating'], `${path}.conditions.terminating`) ?? false;
  return Object.freeze({
    addresses: Object.freeze(addresses),
    ready,
    serving,
    terminating,
    pod: podRef(check, entry['targetRef'], `${path}.targetRef`, namespace),
    nodeName: check.string(entry['nodeName'], `${path}.nodeName`),
    zone: check.string(entry['zone'], `${path}.zone`),
    forZones: forZonesOf(check, entry['hints'], `${path}.hints`),
  });
}

/** `hints.forZones` as zone names; undefined when there are no hints (an empty list is no hint either). */
function forZonesOf(check: FieldChecker, value: unknown, path: string): readonly string[] | undefined {
  const hints = check.object(value, path);
  if (hints === undefined) return undefined;
  const list = check.array(hints['forZones'], `${path}.forZones`) ?? [];
  if (list.length > MAX_HINT_ZONES) check.fail(`${path}.forZones`, `must hold at most ${MAX_HINT_ZONES} zones, got ${list.length}`);
  const zones: string[] = [];
  list.forEach((item, i) => {
    const zone = check.object(item, `${path}.forZones[${i}]`, true);
    const name = zone === undefined ? undefined : check.string(zone['name'], `${path}.forZones[${i}].name`, true);
    if (name !== undefined && name !== '' && !zones.includes(name)) zones.push(name);
  });
  return zones.length === 0 ? undefined : Object.freeze(zones);
}

function podRef(check: FieldChecker, value: unknown, path: string, namespace: string): PodRef | undefined {
  const ref = check.object(value, path);
  if (ref === undefined) return undefined;
  const kind = check.string(ref['kind'], `${path}.kind`, true);
  const name = check.dnsSubdomain(ref['name'], `${path}.name`, true);
  const refNamespace = check.dnsLabel(ref['namespace'], `${path}.namespace`) ?? namespace;
  if (kind !== 'Pod' || name === undefined) return undefined;
  return Object.freeze({ namespace: refNamespace, name });
}

function slicePorts(check: FieldChecker, value: unknown): readonly SlicePort[] {
  const ports: SlicePort[] = [];
  const names = new Set<string>();
  (check.array(value, 'ports') ?? []).forEach((item, i) => {
    const path = `ports[${i}]`;
    const entry = check.object(item, path, true);
    if (entry === undefined) return;
    const name = entry['name'] === '' ? '' : (check.dnsLabel(entry['name'], `${path}.name`) ?? '');
    if (names.has(name)) check.fail(`${path}.name`, `duplicate port name ${describeValue(name)}`);
    names.add(name);
    ports.push(
      Object.freeze({
        name,
        port: check.port(entry['port'], `${path}.port`),
        protocol: check.oneOf(entry['protocol'], `${path}.protocol`, PROTOCOLS) ?? 'TCP',
        appProtocol: check.string(entry['appProtocol'], `${path}.appProtocol`),
      }),
    );
  });
  return Object.freeze(ports);
}
