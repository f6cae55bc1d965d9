// A pass of reconciliation (route status, trust bundle ConfigMaps) run after a quiet period and
// never twice at once: what asks for a pass while one runs gets exactly one more after it, which
// reads the latest state. A burst of requests collapses into one pass.

export class DebouncedPass {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private closed = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly debounceMs: number,
  ) {}

  /** Asks for a pass in `delayMs` (default: the debounce), or after the one running. */
  schedule(delayMs = this.debounceMs): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.dirty = true;
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.running = this.pass().finally(() => {
        this.running = undefined;
        if (this.dirty) {
          this.dirty = false;
          this.schedule();
        }
      });
    }, delayMs);
  }

  /** Resolves once no pass is due or running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.timer !== undefined || this.running !== undefined) {
      await (this.running ?? new Promise((resolve) => setTimeout(resolve, this.debounceMs)));
    }
  }

  /** No pass starts after this; resolves when the one under way has ended. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
