import { compileRegex, MAX_REGEX_INPUT, MAX_REGEX_LENGTH, regexMatches } from './regex.js';

function compiled(pattern: string): RegExp {
  const result = compileRegex(pattern);
  if (!result.ok) throw new Error(`expected ${pattern} to compile: ${result.reason}`);
  return result.regex;
}

describe('RegularExpression matches', () => {
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

  it('is case-sensitive, as the spec asks', () => {
    expect(regexMatches(compiled('/Users'), '/users')).toBe(false);
  });

  it('never matches a value longer than the input limit', () => {
    expect(regexMatches(compiled('a*'), 'a'.repeat(MAX_REGEX_INPUT))).toBe(true);
    expect(regexMatches(compiled('a*'), 'a'.repeat(MAX_REGEX_INPUT + 1))).toBe(false);
  });

  it.each([
    ['(', 'is not a valid regular expression'],
    ['[a-', 'is not a valid regular expression'],
    ['', 'is an empty regular expression'],
    ['x'.repeat(MAX_REGEX_LENGTH + 1), `longer than ${MAX_REGEX_LENGTH} characters`],
    ['(a)\\1', 'a backreference'],
    ['(?<x>a)\\k<x>', 'a backreference'],
    ['(a+)+', 'a nested unbounded repetition'],
    ['(a*)*b', 'a nested unbounded repetition'],
    ['(.*,){2,}x', 'a nested unbounded repetition'],
    ['((ab)+c)*', 'a nested unbounded repetition'],
  ])('refuses %j: %s', (pattern, reason) => {
    const result = compileRegex(pattern);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });

  it.each(['(a|b)+', '(ab)+', '[(+)]+', '\\(a+\\)+', '(a{1,3})+', '.*foo.*', '/v[0-9]+/.*'])('accepts %j', (pattern) => {
    expect(compileRegex(pattern).ok).toBe(true);
  });

  it('bounds the work on a long input that does not match', () => {
    // `(a|aa)+$`-style patterns are not caught by the heuristic; the input limit bounds them.
    const regex = compiled('(a|b)+c');
    const started = performance.now();
    expect(regexMatches(regex, `${'a'.repeat(5000)}!`)).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });
});
