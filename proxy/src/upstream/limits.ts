// What a cluster allows at once, so that a failing or overloaded Service degrades alone:
//  - a retry budget (Linkerd's model; Gateway API's BackendTrafficPolicy `retryConstraint`):
//    over a sliding window, retries may add `percent` % of the requests sent, plus a floor of
//    `minRetryCount` per `minRetryIntervalMs` so a quiet Service can still retry. Retries past it
//    are not sent.
//  - circuit-breaker thresholds (Envoy's, Istio's DestinationRule `connectionPool`): requests in
//    flight and concurrent retries per cluster. Past them a request fails at once (503, flag
//    `UO`) instead of queueing behind a Service that cannot keep up.
//  - upstream connections per cluster (`maxConnections`, all protocols): the pools ask the
//    cluster's ConnectionGate before dialing; a request that needs a connection over the cap waits
//    for a slot, up to `maxPendingRequests` waiting, past which it fails at once as above.
// One ClusterLimits per cluster and event loop; every count is synchronous and allocation-free.
// With several loops every limit is counted in the loops' SharedCounts, so that it bounds the
// sidecar: requests, retries, connections and waiting requests in flight, and the budget's window.
// Each loop keeps its own FIFO of waiting requests; a slot freed on one loop wakes the others.

import { DEFAULT_CONNECTION_POOL, DEFAULT_RETRY_BUDGET, type ConnectionPoolSettings, type RetryBudgetSettings } from '@tsmesh/common';
import { CONNECTIONS, PENDING, REQUESTS, RETRIES, type SharedCounts } from './shared-counts.js';

/** A cluster's place in the loops' shared counts. */
export interface SharedSlot {
  readonly counts: SharedCounts;
  readonly slot: number;
}

export type { RetryBudgetSettings };
export { DEFAULT_RETRY_BUDGET };

/** The thresholds enforced per cluster: connections open, requests waiting for one, requests (streams) in flight, retries in flight. */
export type BreakerThresholds = ConnectionPoolSettings;

/** Envoy's default thresholds. */
export const DEFAULT_BREAKER: BreakerThresholds = DEFAULT_CONNECTION_POOL;

/** Thresholds as given: the connection ones may be left out (Envoy's defaults then). */
export type BreakerSettings = Pick<BreakerThresholds, 'maxRequests' | 'maxRetries'> & Partial<BreakerThresholds>;

/** Buckets of the sliding window: a tenth of it each. */
const BUCKETS = 10;

export class RetryBudget {
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  private bucket = 0;
  private bucketStart: number;
  private readonly bucketMs: number;
  private readonly floor: number;

  constructor(
    readonly settings: RetryBudgetSettings = DEFAULT_RETRY_BUDGET,
    private readonly now: () => number = Date.now,
  ) {
    if (!(settings.percent >= 0 && settings.percent <= 100)) throw new RangeError(`retry budget percent must be 0-100, got ${settings.percent}`);
    if (!(settings.minRetryCount >= 0)) throw new RangeError(`minRetryCount must be >= 0, got ${settings.minRetryCount}`);
    if (!(settings.minRetryIntervalMs > 0)) throw new RangeError(`minRetryIntervalMs must be > 0, got ${settings.minRetryIntervalMs}`);
    if (!(settings.intervalMs >= BUCKETS)) throw new RangeError(`retry budget interval must be at least ${BUCKETS} ms, got ${settings.intervalMs}`);
    this.bucketMs = settings.intervalMs / BUCKETS;
    // The floor over the whole window: minRetryCount per minRetryIntervalMs.
    this.floor = (settings.minRetryCount * settings.intervalMs) / settings.minRetryIntervalMs;
    this.bucketStart = this.now();
  }

  /** Counts a first attempt: it adds to what retries may spend. */
  request(): void {
    this.advance();
    this.requests[this.bucket]!++;
  }

  /** Takes one retry from the budget if there is room; false means the retry must not be sent. */
  tryRetry(): boolean {
    this.advance();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      requests += this.requests[i]!;
      retries += this.retries[i]!;
    }
    const allowed = this.floor + (requests * this.settings.percent) / 100;
    if (retries + 1 > allowed) return false;
    this.retries[this.bucket]!++;
    return true;
  }

  private advance(): void {
    const now = this.now();
    let elapsed = Math.floor((now - this.bucketStart) / this.bucketMs);
    if (elapsed <= 0) return;
    this.bucketStart += elapsed * this.bucketMs;
    if (elapsed > BUCKETS) elapsed = BUCKETS;
    for (let i = 0; i < elapsed; i++) {
      this.bucket = (this.bucket + 1) % BUCKETS;
      this.requests[this.bucket] = 0;
      this.retries[this.bucket] = 0;
    }
  }
}

