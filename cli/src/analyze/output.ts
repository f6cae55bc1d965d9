// How `tsmesh analyze` prints its findings: a table with a count line, or JSON/YAML for scripts.
import YAML from 'yaml';
import { formatTable } from '../proxy-config/views.js';
import { objectLabel, type Message } from './messages.js';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

/** One finding as -o json and -o yaml give it. */
export interface MessageRecord {
  readonly code: string;
  readonly type: string;
  readonly severity: string;
  readonly object: { readonly kind: string; readonly namespace?: string; readonly name: string };
  readonly message: string;
}

export function toRecord(m: Message): MessageRecord {
  const object = m.namespace === undefined ? { kind: m.kind, name: m.objectName } : { kind: m.kind, namespace: m.namespace, name: m.objectName };
  return { code: m.code, type: m.name, severity: m.severity, object, message: m.text };
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function summary(messages: readonly Message[]): string {
  if (messages.length === 0) return 'No problems found.';
  const of = (severity: string): number => messages.filter((m) => m.severity === severity).length;
  return `${count(of('Error'), 'error')}, ${count(of('Warning'), 'warning')}, ${of('Info')} info.`;
}

export function formatMessages(messages: readonly Message[], format: OutputFormat): string {
  if (format === 'json') return `${JSON.stringify(messages.map(toRecord), null, 2)}\n`;
  if (format === 'yaml') return messages.length === 0 ? '[]\n' : YAML.stringify(messages.map(toRecord));
  if (messages.length === 0) return `${summary(messages)}\n`;
  const table = formatTable([['CODE', 'SEVERITY', 'OBJECT', 'MESSAGE'], ...messages.map((m) => [m.code, m.severity, objectLabel(m), oneLine(m.text)])]);
  return `${table}${summary(messages)}\n`;
}

function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}
