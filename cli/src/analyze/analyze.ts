// `tsmesh analyze`'s engine: every registered analyzer over one indexed mesh, the findings sorted
// (most severe first) and narrowed to the namespaces asked for.
import type { Analyzer } from './analyzer.js';
import { MeshIndex, type AnalysisInput } from './mesh.js';
import { SEVERITIES, type Message, type Severity } from './messages.js';
import { annotationAnalyzer } from './rules/annotations.js';
import { injectionAnalyzer } from './rules/injection.js';
import { invalidObjectAnalyzer } from './rules/invalid.js';
import { peerAuthenticationAnalyzer } from './rules/peer-authentication.js';
import { routeAnalyzer } from './rules/routes.js';
import { selectorAnalyzer } from './rules/selectors.js';

export const ANALYZERS: readonly Analyzer[] = Object.freeze([
  invalidObjectAnalyzer,
  routeAnalyzer,
  peerAuthenticationAnalyzer,
  injectionAnalyzer,
  annotationAnalyzer,
  selectorAnalyzer,
]);

export interface AnalyzeOptions {
  /** Report only on objects of this namespace (a Namespace object counts as its own); undefined: all. */
  readonly namespace?: string | undefined;
}

export function analyze(input: AnalysisInput, options: AnalyzeOptions = {}): Message[] {
  const mesh = new MeshIndex(input);
  const found = ANALYZERS.flatMap((analyzer) => analyzer.analyze(mesh));
  const wanted = options.namespace === undefined ? found : found.filter((m) => (m.namespace ?? (m.kind === 'Namespace' ? m.objectName : undefined)) === options.namespace);
  return wanted.sort(compareMessages);
}

export function compareMessages(a: Message, b: Message): number {
  return (
    SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) ||
    a.code.localeCompare(b.code) ||
    a.kind.localeCompare(b.kind) ||
    (a.namespace ?? '').localeCompare(b.namespace ?? '') ||
    a.objectName.localeCompare(b.objectName) ||
    a.text.localeCompare(b.text)
  );
}

/** Whether any message is at least as severe as `threshold`. */
export function fails(messages: readonly Message[], threshold: Severity): boolean {
  const limit = SEVERITIES.indexOf(threshold);
  return messages.some((m) => SEVERITIES.indexOf(m.severity) <= limit);
}
