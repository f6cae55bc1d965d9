// TSM0501, TSM0502: an AuthorizationPolicy or HTTPLocalRateLimitPolicy whose selector matches no pod
// it may select (policySelects: its own namespace, every namespace from the root namespace), so it
// applies to nothing. Judged only when every Pod was read.
import { policySelects, type ScopedPolicy } from '@tsmesh/common';
import type { Analyzer } from '../analyzer.js';
import type { MeshIndex } from '../mesh.js';
import { message, type Message, type MessageTypeKey } from '../messages.js';

const selectorText = (selector: Readonly<Record<string, string>>): string => Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');

function selectsNothing(mesh: MeshIndex, kind: string, type: MessageTypeKey, policies: ReadonlyArray<ScopedPolicy & { readonly name: string }>): Message[] {
  if (!mesh.knows('Pod')) return [];
  const found: Message[] = [];
  for (const policy of policies) {
    if (policy.selector === undefined || Object.keys(policy.selector).length === 0) continue;
    if (mesh.pods.some((pod) => policySelects(policy, pod, mesh.rootNamespace))) continue;
    const where = policy.namespace === mesh.rootNamespace ? 'in any namespace' : `in namespace ${policy.namespace} (a policy selects pods of its own namespace only, unless it is in ${mesh.rootNamespace})`;
    found.push(message(type, { kind, namespace: policy.namespace, name: policy.name }, `selector ${selectorText(policy.selector)} matches no pod ${where}: it applies to nothing`));
  }
  return found;
}

export const selectorAnalyzer: Analyzer = {
  name: 'selectors',
  reports: ['authorizationPolicySelectsNothing', 'rateLimitPolicySelectsNothing'],
  analyze: (mesh) => [
    ...selectsNothing(mesh, 'AuthorizationPolicy', 'authorizationPolicySelectsNothing', mesh.authorizationPolicies),
    ...selectsNothing(mesh, 'HTTPLocalRateLimitPolicy', 'rateLimitPolicySelectsNothing', mesh.rateLimitPolicies),
  ],
};
