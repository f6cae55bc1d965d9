// Service (v1): cluster IPs (or headless), ports with their declared protocol, selector, and the
// tsmesh load-balancer annotation.
import type { FieldChecker } from '../fields.js';
import { describeValue, isMissing } from '../fields.js';
import { ipFamily } from '../ip.js';
import { declaredProtocol } from '../protocol.js';
import type { LocalityMode, MeshService, ServicePort } from '../types.js';
import { DEFAULT_LOAD_BALANCER, unknownLoadBalancerWarning } from '../load-balancers.js';
import type { KindDefinition } from './kind.js';

export const LOAD_BALANCER_ANNOTATION = 'tsmesh.io/load-balancer';
/** `zone` (the default) or `off`: whether callers prefer endpoints in their own zone. */
export const LOCALITY_ANNOTATION = 'tsmesh.io/locality';
const LOCALITY_MODES = ['zone', 'off'] as const;

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

export const serviceKind: KindDefinition<MeshService> = {
  apiVersion: 'v1',
  namespaced: true,
  nameRule: 'dns1035Label',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec', true) ?? {};
    const type = check.oneOf(spec['type'], 'spec.type', SERVICE_TYPES) ?? 'ClusterIP';
    const { clusterIPs, headless } = clusterIps(check, spec);
    const ports = servicePorts(check, spec['ports'], headless || type === 'ExternalName');
    const loadBalancer = loadBalancerOf(check, meta.annotations[LOAD_BALANCER_ANNOTATION]);
    const locality = localityOf(check, meta.annotations[LOCALITY_ANNOTATION]);
    return Object.freeze({
      namespace: meta.namespace,
      name: meta.name,
      clusterIPs,
      headless,
      ports,
      selector: Object.freeze(check.stringMap(spec['selector'], 'spec.selector')),
      annotations: meta.annotations,
      loadBalancer,
      ...(locality === undefined ? {} : { locality }),
    });
  },
};

/** The annotation's mode; a value other than `zone` or `off` is a warning and leaves the default (`zone`). */
function localityOf(check: FieldChecker, value: string | undefined): LocalityMode | undefined {
  if (value === undefined) return undefined;
  const mode = LOCALITY_MODES.find((m) => m === value.trim());
  if (mode === undefined) check.warn(`metadata.annotations["${LOCALITY_ANNOTATION}"]`, `must be one of ${LOCALITY_MODES.join(', ')}, got ${describeValue(value)}; the default (zone) applies`);
  return mode;
}

/**
 * The annotation's algorithm, passed through as written: an unknown name is a warning here and the
 * proxy registry's fallback decides (a name it registers later needs no change in the model).
 */
function loadBalancerOf(check: FieldChecker, value: string | undefined): string {
  if (value === undefined || value.trim() === '') return DEFAULT_LOAD_BALANCER;
  const warning = unknownLoadBalancerWarning(value);
  if (warning !== undefined) check.warn(`metadata.annotations["${LOAD_BALANCER_ANNOTATION}"]`, warning);
  return value;
}

function clusterIps(check: FieldChecker, spec: Record<string, unknown>): { clusterIPs: readonly string[]; headless: boolean } {
  const single = spec['clusterIP'];
  const list = check.array(spec['clusterIPs'], 'spec.clusterIPs');
  const none = (v: unknown): boolean => v === 'None';
  if (none(single) || (list !== undefined && list.some(none))) {
    if (list !== undefined && (list.length !== 1 || !none(list[0]))) {
      check.fail('spec.clusterIPs', `must be ["None"] for a headless Service, got ${describeValue(list)}`);
    }
    if (!isMissing(single) && single !== '' && !none(single)) {
      check.fail('spec.clusterIP', `must be "None" when spec.clusterIPs is ["None"], got ${describeValue(single)}`);
    }
    return { clusterIPs: Object.freeze([]), headless: true };
  }
  // An empty clusterIP asks Kubernetes to allocate one; a mesh file then simply has no cluster IP.
  const first = isMissing(single) || single === '' ? undefined : check.ip(single, 'spec.clusterIP');
  const ips: string[] = [];
  (list ?? []).forEach((item, i) => {
    const ip = check.ip(item, `spec.clusterIPs[${i}]`);
    if (ip !== undefined) ips.push(ip);
  });
  if (list === undefined && first !== undefined) ips.push(first);
  if (list !== undefined && first !== undefined && ips[0] !== first) {
    check.fail('spec.clusterIPs[0]', `must equal spec.clusterIP ${describeValue(first)}, got ${describeValue(list[0])}`);
  }
  if (ips.length > 2 || (ips.length === 2 && ipFamily(ips[0] ?? '') === ipFamily(ips[1] ?? ''))) {
    check.fail('spec.clusterIPs', `must hold at most one IPv4 and one IPv6 address, got ${describeValue(list)}`);
  }
  return { clusterIPs: Object.freeze(ips), headless: false };
}

function servicePorts(check: FieldChecker, value: unknown, portsOptional: boolean): readonly ServicePort[] {
  const list = check.array(value, 'spec.ports', !portsOptional);
  if (list === undefined) return Object.freeze([]);
  if (list.length === 0 && !portsOptional) check.fail('spec.ports', 'must list at least one port');
  const ports: ServicePort[] = [];
  const names = new Set<string>();
  const numbers = new Set<string>();
  list.forEach((item, i) => {
    const path = `spec.ports[${i}]`;
    const entry = check.object(item, path, true);
    if (entry === undefined) return;
    const name = check.dnsLabel(entry['name'], `${path}.name`, list.length > 1) ?? '';
    if (name !== '' && names.has(name)) check.fail(`${path}.name`, `duplicate port name ${describeValue(name)}`);
    names.add(name);
    const port = check.port(entry['port'], `${path}.port`, true);
    const protocol = check.oneOf(entry['protocol'], `${path}.protocol`, PROTOCOLS) ?? 'TCP';
    if (port !== undefined) {
      if (numbers.has(`${port}/${protocol}`)) check.fail(`${path}.port`, `duplicate port ${port}/${protocol}`);
      numbers.add(`${port}/${protocol}`);
    }
    const targetPort = checkTargetPort(check, entry['targetPort'], `${path}.targetPort`) ?? port;
    const appProtocol = check.string(entry['appProtocol'], `${path}.appProtocol`);
    if (port === undefined || targetPort === undefined) return;
    ports.push(Object.freeze({ name, port, targetPort, protocol, declaredProtocol: declaredProtocol(appProtocol, name) }));
  });
  return Object.freeze(ports);
}

function checkTargetPort(check: FieldChecker, value: unknown, path: string): number | string | undefined {
  if (isMissing(value) || typeof value === 'number') return check.port(value, path);
  if (typeof value === 'string' && /^[0-9]+$/.test(value)) {
    return check.fail(path, `must be a number, not a string, to name a port number (write ${value} without quotes), got ${describeValue(value)}`);
  }
  return check.ianaServiceName(value, path);
}
