// TSM0401: `tsmesh.io/*` annotations tsmesh does not read, usually a typo or an annotation put on the
// wrong kind of object. The known ones are the injector's (pods) and the load balancer's (Services).
import { LOAD_BALANCER_ANNOTATION } from '@tsmesh/common';
import { ANNOTATIONS, INJECTION_NAMESPACE_LABEL } from '@tsmesh/injector';
import type { Analyzer } from '../analyzer.js';
import { message, type Message } from '../messages.js';

const PREFIX = 'tsmesh.io/';
const POD_ANNOTATIONS: readonly string[] = Object.values(ANNOTATIONS);
const SERVICE_ANNOTATIONS: readonly string[] = [LOAD_BALANCER_ANNOTATION];
const KNOWN: Readonly<Record<'Pod' | 'Namespace' | 'Service', readonly string[]>> = { Pod: POD_ANNOTATIONS, Namespace: [], Service: SERVICE_ANNOTATIONS };

/** Edit distance, for "did you mean" (names are short: the quadratic table is fine). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let distance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(name, candidate);
    if (d < distance) [best, distance] = [candidate, d];
  }
  return distance <= 3 ? best : undefined;
}

export function annotationProblem(kind: 'Pod' | 'Namespace' | 'Service', name: string): string | undefined {
  if (!name.startsWith(PREFIX) || KNOWN[kind].includes(name)) return undefined;
  if (kind !== 'Pod' && POD_ANNOTATIONS.includes(name)) {
    const where = kind === 'Namespace' && name === ANNOTATIONS.inject ? ` (a namespace turns injection on with the label ${INJECTION_NAMESPACE_LABEL}=enabled)` : ' (set it on the pod template)';
    return `has annotation ${name}, which tsmesh reads on pods only: on a ${kind} it does nothing${where}`;
  }
  if (kind !== 'Service' && SERVICE_ANNOTATIONS.includes(name)) return `has annotation ${name}, which tsmesh reads on Services only: on a ${kind} it does nothing`;
  const guess = closest(name, KNOWN[kind].length > 0 ? KNOWN[kind] : []);
  return `has annotation ${name}, which tsmesh does not know${guess === undefined ? '' : ` (did you mean ${guess}?)`}: it does nothing`;
}

export const annotationAnalyzer: Analyzer = {
  name: 'annotations',
  reports: ['unknownAnnotation'],
  analyze(mesh) {
    const found: Message[] = [];
    for (const { kind, object } of mesh.annotated) {
      const name = object.metadata.name ?? '';
      const self = { kind, namespace: kind === 'Namespace' ? undefined : object.metadata.namespace, name };
      for (const annotation of Object.keys(object.metadata.annotations ?? {}).sort()) {
        const problem = annotationProblem(kind, annotation);
        if (problem !== undefined) found.push(message('unknownAnnotation', self, problem));
      }
    }
    return found;
  },
};
