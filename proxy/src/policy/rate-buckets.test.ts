import fc from 'fast-check';
import { BUCKET_SLOTS, RateBuckets, bucketShape, keyHash, rateBucketsBuffer, retryAfterSeconds } from './rate-buckets.js';

const SECOND = 1_000_000_000n;

/** A clock the test moves by hand. */
function fakeClock(start = 5n * SECOND): { now: () => bigint; advance(ns: bigint): void } {
  let t = start;
  return { now: () => t, advance: (ns) => void (t += ns) };
}

/** How many of `n` requests at time `now` the bucket admits. */
function admitted(buckets: RateBuckets, key: bigint, rps: number, n: number, now: bigint): number {
  const shape = bucketShape(rps);
  const ref = buckets.bucketOf(key);
  let count = 0;
  for (let i = 0; i < n; i++) if (buckets.take(ref, shape, now) === 0) count++;
  return count;
}

describe('RateBuckets (GCRA)', () => {
  test('a full bucket admits one second\'s worth at once (the burst), then nothing until time passes', () => {
    const clock = fakeClock();
    const buckets = new RateBuckets(rateBucketsBuffer(), clock.now);
    expect(admitted(buckets, keyHash('a'), 10, 50, clock.now())).toBe(10);
    expect(admitted(buckets, keyHash('a'), 10, 5, clock.now())).toBe(0);
  });

  test('refills one token per interval (1 s / rate)', () => {
    const clock = fakeClock();
    const buckets = new RateBuckets(rateBucketsBuffer(), clock.now);
    const key = keyHash('b');
    admitted(buckets, key, 4, 4, clock.now());
    clock.advance(SECOND / 4n - 1n);
    expect(admitted(buckets, key, 4, 1, clock.now())).toBe(0);
    clock.advance(1n);
    expect(admitted(buckets, key, 4, 3, clock.now())).toBe(1);
    clock.advance(SECOND);
    expect(admitted(buckets, key, 4, 10, clock.now())).toBe(4);
  });

  test('over a long run the admitted rate is the limit (burst aside), whatever the offered rate', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 2, max: 20 }), (rps, factor) => {
        const clock = fakeClock();
        const buckets = new RateBuckets(rateBucketsBuffer(), clock.now);
        const shape = bucketShape(rps);
        const ref = buckets.bucketOf(keyHash('run'));
        const seconds = 10;
        const offered = rps * factor * seconds;
        const step = (BigInt(seconds) * SECOND) / BigInt(offered);
        let count = 0;
        for (let i = 0; i < offered; i++) {
          if (buckets.take(ref, shape, clock.now()) === 0) count++;
          clock.advance(step);
        }
        // Never more than the burst (rps) plus one token per interval over the run...
        expect(count).toBeLessThanOrEqual(rps * (seconds + 1) + 1);
        // ...and no fewer than one per interval, less what the arrivals' spacing loses (a token
        // that falls due between two requests waits for the next one).
        expect(count).toBeGreaterThanOrEqual(Math.floor((seconds * 1e9) / (Number(shape.intervalNs) + Number(step))));
        if (factor >= 10) expect(count).toBeGreaterThanOrEqual(Math.floor(0.9 * rps * seconds));
      }),
      { numRuns: 60 },
    );
  });

  test('a refusal says how long until a token is available; retry-after rounds it up to whole seconds, at least 1', () => {
    const clock = fakeClock();
    const buckets = new RateBuckets(rateBucketsBuffer(), clock.now);
    const shape = bucketShape(1);
    const ref = buckets.bucketOf(keyHash('slow'));
    expect(buckets.take(ref, shape, clock.now())).toBe(0);
    expect(buckets.take(ref, shape, clock.now())).toBe(1e9);
    clock.advance(SECOND / 2n);
    expect(buckets.take(ref, shape, clock.now())).toBe(5e8);
    expect(retryAfterSeconds(5e8)).toBe(1);
    expect(retryAfterSeconds(1e9)).toBe(1);
    expect(retryAfterSeconds(1e9 + 1)).toBe(2);
    expect(retryAfterSeconds(1)).toBe(1);
  });

  test('a token given back can be taken again', () => {
    const clock = fakeClock();
    const buckets = new RateBuckets(rateBucketsBuffer(), clock.now);
    const shape = bucketShape(2);
    const ref = buckets.bucketOf(keyHash('g'));
    expect(admitted(buckets, keyHash('g'), 2, 2, clock.now())).toBe(2);
    buckets.giveBack(ref, shape);
    expect(buckets.take(ref, shape, clock.now())).toBe(0);
    expect(buckets.take(ref, shape, clock.now())).toBeGreaterThan(0);
  });

  test('two views of one buffer (two event loops) share each bucket: together they admit the limit, not twice it', () => {
    const clock = fakeClock();
    const buffer = rateBucketsBuffer();
    const loopA = new RateBuckets(buffer, clock.now);
    const loopB = new RateBuckets(buffer, clock.now);
    const key = keyHash('shop/rl\0total');
    expect(loopA.bucketOf(key)).toBe(loopB.bucketOf(key));
    let count = 0;
    for (let i = 0; i < 40; i++) count += admitted(i % 2 === 0 ? loopA : loopB, key, 10, 1, clock.now());
    expect(count).toBe(10);
  });

  test('distinct keys have distinct buckets', () => {
    const clock = fakeClock();
    const buckets = new RateBuckets(rateBucketsBuffer(), clock.now);
    expect(admitted(buckets, keyHash('x'), 3, 10, clock.now())).toBe(3);
    expect(admitted(buckets, keyHash('y'), 3, 10, clock.now())).toBe(3);
  });

  test('keyHash is never 0 and differs for near strings', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(keyHash(s)).not.toBe(0n);
        expect(keyHash(s)).not.toBe(keyHash(`${s}x`));
      }),
    );
  });

  test('when the shared table is full a new key gets a bucket of this loop alone, counted, still limited', () => {
    const clock = fakeClock();
    const buckets = new RateBuckets(rateBucketsBuffer(), clock.now);
    let shared = 0;
    for (let i = 0; i < BUCKET_SLOTS * 2; i++) if (typeof buckets.bucketOf(keyHash(`k${i}`)) === 'number') shared++;
    // Bounded probing leaves a few slots free near the end, never many.
    expect(shared).toBeGreaterThan(BUCKET_SLOTS * 0.97);
    expect(shared).toBeLessThanOrEqual(BUCKET_SLOTS);
    expect(buckets.localKeys).toBe(BUCKET_SLOTS * 2 - shared);
    let local = '';
    for (let i = 0; local === ''; i++) if (typeof buckets.bucketOf(keyHash(`extra${i}`)) === 'object') local = `extra${i}`;
    const before = buckets.localKeys;
    expect(admitted(buckets, keyHash(local), 5, 20, clock.now())).toBe(5);
    // The same key keeps its one local bucket (counted once).
    expect(buckets.localKeys).toBe(before);
    // A key already in the table is still found there.
    expect(typeof buckets.bucketOf(keyHash('k0'))).toBe('number');
  });

  test('refuses a buffer of the wrong size', () => {
    expect(() => new RateBuckets(new SharedArrayBuffer(64))).toThrow('not a rate-buckets buffer');
  });
});
