// Jittered exponential backoff for restarting a failed list or watch: each delay is drawn from the
// upper half of an exponentially growing window, so replicas restarting together spread out.

export interface BackoffOptions {
  /** The first window, in ms (default 500). */
  readonly initialMs: number;
  /** The largest window, in ms (default 30 s). */
  readonly maxMs: number;
  /** Growth per attempt (default 2). */
  readonly multiplier: number;
  /** A number in [0, 1); Math.random unless a test fixes it. */
  readonly random: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({ initialMs: 500, maxMs: 30_000, multiplier: 2, random: Math.random });

export class Backoff {
  private readonly options: BackoffOptions;
  private attempt = 0;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.options = { ...DEFAULT_BACKOFF, ...options };
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt: in [window/2, window), the window doubling per call up to maxMs. */
  next(): number {
    const { initialMs, maxMs, multiplier, random } = this.options;
    const window = Math.min(maxMs, initialMs * multiplier ** this.attempt);
    this.attempt += 1;
    return Math.round(window / 2 + (random() * window) / 2);
  }

  /** Back to the first window (after the watch made progress). */
  reset(): void {
    this.attempt = 0;
  }
}
