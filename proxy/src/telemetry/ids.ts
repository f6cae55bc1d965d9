// Trace and span ids the proxy makes itself (for every request it does not record), and the
// sampling decision for a trace without one. Ids come from a pooled CSPRNG buffer: one
// syscall per few hundred ids, not one per request.
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolOffset = POOL_BYTES;

function randomHex(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > POOL_BYTES) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
    poolOffset += bytes;
    // An all-zero id is invalid in both W3C and B3; with 64+ random bits this never loops in practice.
    if (!/^0+$/.test(hex)) return hex;
  }
}

/** A random, valid 128-bit trace id: 32 lowercase hex digits. */
export function newTraceId(): string {
  return randomHex(16);
}

/** A random, valid 64-bit span id: 16 lowercase hex digits. */
export function newSpanId(): string {
  return randomHex(8);
}

const RATIO_BITS_SCALE = 2 ** 56;

/**
 * Whether a new trace is sampled at `rate` (0..1). Decided from the trace id's rightmost 56 bits
 * (the random part of a W3C trace id), so every hop that decides for the same trace agrees.
 */
export function sampledAtRate(traceId: string, rate: number): boolean {
  if (rate >= 1) return true;
  if (!(rate > 0)) return false;
  const low = Number.parseInt(traceId.slice(-14), 16);
  return Number.isFinite(low) && low < rate * RATIO_BITS_SCALE;
}

/** A sampling decision at `rate` for something without a trace id yet (an opaque TCP connection). */
export function sampledAtRandom(rate: number): boolean {
  if (rate >= 1) return true;
  return rate > 0 && Math.random() < rate;
}
