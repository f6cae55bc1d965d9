// Which workloads a namespaced policy applies to (AuthorizationPolicy, PeerAuthentication-style
// selectors), one rule for the sidecar that enforces it and the control plane that reports it:
// a selector selects the matching pods of its own namespace, or of every namespace when the
// policy lives in the mesh's root namespace (as in Istio); without a selector the policy selects
// its namespace, or the whole mesh from the root namespace.

/** The namespace whose policies apply mesh-wide, unless `--root-namespace` says otherwise. */
export const DEFAULT_ROOT_NAMESPACE = 'tsmesh-system';

export interface ScopedPolicy {
  readonly namespace: string;
  /** `spec.selector.matchLabels`; undefined selects the whole namespace (or mesh). */
  readonly selector: Readonly<Record<string, string>> | undefined;
}

export interface ScopedWorkload {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

export function policySelects(policy: ScopedPolicy, workload: ScopedWorkload, rootNamespace: string = DEFAULT_ROOT_NAMESPACE): boolean {
  if (policy.namespace !== rootNamespace && policy.namespace !== workload.namespace) return false;
  const selector = policy.selector;
  if (selector === undefined) return true;
  for (const key of Object.keys(selector)) if (!Object.hasOwn(workload.labels, key) || workload.labels[key] !== selector[key]) return false;
  return true;
}
