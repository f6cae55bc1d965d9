// Backoff for restarting a failed list or watch: common's jittered exponential backoff with the
// control plane's defaults (a 500 ms first window, at most 30 s).
import { Backoff as CommonBackoff } from '@tsmesh/common';

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

export class Backoff extends CommonBackoff {
  constructor(options: Partial<BackoffOptions> = {}) {
    const { random, ...window } = { ...DEFAULT_BACKOFF, ...options };
    super(window, random);
  }
}
