// RFC 6902 JSON Patch: `diff` makes the patch the webhook returns; `applyPatch` applies one (used by
// `tsmesh inject`, which so prints exactly what the webhook would do). Applying is fast-json-patch's;
// this module adds what it leaves out: RFC 6901 array indices without leading zeros, no move of a
// value into itself, no removal of the whole document, no `__proto__`/`constructor` paths, and
// errors that name the operation and say what was wrong. `diff` stays ours: it replaces an array
// whose length changed whole (fast-json-patch's `compare` would emit one operation per shifted item).
import jsonpatch from 'fast-json-patch';
import { err, ok, type Result, type TsmeshError } from '@tsmesh/common';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
export type PatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };


function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
export function escapePointer(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

function unescapePointer(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, index) => deepEqual(item, b[index]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => key in b && deepEqual(a[key], b[key]));
  }
  return false;
}

/**
 * The operations that turn `from` into `to`. Objects are compared key by key; arrays of equal length
 * element by element; an array whose length changed is replaced whole, which keeps the patch short and
 * its effect obvious (the API server applies it to exactly the object it sent).
 */
export function diff(from: unknown, to: unknown, path = ''): PatchOperation[] {
  if (deepEqual(from, to)) return [];
  if (isObject(from) && isObject(to)) {
    const ops: PatchOperation[] = [];
    for (const key of Object.keys(from)) {
      if (!(key in to) || to[key] === undefined) {
        if (from[key] !== undefined) ops.push({ op: 'remove', path: `${path}/${escapePointer(key)}` });
      }
    }
    for (const [key, value] of Object.entries(to)) {
      if (value === undefined) continue;
      const child = `${path}/${escapePointer(key)}`;
      if (!(key in from) || from[key] === undefined) ops.push({ op: 'add', path: child, value: clone(value) });
      else ops.push(...diff(from[key], value, child));
    }
    return ops;
  }
  if (Array.isArray(from) && Array.isArray(to) && from.length === to.length) {
    return from.flatMap((item, index) => diff(item, to[index], `${path}/${index}`));
  }
  return [{ op: 'replace', path, value: clone(to) }];
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function patchError(operation: PatchOperation, message: string): TsmeshError {
  return injectorError(INJECTOR_ERRORS.PATCH, `JSONPatch ${operation.op} ${operation.path}: ${message}`);
}

/** The pointer's tokens (RFC 6901); undefined when it is neither empty nor starts with `/`. */
function tokensOf(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  return pointer.slice(1).split('/').map(unescapePointer);
}

const INDEX = /^(0|[1-9]\d*)$/;

/** The value the tokens lead to, following array indices only in their RFC 6901 form. */
function valueAt(document: unknown, tokens: readonly string[]): { found: boolean; value?: unknown; inArray?: boolean; badIndex?: boolean } {
  let current = document;
  let inArray = false;
  for (const token of tokens) {
    inArray = Array.isArray(current);
    if (Array.isArray(current)) {
      if (!INDEX.test(token)) return { found: false, inArray, badIndex: true };
      if (Number(token) >= current.length) return { found: false, inArray };
      current = current[Number(token)] as unknown;
    } else if (isObject(current) && Object.hasOwn(current, token)) current = current[token];
    else return { found: false, inArray };
  }
  return { found: true, value: current, inArray };
}

/** What fast-json-patch leaves to the caller, checked before it runs; the error, or undefined. */
function precheck(document: unknown, operation: PatchOperation): string | undefined {
  const tokens = tokensOf(operation.path);
  if (tokens === undefined) return 'path is not a JSON pointer';
  if (operation.op === 'move' && operation.from !== operation.path && (operation.from === '' || operation.path.startsWith(`${operation.from}/`))) return 'cannot move a value into itself';
  if (operation.op === 'remove' && tokens.length === 0) return 'cannot remove the whole document';
  // fast-json-patch reads "01" as index 1; RFC 6901 allows no leading zeros (nor anything but digits,
  // and "-" as the last token of an add).
  const parent = valueAt(document, tokens.slice(0, -1));
  if (parent.badIndex) return 'index is out of range';
  const last = tokens[tokens.length - 1];
  if (parent.found && Array.isArray(parent.value) && last !== undefined && last !== '-' && !INDEX.test(last)) return 'index is out of range';
  if ((operation.op === 'move' || operation.op === 'copy') && valueAt(document, tokensOf(operation.from) ?? []).badIndex) return `"from" ${operation.from} does not exist`;
  return undefined;
}

/** fast-json-patch's error names, as this module words them. */
function reason(name: string, document: unknown, operation: PatchOperation): string {
  switch (name) {
    case 'OPERATION_PATH_UNRESOLVABLE':
      return operation.op === 'remove' && valueAt(document, tokensOf(operation.path) ?? []).inArray ? 'index does not exist' : 'path does not exist';
    case 'OPERATION_PATH_CANNOT_ADD':
      return 'parent of path does not exist';
    case 'OPERATION_PATH_ILLEGAL_ARRAY_INDEX':
    case 'OPERATION_VALUE_OUT_OF_BOUNDS':
      return 'index is out of range';
    case 'OPERATION_FROM_UNRESOLVABLE':
      return `"from" ${'from' in operation ? operation.from : ''} does not exist`;
    case 'TEST_OPERATION_FAILED':
      return 'test failed';
    case 'OPERATION_VALUE_REQUIRED':
      return 'value is missing';
    default:
      return name.toLowerCase().replaceAll('_', ' ');
  }
}

const OPERATIONS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/**
 * Applies the operations in order to a copy of the document and returns the copy; the input is never
 * changed. Any failing operation (missing target, failed test) fails the whole patch, as RFC 6902 says.
 */
export function applyPatch<T>(document: T, operations: readonly PatchOperation[]): Result<T> {
  let current = clone(document) as unknown;
  for (const operation of operations) {
    if (!OPERATIONS.has(operation.op)) return err(injectorError(INJECTOR_ERRORS.PATCH, `JSONPatch: unknown operation ${String(operation.op)} at ${operation.path}`));
    const refused = precheck(current, operation);
    if (refused) return err(patchError(operation, refused));
    try {
      // One operation at a time on our own copy (mutate: true), validated, prototype paths banned.
      current = jsonpatch.applyOperation(current, operation as jsonpatch.Operation, true, true, true).newDocument;
    } catch (error) {
      if (error instanceof jsonpatch.JsonPatchError) return err(patchError(operation, reason(error.name, current, operation)));
      return err(patchError(operation, (error as Error).message));
    }
  }
  return ok(current as T);
}
