// A log line at most once per interval: for failures that can repeat on every request or every
// export (an unreachable collector, a bug in telemetry code), which must not flood the log.
import type { Logger } from '@tsmesh/common';

export class RateLimitedLog {
  private nextAt = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Logs at warn, or counts the message as suppressed if one was logged within the interval. */
  warn(fields: Record<string, unknown>, message: string): void {
    this.write('warn', fields, message);
  }

  /** Like `warn`, at error. */
  error(fields: Record<string, unknown>, message: string): void {
    this.write('error', fields, message);
  }

  private write(level: 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    if (now < this.nextAt) {
      this.suppressed++;
      return;
    }
    this.nextAt = now + this.intervalMs;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.log[level](suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
