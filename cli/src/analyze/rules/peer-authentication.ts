// TSM0201, TSM0202: PeerAuthentications that compete for the same workloads. Only the oldest one
// counts at a level, so the others silently do nothing where they overlap.
import type { Analyzer } from '../analyzer.js';
import { shortList, type MeshIndex, type PeerAuthentication } from '../mesh.js';
import { message, type Message } from '../messages.js';
import { compareAge, hasSelector, labelsMatch } from '../mtls.js';

const ref = (p: PeerAuthentication): string => `${p.namespace}/${p.name}`;
const self = (p: PeerAuthentication) => ({ kind: 'PeerAuthentication', namespace: p.namespace, name: p.name });
const selectorText = (selector: Readonly<Record<string, string>>): string => Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');

function byNamespace(policies: readonly PeerAuthentication[]): Map<string, PeerAuthentication[]> {
  const groups = new Map<string, PeerAuthentication[]>();
  for (const policy of policies) groups.set(policy.namespace, [...(groups.get(policy.namespace) ?? []), policy]);
  for (const group of groups.values()) group.sort(compareAge);
  return groups;
}

/** Two (or more) selector-less policies in one namespace: one namespace-wide (or mesh-wide) mode too many. */
function conflicting(mesh: MeshIndex): Message[] {
  const found: Message[] = [];
  for (const [namespace, group] of byNamespace(mesh.peerAuthentications.filter((p) => !hasSelector(p)))) {
    const [winner, ...others] = group;
    if (winner === undefined) continue;
    const scope = namespace === mesh.rootNamespace ? 'mesh-wide' : `namespace-wide in ${namespace}`;
    for (const other of others) {
      found.push(message('conflictingPeerAuthentications', self(other), `is ${scope}, as is PeerAuthentication ${ref(winner)}: only the oldest (by creationTimestamp, then name), ${ref(winner)} (${winner.mode}), counts and this one (${other.mode}) is ignored`));
    }
  }
  return found;
}

/** Two selector policies of one namespace whose selectors overlap: by their labels, or on a pod seen to match both. */
function overlapping(mesh: MeshIndex): Message[] {
  const found: Message[] = [];
  for (const group of byNamespace(mesh.peerAuthentications.filter(hasSelector)).values()) {
    for (let i = 0; i < group.length; i++) {
      for (let j = i + 1; j < group.length; j++) {
        const older = group[i] as PeerAuthentication & { selector: Record<string, string> };
        const newer = group[j] as PeerAuthentication & { selector: Record<string, string> };
        const pods = mesh.knows('Pod') ? mesh.podsIn(newer.namespace).filter((pod) => labelsMatch(older.selector, pod.labels) && labelsMatch(newer.selector, pod.labels)) : [];
        const nested = labelsMatch(older.selector, newer.selector) || labelsMatch(newer.selector, older.selector);
        if (pods.length === 0 && !nested) continue;
        const where = pods.length > 0 ? `pods ${shortList(pods.map((p) => p.name))}` : `every pod the narrower of ${selectorText(newer.selector)} and ${selectorText(older.selector)} selects`;
        found.push(message('overlappingPeerAuthentications', self(newer), `selects the same workloads as PeerAuthentication ${ref(older)} (${where}): only the older, ${ref(older)} (${older.mode}), counts for them and this one (${newer.mode}) is ignored there`));
      }
    }
  }
  return found;
}

export const peerAuthenticationAnalyzer: Analyzer = {
  name: 'peer-authentication',
  reports: ['conflictingPeerAuthentications', 'overlappingPeerAuthentications'],
  analyze: (mesh) => [...conflicting(mesh), ...overlapping(mesh)],
};
