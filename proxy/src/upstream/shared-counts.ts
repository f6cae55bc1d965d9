// What the sidecar's event loops share about each cluster, so that its limits bound the sidecar
// as a whole (as Envoy's circuit breakers bound all its workers), not each loop. One
// SharedArrayBuffer, made by the main thread (loops/pool.ts) and given to every loop:
//  - a table of cluster-name hashes, whose slots are claimed by compare-and-swap so that every
//    loop finds a cluster at the same slot;
//  - one row of counts per loop: requests and retries in flight (maxRequests, maxRetries),
//    connections open and requests waiting for one (maxConnections, maxPendingRequests). A loop
//    that starts clears its own row: what a loop that ended held ended with it;
//  - per cluster, shared by all: the retry budget's window (requests and retries per bucket), a
//    sequence bumped when a connection slot frees (the loops waiting for one wake on it), and the
//    generation of its ejections;
//  - a table of endpoints (cluster and `ip:port`), claimed the same way: consecutive-failure
//    counters, ejections so far and the time the current ejection ends, so that an endpoint
//    ejected by one loop is ejected for all.

/** Clusters the table can hold; past it a cluster is counted by each loop alone. */
export const SHARED_SLOTS = 4096;
/** Endpoints (per cluster) the table can hold; past it an endpoint's health is kept by each loop alone. */
export const ENDPOINT_SLOTS = 16384;

/** Per loop and cluster: requests in flight (maxRequests), retries in flight (maxRetries), connections (maxConnections), requests waiting (maxPendingRequests). */
export const REQUESTS = 0;
export const RETRIES = 1;
export const CONNECTIONS = 2;
export const PENDING = 3;
export type SharedField = typeof REQUESTS | typeof RETRIES | typeof CONNECTIONS | typeof PENDING;
const FIELDS = 4;

/** Buckets of a retry budget's sliding window (as limits.ts's RetryBudget). */
export const BUDGET_BUCKETS = 10;
// Per cluster, shared: [freed, ejections generation, then per bucket: epoch, requests, retries].
const FREED = 0;
const GENERATION = 1;
const BUDGET = 2;
const CLUSTER_CELLS = BUDGET + BUDGET_BUCKETS * 3;

/** Per endpoint, shared: consecutive connect failures, 5xx, gateway errors, ejections since the last success, whether the ejection is a success-rate one. */
const COUNTERS: Readonly<Record<SharedCounter, number>> = { connect: 0, '5xx': 1, gateway: 2, ejections: 3, sticky: 4 };
const EJECTIONS = COUNTERS.ejections;
const ENDPOINT_CELLS = 5;

import type { SharedCounter, SharedEjections } from '../balance/ejection.js';

// Byte layout: the 8-byte arrays first, then the Int32 ones.
const CLUSTER_KEYS = 0;
const ENDPOINT_KEYS = CLUSTER_KEYS + SHARED_SLOTS * 8;
const ENDPOINT_UNTIL = ENDPOINT_KEYS + ENDPOINT_SLOTS * 8;
const CLUSTER_DATA = ENDPOINT_UNTIL + ENDPOINT_SLOTS * 8;
const ENDPOINT_DATA = CLUSTER_DATA + SHARED_SLOTS * CLUSTER_CELLS * 4;
const LOOP_ROWS = ENDPOINT_DATA + ENDPOINT_SLOTS * ENDPOINT_CELLS * 4;
const ROW_CELLS = SHARED_SLOTS * FIELDS;

/** The buffer for `loops` event loops (untouched pages cost no memory). */
export function sharedCountsBuffer(loops: number): SharedArrayBuffer {
  return new SharedArrayBuffer(LOOP_ROWS + loops * ROW_CELLS * 4);
}

/** ES2024's Atomics.waitAsync (in Node since 16), which the compiler's lib here does not declare. */
interface AtomicsWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> };
}

/** FNV-1a, 64 bits, never 0 (0 marks a free slot). */
function keyOf(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < name.length; i++) h = BigInt.asUintN(64, (h ^ BigInt(name.charCodeAt(i))) * 0x100000001b3n);
  return BigInt.asIntN(64, h) || 1n;
}

