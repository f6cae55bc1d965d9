// RegularExpression matches (implementation-specific in the Gateway API): JavaScript RegExp syntax,
// always anchored (the whole value must match), with limits that keep a hostile pattern from
// stalling the proxy: bounded pattern and input length, no backreferences, no nested unbounded
// quantifiers such as `(a+)+`.

/** Longest pattern accepted (the Gateway API caps path values at 1024 characters). */
export const MAX_REGEX_LENGTH = 1024;
/** Longer inputs never match a regular expression (and are not scanned). */
export const MAX_REGEX_INPUT = 8192;

export type RegexResult = { readonly ok: true; readonly regex: RegExp } | { readonly ok: false; readonly reason: string };

/** Compiles `pattern` to match whole values, or says why it is refused. */
export function compileRegex(pattern: string): RegexResult {
  if (pattern.length === 0) return { ok: false, reason: 'is an empty regular expression' };
  if (pattern.length > MAX_REGEX_LENGTH) return { ok: false, reason: `is a regular expression longer than ${MAX_REGEX_LENGTH} characters` };
  const unsafe = unsafeConstruct(pattern);
  if (unsafe !== undefined) return { ok: false, reason: `is a regular expression with ${unsafe}, which is not supported` };
  try {
    return { ok: true, regex: new RegExp(`^(?:${pattern})$`) };
  } catch (cause) {
    const detail = cause instanceof SyntaxError ? cause.message : String(cause);
    return { ok: false, reason: `is not a valid regular expression (${detail})` };
  }
}

/** Whether `value` matches a compiled pattern; over-long values never do. */
export function regexMatches(regex: RegExp, value: string): boolean {
  return value.length <= MAX_REGEX_INPUT && regex.test(value);
}

/**
 * Finds constructs that can make matching take exponential time: backreferences, and a group
 * that contains an unbounded quantifier and is itself repeated without bound.
 */
function unsafeConstruct(pattern: string): string | undefined {
  // One frame per open group: whether something inside repeats without bound.
  const groups: boolean[] = [false];
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (!inClass && (/[1-9]/.test(next) || next === 'k')) return 'a backreference';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
    } else if (c === '(') {
      groups.push(false);
    } else if (c === ')') {
      const repeatsInside = groups.pop() ?? false;
      if (groups.length === 0) groups.push(false); // unbalanced: RegExp reports it
      const quantifier = unboundedQuantifierAt(pattern, i + 1);
      if (repeatsInside && quantifier) return 'a nested unbounded repetition';
      if (repeatsInside || quantifier) groups[groups.length - 1] = true;
    } else if (unboundedQuantifierAt(pattern, i)) {
      groups[groups.length - 1] = true;
    }
  }
  return undefined;
}

/** `*`, `+` or `{n,}` / `{n,m}` with a large bound, at `index`. */
function unboundedQuantifierAt(pattern: string, index: number): boolean {
  const c = pattern[index];
  if (c === '*' || c === '+') return true;
  if (c !== '{') return false;
  const range = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(index));
  if (range === null || range[2] === undefined) return false;
  return range[3] === '' || Number(range[3]) > 100;
}
