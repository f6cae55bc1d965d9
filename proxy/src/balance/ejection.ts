// Passive health (outlier detection): endpoints whose connections fail, or that answer with
// server errors, are ejected from balancing for a while, each ejection twice as long as the one
// before, and return on their own. Three consecutive-failure counters, as Envoy and Istio keep:
// connect failures (on by default, threshold 1), 5xx responses and gateway errors (502, 503, 504;
// off unless a TrafficPolicy sets them). `maxEjectionPercent` bounds how much of a cluster may be
// out at once, so a bad deploy cannot eject everything (one endpoint may always be ejected).
// Success-rate ejection (Envoy's): every interval, endpoints whose success rate is far below the
// others' are ejected; such an ejection lasts its time (a success in flight does not end it).
// With several event loops the counters and ejections live in shared memory (SharedEjections), so
// an endpoint ejected by one loop is ejected for all; success-rate samples are each loop's own.
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
  /** Success-rate ejection, Envoy's `success_rate_stdev_factor` (1900: 1.9 deviations); 0 or absent: off. */
  readonly successRateStdevFactor?: number;
  /** Endpoints with enough requests needed before any is judged (default 5). */
  readonly successRateMinimumHosts?: number;
  /** Requests an endpoint needs in an interval to be judged (default 100). */
  readonly successRateRequestVolume?: number;
  /** How often success rates are judged, ms (default 10 s). */
  readonly intervalMs?: number;
  /** The counters and ejections of the other event loops, for this cluster; absent: this loop's alone. */
  readonly shared?: SharedEjections;
  /** Clock in ms; default Date.now. Returns are also scheduled with setTimeout (fake timers in tests). */
  readonly now?: () => number;
}

/** What the loops share per endpoint: consecutive failures of each kind, ejections so far, and whether the ejection is a success-rate one. */
export type SharedCounter = 'connect' | '5xx' | 'gateway' | 'ejections' | 'sticky';

/**
 * One cluster's endpoint health as every event loop sees it (upstream/shared-counts.ts): slots the
 * same in every loop for the same endpoint key; every operation synchronous and atomic.
 */
export interface SharedEjections {
  /** The endpoint's slot; undefined when the table is full (its health stays this loop's). */
  slotOf(key: string): number | undefined;
  /** Moves whenever an endpoint of the cluster is ejected or returned early, on any loop. */
  generation(): number;
  add(slot: number, counter: SharedCounter): number;
  get(slot: number, counter: SharedCounter): number;
  set(slot: number, counter: SharedCounter, value: number): void;
  /** Makes the caller the loop that ejects the endpoint for its `ejections + 1`th time; false when another loop did. */
  claim(slot: number, ejections: number): boolean;
  /** When its ejection ends (clock ms); 0: not ejected. */
  until(slot: number): number;
  /** Sets or (0) ends its ejection, and moves the generation. */
  setUntil(slot: number, until: number): void;
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
  /** A success-rate ejection: it lasts its time, successes in flight do not end it. */
  sticky: boolean;
}

/** Requests and successes of one endpoint in the current success-rate interval. */
interface Volume {
  requests: number;
  successes: number;
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
  private readonly shared: SharedEjections | undefined;
  /** Shared slot per endpoint key (-1: none left); filled by `retain` with the cluster's endpoints. */
  private readonly slots = new Map<string, number>();
  private seenGeneration = -1;
  private srFactor = 0;
  private srMinHosts = 5;
  private srVolume = 100;
  private srIntervalMs = 10_000;
  private srTimer: NodeJS.Timeout | undefined;
  private readonly volumes = new Map<string, Volume>();

  /** How many endpoints the cluster has (for maxEjectionPercent); set by the cluster. */
  private total = 0;

  constructor(options: EndpointHealthOptions = {}) {
    this.now = options.now ?? Date.now;
    this.shared = options.shared;
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
    const factor = options.successRateStdevFactor ?? 0;
    const minHosts = options.successRateMinimumHosts ?? 5;
    const volume = options.successRateRequestVolume ?? 100;
    const intervalMs = options.intervalMs ?? 10_000;
    if (!(factor >= 0) || !(minHosts >= 1) || !(volume >= 1) || !(intervalMs > 0)) {
      throw new RangeError(`success rate needs stdevFactor >= 0, minimumHosts >= 1, requestVolume >= 1, interval > 0; got ${factor}, ${minHosts}, ${volume}, ${intervalMs}`);
    }
    const restart = factor !== this.srFactor || intervalMs !== this.srIntervalMs;
    this.srFactor = factor;
    this.srMinHosts = minHosts;
    this.srVolume = volume;
    this.srIntervalMs = intervalMs;
    if (restart) this.armSuccessRate();
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
    const slot = this.slotOf(key);
    if (slot >= 0) this.sync();
    const state = this.stateOf(key);
    const returned = this.returnIfDue(key, state, now);
    if (state.until !== undefined) return false;
    const reached = slot >= 0 ? this.countShared(slot, kind) : this.countLocal(state, kind);
    if (!reached || !this.roomToEject(now)) {
      if (returned) this.emit();
      return false;
    }
    return this.eject(key, state, slot, now, false);
  }

