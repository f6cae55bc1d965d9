// HPACK's dynamic table (RFC 7541 §2.3.2, §4): a FIFO of header fields bounded in octets, kept in a
// ring buffer so inserting and evicting never shift an array. Hand-written: both codec halves share it.

/** RFC 7541 §4.1: each entry costs its name and value lengths plus 32 octets. */
export const ENTRY_OVERHEAD = 32;

/** Called for each entry evicted, oldest first; `absolute` is its insertion number (see insertCount). */
export type EvictionListener = (name: string, value: string, absolute: number) => void;

export class DynamicTable {
  private names: string[] = new Array<string>(16).fill('');
  private values: string[] = new Array<string>(16).fill('');
  private mask = 15;
  /** Slot of the oldest entry. */
  private head = 0;
  private count = 0;
  private octets = 0;
  private inserted = 0;

  constructor(
    private max: number,
    private readonly onEvict?: EvictionListener,
  ) {}

  /** Current maximum size in octets (§4.2). */
  get maxSize(): number {
    return this.max;
  }

  /** Entries in the table. */
  get length(): number {
    return this.count;
  }

  /** Octets in use (§4.1). */
  get size(): number {
    return this.octets;
  }

  /** Entries ever inserted: the newest entry's insertion number is insertCount - 1. */
  get insertCount(): number {
    return this.inserted;
  }

  /** Name of the entry at `index` (0 = newest, i.e. HPACK index 62). index must be < length. */
  name(index: number): string {
    return this.names[(this.head + this.count - 1 - index) & this.mask]!;
  }

  /** Value of the entry at `index` (0 = newest). index must be < length. */
  value(index: number): string {
    return this.values[(this.head + this.count - 1 - index) & this.mask]!;
  }

  /**
   * Inserts a field as the newest entry, evicting the oldest until it fits (§4.4). A field larger
   * than maxSize is not inserted and leaves the table empty. Returns whether it was inserted.
   */
  add(name: string, value: string): boolean {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (entrySize > this.max) {
      this.evictAll();
      return false;
    }
    this.evictTo(this.max - entrySize);
    if (this.count === this.names.length) this.grow();
    const slot = (this.head + this.count) & this.mask;
    this.names[slot] = name;
    this.values[slot] = value;
    this.count++;
    this.octets += entrySize;
    this.inserted++;
    return true;
  }

  /** Changes the maximum size, evicting the oldest entries until the table fits (§4.3). */
  setMaxSize(maxSize: number): void {
    this.max = maxSize;
    this.evictTo(maxSize);
  }

  /** Empties the table, as adding an entry larger than maxSize does (§4.4). */
  evictAll(): void {
    this.evictTo(0);
  }

  /** Evicts the oldest entries until size <= target. */
  private evictTo(target: number): void {
    while (this.octets > target) {
      const slot = this.head;
      const name = this.names[slot]!;
      const value = this.values[slot]!;
      this.octets -= name.length + value.length + ENTRY_OVERHEAD;
      // Drop the references so evicted strings can be collected.
      this.names[slot] = '';
      this.values[slot] = '';
      this.head = (this.head + 1) & this.mask;
      this.count--;
      this.onEvict?.(name, value, this.inserted - this.count - 1);
    }
  }

  /** Doubles the ring, unwrapping it so the oldest entry is at slot 0. */
  private grow(): void {
    const capacity = this.names.length * 2;
    const names = new Array<string>(capacity).fill('');
    const values = new Array<string>(capacity).fill('');
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head + i) & this.mask;
      names[i] = this.names[slot]!;
      values[i] = this.values[slot]!;
    }
    this.names = names;
    this.values = values;
    this.head = 0;
    this.mask = capacity - 1;
  }
}
