// The retry policy of one request, as the forwarders apply it: which answers are retried (HTTP
// statuses of GEP-1731 `retry.codes`, gRPC statuses of a TrafficPolicy's `retry.grpcCodes`), how
// many times, and how long to wait between tries. Whether a retry may go at all (attempts left,
// maxRetries, the retry budget) is UpstreamCall.mayRetry('policy')'s to say.
import type { RouteRetry, ServiceRetrySettings } from '@tsmesh/common';

export interface RetryPolicy {
  /** HTTP statuses whose response is retried (idempotent methods, gRPC calls aside). */
  readonly codes: ReadonlySet<number>;
  /** gRPC statuses whose trailers-only answer is retried. */
  readonly grpcCodes: ReadonlySet<number>;
  /** Retries after the first try. */
  readonly attempts: number;
  /** The least wait before the first retry, in ms; doubled for each next one, with jitter, up to BACKOFF_CAP_FACTOR times it. */
  readonly backoffMs: number;
}

/** Retries when a `retry` leaves `attempts` out: three tries in all, as the proxy's failover. */
export const DEFAULT_RETRY_ATTEMPTS = 2;
/** Backoff when a `retry` leaves `backoff` out (Envoy's base interval). */
export const DEFAULT_RETRY_BACKOFF_MS = 25;
/** The longest wait between two tries, as a multiple of the base backoff (Envoy's default). */
export const BACKOFF_CAP_FACTOR = 10;
/** Request body kept for a retry; a longer body is not retried once it started to stream. */
export const REPLAY_LIMIT = 64 * 1024;

/** Methods a proxy may send twice (RFC 9110 9.2.2): the only ones retried on a status code (gRPC aside). */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const compiled = new WeakMap<object, RetryPolicy>();

/**
 * The policy of a request: the route rule's own `retry` (HTTPRoute, GEP-1731) wins whole, else
 * the backend Service's default (TrafficPolicy `retry`); undefined when neither has one. Memoised
 * per source object (both are frozen per mesh snapshot), so routing allocates nothing per request.
 */
export function retryPolicyOf(route: RouteRetry | undefined, service: ServiceRetrySettings | undefined): RetryPolicy | undefined {
  const source = route ?? service;
  if (source === undefined) return undefined;
  let policy = compiled.get(source);
  if (policy === undefined) {
    policy = Object.freeze({
      codes: new Set(source.codes),
      grpcCodes: new Set<number>(route === undefined ? (service?.grpcCodes ?? []) : []),
      attempts: source.attempts ?? DEFAULT_RETRY_ATTEMPTS,
      backoffMs: source.backoffMs ?? DEFAULT_RETRY_BACKOFF_MS,
    });
    compiled.set(source, policy);
  }
  return policy;
}

/** Whether a response with `status` to a `method` request is one the policy retries. */
export function retriesStatus(policy: RetryPolicy | undefined, method: string, status: number): boolean {
  return policy !== undefined && policy.codes.has(status) && IDEMPOTENT.has(method);
}

/** Whether a gRPC call's trailers-only `grpc-status` is one the policy retries (any method: gRPC's own retry policy). */
export function retriesGrpc(policy: RetryPolicy | undefined, grpcStatus: string | undefined): boolean {
  if (policy === undefined || grpcStatus === undefined || policy.grpcCodes.size === 0) return false;
  const code = Number(grpcStatus);
  return Number.isInteger(code) && policy.grpcCodes.has(code);
}

/**
 * The wait before retry number `retry` (1 for the first): the base backoff doubled per retry,
 * capped at BACKOFF_CAP_FACTOR times the base, then jittered down by up to half, never under the
 * base (GEP-1731: backoff is the least wait). `random` is in [0, 1).
 */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const base = policy.backoffMs;
  if (base <= 0) return 0;
  const cap = base * BACKOFF_CAP_FACTOR;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, retry - 1));
  return Math.max(base, ceiling - (ceiling / 2) * random());
}

/**
 * The clocks of one request's way out, for every forwarder: the whole request's deadline
 * (timeouts.request, retries and backoff included), the current try's (timeouts.backendRequest)
 * and the wait before a retry. A callback runs at most once, after its timer is forgotten.
 */
export class RequestTimers {
  private request: NodeJS.Timeout | undefined;
  private try: NodeJS.Timeout | undefined;
  private backoff: NodeJS.Timeout | undefined;
  /** performance.now() at which timeouts.request passes. */
  private deadline: number | undefined;

  /** Starts the whole request's deadline; nothing without `ms`. */
  startRequest(ms: number | undefined, onTimeout: () => void): void {
    if (!ms) return;
    this.deadline = performance.now() + ms;
    this.request = setTimeout(() => {
      this.request = undefined;
      onTimeout();
    }, ms);
  }

  /** Starts the current try's deadline (replacing the last try's); nothing without `ms`. */
  startTry(ms: number | undefined, onTimeout: () => void): void {
    this.stopTry();
    if (!ms) return;
    this.try = setTimeout(() => {
      this.try = undefined;
      onTimeout();
    }, ms);
  }

  stopTry(): void {
    if (this.try) clearTimeout(this.try);
    this.try = undefined;
  }

  stopRequest(): void {
    if (this.request) clearTimeout(this.request);
    this.request = undefined;
  }

  /**
   * Runs `retry` after `ms` (the try's deadline stops); false, and nothing scheduled, when that
   * is past the request's deadline, whose timer answers then.
   */
  retryAfter(ms: number, retry: () => void): boolean {
    this.stopTry();
    if (this.deadline !== undefined && performance.now() + ms >= this.deadline) return false;
    this.backoff = setTimeout(() => {
      this.backoff = undefined;
      retry();
    }, ms);
    return true;
  }

  /** Stops every clock: the request is over. */
  clear(): void {
    this.stopRequest();
    this.stopTry();
    if (this.backoff) clearTimeout(this.backoff);
    this.backoff = undefined;
  }
}
