// Applies a RequestHeaderModifier or ResponseHeaderModifier to a header record (node's
// IncomingHttpHeaders shape), returning a new record: names compare case-insensitively.
import type { HeaderModifier } from './types.js';

export type HeaderRecord = Record<string, string | string[]>;

/**
 * A copy of `headers` with `modifier` applied: `remove` drops every field of the name, `set`
 * replaces them with one value, `add` appends (comma-joined to a single value, or as one more
 * field of a repeated header). Headers the modifier does not name are kept as they are.
 */
export function applyHeaderModifier(headers: Readonly<HeaderRecord>, modifier: HeaderModifier | undefined): HeaderRecord {
  const out: HeaderRecord = { ...headers };
  if (modifier === undefined) return out;
  const drop = (name: string): string | string[] | undefined => {
    let found: string | string[] | undefined;
    for (const key of Object.keys(out)) {
      if (key.toLowerCase() !== name) continue;
      const value = out[key];
      found = found === undefined ? value : [...toList(found), ...toList(value ?? [])];
      delete out[key];
    }
    return found;
  };
  for (const name of modifier.remove) drop(name);
  for (const { name, value } of modifier.set) {
    drop(name);
    out[name] = value;
  }
  for (const { name, value } of modifier.add) {
    const existing = drop(name);
    if (existing === undefined) out[name] = value;
    else if (typeof existing === 'string') out[name] = `${existing},${value}`;
    else out[name] = [...existing, value];
  }
  return out;
}

function toList(value: string | string[]): string[] {
  return typeof value === 'string' ? [value] : value;
}
