// Traffic-policy knobs of a Service port: the types the kinds parse into, the defaults in one place,
// and the merge that turns every TrafficPolicy and XBackendTrafficPolicy targeting a Service port into
// the one effective policy the proxy reads (MeshSnapshot.trafficPolicyFor).
import type { MeshService, ServicePort } from './types.js';

/** Where a consistent hash (ring-hash) takes its key from: exactly one source. */
export type HashSource =
  | { readonly type: 'header'; readonly name: string }
  | { readonly type: 'cookie'; readonly name: string }
  | { readonly type: 'queryParameter'; readonly name: string }
  | { readonly type: 'sourceIP' };

/** Envoy circuit-breaker thresholds, per Service port and per client sidecar. */
export interface ConnectionPoolSettings {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  /** Retries in flight at once. */
  readonly maxRetries: number;
  /** An upstream connection idle that long is closed (Istio's `connectionPool.http.idleTimeout`), ms; 0: the proxy's default. */
  readonly idleTimeoutMs: number;
}

/** Envoy's defaults, used for every field no policy sets. */
export const DEFAULT_CONNECTION_POOL: ConnectionPoolSettings = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  idleTimeoutMs: 0,
});

/** Passive health: when an endpoint is ejected from balancing, and for how long. 0 turns a counter off. */
export interface OutlierDetectionSettings {
  /** Consecutive 5xx responses (and connection failures) that eject an endpoint. */
  readonly consecutive5xxErrors: number;
  /** Consecutive 502, 503, 504 (and connection failures) that eject an endpoint; 0: off. */
  readonly consecutiveGatewayErrors: number;
  /** Consecutive failed connects (refused, reset, timed out) that eject an endpoint. */
  readonly consecutiveConnectFailures: number;
  /** How often ejections are reconsidered, in ms. */
  readonly intervalMs: number;
  /** The first ejection's length, in ms; each further ejection lasts longer. */
  readonly baseEjectionTimeMs: number;
  /** The largest share of a Service port's endpoints ejected at once, 0-100. */
  readonly maxEjectionPercent: number;
  /**
   * Success-rate ejection (Envoy's `success_rate_*`): every `intervalMs`, an endpoint with at least
   * `successRateRequestVolume` requests whose success rate is below the mean minus
   * `successRateStdevFactor` / 1000 standard deviations is ejected, when at least
   * `successRateMinimumHosts` endpoints have that volume. Factor 0: off.
   */
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  readonly successRateStdevFactor: number;
}

/** Envoy's success-rate defaults, for the fields a policy that turns it on leaves out. */
export const SUCCESS_RATE_DEFAULTS = Object.freeze({ successRateMinimumHosts: 5, successRateRequestVolume: 100, successRateStdevFactor: 1900 });

/**
 * Envoy's outlier-detection defaults, except consecutiveConnectFailures and baseEjectionTime, which
 * are what the proxy's passive health does today (proxy/src/balance/ejection.ts: one failed connect
 * ejects, for 5 s first), so that a Service without a policy behaves as before.
 */
export const DEFAULT_OUTLIER_DETECTION: OutlierDetectionSettings = Object.freeze({
  consecutive5xxErrors: 5,
  consecutiveGatewayErrors: 0,
  consecutiveConnectFailures: 1,
  intervalMs: 10_000,
  baseEjectionTimeMs: 5_000,
  maxEjectionPercent: 10,
  successRateMinimumHosts: SUCCESS_RATE_DEFAULTS.successRateMinimumHosts,
  successRateRequestVolume: SUCCESS_RATE_DEFAULTS.successRateRequestVolume,
  successRateStdevFactor: 0,
});

/**
 * A retry budget (Linkerd's model; Gateway API's BackendTrafficPolicy retryConstraint maps onto it):
 * retries may add `percent` % to the requests of the last `intervalMs`, and at least `minRetryCount`
 * retries per `minRetryIntervalMs` are always allowed.
 */
export interface RetryBudgetSettings {
  readonly percent: number;
  readonly intervalMs: number;
  readonly minRetryCount: number;
  readonly minRetryIntervalMs: number;
}

