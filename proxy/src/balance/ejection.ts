// Passive health (outlier detection): endpoints whose connections fail are ejected from
// balancing for a while, each ejection twice as long as the one before, and return on their own.
import { logger } from '@tsmesh/common';

const log = logger('balance.ejection');

export interface EndpointHealthOptions {
  /** Consecutive failures that eject an endpoint. Default 1: one refused, reset or timed-out connect. */
  readonly consecutiveFailures?: number;
  /** Length of a first ejection, in ms. Default 5 s. */
  readonly baseEjectionMs?: number;
  /** Upper bound of the doubling ejection length, in ms. Default 5 min. */
  readonly maxEjectionMs?: number;
  /** Clock in ms; default Date.now. Returns are also scheduled with setTimeout (fake timers in tests). */
  readonly now?: () => number;
}

export const DEFAULT_CONSECUTIVE_FAILURES = 1;
export const DEFAULT_BASE_EJECTION_MS = 5_000;
export const DEFAULT_MAX_EJECTION_MS = 300_000;

interface EndpointState {
  /** Failures since the last success or return. */
  failures: number;
  /** Ejections since the last success; the next one lasts base * 2^ejections. */
  ejections: number;
  /** When the current ejection ends; undefined when the endpoint is not ejected. */
  until: number | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class EndpointHealth {
  private readonly threshold: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly now: () => number;
  private readonly states = new Map<string, EndpointState>();
  private readonly listeners = new Set<() => void>();

  constructor(options: EndpointHealthOptions = {}) {
    this.threshold = options.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES;
    this.baseMs = options.baseEjectionMs ?? DEFAULT_BASE_EJECTION_MS;
    this.maxMs = options.maxEjectionMs ?? DEFAULT_MAX_EJECTION_MS;
    this.now = options.now ?? Date.now;
    if (!Number.isInteger(this.threshold) || this.threshold < 1) {
      throw new RangeError(`consecutiveFailures must be an integer >= 1, got ${this.threshold}`);
    }
    if (!(this.baseMs > 0) || !(this.maxMs >= this.baseMs)) {
      throw new RangeError(`ejection times need 0 < baseEjectionMs <= maxEjectionMs, got ${this.baseMs} and ${this.maxMs}`);
    }
  }

  /**
   * Records a failed connection to `key`; ejects it once the consecutive-failure threshold is
   * reached and then notifies the listeners. Failures of an endpoint that is already ejected
   * (requests that were under way, or panic-mode traffic) change nothing. Returns whether this
   * failure ejected the endpoint.
   */
  reportFailure(key: string): boolean {
    const now = this.now();
    const state = this.stateOf(key);
    const returned = this.returnIfDue(key, state, now);
    if (state.until !== undefined) return false;
    state.failures += 1;
    if (state.failures < this.threshold) {
      if (returned) this.emit();
      return false;
    }
    const duration = Math.min(this.baseMs * 2 ** state.ejections, this.maxMs);
    state.failures = 0;
    state.ejections += 1;
    state.until = now + duration;
    state.timer = setTimeout(() => this.expire(key), duration);
    state.timer.unref();
    log.info({ endpoint: key, ejectionMs: duration, ejections: state.ejections }, 'endpoint ejected');
    this.emit();
    return true;
  }

  /**
   * Records a successful connection to `key`: forgets its failures and its backoff, and returns
   * it at once if it was ejected (the success proves it reachable), notifying the listeners.
   */
  reportSuccess(key: string): void {
    const state = this.states.get(key);
    if (state === undefined) return;
    const wasEjected = state.until !== undefined;
    this.clearTimer(state);
    this.states.delete(key);
    if (wasEjected) {
      log.info({ endpoint: key }, 'ejected endpoint answered; returned');
      this.emit();
    }
  }

  /** Whether `key` is ejected at time `now` (default: the clock). */
  isEjected(key: string, now: number = this.now()): boolean {
    const until = this.states.get(key)?.until;
    return until !== undefined && now < until;
  }

  /** When `key`'s current ejection ends (clock ms), or undefined when it is not ejected. */
  ejectedUntil(key: string): number | undefined {
    return this.isEjected(key) ? this.states.get(key)?.until : undefined;
  }

  /**
   * The endpoints that may take new requests: all those not ejected. When every one of them is
   * ejected it returns them all (panic mode): trying a doubtful endpoint beats failing for sure.
   */
  filter<E extends { readonly key: string }>(endpoints: readonly E[]): readonly E[] {
    const now = this.now();
    const healthy = endpoints.filter((endpoint) => !this.isEjected(endpoint.key, now));
    return healthy.length === 0 ? endpoints : healthy;
  }

  /** Calls `listener` whenever the set of ejected endpoints changes. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Forgets every endpoint not in `keys` (endpoints that left the cluster), without notifying. */
  retain(keys: ReadonlySet<string>): void {
    for (const [key, state] of this.states) {
      if (keys.has(key)) continue;
      this.clearTimer(state);
      this.states.delete(key);
    }
  }

  /** The keys ejected right now, sorted. */
  ejected(): string[] {
    const now = this.now();
    return [...this.states.keys()].filter((key) => this.isEjected(key, now)).sort();
  }

  /** Cancels every pending return and drops all state and listeners. */
  close(): void {
    for (const state of this.states.values()) this.clearTimer(state);
    this.states.clear();
    this.listeners.clear();
  }

  private stateOf(key: string): EndpointState {
    let state = this.states.get(key);
    if (state === undefined) {
      state = { failures: 0, ejections: 0, until: undefined, timer: undefined };
      this.states.set(key, state);
    }
    return state;
  }

  /** Ends an ejection whose time has come but whose timer has not fired yet (injected clocks). */
  private returnIfDue(key: string, state: EndpointState, now: number): boolean {
    if (state.until === undefined || now < state.until) return false;
    this.clearTimer(state);
    state.until = undefined;
    state.failures = 0;
    log.info({ endpoint: key }, 'ejection over; endpoint returned');
    return true;
  }

  private expire(key: string): void {
    const state = this.states.get(key);
    if (state === undefined) return;
    state.timer = undefined;
    if (this.returnIfDue(key, state, Math.max(this.now(), state.until ?? 0))) this.emit();
  }

  private clearTimer(state: EndpointState): void {
    if (state.timer !== undefined) clearTimeout(state.timer);
    state.timer = undefined;
  }

  private emit(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        log.error({ err: error }, 'ejection listener threw');
      }
    }
  }
}
