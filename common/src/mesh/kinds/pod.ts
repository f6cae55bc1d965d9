// Pod (v1): what the mesh needs of a workload — its IPs, labels, service account (its identity) and
// whether it runs a tsmesh sidecar.
import type { FieldChecker } from '../fields.js';
import { describeValue, isRecord } from '../fields.js';
import type { MeshPod } from '../types.js';
import type { KindDefinition } from './kind.js';

export const STATUS_ANNOTATION = 'tsmesh.io/status';
export const PROXY_CONTAINER = 'tsmesh-proxy';
export const DEFAULT_SERVICE_ACCOUNT = 'default';

/** A MeshPod plus the facts only discovery needs. */
export interface MeshPodDetails extends MeshPod {
  /** A host-network pod's IP is its node's, shared with other pods: it never identifies the pod. */
  readonly hostNetwork: boolean;
}

export const podKind: KindDefinition<MeshPodDetails> = {
  apiVersion: 'v1',
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec') ?? {};
    const serviceAccount =
      check.dnsSubdomain(spec['serviceAccountName'], 'spec.serviceAccountName') ??
      check.dnsSubdomain(spec['serviceAccount'], 'spec.serviceAccount') ??
      DEFAULT_SERVICE_ACCOUNT;
    const containers = [
      ...containerNames(check, spec['initContainers'], 'spec.initContainers'),
      ...containerNames(check, spec['containers'], 'spec.containers'),
    ];
    return Object.freeze({
      namespace: meta.namespace,
      name: meta.name,
      ips: podIps(check, check.object(raw['status'], 'status') ?? {}),
      labels: meta.labels,
      annotations: meta.annotations,
      serviceAccount,
      meshed: meta.annotations[STATUS_ANNOTATION] !== undefined || containers.includes(PROXY_CONTAINER),
      hostNetwork: check.boolean(spec['hostNetwork'], 'spec.hostNetwork') ?? false,
    });
  },
};

function containerNames(check: FieldChecker, value: unknown, path: string): string[] {
  const names: string[] = [];
  (check.array(value, path) ?? []).forEach((item, i) => {
    const container = check.object(item, `${path}[${i}]`, true);
    const name = check.dnsLabel(container?.['name'], `${path}[${i}].name`, container !== undefined);
    if (name !== undefined) names.push(name);
  });
  return names;
}

function podIps(check: FieldChecker, status: Record<string, unknown>): readonly string[] {
  const primary = status['podIP'] === '' ? undefined : status['podIP'];
  const first = primary === undefined || primary === null ? undefined : check.ip(primary, 'status.podIP');
  const list = check.array(status['podIPs'], 'status.podIPs');
  if (list === undefined) return Object.freeze(first === undefined ? [] : [first]);
  const ips: string[] = [];
  list.forEach((item, i) => {
    const path = `status.podIPs[${i}]`;
    if (!isRecord(item)) {
      check.fail(path, `must be a mapping with an "ip" field, got ${describeValue(item)}`);
      return;
    }
    const ip = check.ip(item['ip'], `${path}.ip`);
    if (ip !== undefined) ips.push(ip);
  });
  if (first !== undefined && ips.length > 0 && ips[0] !== first) {
    check.fail('status.podIPs[0].ip', `must equal status.podIP ${describeValue(first)}, got ${describeValue(ips[0])}`);
  }
  if (first !== undefined && ips.length === 0) ips.push(first);
  return Object.freeze(ips);
}
