import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { isCollection, isPair, parseAllDocuments, stringify } from 'yaml';
import { findExcessJsonNesting, findExcessNesting } from './nesting.js';

/** The smallest limit the scan lets `text` through with. */
function scannedDepth(text: string): number {
  let depth = 0;
  while (findExcessNesting(text, depth) !== undefined) depth++;
  return depth;
}

/** How deep the collections the YAML parser builds from `text` nest (errors or not). */
function parsedDepth(text: string): number {
  const depth = (node: unknown): number => {
    if (isPair(node)) return Math.max(depth(node.key), depth(node.value));
    if (!isCollection(node)) return 0;
    let deepest = 0;
    for (const item of node.items) deepest = Math.max(deepest, depth(item));
    return deepest + 1;
  };
  return Math.max(0, ...parseAllDocuments(text).map((document) => ('contents' in document ? depth(document.contents) : 0)));
}

const nested = (levels: number): unknown => {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = i % 2 === 0 ? { key: value, other: [1, 2] } : [value, 'x'];
  return value;
};

describe('findExcessNesting', () => {
  it('measures block, flow and JSON nesting as the parser builds it', () => {
    for (const levels of [0, 1, 2, 5, 10, 20]) {
      const value = nested(levels);
      for (const text of [stringify(value), stringify(value, { collectionStyle: 'flow' }), JSON.stringify(value), JSON.stringify(value, null, 2)]) {
        expect({ levels, text, depth: scannedDepth(text) }).toEqual({ levels, text, depth: parsedDepth(text) });
      }
    }
  });

  it('says where the nesting first goes over the limit', () => {
    expect(findExcessNesting('a:\n  b: [[1]]\n', 3)).toEqual({ line: 2, column: 7 });
    expect(findExcessNesting('- - - - a\n', 3)).toEqual({ line: 1, column: 7 });
    expect(findExcessNesting('a:\n b:\n  c:\n   d: 1\n', 3)).toEqual({ line: 4, column: 4 });
    expect(findExcessNesting('a:\n b:\n  c:\n   d: 1\n', 4)).toBeUndefined();
  });

  it('refuses a megabyte of brackets, balanced or not, in a few milliseconds', () => {
    const MiB = 1024 * 1024;
    const hostile = ['['.repeat(MiB), '{'.repeat(MiB), `a: ${'['.repeat(MiB / 2)}${']'.repeat(MiB / 2)}`, `${'{"a":'.repeat(MiB / 5)}1${'}'.repeat(MiB / 5)}`, '- '.repeat(MiB / 2)];
    for (const text of hostile) {
      const started = performance.now();
      expect(findExcessNesting(text, 64)).toEqual({ line: 1, column: expect.any(Number) });
      expect(performance.now() - started).toBeLessThan(50);
    }
  });

  it('lets a large shallow file through in one linear pass', () => {
    // 1.6 MB: about 40 ms outside Jest; the bound only catches a pass that is not linear.
    const text = stringify(Array.from({ length: 20_000 }, (_, i) => ({ name: `svc-${i}`, ports: [{ port: 80, name: 'http' }], labels: { app: `a${i}` } })));
    const started = performance.now();
    expect(findExcessNesting(text, 64)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('does not count brackets in strings, comments, block scalars or block plain scalars', () => {
    const text = [
      'a: "[[[[[[{{{{"',
      "b: '[[[[[[it''s'",
      'c: /path[[[[[[{{{{',
      '# [[[[[[[[[[[[',
      'd: |',
      '  [[[[[[[[[[[[[[',
      '',
      '    {{{{{{{{{{{{',
      'e: >-',
      '  [[[[[[[[[[[[[[',
      'f: "multi [[[[[[',
      '  line [[[[[[[["',
      'g: [x, "[[[[[[", \'{{{{{{\'] # [[[[[[[[',
      'h: {k: v} # [[[[[[[[',
      '',
    ].join('\n');
    expect(parsedDepth(text)).toBe(2);
    expect(scannedDepth(text)).toBe(2);
  });

  it('ends a block scalar where its indentation ends', () => {
    const text = 'a: |\n    text\n  [[[[[[[[[[\n';
    // The parser reads the less indented line as structure (an error it recovers from), so the scan counts it.
    expect(scannedDepth(text)).toBeGreaterThanOrEqual(parsedDepth(text));
    expect(findExcessNesting(text, 5)).toBeDefined();
  });

  it('counts what follows a tag, anchor or alias, and a document marker inside a quoted scalar', () => {
    for (const text of ['a: !t[[[[[[[[]]]]]]]]', 'a: &x[[[[[[[[]]]]]]]]', 'a: "unclosed\n---\n[[[[[[[[[[[[\n', '[a "b, [[[[[[[[[[]]]]]]]]]] "]']) {
      expect({ text, depth: scannedDepth(text) }).toEqual({ text, depth: expect.any(Number) });
      expect(scannedDepth(text)).toBeGreaterThanOrEqual(parsedDepth(text));
      expect(scannedDepth(text)).toBeGreaterThanOrEqual(8);
    }
  });

  // Valid YAML is never measured shallower than the parser builds it. Text the parser refuses can be
  // read on from its errors into structures no scan short of the parser itself predicts: that is why
  // YAML is parsed in a worker with a stack, memory and time limit (parse-worker.ts).
  const alphabet = fc.constantFrom(...'[]{}"\'#:-?,|>&!*% \n  \n\tab1\\.'.split(''));
  const measuredAtLeastAsDeep = (text: string): void => {
    if (parseAllDocuments(text).some((document) => document.errors.length > 0)) return;
    expect({ text, depth: scannedDepth(text) }).toEqual({ text, depth: Math.max(scannedDepth(text), parsedDepth(text)) });
  };

  it('measures any valid text of YAML-significant characters at least as deep as the parser builds it', () => {
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 120 }), (chars) => measuredAtLeastAsDeep(chars.join(''))), { numRuns: 20_000 });
  });

  it('measures a short pattern repeated (what could nest without bound) at least as deep as the parser builds it', () => {
    fc.assert(
      fc.property(fc.array(alphabet, { minLength: 1, maxLength: 6 }), fc.array(alphabet, { maxLength: 4 }), (pattern, prefix) => {
        measuredAtLeastAsDeep(prefix.join('') + pattern.join('').repeat(30));
      }),
      { numRuns: 20_000 },
    );
  });

  it('never measures less than the parser builds, for generated documents', () => {
    const leaf = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.constant(null));
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('tree'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), tie('tree'), { maxKeys: 3 })),
    }));
    fc.assert(
      fc.property(tree, fc.constantFrom('block', 'flow', 'json'), (value, style) => {
        const text = style === 'json' ? JSON.stringify(value) : stringify(value, style === 'flow' ? { collectionStyle: 'flow' } : {});
        const parsed = parsedDepth(text);
        expect(scannedDepth(text)).toBeGreaterThanOrEqual(parsed);
        expect(scannedDepth(text)).toBeLessThanOrEqual(parsed + 1);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('findExcessJsonNesting', () => {
  const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');

  it('finds the first byte over the limit, skipping strings', () => {
    expect(findExcessJsonNesting(bytes('{"a":[[1]]}'), 3)).toBe(-1);
    expect(findExcessJsonNesting(bytes('{"a":[[[1]]]}'), 3)).toBe(7);
    expect(findExcessJsonNesting(bytes('{"a":"[[[[[\\"[[[[","b":[1]}'), 2)).toBe(-1);
    expect(findExcessJsonNesting(bytes('["é✓",[[1]]]'), 2)).toBe(10);
    expect(findExcessJsonNesting('["é✓",[[1]]]', 2)).toBe(7);
  });

  it('agrees with JSON.parse on generated JSON', () => {
    const depthOf = (value: unknown): number =>
      typeof value === 'object' && value !== null ? 1 + Math.max(0, ...Object.values(value).map(depthOf)) : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (value) => {
        for (const text of [JSON.stringify(value), bytes(JSON.stringify(value))]) {
          const depth = depthOf(value);
          expect(findExcessJsonNesting(text, depth)).toBe(-1);
          if (depth > 0) expect(findExcessJsonNesting(text, depth - 1)).toBeGreaterThanOrEqual(0);
        }
      }),
    );
  });
});