/** Claims (or finds) `name`'s slot in a key table by compare-and-swap, linear probing. */
function claim(keys: BigInt64Array, name: string): number | undefined {
  const key = keyOf(name);
  let slot = Number(BigInt.asUintN(64, key) % BigInt(keys.length));
  for (let probe = 0; probe < keys.length; probe++) {
    const seen = Atomics.compareExchange(keys, slot, 0n, key);
    if (seen === 0n || seen === key) return slot;
    slot = (slot + 1) % keys.length;
  }
  return undefined;
}

/** One loop's view of the shared counts. */
export class SharedCounts {
  readonly loops: number;
  private readonly keys: BigInt64Array;
  private readonly endpointKeys: BigInt64Array;
  private readonly until: Float64Array;
  private readonly clusterCells: Int32Array;
  private readonly endpointCells: Int32Array;
  private readonly counts: Int32Array;

  constructor(
    buffer: SharedArrayBuffer,
    /** This loop's row. */
    private readonly loop: number,
  ) {
    const cells = (buffer.byteLength - LOOP_ROWS) / 4;
    this.loops = cells / ROW_CELLS;
    if (!Number.isInteger(this.loops) || this.loops < 1) throw new RangeError(`not a shared-counts buffer: ${buffer.byteLength} bytes`);
    if (!Number.isInteger(loop) || loop < 0 || loop >= this.loops) throw new RangeError(`loop ${loop} is not one of the buffer's ${this.loops}`);
    this.keys = new BigInt64Array(buffer, CLUSTER_KEYS, SHARED_SLOTS);
    this.endpointKeys = new BigInt64Array(buffer, ENDPOINT_KEYS, ENDPOINT_SLOTS);
    this.until = new Float64Array(buffer, ENDPOINT_UNTIL, ENDPOINT_SLOTS);
    this.clusterCells = new Int32Array(buffer, CLUSTER_DATA, SHARED_SLOTS * CLUSTER_CELLS);
    this.endpointCells = new Int32Array(buffer, ENDPOINT_DATA, ENDPOINT_SLOTS * ENDPOINT_CELLS);
    this.counts = new Int32Array(buffer, LOOP_ROWS, cells);
  }

  /** Clears this loop's counts: a loop that starts has nothing in flight. */
  reset(): void {
    const from = this.loop * ROW_CELLS;
    for (let i = from; i < from + ROW_CELLS; i++) Atomics.store(this.counts, i, 0);
  }

  /** The slot of cluster `name`, the same in every loop; undefined when the table is full. */
  slotOf(name: string): number | undefined {
    return claim(this.keys, name);
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

  /** A connection slot of cluster `slot` was given back: every loop waiting on `freed` wakes. */
  notifyFreed(slot: number): void {
    const at = slot * CLUSTER_CELLS + FREED;
    Atomics.add(this.clusterCells, at, 1);
    Atomics.notify(this.clusterCells, at);
  }

  /** The sequence `notifyFreed` bumps. */
  freedSeq(slot: number): number {
    return Atomics.load(this.clusterCells, slot * CLUSTER_CELLS + FREED);
  }

  /** Resolves once the sequence moves past `seen` (at once when it already has), or after `timeoutMs`. */
  waitFreed(slot: number, seen: number, timeoutMs: number): Promise<unknown> {
    const waited = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.clusterCells, slot * CLUSTER_CELLS + FREED, seen, timeoutMs);
    return waited.async ? waited.value : Promise.resolve(waited.value);
  }

  /**
   * Counts one first request in the retry budget of cluster `slot`: `epoch` is the window's bucket
   * number (time / bucket length); a bucket whose epoch passed is cleared by the first to see it.
   */
  budgetRequest(slot: number, epoch: number): void {
    Atomics.add(this.clusterCells, this.bucket(slot, epoch) + 1, 1);
  }