/** 20 % over 10 s, at least 10 retries per second: Linkerd's and Gateway API's defaults alike. */
export const DEFAULT_RETRY_BUDGET: RetryBudgetSettings = Object.freeze({ percent: 20, intervalMs: 10_000, minRetryCount: 10, minRetryIntervalMs: 1_000 });

/**
 * Passive health of a Service port that no policy gives an `outlierDetection` section: what the
 * proxy has always done (one failed connect ejects, 5 s first, no 5xx counting, no cap), as Istio
 * does nothing on 5xx without a DestinationRule. A policy that has the section gets Envoy's
 * defaults (DEFAULT_OUTLIER_DETECTION) for the fields it leaves out.
 */
export const NO_POLICY_OUTLIER_DETECTION: OutlierDetectionSettings = Object.freeze({
  consecutive5xxErrors: 0,
  consecutiveGatewayErrors: 0,
  consecutiveConnectFailures: 1,
  intervalMs: 10_000,
  baseEjectionTimeMs: 5_000,
  maxEjectionPercent: 100,
  successRateMinimumHosts: SUCCESS_RATE_DEFAULTS.successRateMinimumHosts,
  successRateRequestVolume: SUCCESS_RATE_DEFAULTS.successRateRequestVolume,
  successRateStdevFactor: 0,
});

/** Every default of the effective policy, in one place (the algorithm's is DEFAULT_LOAD_BALANCER). */
export const TRAFFIC_POLICY_DEFAULTS = Object.freeze({
  connectionPool: DEFAULT_CONNECTION_POOL,
  outlierDetection: DEFAULT_OUTLIER_DETECTION,
  retryBudget: DEFAULT_RETRY_BUDGET,
});

/**
 * gRPC status codes by name (grpc/doc/statuscodes.md), OK left out: the names a TrafficPolicy's
 * `retry.grpcCodes` may list.
 */
export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = Object.freeze({
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
});

/**
 * A Service port's default retry policy (TrafficPolicy `retry`): what requests to it retry when
 * their route has no `retry` of its own (every GRPCRoute: Gateway API gives it none). Same meaning
 * as an HTTPRoute's GEP-1731 `retry`, plus the gRPC status codes a trailers-only answer is retried on.
 */
export interface ServiceRetrySettings {
  /** Retries after the first try; undefined: the proxy's default. */
  readonly attempts: number | undefined;
  /** The least wait before a retry, in ms; undefined: the proxy's default. */
  readonly backoffMs: number | undefined;
  /** HTTP statuses (400-599) retried, ascending, no repeats. */
  readonly codes: readonly number[];
  /** gRPC status codes (numbers, from the names written) retried, ascending, no repeats. */
  readonly grpcCodes: readonly number[];
}

/** Gateway API session persistence (BackendTrafficPolicy `sessionPersistence`), as written (idleTimeout is not enforced). */
export interface SessionPersistence {
  readonly sessionName: string | undefined;
  readonly absoluteTimeoutMs: number | undefined;
  readonly idleTimeoutMs: number | undefined;
  /** Default Cookie. */
  readonly type: 'Cookie' | 'Header';
  readonly cookieLifetimeType: 'Permanent' | 'Session' | undefined;
}

/** A policy's `targetRefs` entry: a Service of the policy's namespace, the whole of it or one named port. */
export interface PolicyTargetRef {
  readonly name: string;
  /** A Service port name; undefined: every port of the Service. */
  readonly sectionName: string | undefined;
}

/** Names a policy object. */
export interface PolicyRef {
  readonly kind: 'TrafficPolicy' | 'XBackendTrafficPolicy';
  readonly namespace: string;
  readonly name: string;
}

