import fc from 'fast-check';
import { applyPatch, diff, escapePointer, type PatchOperation } from './jsonpatch.js';

function apply<T>(document: T, operations: PatchOperation[]): T {
  const result = applyPatch(document, operations);
  if (!result.ok) throw result.error;
  return result.value;
}

function failure(document: unknown, operations: PatchOperation[]): string {
  const result = applyPatch(document, operations);
  if (result.ok) throw new Error('expected the patch to fail');
  return result.error.message;
}

describe('applyPatch', () => {
  const doc = { a: { b: [1, 2, 3] }, 'x/y': { '~z': true } };

  it('adds to objects, into arrays at an index, and at the end with "-"', () => {
    expect(apply(doc, [{ op: 'add', path: '/a/c', value: 'new' }]).a).toEqual({ b: [1, 2, 3], c: 'new' });
    expect(apply(doc, [{ op: 'add', path: '/a/b/0', value: 0 }]).a.b).toEqual([0, 1, 2, 3]);
    expect(apply(doc, [{ op: 'add', path: '/a/b/-', value: 4 }]).a.b).toEqual([1, 2, 3, 4]);
    expect(apply(doc, [{ op: 'add', path: '/a/b/3', value: 4 }]).a.b).toEqual([1, 2, 3, 4]);
  });

  it('replaces an existing member and refuses a missing one', () => {
    expect(apply(doc, [{ op: 'replace', path: '/a/b/1', value: 'two' }]).a.b).toEqual([1, 'two', 3]);
    expect(failure(doc, [{ op: 'replace', path: '/a/nope', value: 1 }])).toBe('JSONPatch replace /a/nope: path does not exist');
  });

  it('removes members and array items', () => {
    expect(apply(doc, [{ op: 'remove', path: '/a/b/0' }]).a.b).toEqual([2, 3]);
    expect(apply(doc, [{ op: 'remove', path: '/a' }])).toEqual({ 'x/y': { '~z': true } });
    expect(failure(doc, [{ op: 'remove', path: '/a/b/3' }])).toBe('JSONPatch remove /a/b/3: index does not exist');
  });

  it('follows escaped pointers (~1 for /, ~0 for ~)', () => {
    expect(escapePointer('tsmesh.io/status')).toBe('tsmesh.io~1status');
    expect(apply(doc, [{ op: 'replace', path: '/x~1y/~0z', value: false }])).toEqual({ ...doc, 'x/y': { '~z': false } });
  });

  it('moves and copies values', () => {
    expect(apply(doc, [{ op: 'copy', from: '/a/b/0', path: '/a/b/-' }]).a.b).toEqual([1, 2, 3, 1]);
    expect(apply({ a: 1, b: {} }, [{ op: 'move', from: '/a', path: '/b/a' }])).toEqual({ b: { a: 1 } });
    expect(apply({ l: [1, 2, 3] }, [{ op: 'move', from: '/l/0', path: '/l/-' }])).toEqual({ l: [2, 3, 1] });
    expect(failure(doc, [{ op: 'move', from: '/a', path: '/a/b/c' }])).toBe('JSONPatch move /a/b/c: cannot move a value into itself');
  });

  it('fails the whole patch on a failed test and changes nothing', () => {
    const original = structuredClone(doc);
    expect(apply(doc, [{ op: 'test', path: '/a/b', value: [1, 2, 3] }])).toEqual(doc);
    expect(
      failure(doc, [
        { op: 'add', path: '/new', value: 1 },
        { op: 'test', path: '/a/b/0', value: 9 },
      ]),
    ).toBe('JSONPatch test /a/b/0: test failed');
    expect(doc).toEqual(original);
  });

  it('refuses pointers that go nowhere', () => {
    expect(failure(doc, [{ op: 'add', path: '/missing/child', value: 1 }])).toBe('JSONPatch add /missing/child: parent of path does not exist');
    expect(failure(doc, [{ op: 'add', path: 'a', value: 1 }])).toBe('JSONPatch add a: path is not a JSON pointer');
    expect(failure(doc, [{ op: 'add', path: '/a/b/01', value: 1 }])).toBe('JSONPatch add /a/b/01: index is out of range');
    expect(failure(doc, [{ op: 'add', path: '/a/b/9', value: 1 }])).toBe('JSONPatch add /a/b/9: index is out of range');
  });

  it('replaces the whole document with an empty path', () => {
    expect(apply(doc, [{ op: 'replace', path: '', value: [1] }])).toEqual([1]);
  });

  it('refuses an unknown operation', () => {
    expect(failure(doc, [{ op: 'merge', path: '/a' } as unknown as PatchOperation])).toBe('JSONPatch: unknown operation merge at /a');
  });
});

