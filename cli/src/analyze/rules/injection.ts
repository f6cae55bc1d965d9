// TSM0301, TSM0302, TSM0402: STRICT mTLS and the sidecars that must be there for it. A STRICT
// workload refuses plaintext, so callers without a sidecar fail; a STRICT policy over workloads
// without a sidecar enforces nothing. Which pods call which workload is not in any object: analyze
// names the callers it can know (every uninjected pod when the whole mesh is STRICT; the pods of a
// namespace whose route sends them to a STRICT Service) and docs/operations.md says so.
import { ANNOTATIONS, INJECTION_NAMESPACE_LABEL, SYSTEM_NAMESPACES } from '@tsmesh/injector';
import type { MeshPodDetails } from '@tsmesh/common';
import type { Analyzer } from '../analyzer.js';
import { shortList, type MeshIndex, type PeerAuthentication } from '../mesh.js';
import { message, type Message } from '../messages.js';
import { hasSelector, labelsMatch, meshPolicy, namespaceMode, workloadMode } from '../mtls.js';
import { parentsOf } from './routes.js';

const LABEL_VALUES = ['enabled', 'disabled'];

/** Namespaces never injected (the injector's list and the control plane's): not callers to judge. */
function isSystem(mesh: MeshIndex, namespace: string): boolean {
  return SYSTEM_NAMESPACES.includes(namespace) || namespace === mesh.rootNamespace;
}

const labelled = (mesh: MeshIndex, namespace: string): boolean => mesh.namespaces.get(namespace)?.labels[INJECTION_NAMESPACE_LABEL] === 'enabled';

/** Pods that run without a sidecar (host-network pods aside: never injected, not mesh workloads). */
const bare = (pods: readonly MeshPodDetails[]): MeshPodDetails[] => pods.filter((pod) => !pod.meshed && !pod.hostNetwork);

/**
 * Why a namespace's pods call without a sidecar, or undefined when they do not or it cannot be known:
 * from its pods when Pods were read, else from its injection label when Namespaces were.
 */
function withoutSidecars(mesh: MeshIndex, namespace: string): string | undefined {
  const label = labelled(mesh, namespace) ? `labelled ${INJECTION_NAMESPACE_LABEL}=enabled` : `not labelled ${INJECTION_NAMESPACE_LABEL}=enabled`;
  if (mesh.knows('Pod')) {
    const pods = bare(mesh.podsIn(namespace));
    if (pods.length === 0) return undefined;
    return `pods ${shortList(pods.map((p) => p.name))} have no sidecar (the namespace is ${label}${labelled(mesh, namespace) ? ` but they set ${ANNOTATIONS.inject}: "false" or predate the label` : ''})`;
  }
  if (mesh.knows('Namespace') && mesh.namespaces.has(namespace) && !labelled(mesh, namespace)) {
    return `it is ${label}, so its pods get no sidecar (unless one sets ${ANNOTATIONS.inject}: "true")`;
  }
  return undefined;
}

function candidateNamespaces(mesh: MeshIndex): string[] {
  const names = new Set<string>([...mesh.namespaces.keys(), ...mesh.pods.map((p) => p.namespace)]);
  return [...names].filter((n) => !isSystem(mesh, n)).sort();
}

