// A connection's open streams by id: an open-addressing table instead of a Map. V8 links a Map's
// outgrown hash table to its successor and keeps the old one's entries (for live iterators), so
// once one table reaches the old generation, every later table and every stream it held stays
// reachable for the scavenger until the next full GC: each relayed request was promoted, dead, to
// the old space (~45 MB/s under the bench's load, docs/benchmarks.md, "Memory"). Here a slot is
// cleared when its stream leaves, and an outgrown array is emptied, so a closed stream is
// referenced from nowhere.
import type { H2Stream } from './stream.js';

const INITIAL_CAPACITY = 8;

export class StreamTable {
  private slots: Array<H2Stream | undefined> = new Array<H2Stream | undefined>(INITIAL_CAPACITY).fill(undefined);
  private mask = INITIAL_CAPACITY - 1;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(id: number): H2Stream | undefined {
    const slots = this.slots;
    for (let i = home(id, this.mask); ; i = (i + 1) & this.mask) {
      const stream = slots[i];
      if (stream === undefined || stream.id === id) return stream;
    }
  }

  /** Adds `stream` under its id (ids are unique on a connection: never replaced). */
  add(stream: H2Stream): void {
    // At most half full, so a probe always ends at an empty slot.
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    const slots = this.slots;
    let i = home(stream.id, this.mask);
    while (slots[i] !== undefined) i = (i + 1) & this.mask;
    slots[i] = stream;
    this.count++;
  }

  delete(id: number): boolean {
    const slots = this.slots;
    const mask = this.mask;
    let i = home(id, mask);
    for (;;) {
      const stream = slots[i];
      if (stream === undefined) return false;
      if (stream.id === id) break;
      i = (i + 1) & mask;
    }
    slots[i] = undefined;
    this.count--;
    // Backward shift (no tombstones): a later stream of the same probe run moves into the hole.
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const stream = slots[j];
      if (stream === undefined) return true;
      const k = home(stream.id, mask);
      // `stream` may move to `i` unless its home lies cyclically in (i, j].
      if (i <= j ? i < k && k <= j : i < k || k <= j) continue;
      slots[i] = stream;
      slots[j] = undefined;
      i = j;
    }
  }

  /** The open streams, copied: the caller may close them while it walks the list. */
  values(): H2Stream[] {
    const out: H2Stream[] = [];
    for (const stream of this.slots) if (stream !== undefined) out.push(stream);
    return out;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.count = 0;
  }

  private grow(): void {
    const old = this.slots;
    const capacity = old.length * 2;
    this.slots = new Array<H2Stream | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    this.count = 0;
    for (const stream of old) if (stream !== undefined) this.add(stream);
    // The outgrown array may already be in the old generation: it must not keep its streams.
    old.fill(undefined);
  }
}

/** Stream ids of one side share their parity, so consecutive ids take consecutive slots. */
function home(id: number, mask: number): number {
  return (id >>> 1) & mask;
}
