// Passive health (outlier detection): endpoints whose connections fail, or that answer with
// server errors, are ejected from balancing for a while, each ejection twice as long as the one
// before, and return on their own. Three consecutive-failure counters, as Envoy and Istio keep:
// connect failures (on by default, threshold 1), 5xx responses and gateway errors (502, 503, 504;
// off unless a TrafficPolicy sets them). `maxEjectionPercent` bounds how much of a cluster may be
// out at once, so a bad deploy cannot eject everything (one endpoint may always be ejected).
import { logger } from '@tsmesh/common';

const log = logger('balance.ejection');

/** What went wrong: a connection that failed, a 5xx response, or a gateway error (502/503/504, also a 5xx). */
export type HealthFailure = 'connect' | '5xx' | 'gateway';

export interface EndpointHealthOptions {
  /** Consecutive connect failures that eject an endpoint. Default 1: one refused, reset or timed-out connect. */
  readonly consecutiveFailures?: number;
  /** Consecutive 5xx responses that eject an endpoint; 0 (default) turns it off. */
  readonly consecutive5xx?: number;
  /** Consecutive gateway errors (502, 503, 504) that eject an endpoint; 0 (default) turns it off. */
  readonly consecutiveGatewayErrors?: number;
  /** At most this percentage of the cluster's endpoints ejected at once (but always one may be). Default 100. */
  readonly maxEjectionPercent?: number;
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
  /** Connect failures since the last success or return. */
  failures: number;
  /** 5xx responses in a row. */
  errors5xx: number;
  /** Gateway errors in a row. */
  gatewayErrors: number;
  /** Ejections since the last success; the next one lasts base * 2^ejections. */
  ejections: number;
  /** When the current ejection ends; undefined when the endpoint is not ejected. */
  until: number | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class EndpointHealth {
  private threshold: number;
  private threshold5xx: number;
  private thresholdGateway: number;
  private maxPercent: number;
  private baseMs: number;
  private maxMs: number;
  private readonly now: () => number;
  private readonly states = new Map<string, EndpointState>();
  private readonly listeners = new Set<() => void>();

  /** How many endpoints the cluster has (for maxEjectionPercent); set by the cluster. */
  private total = 0;

  constructor(options: EndpointHealthOptions = {}) {
    this.now = options.now ?? Date.now;
    this.threshold = this.threshold5xx = this.thresholdGateway = this.maxPercent = this.baseMs = this.maxMs = 0;
    this.configure(options);
  }

  /** Applies new settings (a changed policy); endpoints ejected now stay ejected until their time. */
  configure(options: Omit<EndpointHealthOptions, 'now'>): void {
    const threshold = options.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES;
    const threshold5xx = options.consecutive5xx ?? 0;
    const thresholdGateway = options.consecutiveGatewayErrors ?? 0;
    const maxPercent = options.maxEjectionPercent ?? 100;
    const baseMs = options.baseEjectionMs ?? DEFAULT_BASE_EJECTION_MS;
    const maxMs = options.maxEjectionMs ?? Math.max(DEFAULT_MAX_EJECTION_MS, baseMs);
    if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`consecutiveFailures must be an integer >= 1, got ${threshold}`);
    for (const [name, value] of [['consecutive5xx', threshold5xx], ['consecutiveGatewayErrors', thresholdGateway]] as const) {
      if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be an integer >= 0 (0: off), got ${value}`);
    }
    if (!(maxPercent >= 0 && maxPercent <= 100)) throw new RangeError(`maxEjectionPercent must be 0-100, got ${maxPercent}`);
    if (!(baseMs > 0) || !(maxMs >= baseMs)) throw new RangeError(`ejection times need 0 < baseEjectionMs <= maxEjectionMs, got ${baseMs} and ${maxMs}`);
    this.threshold = threshold;
    this.threshold5xx = threshold5xx;
    this.thresholdGateway = thresholdGateway;
    this.maxPercent = maxPercent;
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  /** The cluster's endpoint count, which maxEjectionPercent is a percentage of. */
  setTotal(total: number): void {
    this.total = total;
  }

  /**
   * Records a failure of `key` (a connection, by default); ejects it once that kind's
   * consecutive-failure threshold is reached, unless the cluster is at maxEjectionPercent, and
   * then notifies the listeners. Failures of an endpoint that is already ejected (requests that
   * were under way, or panic-mode traffic) change nothing. Returns whether this failure ejected it.
   */
  reportFailure(key: string, kind: HealthFailure = 'connect'): boolean {
    const now = this.now();
    const state = this.stateOf(key);
    const returned = this.returnIfDue(key, state, now);
    if (state.until !== undefined) return false;
    let reached: boolean;
    if (kind === 'connect') reached = ++state.failures >= this.threshold;
    else {
      // The connection worked. A gateway error is a 5xx too; each counter trips on its own threshold.
      state.failures = 0;
      state.errors5xx++;
      if (kind === 'gateway') state.gatewayErrors++;
      reached = (this.threshold5xx > 0 && state.errors5xx >= this.threshold5xx) || (this.thresholdGateway > 0 && state.gatewayErrors >= this.thresholdGateway);
    }
    if (!reached || !this.roomToEject(now)) {
      if (returned) this.emit();
      return false;
    }
    const duration = Math.min(this.baseMs * 2 ** state.ejections, this.maxMs);
    state.failures = 0;
    state.errors5xx = 0;
    state.gatewayErrors = 0;
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
      state = { failures: 0, errors5xx: 0, gatewayErrors: 0, ejections: 0, until: undefined, timer: undefined };
      this.states.set(key, state);
    }
    return state;
  }

  /** Whether one more endpoint may be ejected now: always the first, then within maxEjectionPercent. */
  private roomToEject(now: number): boolean {
    if (this.maxPercent >= 100) return true;
    let ejected = 0;
    for (const key of this.states.keys()) if (this.isEjected(key, now)) ejected++;
    return ejected === 0 || ((ejected + 1) * 100) / Math.max(this.total, 1) <= this.maxPercent;
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