  /**
   * The outcome of one request to `key` for success-rate ejection (a response below 500 is a
   * success; a 5xx or a failed connect is not). Nothing when success-rate ejection is off.
   */
  recordOutcome(key: string, ok: boolean): void {
    if (this.srFactor === 0) return;
    let volume = this.volumes.get(key);
    if (volume === undefined) this.volumes.set(key, (volume = { requests: 0, successes: 0 }));
    volume.requests++;
    if (ok) volume.successes++;
  }

  /**
   * Judges the interval's success rates (Envoy's algorithm): with at least `minimumHosts` endpoints
   * of `requestVolume` requests, each one below mean - factor/1000 * stdev is ejected, worst first,
   * within maxEjectionPercent. The counts start again. Returns the keys ejected.
   */
  judgeSuccessRates(): string[] {
    const rates: Array<[string, number]> = [];
    for (const [key, volume] of this.volumes) if (volume.requests >= this.srVolume) rates.push([key, volume.successes / volume.requests]);
    this.volumes.clear();
    if (this.srFactor === 0 || rates.length < this.srMinHosts) return [];
    const mean = rates.reduce((sum, [, r]) => sum + r, 0) / rates.length;
    const stdev = Math.sqrt(rates.reduce((sum, [, r]) => sum + (r - mean) ** 2, 0) / rates.length);
    const threshold = mean - (this.srFactor / 1000) * stdev;
    const ejected: string[] = [];
    const now = this.now();
    this.sync();
    for (const [key, rate] of rates.sort((a, b) => a[1] - b[1])) {
      if (rate >= threshold) break;
      const state = this.stateOf(key);
      this.returnIfDue(key, state, now);
      if (state.until !== undefined || !this.roomToEject(now)) continue;
      log.info({ endpoint: key, successRate: rate, threshold }, 'success rate below the others');
      if (this.eject(key, state, this.slotOf(key), now, true)) ejected.push(key);
    }
    return ejected;
  }

  /**
   * Adopts what the other event loops decided (endpoints they ejected or returned early) when the
   * shared generation moved; notifies the listeners if that changed anything. Cheap otherwise:
   * one atomic read, nothing without shared state.
   */
  sync(): void {
    const shared = this.shared;
    if (shared === undefined) return;
    const generation = shared.generation();
    if (generation === this.seenGeneration) return;
    this.seenGeneration = generation;
    const now = this.now();
    let changed = false;
    for (const [key, slot] of this.slots) {
      if (slot < 0) continue;
      const until = shared.until(slot);
      const state = this.states.get(key);
      if (until > now) {
        if (state?.until === until) continue;
        const adopted = state ?? this.stateOf(key);
        this.clearTimer(adopted);
        adopted.until = until;
        adopted.sticky = shared.get(slot, 'sticky') !== 0;
        adopted.ejections = shared.get(slot, 'ejections');
        adopted.timer = setTimeout(() => this.expire(key), until - now);
        adopted.timer.unref();
        changed = true;
      } else if (state?.until !== undefined && state.until > now) {
        this.clearTimer(state);
        state.until = undefined;
        changed = true;
      }
    }
    if (changed) this.emit();
  }

  /**
   * Records a successful connection to `key`: forgets its failures and its backoff, and returns
   * it at once if it was ejected (the success proves it reachable), notifying the listeners.
   */
  reportSuccess(key: string): void {
    // Every answer below 500 comes here: without shared state, nothing more than before.
    const slot = this.shared === undefined ? undefined : this.slots.get(key);
    if (slot !== undefined && slot >= 0 && !this.forgiveShared(slot)) return;
    const state = this.states.get(key);
    if (state === undefined || (state.sticky && state.until !== undefined && this.now() < state.until)) return;
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
    for (const key of this.volumes.keys()) if (!keys.has(key)) this.volumes.delete(key);
    const shared = this.shared;
    if (shared === undefined) return;
    for (const key of this.slots.keys()) if (!keys.has(key)) this.slots.delete(key);
    for (const key of keys) if (!this.slots.has(key)) this.slots.set(key, shared.slotOf(key) ?? -1);
    this.seenGeneration = -1; // endpoints new here may be ejected already
    this.sync();
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
    if (this.srTimer !== undefined) clearInterval(this.srTimer);
    this.srTimer = undefined;
    this.srFactor = 0;
  }

