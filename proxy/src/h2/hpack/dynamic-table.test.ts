import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { DynamicTable } from './dynamic-table.js';

function entries(table: DynamicTable): [string, string][] {
  return Array.from({ length: table.length }, (_, i) => [table.name(i), table.value(i)]);
}

describe('HPACK dynamic table', () => {
  it('counts each entry as its name and value lengths plus 32 octets (RFC 7541 §4.1)', () => {
    const table = new DynamicTable(4096);
    table.add('custom-key', 'custom-header');
    expect(table.size).toBe(55);
    table.add('', '');
    expect(table.size).toBe(87);
  });

  it('puts the newest entry first (RFC 7541 §2.3.3)', () => {
    const table = new DynamicTable(4096);
    table.add('a', '1');
    table.add('b', '2');
    expect(entries(table)).toEqual([
      ['b', '2'],
      ['a', '1'],
    ]);
  });

  it('evicts the oldest entries to make room for a new one (RFC 7541 §4.4)', () => {
    const table = new DynamicTable(100);
    table.add('a', '1'); // 34
    table.add('b', '2'); // 68
    table.add('c', '3'); // 102 > 100: 'a' goes
    expect(entries(table)).toEqual([
      ['c', '3'],
      ['b', '2'],
    ]);
    expect(table.size).toBe(68);
  });

  it('empties the table when an entry larger than it is added (RFC 7541 §4.4)', () => {
    const table = new DynamicTable(100);
    table.add('a', '1');
    expect(table.add('big', 'x'.repeat(70))).toBe(false);
    expect(table.length).toBe(0);
    expect(table.size).toBe(0);
  });

  it('evicts down to a smaller maximum size (RFC 7541 §4.3)', () => {
    const table = new DynamicTable(4096);
    for (let i = 0; i < 10; i++) table.add('n', String(i));
    table.setMaxSize(70);
    expect(entries(table)).toEqual([
      ['n', '9'],
      ['n', '8'],
    ]);
    table.setMaxSize(0);
    expect(table.length).toBe(0);
  });

  it('reports each evicted entry with its insertion number, oldest first', () => {
    const evicted: [string, string, number][] = [];
    const table = new DynamicTable(68, (name, value, absolute) => evicted.push([name, value, absolute]));
    table.add('a', '1');
    table.add('b', '2');
    table.add('c', '3');
    table.add('d', '4');
    expect(evicted).toEqual([
      ['a', '1', 0],
      ['b', '2', 1],
    ]);
    expect(table.insertCount).toBe(4);
  });

  it('behaves like a simple list through ring wraparound, growth and resizes', () => {
    const op = fc.oneof(
      fc.record({ add: fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 200 })) }),
      fc.record({ resize: fc.integer({ min: 0, max: 2000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const table = new DynamicTable(1000);
        let model: [string, string][] = [];
        let max = 1000;
        const size = (): number => model.reduce((s, [n, v]) => s + n.length + v.length + 32, 0);
        for (const o of ops) {
          if ('add' in o) {
            const [n, v] = o.add;
            table.add(n, v);
            if (n.length + v.length + 32 > max) model = [];
            else {
              model.unshift([n, v]);
              while (size() > max) model.pop();
            }
          } else {
            max = o.resize;
            table.setMaxSize(max);
            while (size() > max) model.pop();
          }
          expect(entries(table)).toEqual(model);
          expect(table.size).toBe(size());
        }
      }),
    );
  });
});
