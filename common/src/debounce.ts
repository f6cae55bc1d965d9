// A debounce with a ceiling: `run` goes `debounceMs` after the last `schedule()`, but never later
// than `maxDelayMs` after the first one not yet run, so a steady stream of changes (a rolling
// deploy's EndpointSlice updates) still gets through. The control plane's snapshot rebuild and its
// distribution to sidecars both follow it.

export interface DebounceOptions {
  readonly debounceMs: number;
  readonly maxDelayMs: number;
  /** The clock (ms); Date.now unless a test fixes it. */
  readonly now?: () => number;
}

export class MaxDelayDebounce {
  private timer: NodeJS.Timeout | undefined;
  /** When the first change not yet run arrived. */
  private pendingSince: number | undefined;
  private readonly now: () => number;

  constructor(
    private readonly run: () => void,
    private readonly options: DebounceOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** A run is due. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /** Asks for a run: `debounceMs` from now, or sooner when the first pending change is `maxDelayMs` old. */
  schedule(): void {
    const now = this.now();
    this.pendingSince ??= now;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.options.debounceMs, this.pendingSince + this.options.maxDelayMs - now));
    this.timer = setTimeout(() => this.fire(), wait);
  }

  /** Runs now if a run is due. */
  flush(): void {
    if (this.timer !== undefined) this.fire();
  }

  /** Forgets the run that is due. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pendingSince = undefined;
  }

  private fire(): void {
    this.cancel();
    this.run();
  }
}