  /** The endpoint's shared slot; -1 without one. */
  private slotOf(key: string): number {
    return this.slots.get(key) ?? -1;
  }

  /** Counts a failure in this loop's counters; whether it reaches its kind's threshold. */
  private countLocal(state: EndpointState, kind: HealthFailure): boolean {
    if (kind === 'connect') return ++state.failures >= this.threshold;
    // The connection worked. A gateway error is a 5xx too; each counter trips on its own threshold.
    state.failures = 0;
    state.errors5xx++;
    if (kind === 'gateway') state.gatewayErrors++;
    return (this.threshold5xx > 0 && state.errors5xx >= this.threshold5xx) || (this.thresholdGateway > 0 && state.gatewayErrors >= this.thresholdGateway);
  }

  /** Counts a failure in the loops' shared counters; whether it reaches its kind's threshold. */
  private countShared(slot: number, kind: HealthFailure): boolean {
    const shared = this.shared as SharedEjections;
    if (kind === 'connect') return shared.add(slot, 'connect') >= this.threshold;
    shared.set(slot, 'connect', 0);
    const errors5xx = shared.add(slot, '5xx');
    const gateway = kind === 'gateway' ? shared.add(slot, 'gateway') : shared.get(slot, 'gateway');
    return (this.threshold5xx > 0 && errors5xx >= this.threshold5xx) || (this.thresholdGateway > 0 && gateway >= this.thresholdGateway);
  }

  /** Ejects `key` for base * 2^ejections (capped); with shared state only if no other loop just did. */
  private eject(key: string, state: EndpointState, slot: number, now: number, sticky: boolean): boolean {
    const shared = this.shared;
    let ejections = state.ejections;
    if (slot >= 0 && shared) {
      ejections = shared.get(slot, 'ejections');
      if (!shared.claim(slot, ejections)) return false; // another loop ejects it; sync() adopts that
      shared.set(slot, 'connect', 0);
      shared.set(slot, '5xx', 0);
      shared.set(slot, 'gateway', 0);
      shared.set(slot, 'sticky', sticky ? 1 : 0);
    }
    const duration = Math.min(this.baseMs * 2 ** ejections, this.maxMs);
    state.failures = 0;
    state.errors5xx = 0;
    state.gatewayErrors = 0;
    state.ejections = ejections + 1;
    state.sticky = sticky;
    state.until = now + duration;
    this.clearTimer(state);
    state.timer = setTimeout(() => this.expire(key), duration);
    state.timer.unref();
    if (slot >= 0 && shared) shared.setUntil(slot, state.until);
    log.info({ endpoint: key, ejectionMs: duration, ejections: state.ejections, successRate: sticky }, 'endpoint ejected');
    this.emit();
    return true;
  }

  /**
   * A success clears the endpoint's shared counters and returns it on every loop if it was ejected
   * (not a success-rate ejection). False when nothing was to clear, and nothing is local either.
   */
  private forgiveShared(slot: number): boolean {
    const shared = this.shared as SharedEjections;
    const until = shared.until(slot);
    if (until !== 0 && shared.get(slot, 'sticky') !== 0 && this.now() < until) return false;
    let dirty = until !== 0;
    for (const counter of ['connect', '5xx', 'gateway', 'ejections'] as const) {
      if (shared.get(slot, counter) === 0) continue;
      shared.set(slot, counter, 0);
      dirty = true;
    }
    if (until !== 0) shared.setUntil(slot, 0);
    return dirty || this.states.size > 0;
  }

  private armSuccessRate(): void {
    if (this.srTimer !== undefined) clearInterval(this.srTimer);
    this.srTimer = undefined;
    this.volumes.clear();
    if (this.srFactor === 0) return;
    this.srTimer = setInterval(() => this.judgeSuccessRates(), this.srIntervalMs);
    this.srTimer.unref();
  }

  private stateOf(key: string): EndpointState {
    let state = this.states.get(key);
    if (state === undefined) {
      state = { failures: 0, errors5xx: 0, gatewayErrors: 0, ejections: 0, until: undefined, timer: undefined, sticky: false };
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
    state.sticky = false;
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
