// RFC 6902 JSON Patch: `diff` makes the patch the webhook returns; `applyPatch` applies one (used by
// `tsmesh inject`, which so prints exactly what the webhook would do).
import { err, ok, type Result, type TsmeshError } from '@tsmesh/common';
import { INJECTOR_ERRORS, injectorError } from './errors.js';

export type PatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

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

function parsePointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  return pointer.slice(1).split('/').map(unescapePointer);
}

/** An array index token: "0", "12" (no leading zeros), or "-" when allowed (the end, for add). */
function arrayIndex(token: string, length: number, allowEnd: boolean): number | undefined {
  if (token === '-') return allowEnd ? length : undefined;
  if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
  const index = Number(token);
  return index < length || (allowEnd && index === length) ? index : undefined;
}

type Located = { parent: Json[] | Record<string, Json> | undefined; key: string };

/** Walks to the parent of the pointer's last token. */
function locate(document: Json, tokens: readonly string[]): Located | undefined {
  let current: Json = document;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(current)) {
      const index = arrayIndex(token, current.length, false);
      if (index === undefined) return undefined;
      current = current[index] as Json;
    } else if (isObject(current) && Object.hasOwn(current, token)) {
      current = current[token] as Json;
    } else {
      return undefined;
    }
  }
  if (!Array.isArray(current) && !isObject(current)) return undefined;
  return { parent: current as Json[] | Record<string, Json>, key: tokens[tokens.length - 1] ?? '' };
}

function getValue(document: Json, tokens: readonly string[]): { found: boolean; value?: Json } {
  if (tokens.length === 0) return { found: true, value: document };
  const place = locate(document, tokens);
  if (!place?.parent) return { found: false };
  if (Array.isArray(place.parent)) {
    const index = arrayIndex(place.key, place.parent.length, false);
    return index === undefined ? { found: false } : { found: true, value: place.parent[index] as Json };
  }
  return Object.hasOwn(place.parent, place.key) ? { found: true, value: place.parent[place.key] as Json } : { found: false };
}

/**
 * Applies the operations in order to a copy of the document and returns the copy; the input is never
 * changed. Any failing operation (missing target, failed test) fails the whole patch, as RFC 6902 says.
 */
export function applyPatch<T>(document: T, operations: readonly PatchOperation[]): Result<T> {
  let root = clone(document) as Json;
  for (const operation of operations) {
    const tokens = parsePointer(operation.path);
    if (!tokens) return err(patchError(operation, 'path is not a JSON pointer'));

    const remove = (): Json | TsmeshError => {
      if (tokens.length === 0) return patchError(operation, 'cannot remove the whole document');
      const place = locate(root, tokens);
      if (!place?.parent) return patchError(operation, 'path does not exist');
      if (Array.isArray(place.parent)) {
        const index = arrayIndex(place.key, place.parent.length, false);
        if (index === undefined) return patchError(operation, 'index does not exist');
        return place.parent.splice(index, 1)[0] as Json;
      }
      if (!Object.hasOwn(place.parent, place.key)) return patchError(operation, 'path does not exist');
      const removed = place.parent[place.key] as Json;
      delete place.parent[place.key];
      return removed;
    };
    const add = (value: Json): TsmeshError | undefined => {
      if (tokens.length === 0) {
        root = value;
        return undefined;
      }
      const place = locate(root, tokens);
      if (!place?.parent) return patchError(operation, 'parent of path does not exist');
      if (Array.isArray(place.parent)) {
        const index = arrayIndex(place.key, place.parent.length, true);
        if (index === undefined) return patchError(operation, 'index is out of range');
        place.parent.splice(index, 0, value);
      } else {
        place.parent[place.key] = value;
      }
      return undefined;
    };

    switch (operation.op) {
      case 'add': {
        const failed = add(clone(operation.value) as Json);
        if (failed) return err(failed);
        break;
      }
      case 'remove': {
        const removed = remove();
        if (removed instanceof Error) return err(removed);
        break;
      }
      case 'replace': {
        if (!getValue(root, tokens).found) return err(patchError(operation, 'path does not exist'));
        if (tokens.length === 0) {
          root = clone(operation.value) as Json;
          break;
        }
        remove();
        const failed = add(clone(operation.value) as Json);
        if (failed) return err(failed);
        break;
      }
      case 'test': {
        const current = getValue(root, tokens);
        if (!current.found || !deepEqual(current.value, operation.value)) {
          return err(patchError(operation, 'test failed'));
        }
        break;
      }
      case 'move':
      case 'copy': {
        if (operation.from === operation.path) break; // RFC 6902: moving or copying a value onto itself
        const fromTokens = parsePointer(operation.from);
        if (!fromTokens) return err(patchError(operation, '"from" is not a JSON pointer'));
        if (operation.op === 'move' && (fromTokens.length === 0 || operation.path.startsWith(`${operation.from}/`))) {
          return err(patchError(operation, 'cannot move a value into itself'));
        }
        const source = getValue(root, fromTokens);
        if (!source.found) return err(patchError(operation, `"from" ${operation.from} does not exist`));
        let value = clone(source.value) as Json;
        if (operation.op === 'move') {
          const fromOperation: PatchOperation = { op: 'remove', path: operation.from };
          const place = locate(root, fromTokens);
          if (!place?.parent) return err(patchError(fromOperation, 'path does not exist'));
          if (Array.isArray(place.parent)) value = place.parent.splice(Number(place.key), 1)[0] as Json;
          else delete place.parent[place.key];
        }
        const failed = add(value);
        if (failed) return err(failed);
        break;
      }
      default: {
        const unknown = operation as { op: unknown; path: string };
        return err(injectorError(INJECTOR_ERRORS.PATCH, `JSONPatch: unknown operation ${String(unknown.op)} at ${unknown.path}`));
      }
    }
  }
  return ok(root as T);
}
