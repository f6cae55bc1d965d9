// When to ask the CA again: renewal at a fraction of the certificate's lifetime, and a jittered
// exponential backoff after a failure (common's, capped by the certificate's remaining life). Pure
// functions of their inputs (random and clock injected).
import { backoffDelayMs } from '@tsmesh/common';

export interface BackoffOptions {
  /** Delay ceiling of the first retry; doubles per failure. Default 1 000 ms. */
  readonly baseMs: number;
  /** Largest delay ceiling. Default 60 000 ms. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({ baseMs: 1000, maxMs: 60_000 });

/**
 * Delay before retry number `failures` (1 after the first failure): "equal jitter", a uniform pick in
 * [ceiling/2, ceiling) with ceiling = min(maxMs, baseMs · 2^(failures-1)), so sidecars that failed
 * together spread out while each still waits at least half the ceiling. When the current
 * certificate is still valid for `remainingMs`, the delay is also at most half of that (but not less
 * than baseMs/2), so a long backoff never outlasts the certificate.
 */
export function retryDelayMs(
  failures: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
  remainingMs?: number,
): number {
  const jittered = backoffDelayMs(failures, { initialMs: options.baseMs, maxMs: options.maxMs }, random);
  if (remainingMs === undefined || remainingMs <= 0) return jittered;
  return Math.round(Math.min(jittered, Math.max(options.baseMs / 2, remainingMs / 2)));
}

/**
 * When to renew a certificate obtained at `issuedAtMs` (when it was asked for; the CA backdates
 * notBefore, so that would overstate the lifetime) that expires at `expiresAtMs`: after `fraction`
 * of the lifetime.
 */
export function renewalAtMs(issuedAtMs: number, expiresAtMs: number, fraction: number): number {
  const lifetime = Math.max(0, expiresAtMs - issuedAtMs);
  return issuedAtMs + lifetime * fraction;
}
