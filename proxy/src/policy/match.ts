// Istio's string matching for authorization fields: exact, `prefix*`, `*suffix`, and `*` alone
// (any non-empty value). Compiled once; matching allocates nothing.

const EXACT = 0;
const PREFIX = 1;
const SUFFIX = 2;
const ANY = 3;

export interface StringPattern {
  readonly mode: 0 | 1 | 2 | 3;
  /** The pattern without its `*`. */
  readonly text: string;
  /** As written, for explanations. */
  readonly source: string;
}

/** Compiles one pattern; `lowerCase` folds it for case-insensitive fields (hosts). */
export function compilePattern(pattern: string, lowerCase = false): StringPattern {
  const source = pattern;
  const text = lowerCase ? pattern.toLowerCase() : pattern;
  if (text === '*') return { mode: ANY, text: '', source };
  if (text.length > 1 && text.endsWith('*')) return { mode: PREFIX, text: text.slice(0, -1), source };
  if (text.length > 1 && text.startsWith('*')) return { mode: SUFFIX, text: text.slice(1), source };
  return { mode: EXACT, text, source };
}

/** Whether `value` matches `pattern`; an absent value matches nothing. */
export function matchPattern(pattern: StringPattern, value: string | undefined): boolean {
  if (value === undefined) return false;
  switch (pattern.mode) {
    case EXACT:
      return value === pattern.text;
    case PREFIX:
      return value.startsWith(pattern.text);
    case SUFFIX:
      return value.endsWith(pattern.text);
    default:
      return value.length > 0;
  }
}

/** The first pattern of `patterns` that `value` matches, or -1. */
export function firstMatch(patterns: readonly StringPattern[], value: string | undefined): number {
  if (value === undefined) return -1;
  for (let i = 0; i < patterns.length; i++) if (matchPattern(patterns[i] as StringPattern, value)) return i;
  return -1;
}
