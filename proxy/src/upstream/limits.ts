// What a cluster allows at once, so that a failing or overloaded Service degrades alone:
//  - a retry budget (Linkerd's model; Gateway API's BackendTrafficPolicy `retryConstraint`):
//    over a sliding window, retries may add `percent` % of the requests sent, plus a floor of
//    `minRetryCount` per `minRetryIntervalMs` so a quiet Service can still retry. Retries past it
//    are not sent.
//  - circuit-breaker thresholds (Envoy's, Istio's DestinationRule `connectionPool`): requests in
//    flight and concurrent retries per cluster. Past them a request fails at once (503, flag
//    `UO`) instead of queueing behind a Service that cannot keep up.
// One ClusterLimits per cluster and event loop; every count is synchronous and allocation-free.

import { DEFAULT_CONNECTION_POOL, DEFAULT_RETRY_BUDGET, type ConnectionPoolSettings, type RetryBudgetSettings } from '@tsmesh/common';

export type { RetryBudgetSettings };
export { DEFAULT_RETRY_BUDGET };

/** The thresholds enforced per cluster: requests (streams) in flight, and retries in flight. */
export type BreakerThresholds = Pick<ConnectionPoolSettings, 'maxRequests' | 'maxRetries'>;

/** Envoy's default thresholds. */
export const DEFAULT_BREAKER: BreakerThresholds = Object.freeze({ maxRequests: DEFAULT_CONNECTION_POOL.maxRequests, maxRetries: DEFAULT_CONNECTION_POOL.maxRetries });

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

/** Why a request or retry was not let through (the `kind` of tsmesh_upstream_overflow_total). */
export type OverflowKind = 'max_requests' | 'max_retries' | 'retry_budget';

export class ClusterLimits {
  /** Requests in flight through this cluster (first attempts and retries alike). */
  requests = 0;
  /** Retries in flight. */
  retries = 0;
  budget: RetryBudget;

  constructor(
    public thresholds: BreakerThresholds = DEFAULT_BREAKER,
    budget: RetryBudgetSettings = DEFAULT_RETRY_BUDGET,
    private readonly now?: () => number,
  ) {
    this.budget = new RetryBudget(budget, now);
  }

  /** New thresholds or budget (a changed policy); the counts in flight are kept, the budget's window starts again. */
  reconfigure(thresholds: BreakerThresholds, budget: RetryBudgetSettings): void {
    this.thresholds = thresholds;
    if (!sameValues(budget, this.budget.settings)) this.budget = new RetryBudget(budget, this.now);
  }

  /** Admits a new request unless the cluster is at maxRequests (then the caller fails fast). */
  admitRequest(): OverflowKind | undefined {
    if (this.requests >= this.thresholds.maxRequests) return 'max_requests';
    this.requests++;
    this.budget.request();
    return undefined;
  }

  /**
   * Admits a retry of an admitted request: within the budget, and within maxRetries unless the
   * request already holds a retry slot (`holding`: its second retry takes no second slot).
   */
  admitRetry(holding: boolean): OverflowKind | undefined {
    if (!holding && this.retries >= this.thresholds.maxRetries) return 'max_retries';
    if (!this.budget.tryRetry()) return 'retry_budget';
    if (!holding) this.retries++;
    return undefined;
  }

  /** An admitted request ended; `retried` when it had taken a retry slot. */
  done(retried: boolean): void {
    this.requests--;
    if (retried) this.retries--;
  }
}
