// The mTLS mode PeerAuthentications give a workload or a namespace, by the sidecar's own rules
// (proxy/src/policy/peer-authentication.ts): workload > namespace > mesh, UNSET inherits, the oldest
// policy (creationTimestamp, then namespace and name) wins a level, the default is PERMISSIVE.
// Port-level modes are not considered: analyze speaks of a workload's default mode.
import type { MtlsMode } from '@tsmesh/common';
import type { MeshIndex, PeerAuthentication } from './mesh.js';

/** A selector without labels is no selector (namespace- or mesh-wide), as the sidecar reads it. */
export function hasSelector(policy: PeerAuthentication): policy is PeerAuthentication & { selector: Record<string, string> } {
  return policy.selector !== undefined && Object.keys(policy.selector).length > 0;
}

export function labelsMatch(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
}

/** Negative when `a` wins over `b` at one level. */
export function compareAge(a: PeerAuthentication, b: PeerAuthentication): number {
  const at = a.createdAt ?? Number.POSITIVE_INFINITY;
  const bt = b.createdAt ?? Number.POSITIVE_INFINITY;
  if (at !== bt) return at < bt ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

const oldest = (policies: PeerAuthentication[]): PeerAuthentication | undefined => [...policies].sort(compareAge)[0];

export interface Decided {
  readonly mode: Exclude<MtlsMode, 'UNSET'>;
  /** The policy that decided (`namespace/name`); undefined: the default. */
  readonly by: string | undefined;
}

function decide(...levels: Array<PeerAuthentication | undefined>): Decided {
  for (const policy of levels) if (policy !== undefined && policy.mode !== 'UNSET') return { mode: policy.mode, by: `${policy.namespace}/${policy.name}` };
  return { mode: 'PERMISSIVE', by: undefined };
}

export function meshPolicy(mesh: MeshIndex): PeerAuthentication | undefined {
  return oldest(mesh.peerAuthentications.filter((p) => !hasSelector(p) && p.namespace === mesh.rootNamespace));
}

function namespacePolicy(mesh: MeshIndex, namespace: string): PeerAuthentication | undefined {
  if (namespace === mesh.rootNamespace) return undefined;
  return oldest(mesh.peerAuthentications.filter((p) => !hasSelector(p) && p.namespace === namespace));
}

/** The mode of a namespace's workloads that no selector policy selects. */
export function namespaceMode(mesh: MeshIndex, namespace: string): Decided {
  return decide(namespacePolicy(mesh, namespace), meshPolicy(mesh));
}

/** The default mode of one workload. */
export function workloadMode(mesh: MeshIndex, namespace: string, labels: Readonly<Record<string, string>>): Decided {
  const selected = oldest(mesh.peerAuthentications.filter((p) => hasSelector(p) && p.namespace === namespace && labelsMatch(p.selector, labels)));
  return decide(selected, namespacePolicy(mesh, namespace), meshPolicy(mesh));
}
