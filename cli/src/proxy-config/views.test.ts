// The proxy-config views on any JSON an address may answer: they never throw, every row has the
// header's columns, and no control character reaches the terminal.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { formatTable, VIEWS } from './views.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

function rendered(kind: string, answer: unknown): string {
  const view = VIEWS[kind]!;
  const { rows, notes = [] } = view.table(view.select(answer));
  for (const row of rows) expect(row.length).toBe(rows[0]!.length);
  return formatTable(rows) + notes.join('\n');
}

describe('proxy-config views', () => {
  it('turn any JSON into a table without throwing, rows as wide as the header, no control characters', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(VIEWS)), fc.jsonValue({ stringUnit: 'binary-ascii' }), (kind, answer) => {
        expect(CONTROL.test(rendered(kind, answer))).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('keep the shape of a real answer with fields of the wrong types', () => {
    fc.assert(
      fc.property(fc.anything({ stringUnit: 'binary' }), fc.anything({ stringUnit: 'binary' }), fc.anything({ stringUnit: 'binary-ascii' }), (a, b, c) => {
        const answer = [{ cluster: a, loadBalancer: b, endpoints: [{ address: c, port: a, inFlight: b, ejected: c, connections: a }] }];
        expect(CONTROL.test(rendered('clusters', answer) + rendered('endpoints', answer))).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('print a name carrying terminal escape sequences and newlines as harmless text', () => {
    const hostile = [{ cluster: 'evil\u001b]0;pwned\u0007\u001b[2J\nINJECTED  ok', loadBalancer: 'x\r', endpoints: [] }];
    const out = rendered('clusters', hostile);
    expect(out).toContain('evil?]0;pwned??[2J?INJECTED  ok');
    expect(out.split('\n')).toHaveLength(3);
    const routes = rendered('routes', { others: [{ kind: 'HTTPRoute', metadata: { name: '\u009b31m', namespace: 'n' }, spec: { rules: [{ matches: [{ path: { value: '/\u001b' } }] }] } }] });
    expect(CONTROL.test(routes)).toBe(false);
  });

  it('lay out columns two spaces apart, padded to the widest cell', () => {
    expect(formatTable([['A', 'BB', 'C'], ['aaa', 'b', 'c']])).toBe('A    BB  C\naaa  b   c\n');
    expect(formatTable([])).toBe('');
  });
});
