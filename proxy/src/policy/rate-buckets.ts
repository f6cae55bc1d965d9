// Token buckets for local rate limits, shared by every event loop of the sidecar: one
// SharedArrayBuffer (made by the main thread, loops/pool.ts, and given to every loop) holding an
// open-addressing table of 64-bit key hashes beside one 64-bit "theoretical arrival time" (TAT)
// each. The algorithm is GCRA (the generic cell rate algorithm), a token bucket written as one
// timestamp: a request is admitted when the bucket's TAT, moved on by one emission interval, is at
// most `burst` ahead of now; the update is one compare-and-swap, so loops racing for the last token
// never both take it. Slots are claimed by compare-and-swap and never freed (a key keeps its slot
// for the sidecar's life); when the table is full a key gets a bucket of this loop alone (counted).

/** Buckets the shared table holds (policy × bucket kind × caller identity). */
export const BUCKET_SLOTS = 8192;
/** Slots tried from a key's home slot (the same in every loop): a lookup costs at most this many. */
export const MAX_PROBES = 64;
const BYTES = BUCKET_SLOTS * 8 * 2;

/** Nanoseconds on a monotonic clock that every thread of the process shares. */
export type NanoClock = () => bigint;

export const monotonicNs: NanoClock = () => process.hrtime.bigint();

/** A buffer for the shared table (zeroed: every slot free, every bucket full). */
export function rateBucketsBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(BYTES);
}

/**
 * A 64-bit hash of `text` (two 32-bit FNV-1a lanes with different offsets), never 0 (0 marks a free
 * slot). Computed without BigInt arithmetic per character.
 */
export function keyHash(text: string): bigint {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  const key = BigInt.asIntN(64, (BigInt(a >>> 0) << 32n) | BigInt(b >>> 0));
  return key === 0n ? 1n : key;
}

/** One bucket's shape: its emission interval (1 s / rate) and how far ahead of now its TAT may run. */
export interface BucketShape {
  /** Nanoseconds between two tokens: 1e9 / requestsPerSecond. */
  readonly intervalNs: bigint;
  /** Burst × interval: the burst is one second's worth of requests (`requestsPerSecond`). */
  readonly toleranceNs: bigint;
}

/** A bucket of `requestsPerSecond` with a burst of one second's worth. */
export function bucketShape(requestsPerSecond: number): BucketShape {
  const intervalNs = BigInt(Math.max(1, Math.round(1e9 / requestsPerSecond)));
  return Object.freeze({ intervalNs, toleranceNs: intervalNs * BigInt(requestsPerSecond) });
}

/** Where a key's bucket lives: a slot of the shared table, or (table full) this loop's own map. */
export type BucketRef = number | { readonly key: bigint };

/** One loop's view of the shared buckets. */
export class RateBuckets {
  private readonly keys: BigInt64Array;
  private readonly tats: BigInt64Array;
  /** Buckets of keys the full table could not take: this loop's alone. */
  private readonly local = new Map<bigint, bigint>();
  /** Keys that got a loop-local bucket because the table was full. */
  localKeys = 0;
  /** Called for each of them (the sidecar counts them in a metric). */
  onLocalBucket: (() => void) | undefined;

  constructor(
    buffer: SharedArrayBuffer = rateBucketsBuffer(),
    readonly clock: NanoClock = monotonicNs,
  ) {
    if (buffer.byteLength !== BYTES) throw new RangeError(`not a rate-buckets buffer: ${buffer.byteLength} bytes (expected ${BYTES})`);
    this.keys = new BigInt64Array(buffer, 0, BUCKET_SLOTS);
    this.tats = new BigInt64Array(buffer, BUCKET_SLOTS * 8, BUCKET_SLOTS);
  }

  /**
   * The bucket of `key`: the same slot in every loop; a loop-local bucket when the MAX_PROBES slots
   * from its home slot are all taken by other keys (the table is, or is nearly, full).
   */
  bucketOf(key: bigint): BucketRef {
    let slot = Number(BigInt.asUintN(64, key) % BigInt(BUCKET_SLOTS));
    for (let probe = 0; probe < MAX_PROBES; probe++) {
      const seen = Atomics.compareExchange(this.keys, slot, 0n, key);
      if (seen === 0n || seen === key) return slot;
      slot = slot + 1 === BUCKET_SLOTS ? 0 : slot + 1;
    }
    if (!this.local.has(key)) {
      this.local.set(key, 0n);
      this.localKeys++;
      this.onLocalBucket?.();
    }
    return { key };
  }

  /**
   * Takes one token from `bucket` at time `now`: 0 when admitted, else the nanoseconds until a token
   * is available (nothing taken).
   */
  take(bucket: BucketRef, shape: BucketShape, now: bigint): number {
    if (typeof bucket !== 'number') return this.takeLocal(bucket.key, shape, now);
    for (;;) {
      const tat = Atomics.load(this.tats, bucket);
      const next = (tat > now ? tat : now) + shape.intervalNs;
      const ahead = next - now;
      if (ahead > shape.toleranceNs) return Number(ahead - shape.toleranceNs);
      // Another loop moved the TAT since it was read: read it again.
      if (Atomics.compareExchange(this.tats, bucket, tat, next) === tat) return 0;
    }
  }

  /** Gives back the token just taken from `bucket` (a later bucket of the same request refused it). */
  giveBack(bucket: BucketRef, shape: BucketShape): void {
    if (typeof bucket !== 'number') {
      const tat = this.local.get(bucket.key);
      if (tat !== undefined) this.local.set(bucket.key, tat - shape.intervalNs);
      return;
    }
    for (;;) {
      const tat = Atomics.load(this.tats, bucket);
      if (Atomics.compareExchange(this.tats, bucket, tat, tat - shape.intervalNs) === tat) return;
    }
  }

  private takeLocal(key: bigint, shape: BucketShape, now: bigint): number {
    const tat = this.local.get(key) ?? 0n;
    const next = (tat > now ? tat : now) + shape.intervalNs;
    const ahead = next - now;
    if (ahead > shape.toleranceNs) return Number(ahead - shape.toleranceNs);
    this.local.set(key, next);
    return 0;
  }
}

/** `retry-after` in whole seconds for a wait of `waitNs`: rounded up, at least 1. */
export function retryAfterSeconds(waitNs: number): number {
  return Math.max(1, Math.ceil(waitNs / 1e9));
}
