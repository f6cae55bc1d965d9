// Idle and stream-idle timeouts of every HTTP/2 connection with one unref'd timer, and a coarse
// clock the data path reads instead of calling Date.now per frame.

interface Sweepable {
  sweep(now: number): void;
}

const SWEEP_MS = 250;

class Sweeper {
  private readonly members = new Set<Sweepable>();
  private timer: NodeJS.Timeout | undefined;

  add(member: Sweepable): void {
    this.members.add(member);
    if (!this.timer) {
      clock.now = Date.now();
      this.timer = setInterval(() => this.tick(), SWEEP_MS);
      this.timer.unref();
    }
  }

  delete(member: Sweepable): void {
    this.members.delete(member);
    if (this.members.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private tick(): void {
    const now = (clock.now = Date.now());
    for (const member of this.members) member.sweep(now);
  }
}

/** Milliseconds, refreshed every SWEEP_MS while any connection lives. */
export const clock = { now: Date.now() };
export const sweeper = new Sweeper();
