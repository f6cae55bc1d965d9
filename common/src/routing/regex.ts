// RegularExpression matches (implementation-specific in the Gateway API) run on RE2 semantics, as
// Envoy's do: re2js, a pure-JavaScript port of RE2, matches in time linear in the input, so no
// pattern and no request can stall the proxy the way a backtracking engine can (`(\w|\d)+x` on 30
// digits: seconds in JavaScript's RegExp). Patterns are anchored (the whole value must match) and
// case-sensitive. What RE2 cannot run (backreferences, lookaround) is refused with the reason.
import { createRequire } from 'node:module';
import type * as Re2 from 're2js';
import type { RouteRegex } from './types.js';

/** Longest pattern accepted (the Gateway API caps path values at 1024 characters). */
export const MAX_REGEX_LENGTH = 1024;
/** Longer inputs never match a regular expression (and are not scanned). */
export const MAX_REGEX_INPUT = 8192;
/**
 * Largest compiled program accepted, in RE2's own measure (`programSize`, roughly the number of
 * instructions; `a{1000}` is about 1000). Matching costs up to input length × program size, so
 * this bounds a request's worst case (~0.2 s at 8 KiB for the largest program, measured; a
 * typical route regex is 10–100 and takes well under 1 ms). Envoy refuses above 100 by default.
 */
export const MAX_REGEX_PROGRAM_SIZE = 200;

let re2: typeof Re2 | undefined;

/** re2js, loaded at the first pattern compiled: most sidecars never see a regex route (idle memory). */
function engine(): typeof Re2 {
  return (re2 ??= createRequire(import.meta.url)('re2js') as typeof Re2);
}

export type RegexResult = { readonly ok: true; readonly regex: RouteRegex } | { readonly ok: false; readonly reason: string };

/** Compiles `pattern` (RE2 syntax) to match whole values, or says why it is refused. */
export function compileRegex(pattern: string): RegexResult {
  if (pattern.length === 0) return { ok: false, reason: 'is an empty regular expression' };
  if (pattern.length > MAX_REGEX_LENGTH) return { ok: false, reason: `is a regular expression longer than ${MAX_REGEX_LENGTH} characters` };
  const unsupported = backtrackingConstruct(pattern);
  if (unsupported !== undefined) return { ok: false, reason: `is a regular expression with ${unsupported}, which RE2 cannot run (it needs backtracking)` };
  const { RE2JS, RE2JSException } = engine();
  let compiled: Re2.RE2JS;
  try {
    compiled = RE2JS.compile(pattern);
  } catch (cause) {
    const detail = cause instanceof RE2JSException ? cause.message.replace(/^error parsing regexp: /, '') : String(cause);
    return { ok: false, reason: `is not a valid RE2 regular expression (${detail})` };
  }
  const size = compiled.programSize();
  if (size > MAX_REGEX_PROGRAM_SIZE) {
    return { ok: false, reason: `is a regular expression too large to match in bounded time (RE2 program size ${size}, at most ${MAX_REGEX_PROGRAM_SIZE})` };
  }
  return { ok: true, regex: compiled };
}

/** Whether the whole of `value` matches a compiled pattern; over-long values never do. */
export function regexMatches(regex: RouteRegex, value: string): boolean {
  return value.length <= MAX_REGEX_INPUT && regex.testExact(value);
}

/**
 * Names the Perl/JavaScript constructs RE2 leaves out because only backtracking runs them, so the
 * refusal says more than RE2's "invalid escape sequence". RE2 refuses them anyway.
 */
function backtrackingConstruct(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (!inClass && (/[1-9]/.test(next) || next === 'k' || next === 'g')) return 'a backreference';
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']') i++; // `[]...]`, `[^]...]`: a leading `]` is literal
    } else if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2, i + 4);
      if (rest.startsWith('=') || rest.startsWith('!')) return 'a lookahead';
      if (rest === '<=' || rest === '<!') return 'a lookbehind';
      if (rest.startsWith('>')) return 'an atomic group';
    }
  }
  return undefined;
}