/** The retry budget of a cluster whose window is shared by the event loops (SharedCounts): the same model as RetryBudget. */
export class SharedRetryBudget {
  private readonly bucketMs: number;
  private readonly floor: number;

  constructor(
    readonly settings: RetryBudgetSettings,
    private readonly shared: SharedSlot,
    private readonly now: () => number = Date.now,
  ) {
    new RetryBudget(settings, now); // the same checks of the settings
    this.bucketMs = settings.intervalMs / BUCKETS;
    this.floor = (settings.minRetryCount * settings.intervalMs) / settings.minRetryIntervalMs;
  }

  request(): void {
    this.shared.counts.budgetRequest(this.shared.slot, Math.floor(this.now() / this.bucketMs));
  }

  tryRetry(): boolean {
    return this.shared.counts.budgetTryRetry(this.shared.slot, Math.floor(this.now() / this.bucketMs), this.floor, this.settings.percent);
  }
}

/**
 * Whether two flat settings objects hold the same fields with the same values (`===`): a policy
 * object rebuilt by a mesh update with nothing changed reconfigures nothing.
 */
export function sameValues(a: object, b: object): boolean {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => Object.prototype.hasOwnProperty.call(y, k) && x[k] === y[k]);
}

/**
 * Why a request or retry was not let through, or had to wait (the `kind` of
 * tsmesh_upstream_overflow_total): `max_connections` counts a request that found the cluster at
 * its connection cap and waited, `max_pending` one that found the wait queue full and failed.
 */
export type OverflowKind = 'max_requests' | 'max_retries' | 'retry_budget' | 'max_connections' | 'max_pending';

/**
 * The connection slots of one cluster: every upstream connection the pools dial for it takes one
 * (given back when it closes). At `maxConnections` a request that needs a new connection waits in
 * FIFO order, `maxPendingRequests` at most; a freed slot goes to the one waiting longest. With
 * several event loops (`shared`) both caps hold for the loops together: each loop keeps its own
 * queue, and a slot freed on one loop wakes the loops that wait (SharedCounts.waitFreed).
 */
export class ConnectionGate {
  /** Connections open or being opened for the cluster (by this loop). */
  connections = 0;
  private readonly queue: Array<() => void> = [];
  /** Shared slots taken for a woken request, which its `open()` uses. */
  private reserved = 0;
  private watching = false;

  constructor(
    private readonly thresholds: () => Pick<BreakerThresholds, 'maxConnections' | 'maxPendingRequests' | 'idleTimeoutMs'>,
    private readonly shared?: SharedSlot,
  ) {}

  /** Requests waiting for a connection slot (with several loops: on any of them). */
  get pending(): number {
    return this.shared ? this.shared.counts.total(this.shared.slot, PENDING) : this.queue.length;
  }

  /** How long an upstream connection of the cluster may stay idle (ms); undefined: the pool's default. */
  get idleTimeoutMs(): number | undefined {
    return this.thresholds().idleTimeoutMs;
  }

  /** Takes a slot for a new connection; false at maxConnections (the caller waits, or fails). */
  open(): boolean {
    const shared = this.shared;
    if (this.reserved > 0) this.reserved--;
    else if (shared ? !shared.counts.tryTake(shared.slot, CONNECTIONS, this.thresholds().maxConnections) : this.connections >= this.thresholds().maxConnections) return false;
    this.connections++;
    return true;
  }

  /** A connection that took a slot closed (or failed to connect): the slot goes to the longest waiting. */
  closed(): void {
    if (this.connections > 0) this.connections--;
    const shared = this.shared;
    if (shared === undefined) {
      this.queue.shift()?.();
      return;
    }
    // The slot passes to this loop's longest waiting as it is; otherwise back to all the loops.
    if (this.queue.length > 0) {
      this.reserved++;
      this.wakeOne();
    } else this.giveBack(1);
  }

  /**
   * Queues `wake` until a slot frees (it is called once, never from inside `wait`, and must try
   * again at once); false when maxPendingRequests already wait (the request fails fast).
   */
  wait(wake: () => void): boolean {
    const shared = this.shared;
    if (shared ? !shared.counts.tryTake(shared.slot, PENDING, this.thresholds().maxPendingRequests) : this.queue.length >= this.thresholds().maxPendingRequests) return false;
    this.queue.push(wake);
    if (shared) this.watch(shared);
    return true;
  }

  /** A waiting request gave up (its client left, its deadline passed). */
  cancel(wake: () => void): void {
    const i = this.queue.indexOf(wake);
    if (i < 0) return;
    this.queue.splice(i, 1);
    if (this.shared) this.shared.counts.give(this.shared.slot, PENDING);
  }

  /** A raised cap: the waiting requests it makes room for try again. */
  reconsider(): void {
    if (this.shared) return this.drain(this.shared);
    let room = this.thresholds().maxConnections - this.connections;
    while (room-- > 0 && this.queue.length > 0) this.queue.shift()!();
  }

