// Properties of Istio's `*` matching (exact, prefix*, *suffix, * alone).
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { compilePattern, matchPattern } from './match.js';

/** Pattern text as the validator lets it through: non-empty, no `*`. */
const text = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.includes('*'));
const anyString = fc.string({ maxLength: 16 });

describe('authorization string patterns', () => {
  it('an exact pattern matches its own text and nothing else', () => {
    fc.assert(
      fc.property(text, anyString, (p, v) => {
        expect(matchPattern(compilePattern(p), v)).toBe(v === p);
      }),
    );
  });

  it('prefix* matches exactly the values that start with the prefix', () => {
    fc.assert(
      fc.property(text, anyString, anyString, (p, rest, v) => {
        const pattern = compilePattern(`${p}*`);
        expect(matchPattern(pattern, p + rest)).toBe(true);
        expect(matchPattern(pattern, v)).toBe(v.startsWith(p));
      }),
    );
  });

  it('*suffix matches exactly the values that end with the suffix', () => {
    fc.assert(
      fc.property(text, anyString, anyString, (p, rest, v) => {
        const pattern = compilePattern(`*${p}`);
        expect(matchPattern(pattern, rest + p)).toBe(true);
        expect(matchPattern(pattern, v)).toBe(v.endsWith(p));
      }),
    );
  });

  it('* matches every non-empty value, and not the empty one', () => {
    fc.assert(fc.property(anyString, (v) => expect(matchPattern(compilePattern('*'), v)).toBe(v.length > 0)));
  });

  it('no pattern matches an absent value (a plaintext caller has no principal)', () => {
    fc.assert(fc.property(fc.oneof(text, text.map((t) => `${t}*`), text.map((t) => `*${t}`), fc.constant('*')), (p) => expect(matchPattern(compilePattern(p), undefined)).toBe(false)));
  });

  it('hosts fold case: the pattern is lower-cased when compiled for a case-insensitive field', () => {
    expect(matchPattern(compilePattern('WEB.Shop*', true), 'web.shop.svc')).toBe(true);
    expect(matchPattern(compilePattern('WEB.Shop*'), 'web.shop.svc')).toBe(false);
  });
});
