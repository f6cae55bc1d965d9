// `tsmesh inject`: injects the pods and pod templates of a YAML stream exactly as the webhook would
// (same decision, same JSONPatch, applied here) and leaves every other object as it was written.
import { err, ok, type Result } from '@tsmesh/common';
import { parseAllDocuments, type ParsedNode } from 'yaml';
import { INJECTION_NAMESPACE_LABEL } from './annotations.js';
import { INJECTOR_ERRORS, injectorError, withContext } from './errors.js';
import { injectPod } from './inject.js';
import { applyPatch } from './jsonpatch.js';
import { isPlainObject } from './pod.js';
import type { InjectionSettings } from './settings.js';

export interface InjectedManifests {
  /** The YAML stream to print. */
  readonly text: string;
  /** "Kind namespace/name" of each object whose pod (template) got the sidecar. */
  readonly injected: string[];
  /** "Kind namespace/name: reason" of each pod-bearing object left alone. */
  readonly skipped: string[];
  readonly warnings: string[];
}

type Json = Record<string, unknown>;

/** Where the pod template of each workload kind lives; Pod is the template itself. */
const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

function describe(object: Json): string {
  const metadata = isPlainObject(object.metadata) ? object.metadata : {};
  const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : 'default';
  const name = typeof metadata.name === 'string' ? metadata.name : typeof metadata.generateName === 'string' ? `${metadata.generateName}*` : '(unnamed)';
  return `${String(object.kind)} ${namespace}/${name}`;
}

interface Outcome {
  readonly object: Json;
  readonly changed: boolean;
}

/** Injects one object (recursing into the items of a List); the object is not changed in place. */
function injectObject(object: Json, settings: InjectionSettings, report: InjectedManifests): Result<Outcome> {
  if (object.kind === 'List' && Array.isArray(object.items)) {
    let changed = false;
    const items: unknown[] = [];
    for (const item of object.items) {
      if (!isPlainObject(item)) {
        items.push(item);
        continue;
      }
      const outcome = injectObject(item, settings, report);
      if (!outcome.ok) return outcome;
      changed ||= outcome.value.changed;
      items.push(outcome.value.object);
    }
    return ok({ object: changed ? { ...object, items } : object, changed });
  }
  const path = typeof object.kind === 'string' ? TEMPLATE_PATHS[object.kind] : undefined;
  if (path === undefined) return ok({ object, changed: false });

  const what = describe(object);
  let template: unknown = object;
  for (const key of path) template = isPlainObject(template) ? template[key] : undefined;
  if (!isPlainObject(template)) {
    return err(injectorError(INJECTOR_ERRORS.INVALID_POD, `${what}: no pod template at ${path.join('.')}`));
  }
  const metadata = isPlainObject(object.metadata) ? object.metadata : {};
  const namespace = typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default';
  // Injection is wanted unless the object opts out: as if its namespace had the label.
  const result = injectPod(template, { name: namespace, labels: { [INJECTION_NAMESPACE_LABEL]: 'enabled' } }, settings);
  if (!result.ok) {
    return err(withContext(result.error, what));
  }
  if (!result.value.injected) {
    report.skipped.push(`${what}: ${result.value.reason}`);
    return ok({ object, changed: false });
  }
  // Apply the webhook's own patch, so what is printed is what the API server would store.
  const patched = applyPatch(template, result.value.patch);
  if (!patched.ok) return patched;
  report.injected.push(what);
  report.warnings.push(...result.value.warnings.map((warning) => `${what}: ${warning}`));
  return ok({ object: replaceAt(object, path, patched.value), changed: true });
}

function replaceAt(object: Json, path: readonly string[], value: unknown): Json {
  const [head, ...rest] = path;
  if (head === undefined) return value as Json;
  const child = object[head];
  return { ...object, [head]: replaceAt(isPlainObject(child) ? child : {}, rest, value) };
}

/**
 * Injects every pod-bearing object of a YAML stream. `source` names the input in error messages. An
 * object that cannot be injected (bad annotation, name collision) fails the whole stream, as the
 * webhook would deny it.
 */
export function injectManifests(text: string, settings: InjectionSettings, source = 'input'): Result<InjectedManifests> {
  const report: InjectedManifests = { text: '', injected: [], skipped: [], warnings: [] };
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) return ok(report); // an empty stream
  const out: string[] = [];
  let previousEnd = 0;
  for (const [index, document] of documents.entries()) {
    const where = `${source}, document ${index + 1}`;
    // The document's own text, with the comments between it and the one before.
    const end = document.range?.[2] ?? text.length;
    const own = text.slice(previousEnd, end).replace(/^(\s*\n)+/, '');
    previousEnd = end;
    const [problem] = document.errors;
    if (problem) {
      return err(injectorError(INJECTOR_ERRORS.MANIFEST_PARSE, `${where}: ${problem.message}`, problem));
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    const outcome = isPlainObject(value) ? injectObject(value, settings, report) : ok({ object: value, changed: false });
    if (!outcome.ok) return err(withContext(outcome.error, where));
    // Untouched objects keep their text; injected ones are written anew, keeping the comments around.
    let written = own;
    if (outcome.value.changed) {
      // A node made here has no source range; toString() needs none.
      document.contents = document.createNode(outcome.value.object) as ParsedNode;
      written = document.toString();
    }
    if (!written.endsWith('\n')) written += '\n';
    if (out.length > 0 && !document.directives?.docStart) written = `---\n${written}`;
    out.push(written);
  }
  return ok({ ...report, text: out.join('') });
}