  /** Takes one retry from cluster `slot`'s budget if the window's retries stay within `floor + requests * percent / 100`. */
  budgetTryRetry(slot: number, epoch: number, floor: number, percent: number): boolean {
    const at = this.bucket(slot, epoch);
    Atomics.add(this.clusterCells, at + 2, 1);
    let requests = 0;
    let retries = 0;
    const base = slot * CLUSTER_CELLS + BUDGET;
    for (let i = 0; i < BUDGET_BUCKETS; i++) {
      const cell = base + i * 3;
      const age = (epoch - Atomics.load(this.clusterCells, cell)) | 0;
      if (age < 0 || age >= BUDGET_BUCKETS) continue;
      requests += Atomics.load(this.clusterCells, cell + 1);
      retries += Atomics.load(this.clusterCells, cell + 2);
    }
    // Taken first, checked after, as tryTake.
    if (retries <= floor + (requests * percent) / 100) return true;
    Atomics.sub(this.clusterCells, at + 2, 1);
    return false;
  }

  /** Cluster `slot`'s ejections generation: bumped whenever one of its endpoints is ejected or returned early. */
  generation(slot: number): number {
    return Atomics.load(this.clusterCells, slot * CLUSTER_CELLS + GENERATION);
  }

  /** The endpoint slot of `name` (cluster and endpoint key), the same in every loop; undefined when the table is full. */
  endpointSlotOf(name: string): number | undefined {
    return claim(this.endpointKeys, name);
  }

  /** Cluster `name`'s endpoint health as every loop sees it; undefined when the cluster table is full. */
  ejectionsFor(name: string): SharedEjections | undefined {
    const slot = this.slotOf(name);
    if (slot === undefined) return undefined;
    const cells = this.endpointCells;
    const at = (endpoint: number, counter: SharedCounter): number => endpoint * ENDPOINT_CELLS + COUNTERS[counter];
    return {
      slotOf: (key) => this.endpointSlotOf(`${name} ${key}`),
      generation: () => this.generation(slot),
      add: (endpoint, counter) => Atomics.add(cells, at(endpoint, counter), 1) + 1,
      get: (endpoint, counter) => Atomics.load(cells, at(endpoint, counter)),
      set: (endpoint, counter, value) => void Atomics.store(cells, at(endpoint, counter), value),
      claim: (endpoint, ejections) => this.claimEjection(endpoint, ejections),
      until: (endpoint) => this.ejectedUntil(endpoint),
      setUntil: (endpoint, until) => this.setEjectedUntil(slot, endpoint, until),
    };
  }

  /** Makes this loop the one that ejects the endpoint for its `ejections + 1`th time; false when another loop did first. */
  claimEjection(endpoint: number, ejections: number): boolean {
    const at = endpoint * ENDPOINT_CELLS + EJECTIONS;
    return Atomics.compareExchange(this.endpointCells, at, ejections, ejections + 1) === ejections;
  }

  /** When the endpoint's ejection ends (clock ms); 0: not ejected. */
  ejectedUntil(endpoint: number): number {
    return this.until[endpoint]!;
  }

  /** Sets (or, with 0, ends) the endpoint's ejection, then bumps cluster `slot`'s generation so the other loops look. */
  setEjectedUntil(slot: number, endpoint: number, until: number): void {
    // Written before the atomic bump: a loop that reads the new generation reads this too.
    this.until[endpoint] = until;
    Atomics.add(this.clusterCells, slot * CLUSTER_CELLS + GENERATION, 1);
  }

  private bucket(slot: number, epoch: number): number {
    const at = slot * CLUSTER_CELLS + BUDGET + (((epoch % BUDGET_BUCKETS) + BUDGET_BUCKETS) % BUDGET_BUCKETS) * 3;
    const seen = Atomics.load(this.clusterCells, at);
    if (seen !== (epoch | 0) && Atomics.compareExchange(this.clusterCells, at, seen, epoch | 0) === seen) {
      Atomics.store(this.clusterCells, at + 1, 0);
      Atomics.store(this.clusterCells, at + 2, 0);
    }
    return at;
  }

  private index(loop: number, slot: number, field: SharedField): number {
    return (loop * SHARED_SLOTS + slot) * FIELDS + field;
  }
}
