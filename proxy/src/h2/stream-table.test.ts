// StreamTable against a Map model (random adds and deletes of colliding ids), and the reason it
// exists: streams deleted from a table that has reached the old generation are not promoted.
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { H2Stream } from './stream.js';
import { StreamTable } from './stream-table.js';

const streamOf = (id: number, extra: Record<string, unknown> = {}): H2Stream => ({ id, ...extra }) as unknown as H2Stream;
const ids = (streams: readonly H2Stream[]): number[] => streams.map((s) => s.id).sort((a, b) => a - b);

describe('StreamTable', () => {
  it('finds, counts and forgets streams like a Map, whatever the order of adds and deletes', () => {
    // Ids from a small odd range collide on every capacity; deletes hit present and absent ids.
    const op = fc.oneof(
      fc.record({ add: fc.integer({ min: 0, max: 200 }).map((n) => 2 * n + 1) }),
      fc.record({ del: fc.integer({ min: 0, max: 200 }).map((n) => 2 * n + 1) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const table = new StreamTable();
        const model = new Map<number, H2Stream>();
        for (const o of ops) {
          if ('add' in o) {
            if (model.has(o.add)) continue; // ids are never reused on a connection
            const stream = streamOf(o.add);
            table.add(stream);
            model.set(o.add, stream);
          } else {
            expect(table.delete(o.del)).toBe(model.delete(o.del));
          }
          expect(table.size).toBe(model.size);
        }
        for (let id = 1; id <= 401; id += 2) expect(table.get(id)).toBe(model.get(id));
        expect(ids(table.values())).toEqual([...model.keys()].sort((a, b) => a - b));
      }),
      { numRuns: 300 },
    );
  });

  it('lets the caller delete while it walks values()', () => {
    const table = new StreamTable();
    for (let id = 1; id < 40; id += 2) table.add(streamOf(id));
    for (const stream of table.values()) table.delete(stream.id);
    expect(table.size).toBe(0);
    expect(table.values()).toEqual([]);
    expect(table.get(1)).toBeUndefined();
  });

  it('clear() empties it', () => {
    const table = new StreamTable();
    for (let id = 1; id < 20; id += 2) table.add(streamOf(id));
    table.clear();
    expect(table.size).toBe(0);
    expect(table.get(3)).toBeUndefined();
    table.add(streamOf(3));
    expect(table.get(3)?.id).toBe(3);
  });

  it('does not get closed streams promoted once the table is in the old generation (a Map does)', () => {
    v8.setFlagsFromString('--expose-gc');
    // Measured without allocation-site pretenuring: a site V8 has seen survive allocates straight
    // into the old generation, whatever the table does.
    v8.setFlagsFromString('--no-allocation-site-pretenuring');
    const gc = vm.runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
    const oldSpaceUsed = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
    /** Bytes promoted by two scavenges after 2,400 streams of ~1 KB went through a long-lived table. */
    const promotedAfterChurn = (table: { add(s: H2Stream): void; delete(id: number): boolean }): number => {
      for (let id = 1; id < 8; id += 2) table.add(streamOf(id));
      for (let id = 1; id < 8; id += 2) table.delete(id);
      gc();
      gc(); // the table now lives in the old generation, like a busy connection's
      const before = oldSpaceUsed();
      let id = 101;
      for (let round = 0; round < 200; round++) {
        const open: number[] = [];
        for (let i = 0; i < 12; i++, id += 2) {
          table.add(streamOf(id, { body: new Array<number>(100).fill(round) }));
          open.push(id);
        }
        for (const closed of open) table.delete(closed);
      }
      gc({ type: 'minor' });
      gc({ type: 'minor' });
      return oldSpaceUsed() - before;
    };
    let viaTable: number;
    let viaMap: number;
    try {
      viaTable = promotedAfterChurn(new StreamTable());
      const map = new Map<number, H2Stream>();
      viaMap = promotedAfterChurn({ add: (s) => void map.set(s.id, s), delete: (id) => map.delete(id) });
    } finally {
      v8.setFlagsFromString('--allocation-site-pretenuring');
    }
    // The Map's outgrown tables stay chained to the old one: every stream that went through is promoted.
    expect(viaMap).toBeGreaterThan(1_000_000);
    expect(viaTable).toBeLessThan(100_000);
  });
});