describe('diff', () => {
  const cases: Array<[string, unknown, unknown]> = [
    ['equal documents', { a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }],
    ['a new key', { a: 1 }, { a: 1, 'b/c': { d: [1] } }],
    ['a removed key', { a: 1, b: 2 }, { a: 1 }],
    ['a changed scalar deep down', { a: { b: [{ c: 1 }, { c: 2 }] } }, { a: { b: [{ c: 1 }, { c: 3 }] } }],
    ['an array that grew', { l: [1, 2] }, { l: [0, 1, 2] }],
    ['an array that shrank', { l: [1, 2] }, { l: [2] }],
    ['a type change', { a: { b: 1 } }, { a: [1] }],
  ];

  it.each(cases)('turns one document into the other for %s', (_what, from, to) => {
    expect(apply(from, diff(from, to))).toEqual(to);
  });

  it('gives no operations for equal documents', () => {
    expect(diff({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toEqual([]);
  });

  it('adds a missing object whole and replaces a grown array whole', () => {
    expect(diff({ spec: { containers: [{ name: 'a' }] } }, { metadata: { annotations: { 'tsmesh.io/status': '{}' } }, spec: { containers: [{ name: 'p' }, { name: 'a' }] } })).toEqual([
      { op: 'add', path: '/metadata', value: { annotations: { 'tsmesh.io/status': '{}' } } },
      { op: 'replace', path: '/spec/containers', value: [{ name: 'p' }, { name: 'a' }] },
    ]);
  });

  it('escapes keys in paths', () => {
    expect(diff({ m: {} }, { m: { 'tsmesh.io/status': 'x' } })).toEqual([{ op: 'add', path: '/m/tsmesh.io~1status', value: 'x' }]);
  });
});

describe('applyPatch refuses hostile patches', () => {
  it('never writes through __proto__ or constructor.prototype (prototype pollution)', () => {
    for (const path of ['/__proto__/polluted', '/constructor/prototype/polluted']) {
      const result = applyPatch({ a: {} }, [{ op: 'add', path, value: true }]);
      expect(result.ok).toBe(false);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });

  it('refuses removing the whole document', () => {
    expect(failure({ a: 1 }, [{ op: 'remove', path: '' }])).toBe('JSONPatch remove : cannot remove the whole document');
  });

  it('names a copy from nowhere', () => {
    expect(failure({ a: 1 }, [{ op: 'copy', from: '/nope', path: '/b' }])).toBe('JSONPatch copy /b: "from" /nope does not exist');
  });
});

describe('applyPatch follows RFC 6901 array indices all along the pointer', () => {
  it('refuses a leading zero or a non-number in an inner array token, where a lax reader would take index 1', () => {
    const doc = { l: [{ x: 0 }, { x: 1 }] };
    expect(failure(doc, [{ op: 'replace', path: '/l/01/x', value: 9 }])).toBe('JSONPatch replace /l/01/x: index is out of range');
    expect(failure(doc, [{ op: 'add', path: '/l/1e0/y', value: 9 }])).toBe('JSONPatch add /l/1e0/y: index is out of range');
    expect(failure(doc, [{ op: 'copy', from: '/l/01', path: '/c' }])).toBe('JSONPatch copy /c: "from" /l/01 does not exist');
    expect(apply(doc, [{ op: 'replace', path: '/l/1/x', value: 9 }])).toEqual({ l: [{ x: 0 }, { x: 9 }] });
  });
});

describe('applyPatch on arbitrary patches (property)', () => {
  const token = fc.oneof(fc.constantFrom('a', 'b', 'l', '0', '1', '01', '-', '__proto__', 'constructor', 'prototype', '~0', '~1', ''), fc.string({ maxLength: 3 }));
  const pointer = fc.oneof(fc.constant(''), fc.array(token, { minLength: 1, maxLength: 4 }).map((t) => `/${t.join('/')}`), fc.string({ maxLength: 6 }));
  const operation = fc.oneof(
    fc.record({ op: fc.constantFrom('add', 'replace', 'test'), path: pointer, value: fc.jsonValue({ maxDepth: 2 }) }),
    fc.record({ op: fc.constant('remove'), path: pointer }),
    fc.record({ op: fc.constantFrom('move', 'copy'), from: pointer, path: pointer }),
    fc.record({ op: fc.string({ maxLength: 5 }), path: pointer }),
  ) as fc.Arbitrary<PatchOperation>;

  it('never throws, never changes its input, never pollutes a prototype, and gives a JSON document or an error naming the operation', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.array(operation, { maxLength: 5 }), (document, operations) => {
        const before = JSON.stringify(document);
        const result = applyPatch(document, operations);
        expect(JSON.stringify(document)).toBe(before);
        expect(Object.prototype).not.toHaveProperty('polluted');
        if (result.ok) expect(() => JSON.stringify(result.value)).not.toThrow();
        else expect(result.error.message).toMatch(/^JSONPatch[ :]/);
      }),
      { numRuns: 2000 },
    );
  });
});
