import { compileRegex, MAX_REGEX_INPUT, MAX_REGEX_LENGTH, MAX_REGEX_PROGRAM_SIZE, regexMatches } from './regex.js';
import type { RouteRegex } from './types.js';

function compiled(pattern: string): RouteRegex {
  const result = compileRegex(pattern);
  if (!result.ok) throw new Error(`expected ${pattern} to compile: ${result.reason}`);
  return result.regex;
}

describe('RegularExpression matches (RE2)', () => {
  it('anchors the pattern so the whole value must match', () => {
    const regex = compiled('/api/v[0-9]+');
    expect(regexMatches(regex, '/api/v2')).toBe(true);
    expect(regexMatches(regex, '/api/v2/users')).toBe(false);
    expect(regexMatches(regex, 'x/api/v2')).toBe(false);
  });

  it('keeps alternatives inside the anchors', () => {
    const regex = compiled('a|b');
    expect(regexMatches(regex, 'a')).toBe(true);
    expect(regexMatches(regex, 'ab')).toBe(false);
  });

  it('is case-sensitive, as the spec asks, unless the pattern says (?i)', () => {
    expect(regexMatches(compiled('/Users'), '/users')).toBe(false);
    expect(regexMatches(compiled('(?i)/Users'), '/users')).toBe(true);
  });

  it('never matches a value longer than the input limit', () => {
    expect(regexMatches(compiled('a*'), 'a'.repeat(MAX_REGEX_INPUT))).toBe(true);
    expect(regexMatches(compiled('a*'), 'a'.repeat(MAX_REGEX_INPUT + 1))).toBe(false);
  });

  it.each([
    ['(', 'is not a valid RE2 regular expression (missing closing ): `(`)'],
    ['[a-', 'is not a valid RE2 regular expression'],
    ['', 'is an empty regular expression'],
    ['x'.repeat(MAX_REGEX_LENGTH + 1), `longer than ${MAX_REGEX_LENGTH} characters`],
    ['(a)\\1', 'a backreference, which RE2 cannot run'],
    ['(?<x>a)\\k<x>', 'a backreference, which RE2 cannot run'],
    ['/a(?=b)', 'a lookahead, which RE2 cannot run'],
    ['/a(?!b)', 'a lookahead, which RE2 cannot run'],
    ['(?<=a)b', 'a lookbehind, which RE2 cannot run'],
    ['(?<!a)b', 'a lookbehind, which RE2 cannot run'],
    ['(?>a+)b', 'an atomic group, which RE2 cannot run'],
    ['a++', 'is not a valid RE2 regular expression (invalid nested repetition operator: `++`)'],
    ['a{1001}', 'is not a valid RE2 regular expression (invalid repeat count: `{1001}`)'],
    ['[a-z]{1,500}', `RE2 program size 1001, at most ${MAX_REGEX_PROGRAM_SIZE}`],
  ])('refuses %j: %s', (pattern, reason) => {
    const result = compileRegex(pattern);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });

  // Nested repetition is fine on RE2: it never backtracks.
  it.each(['(a|b)+', '(ab)+', '[(+)]+', '[(?=)]', '[]a]+', '\\(a+\\)+', '(a{1,3})+', '(a+)+', '(a*)*b', '.*foo.*', '/v[0-9]+/.*', '(?P<v>v[0-9]+)', '\\p{Greek}+', '[[:alpha:]]+'])(
    'accepts %j',
    (pattern) => {
      expect(compileRegex(pattern).ok).toBe(true);
    },
  );

  it('matches in linear time where a backtracking engine takes seconds', () => {
    // JavaScript's RegExp: `(\w|\d)+x` on 30 digits tries 2^30 ways (~7 s); RE2 reads the digits once.
    const regex = compiled('/api/(\\w|\\d)+x');
    expect(regexMatches(regex, `/api/${'1'.repeat(30)}`)).toBe(false);
    expect(regexMatches(regex, `/api/${'1'.repeat(MAX_REGEX_INPUT - 6)}`)).toBe(false);
    expect(regexMatches(regex, `/api/${'1'.repeat(30)}x`)).toBe(true);
    expect(regexMatches(compiled('(a+)+b'), 'a'.repeat(MAX_REGEX_INPUT - 1))).toBe(false);
  });
});