/** TrafficPolicy (policy.tsmesh.io/v1alpha1) as validated: each field undefined when not set. */
export interface MeshTrafficPolicy {
  readonly namespace: string;
  readonly name: string;
  /** `metadata.creationTimestamp` in ms since the epoch; +Infinity when unknown (a mesh file): it then yields to dated ones. */
  readonly createdAt: number;
  readonly targetRefs: readonly PolicyTargetRef[];
  readonly loadBalancer: { readonly algorithm: string | undefined; readonly hash: HashSource | undefined } | undefined;
  readonly connectionPool: Partial<ConnectionPoolSettings> | undefined;
  readonly outlierDetection: Partial<OutlierDetectionSettings> | undefined;
  /** `retryBudget`, mapped: `minRetriesPerSecond` N is N retries per 1000 ms. */
  readonly retryBudget: Partial<RetryBudgetSettings> | undefined;
  /** `retry`: the Service's default retry policy, taken whole by the winning policy that has one. */
  readonly retry?: ServiceRetrySettings | undefined;
}

/** XBackendTrafficPolicy (gateway.networking.x-k8s.io/v1alpha1) as validated. */
export interface MeshBackendTrafficPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly createdAt: number;
  /** The Services it targets (a BackendTrafficPolicy cannot name a port); other kinds are left out and reported in `unsupported`. */
  readonly targetRefs: readonly PolicyTargetRef[];
  /** `retryConstraint`, mapped; undefined fields take Gateway API's defaults (DEFAULT_RETRY_BUDGET). */
  readonly retryConstraint: Partial<RetryBudgetSettings> | undefined;
  readonly sessionPersistence: SessionPersistence | undefined;
  /** What tsmesh records but does not apply, one sentence each naming the field. */
  readonly unsupported: readonly string[];
}

/** The policy the proxy applies to the traffic of one Service port: every field set, defaults filled. */
export interface EffectiveTrafficPolicy {
  readonly loadBalancer: {
    /** A TrafficPolicy's algorithm, else the Service's annotation, else DEFAULT_LOAD_BALANCER; passed through unchecked to the proxy registry. */
    readonly algorithm: string;
    /** Meaningful with ring-hash only. */
    readonly hash: HashSource | undefined;
  };
  readonly connectionPool: ConnectionPoolSettings;
  readonly outlierDetection: OutlierDetectionSettings;
  readonly retryBudget: RetryBudgetSettings & {
    /** Who set it: a Gateway API XBackendTrafficPolicy wins over a TrafficPolicy's retryBudget. */
    readonly source: 'XBackendTrafficPolicy' | 'TrafficPolicy' | 'default';
  };
  /** The default retry policy of the port (a route's own `retry` wins over it); undefined: none. */
  readonly retry: ServiceRetrySettings | undefined;
  /** From an XBackendTrafficPolicy; the sidecar binds HTTP sessions to endpoints (balance/session.ts). */
  readonly sessionPersistence: SessionPersistence | undefined;
  /** The policies that apply, highest precedence first (XBackendTrafficPolicies after TrafficPolicies). */
  readonly sources: readonly PolicyRef[];
}

/**
 * Gateway API's conflict rule: the oldest wins, then the first by namespace/name. Sorts a copy, the
 * winner first.
 */
