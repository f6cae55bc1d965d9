// The Accepted condition of each HTTPLocalRateLimitPolicy (the AuthorizationPolicy writer with this
// kind's path and review): True when the sidecars of the workloads it selects enforce it; False when
// it was left out (the validator's reason: an unknown field, a clientRef kind other than
// ServiceAccount...), when its selector matches no pod of its namespace (reason NoMatchingWorkload),
// or when its spec.route names no route or rule there (NoMatchingRoute); such a policy is still sent
// to sidecars and applies as soon as a pod, route or rule matches.
import type { KubeConfig } from '@kubernetes/client-node';
import { validateObject, type KubeObject, type MeshProvider, type MeshSnapshot } from '@tsmesh/common';
import { PolicyStatusWriter, type AuthorizationStatusWriterOptions, type PolicyStatusKind } from './authorization.js';
import type { StatusClient } from './writer.js';

export const RATE_LIMIT_ACCEPTED_MESSAGE = 'enforced by the sidecars of the workloads it selects';

/** `/apis/policy.tsmesh.io/v1/namespaces/{ns}/httplocalratelimitpolicies/{name}/status`. */
export function rateLimitStatusPath(namespace: string, name: string): string {
  return `/apis/policy.tsmesh.io/v1/namespaces/${encodeURIComponent(namespace)}/httplocalratelimitpolicies/${encodeURIComponent(name)}/status`;
}

/** Why a valid policy in the mesh limits nothing, if it does: a route (or rule) that does not exist, a selector that matches no pod. */
export function reviewRateLimit(object: KubeObject, snapshot: Pick<MeshSnapshot, 'pods' | 'others'>): { readonly reason: string; readonly message: string } | undefined {
  const checked = validateObject(object);
  if (!checked.ok || checked.value.kind !== 'HTTPLocalRateLimitPolicy') return undefined;
  const { namespace, selector, route } = checked.value.value;
  if (route !== undefined) {
    const found = snapshot.others.find((o) => o.kind === route.kind && o.metadata.name === route.name && (o.metadata.namespace ?? 'default') === namespace);
    if (found === undefined) return { reason: 'NoMatchingRoute', message: `spec.route: no ${route.kind} ${namespace}/${route.name} (it applies as soon as there is one)` };
    const rules = (found['spec'] as { rules?: unknown } | undefined)?.rules;
    const named = Array.isArray(rules) && rules.some((r) => typeof r === 'object' && r !== null && (r as { name?: unknown }).name === route.ruleName);
    if (route.ruleName !== undefined && !named) {
      return { reason: 'NoMatchingRoute', message: `spec.route.ruleName: ${route.kind} ${namespace}/${route.name} has no rule named ${route.ruleName}` };
    }
  }
  const labels = Object.entries(selector ?? {});
  const matches = snapshot.pods.some((pod) => pod.namespace === namespace && labels.every(([key, value]) => Object.hasOwn(pod.labels, key) && pod.labels[key] === value));
  if (matches) return undefined;
  const wanted = labels.length === 0 ? 'no pod runs in it' : `no pod there has ${labels.map(([k, v]) => `${k}=${v}`).join(',')}`;
  return { reason: 'NoMatchingWorkload', message: `spec.selector matches no workload of namespace ${namespace}: ${wanted} (it applies as soon as one does)` };
}

export const RATE_LIMIT_STATUS: PolicyStatusKind = {
  kind: 'HTTPLocalRateLimitPolicy',
  statusPath: rateLimitStatusPath,
  acceptedMessage: RATE_LIMIT_ACCEPTED_MESSAGE,
  review: reviewRateLimit,
};

/** The HTTPLocalRateLimitPolicy status writer. */
export class RateLimitStatusWriter extends PolicyStatusWriter {
  constructor(provider: MeshProvider, client: StatusClient | KubeConfig, options: AuthorizationStatusWriterOptions = {}) {
    super(provider, client, RATE_LIMIT_STATUS, options);
  }
}
