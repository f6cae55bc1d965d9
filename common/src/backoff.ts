// Jittered exponential backoff, the one rule every retry loop in tsmesh follows (the sidecar asking
// the CA or the control plane again, the control plane restarting a watch, the injector renewing its
// certificate): the window grows by `multiplier` per failure up to `maxMs`, and each delay is drawn
// from its upper half ("equal jitter"), so replicas that failed together spread out while each still
// waits at least half the window.

export interface BackoffWindow {
  /** The first window, in ms. */
  readonly initialMs: number;
  /** The largest window, in ms. */
  readonly maxMs: number;
  /** Growth per failure (default 2). */
  readonly multiplier?: number;
}

/**
 * The delay before retry number `attempt` (1 after the first failure): uniform in [w/2, w) with
 * w = min(maxMs, initialMs · multiplier^(attempt-1)). `random` gives a number in [0, 1).
 */
export function backoffDelayMs(attempt: number, window: BackoffWindow, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 60));
  const ceiling = Math.min(window.maxMs, window.initialMs * (window.multiplier ?? 2) ** exponent);
  return Math.round(ceiling / 2 + (ceiling / 2) * unit(random()));
}

/** A backoff that counts its own failures: `next()` after each, `reset()` after progress. */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly window: BackoffWindow,
    private readonly random: () => number = Math.random,
  ) {}

  /** Failures since the last reset. */
  get attempts(): number {
    return this.failures;
  }

  /** The delay before the next attempt (the window grows per call). */
  next(): number {
    this.failures += 1;
    return backoffDelayMs(this.failures, this.window, this.random);
  }

  /** Back to the first window. */
  reset(): void {
    this.failures = 0;
  }
}

/** A random draw kept in [0, 1): a broken source never makes a delay negative or past the window. */
function unit(value: number): number {
  if (!Number.isFinite(value) || value < 0) return 0;
  return value >= 1 ? 1 - Number.EPSILON : value;
}