export function byPrecedence<P extends { readonly createdAt: number; readonly namespace: string; readonly name: string }>(policies: readonly P[]): P[] {
  return [...policies].sort((a, b) => {
    if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
    const ka = `${a.namespace}/${a.name}`;
    const kb = `${b.namespace}/${b.name}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** Whether a policy's targetRefs name this Service port: by `sectionName` ('port'), the whole Service ('service'), or not at all. */
export function targetOf(refs: readonly PolicyTargetRef[], service: MeshService, port: ServicePort): 'port' | 'service' | undefined {
  let found: 'service' | undefined;
  for (const ref of refs) {
    if (ref.name !== service.name) continue;
    if (ref.sectionName === undefined) found = 'service';
    else if (ref.sectionName === port.name && port.name !== '') return 'port';
  }
  return found;
}

/** The first value set, in precedence order, else the default. */
function pick<T, K extends keyof T>(layers: readonly (Partial<T> | undefined)[], field: K, fallback: T[K]): T[K] {
  for (const layer of layers) {
    const value = layer?.[field];
    if (value !== undefined) return value as T[K];
  }
  return fallback;
}

function fill<T extends object>(layers: readonly (Partial<T> | undefined)[], defaults: T): T {
  const result: Partial<T> = {};
  for (const field of Object.keys(defaults) as (keyof T)[]) result[field] = pick(layers, field, defaults[field]);
  return Object.freeze(result as T);
}

/**
 * Merges the policies of one Service port. `traffic` and `backend` hold only those that target the
 * Service (whole or this port). Precedence, field by field: a TrafficPolicy naming the port
 * (sectionName) over one naming the whole Service, among equals the oldest, then by name; a
 * TrafficPolicy's algorithm over the Service's `tsmesh.io/load-balancer` annotation; `hash` is taken
 * whole from one policy. The retry budget is taken whole: from the winning XBackendTrafficPolicy with
 * a retryConstraint (Gateway API is the standard), else merged from the TrafficPolicies, else the default.
 * The default `retry` is taken whole from the first policy, in the same order, that has one.
 */
export function effectiveTrafficPolicy(
  service: MeshService,
  port: ServicePort,
  traffic: readonly MeshTrafficPolicy[],
  backend: readonly MeshBackendTrafficPolicy[],
): EffectiveTrafficPolicy {
  const forPort = byPrecedence(traffic.filter((p) => targetOf(p.targetRefs, service, port) === 'port'));
  const forService = byPrecedence(traffic.filter((p) => targetOf(p.targetRefs, service, port) === 'service'));
  const ordered = [...forPort, ...forService];
  const backends = byPrecedence(backend.filter((p) => targetOf(p.targetRefs, service, port) !== undefined));
  const constraint = backends.find((p) => p.retryConstraint !== undefined);
  const budgets = ordered.map((p) => p.retryBudget);
  const retryBudget =
    constraint !== undefined
      ? { ...fill([constraint.retryConstraint], DEFAULT_RETRY_BUDGET), source: 'XBackendTrafficPolicy' as const }
      : { ...fill(budgets, DEFAULT_RETRY_BUDGET), source: budgets.some((b) => b !== undefined) ? ('TrafficPolicy' as const) : ('default' as const) };
  return Object.freeze({
    loadBalancer: Object.freeze({
      algorithm: ordered.find((p) => p.loadBalancer?.algorithm !== undefined)?.loadBalancer?.algorithm ?? service.loadBalancer,
      hash: ordered.find((p) => p.loadBalancer?.hash !== undefined)?.loadBalancer?.hash,
    }),
    connectionPool: fill(ordered.map((p) => p.connectionPool), DEFAULT_CONNECTION_POOL),
    outlierDetection: ordered.some((p) => p.outlierDetection !== undefined)
      ? fill(ordered.map((p) => p.outlierDetection), DEFAULT_OUTLIER_DETECTION)
      : NO_POLICY_OUTLIER_DETECTION,
    retryBudget: Object.freeze(retryBudget),
    retry: ordered.find((p) => p.retry !== undefined)?.retry,
    sessionPersistence: backends.find((p) => p.sessionPersistence !== undefined)?.sessionPersistence,
    sources: Object.freeze([
      ...ordered.map((p): PolicyRef => Object.freeze({ kind: 'TrafficPolicy', namespace: p.namespace, name: p.name })),
      ...backends.map((p): PolicyRef => Object.freeze({ kind: 'XBackendTrafficPolicy', namespace: p.namespace, name: p.name })),
    ]),
  });
}

/** `metadata.creationTimestamp` in ms; +Infinity when absent or unreadable. */
export function creationTime(raw: Readonly<Record<string, unknown>>): number {
  const metadata = raw['metadata'];
  const stamp = typeof metadata === 'object' && metadata !== null ? (metadata as Record<string, unknown>)['creationTimestamp'] : undefined;
  const parsed = typeof stamp === 'string' ? Date.parse(stamp) : Number.NaN;
  return Number.isFinite(parsed) ? parsed : Number.POSITIVE_INFINITY;
}