function uninjectedCallers(mesh: MeshIndex): Message[] {
  const found: Message[] = [];
  const meshWide = meshPolicy(mesh);
  const strictMesh = meshWide?.mode === 'STRICT';
  const reported = new Set<string>();
  if (strictMesh) {
    for (const namespace of candidateNamespaces(mesh)) {
      const why = withoutSidecars(mesh, namespace);
      if (why === undefined) continue;
      reported.add(namespace);
      found.push(message('uninjectedCallersOfStrict', { kind: 'Namespace', name: namespace }, `${why}; PeerAuthentication ${meshWide.namespace}/${meshWide.name} makes the mesh STRICT, so their calls to meshed workloads are refused unless a namespace or workload policy relaxes it`));
    }
  }
  // A route in one namespace whose parent is a Service of another is a consumer route: it exists
  // because that namespace's pods call that Service.
  for (const route of mesh.routes) {
    if (reported.has(route.namespace) || isSystem(mesh, route.namespace)) continue;
    for (const parent of parentsOf(route)) {
      if (parent.kind !== 'Service' || parent.namespace === route.namespace) continue;
      const service = mesh.service(parent.namespace, parent.name);
      if (service === undefined) continue;
      const strict = strictBehind(mesh, parent.namespace, service.selector);
      if (strict === undefined) continue;
      const why = withoutSidecars(mesh, route.namespace);
      if (why === undefined) continue;
      found.push(message('uninjectedCallersOfStrict', { kind: route.kind, namespace: route.namespace, name: route.name }, `says namespace ${route.namespace} calls Service ${parent.namespace}/${parent.name}, which is STRICT (PeerAuthentication ${strict}), but in ${route.namespace} ${why}: those calls are plaintext and refused, and this route does not apply to them`));
    }
  }
  return found;
}

/** The STRICT policy behind a Service's workloads (its selected pods when known), else undefined. */
function strictBehind(mesh: MeshIndex, namespace: string, selector: Readonly<Record<string, string>>): string | undefined {
  if (mesh.knows('Pod') && Object.keys(selector).length > 0) {
    const pods = mesh.podsIn(namespace).filter((pod) => labelsMatch(selector, pod.labels));
    if (pods.length > 0) {
      const decided = pods.map((pod) => workloadMode(mesh, namespace, pod.labels)).find((d) => d.mode === 'STRICT');
      return decided?.by;
    }
  }
  const decided = namespaceMode(mesh, namespace);
  return decided.mode === 'STRICT' ? decided.by : undefined;
}

function strictWithoutSidecars(mesh: MeshIndex): Message[] {
  const found: Message[] = [];
  for (const policy of mesh.peerAuthentications) {
    if (policy.mode !== 'STRICT' || (!hasSelector(policy) && policy.namespace === mesh.rootNamespace)) continue;
    const self = { kind: 'PeerAuthentication', namespace: policy.namespace, name: policy.name };
    const text = judge(mesh, policy);
    if (text !== undefined) found.push(message('strictWithoutSidecars', self, text));
  }
  return found;
}

function judge(mesh: MeshIndex, policy: PeerAuthentication): string | undefined {
  if (mesh.knows('Pod')) {
    const pods = mesh.podsIn(policy.namespace).filter((pod) => !pod.hostNetwork && (!hasSelector(policy) || labelsMatch(policy.selector, pod.labels)));
    if (pods.length === 0 || pods.some((pod) => pod.meshed)) return undefined;
    return `is STRICT, but the pods it applies to (${shortList(pods.map((p) => p.name))}) have no sidecar: nothing enforces it and they accept plaintext from anyone`;
  }
  if (!hasSelector(policy) && mesh.knows('Namespace') && mesh.namespaces.has(policy.namespace) && !labelled(mesh, policy.namespace)) {
    return `is STRICT, but namespace ${policy.namespace} is not labelled ${INJECTION_NAMESPACE_LABEL}=enabled: its pods get no sidecar to enforce it`;
  }
  return undefined;
}

function badLabels(mesh: MeshIndex): Message[] {
  const found: Message[] = [];
  for (const namespace of mesh.namespaces.values()) {
    const value = namespace.labels[INJECTION_NAMESPACE_LABEL];
    if (value === undefined || LABEL_VALUES.includes(value)) continue;
    found.push(message('badInjectionLabel', { kind: 'Namespace', name: namespace.name }, `has label ${INJECTION_NAMESPACE_LABEL}=${value}, which is neither enabled nor disabled: the injector treats it as disabled`));
  }
  return found;
}

export const injectionAnalyzer: Analyzer = {
  name: 'injection',
  reports: ['uninjectedCallersOfStrict', 'strictWithoutSidecars', 'badInjectionLabel'],
  analyze: (mesh) => [...uninjectedCallers(mesh), ...strictWithoutSidecars(mesh), ...badLabels(mesh)],
};
