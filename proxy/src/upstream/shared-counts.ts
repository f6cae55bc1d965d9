// Requests and retries in flight per cluster, counted across the sidecar's event loops, so that
// `maxRequests` and `maxRetries` bound the sidecar as a whole (as Envoy's circuit breakers bound
// all its workers), not each loop. One SharedArrayBuffer, made by the main thread (loops/pool.ts)
// and given to every loop: a table of cluster-name hashes, whose slots are claimed by
// compare-and-swap so that every loop finds a cluster at the same slot, and one row of counts per
// loop. A loop that starts clears its own row: what a loop that ended had in flight ended with it.

/** Clusters the table can hold; past it a cluster is counted by each loop alone. */
export const SHARED_SLOTS = 4096;
const FIELDS = 2;
const KEY_BYTES = SHARED_SLOTS * 8;

/** What is counted: requests in flight (maxRequests), retries in flight (maxRetries). */
export const REQUESTS = 0;
export const RETRIES = 1;
export type SharedField = typeof REQUESTS | typeof RETRIES;

/** The buffer for `loops` event loops. */
export function sharedCountsBuffer(loops: number): SharedArrayBuffer {
  return new SharedArrayBuffer(KEY_BYTES + loops * SHARED_SLOTS * FIELDS * 4);
}

/** FNV-1a, 64 bits, never 0 (0 marks a free slot). */
function keyOf(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < name.length; i++) h = BigInt.asUintN(64, (h ^ BigInt(name.charCodeAt(i))) * 0x100000001b3n);
  return BigInt.asIntN(64, h) || 1n;
}

/** One loop's view of the shared counts. */
export class SharedCounts {
  readonly loops: number;
  private readonly keys: BigInt64Array;
  private readonly counts: Int32Array;

  constructor(
    buffer: SharedArrayBuffer,
    /** This loop's row. */
    private readonly loop: number,
  ) {
    const cells = (buffer.byteLength - KEY_BYTES) / 4;
    this.loops = cells / (SHARED_SLOTS * FIELDS);
    if (!Number.isInteger(this.loops) || this.loops < 1) throw new RangeError(`not a shared-counts buffer: ${buffer.byteLength} bytes`);
    if (!Number.isInteger(loop) || loop < 0 || loop >= this.loops) throw new RangeError(`loop ${loop} is not one of the buffer's ${this.loops}`);
    this.keys = new BigInt64Array(buffer, 0, SHARED_SLOTS);
    this.counts = new Int32Array(buffer, KEY_BYTES, cells);
  }

  /** Clears this loop's counts: a loop that starts has nothing in flight. */
  reset(): void {
    const from = this.loop * SHARED_SLOTS * FIELDS;
    for (let i = from; i < from + SHARED_SLOTS * FIELDS; i++) Atomics.store(this.counts, i, 0);
  }

  /** The slot of cluster `name`, the same in every loop; undefined when the table is full. */
  slotOf(name: string): number | undefined {
    const key = keyOf(name);
    let slot = Number(BigInt.asUintN(64, key) % BigInt(SHARED_SLOTS));
    for (let probe = 0; probe < SHARED_SLOTS; probe++) {
      const seen = Atomics.compareExchange(this.keys, slot, 0n, key);
      if (seen === 0n || seen === key) return slot;
      slot = (slot + 1) % SHARED_SLOTS;
    }
    return undefined;
  }

  /** Takes one of `field` at `slot` for this loop if the loops together then hold at most `max`. */
  tryTake(slot: number, field: SharedField, max: number): boolean {
    const own = this.index(this.loop, slot, field);
    Atomics.add(this.counts, own, 1);
    // Taken first, checked after: two loops racing for the last one may both give it back, never both keep it.
    if (this.total(slot, field) <= max) return true;
    Atomics.sub(this.counts, own, 1);
    return false;
  }

  /** Gives back one of `field` this loop took at `slot`. */
  give(slot: number, field: SharedField): void {
    Atomics.sub(this.counts, this.index(this.loop, slot, field), 1);
  }

  /** What the loops together hold of `field` at `slot`. */
  total(slot: number, field: SharedField): number {
    let sum = 0;
    for (let loop = 0; loop < this.loops; loop++) sum += Atomics.load(this.counts, this.index(loop, slot, field));
    return sum;
  }

  private index(loop: number, slot: number, field: SharedField): number {
    return (loop * SHARED_SLOTS + slot) * FIELDS + field;
  }
}