  /** Wakes the longest waiting with a reserved slot; a slot it left unused goes back to all the loops. */
  private wakeOne(): void {
    const shared = this.shared as SharedSlot;
    shared.counts.give(shared.slot, PENDING);
    this.queue.shift()!();
    if (this.reserved > 0) this.giveBack(this.reserved);
  }

  private giveBack(n: number): void {
    const shared = this.shared as SharedSlot;
    this.reserved = 0;
    for (let i = 0; i < n; i++) shared.counts.give(shared.slot, CONNECTIONS);
    shared.counts.notifyFreed(shared.slot);
  }

  /** Takes the slots free across the loops for this loop's waiting requests, oldest first. */
  private drain(shared: SharedSlot): void {
    while (this.queue.length > 0 && shared.counts.tryTake(shared.slot, CONNECTIONS, this.thresholds().maxConnections)) {
      this.reserved++;
      this.wakeOne();
    }
  }

  /** While requests wait here, waits for a slot to free on any loop (one watch at a time). */
  private watch(shared: SharedSlot): void {
    if (this.watching) return;
    this.watching = true;
    const seen = shared.counts.freedSeq(shared.slot);
    // A slot may have freed between the failed open() and now: look once before sleeping.
    queueMicrotask(() => this.drain(shared));
    // The timeout only re-arms the watch: a lost wake-up costs at most that long.
    void shared.counts.waitFreed(shared.slot, seen, WATCH_MS).then(() => {
      this.watching = false;
      this.drain(shared);
      if (this.queue.length > 0) this.watch(shared);
    });
  }
}

/** How long a loop waits for another loop's freed slot before it looks again regardless. */
const WATCH_MS = 1_000;

export class ClusterLimits {
  /** Requests in flight through this cluster (first attempts and retries alike). */
  requests = 0;
  /** Retries in flight. */
  retries = 0;
  budget: RetryBudget | SharedRetryBudget;
  /** The cluster's upstream connection slots (maxConnections, maxPendingRequests). */
  readonly gate: ConnectionGate;

  thresholds: BreakerThresholds;

  constructor(
    thresholds: BreakerSettings = DEFAULT_BREAKER,
    budget: RetryBudgetSettings = DEFAULT_RETRY_BUDGET,
    private readonly now?: () => number,
    /** The counts of every event loop and this cluster's slot in them; without, this loop's alone. */
    private readonly shared?: SharedSlot,
  ) {
    this.thresholds = { ...DEFAULT_BREAKER, ...thresholds };
    this.budget = this.budgetOf(budget);
    this.gate = new ConnectionGate(() => this.thresholds, shared);
  }

  /** New thresholds or budget (a changed policy); the counts in flight are kept, the budget's window starts again. */
  reconfigure(thresholds: BreakerSettings, budget: RetryBudgetSettings): void {
    this.thresholds = { ...DEFAULT_BREAKER, ...thresholds };
    if (!sameValues(budget, this.budget.settings)) this.budget = this.budgetOf(budget);
    this.gate.reconsider();
  }

  private budgetOf(settings: RetryBudgetSettings): RetryBudget | SharedRetryBudget {
    return this.shared ? new SharedRetryBudget(settings, this.shared, this.now) : new RetryBudget(settings, this.now);
  }

  /** Admits a new request unless the cluster is at maxRequests (then the caller fails fast). */
  admitRequest(): OverflowKind | undefined {
    const shared = this.shared;
    if (shared ? !shared.counts.tryTake(shared.slot, REQUESTS, this.thresholds.maxRequests) : this.requests >= this.thresholds.maxRequests) return 'max_requests';
    this.requests++;
    this.budget.request();
    return undefined;
  }

  /**
   * Admits a retry of an admitted request: within the budget, and within maxRetries unless the
   * request already holds a retry slot (`holding`: its second retry takes no second slot).
   */
  admitRetry(holding: boolean): OverflowKind | undefined {
    const shared = this.shared;
    if (!holding && (shared ? !shared.counts.tryTake(shared.slot, RETRIES, this.thresholds.maxRetries) : this.retries >= this.thresholds.maxRetries)) return 'max_retries';
    if (!this.budget.tryRetry()) {
      if (!holding) shared?.counts.give(shared.slot, RETRIES);
      return 'retry_budget';
    }
    if (!holding) this.retries++;
    return undefined;
  }

  /** An admitted request ended; `retried` when it had taken a retry slot. */
  done(retried: boolean): void {
    this.requests--;
    this.shared?.counts.give(this.shared.slot, REQUESTS);
    if (retried) {
      this.retries--;
      this.shared?.counts.give(this.shared.slot, RETRIES);
    }
  }
}
