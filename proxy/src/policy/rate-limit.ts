// Local rate limits (HTTPLocalRateLimitPolicy): the policies that select this workload, compiled
// once per snapshot into buckets the inbound side takes a token from on every HTTP request that
// authorization let through. Per policy that applies to the request's port: the caller's override
// bucket (callers an override names share one) or else its own per-identity bucket, then the total
// bucket; every policy that applies must admit. Plaintext callers have no identity: only `total`
// applies to them. A token taken from one bucket is given back when a later one refuses, so a
// refused request costs nothing.
import {
  compileRoutes,
  matchHttp,
  type HttpRequestInfo as RouteRequestInfo,
  type MeshHTTPLocalRateLimitPolicy,
  type MeshSnapshot,
  type RateLimitRoute,
  type RouteDecision,
  type RouteTable,
} from '@tsmesh/common';
import { policiesOf, type PolicyProblem, type PolicyWorkload } from './peer-authentication.js';
import { bucketShape, keyHash, retryAfterSeconds, type BucketRef, type BucketShape, type RateBuckets } from './rate-buckets.js';

/** Which bucket refused a request. */
export type RateLimitReason = 'total' | 'identity' | 'override';

/** A refused request: by which policy (`namespace/name`) and bucket, and when to try again. */
export interface RateLimitVerdict {
  readonly policy: string;
  readonly reason: RateLimitReason;
  /** Whole seconds until a token is available, at least 1 (the `retry-after` header). */
  readonly retryAfterSeconds: number;
}

/** Counts decisions: one counter per policy, decision and reason, made once per snapshot. */
export type RateLimitCounters = (policy: string, decision: 'admitted' | 'limited', reason: RateLimitReason | 'within_limit') => { inc(): void };

/** The compiled rate limits of one workload. */
export interface WorkloadRateLimits {
  /** False when no policy selects the workload: nothing needs asking. */
  readonly active: boolean;
  /**
   * Takes a token for one request to `port` from `identity` (the verified SPIFFE ID, undefined for a
   * plaintext caller): undefined when admitted (allocates nothing then), else the refusal.
   */
  check(port: number, identity: string | undefined, route?: RouteDecision | undefined): RateLimitVerdict | undefined;
  /**
   * Whether a policy limits one route (`spec.route`): then the caller asks routeOf for the request's
   * route and passes it to check. False: routeOf is never needed.
   */
  readonly needsRoute: boolean;
  /** The route rule a request to `port` matches, as the caller's sidecar matched it (the request's normalised view). */
  routeOf(port: number, request: RouteRequestInfo): RouteDecision | undefined;
  /** `namespace/name` of every policy selecting the workload. */
  readonly policies: readonly string[];
  /** HTTPLocalRateLimitPolicies of the snapshot that did not validate and were left out. */
  readonly problems: readonly PolicyProblem[];
}

/** Identities whose bucket a policy remembers; past it the bucket is looked up again each time (same slot). */
const MAX_REMEMBERED_IDENTITIES = 4096;

interface Bucket {
  readonly shape: BucketShape;
  readonly ref: BucketRef;
}

interface CompiledLimit {
  readonly id: string;
  readonly port: number | undefined;
  /** With the route's namespace (the policy's). */
  readonly route: (RateLimitRoute & { readonly namespace: string }) | undefined;
  readonly total: Bucket | undefined;
  readonly identityShape: BucketShape | undefined;
  readonly identities: Map<string, Bucket>;
  /** By the caller's SPIFFE ID; the callers of one override share its Bucket. */
  readonly overrides: ReadonlyMap<string, Bucket>;
  readonly admitted: { inc(): void } | undefined;
  readonly limited: Readonly<Record<RateLimitReason, { inc(): void } | undefined>>;
}

/** Whether `policy` selects `workload`: its own namespace only, every workload there without a selector. */
export function rateLimitSelects(policy: MeshHTTPLocalRateLimitPolicy, workload: PolicyWorkload): boolean {
  if (policy.namespace !== workload.namespace) return false;
  const selector = policy.selector;
  if (selector === undefined) return true;
  for (const key of Object.keys(selector)) if (!Object.hasOwn(workload.labels, key) || workload.labels[key] !== selector[key]) return false;
  return true;
}

export interface RateLimitOptions {
  /** The trust domain of the SPIFFE IDs overrides name (`spiffe://<td>/ns/<ns>/sa/<name>`). */
  readonly trustDomain: string;
  readonly buckets: RateBuckets;
  readonly counters?: RateLimitCounters | undefined;
  readonly problems?: readonly PolicyProblem[];
  /** The route tables of each workload port (its Services' ports), for policies with `spec.route`. */
  readonly routeTables?: ((port: number) => readonly RouteTable[]) | undefined;
}

/** Whether `decision` is the route (and rule) a policy limits. */
function onRoute(route: NonNullable<CompiledLimit['route']>, decision: RouteDecision | undefined): boolean {
  if (decision === undefined) return false;
  const ref = decision.route;
  return ref.kind === route.kind && ref.name === route.name && ref.namespace === route.namespace && (route.ruleName === undefined || decision.ruleName === route.ruleName);
}

const NO_TABLES: readonly RouteTable[] = Object.freeze([]);
const INACTIVE_CHECK = (): undefined => undefined;

/** Compiles the rate limits of `workload` from validated policies (rateLimitSelects says which apply). */
export function compileRateLimits(all: readonly MeshHTTPLocalRateLimitPolicy[], workload: PolicyWorkload, options: RateLimitOptions): WorkloadRateLimits {
  const { buckets, counters, trustDomain } = options;
  const selected = all
    .filter((p) => rateLimitSelects(p, workload))
    .map((p) => compileLimit(p, buckets, trustDomain, counters))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // The buckets a request took a token from so far (to give back on a refusal); reused, never grown past it.
  const taken: Array<Bucket | undefined> = new Array<Bucket | undefined>(selected.length * 2).fill(undefined);
  const giveBack = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const bucket = taken[i] as Bucket;
      buckets.giveBack(bucket.ref, bucket.shape);
      taken[i] = undefined;
    }
  };
  const check = (port: number, identity: string | undefined, route?: RouteDecision): RateLimitVerdict | undefined => {
    const now = buckets.clock();
    let count = 0;
    for (let i = 0; i < selected.length; i++) {
      const policy = selected[i] as CompiledLimit;
      if (policy.port !== undefined && policy.port !== port) continue;
      if (policy.route !== undefined && !onRoute(policy.route, route)) continue;
      if (identity !== undefined) {
        const override = policy.overrides.get(identity);
        const bucket = override ?? identityBucket(policy, identity, buckets);
        if (bucket !== undefined) {
          const wait = buckets.take(bucket.ref, bucket.shape, now);
          if (wait > 0) return refuse(policy, override !== undefined ? 'override' : 'identity', wait, count);
          taken[count++] = bucket;
        }
      }
      if (policy.total !== undefined) {
        const wait = buckets.take(policy.total.ref, policy.total.shape, now);
        if (wait > 0) return refuse(policy, 'total', wait, count);
        taken[count++] = policy.total;
      }
      policy.admitted?.inc();
    }
    for (let i = 0; i < count; i++) taken[i] = undefined;
    return undefined;
  };
  const refuse = (policy: CompiledLimit, reason: RateLimitReason, waitNs: number, count: number): RateLimitVerdict => {
    giveBack(count);
    policy.limited[reason]?.inc();
    return { policy: policy.id, reason, retryAfterSeconds: retryAfterSeconds(waitNs) };
  };
  const tables = options.routeTables ?? (() => NO_TABLES);
  return Object.freeze({
    active: selected.length > 0,
    check: selected.length > 0 ? check : INACTIVE_CHECK,
    needsRoute: selected.some((p) => p.route !== undefined),
    routeOf(port: number, request: RouteRequestInfo): RouteDecision | undefined {
      for (const table of tables(port)) {
        const decision = matchHttp(table, request);
        if (decision !== undefined) return decision;
      }
      return undefined;
    },
    policies: Object.freeze(selected.map((p) => p.id)),
    problems: Object.freeze([...(options.problems ?? [])]),
  });
}

function identityBucket(policy: CompiledLimit, identity: string, buckets: RateBuckets): Bucket | undefined {
  const shape = policy.identityShape;
  if (shape === undefined) return undefined;
  let bucket = policy.identities.get(identity);
  if (bucket === undefined) {
    bucket = { shape, ref: buckets.bucketOf(keyHash(`${policy.id}\0identity\0${identity}`)) };
    if (policy.identities.size < MAX_REMEMBERED_IDENTITIES) policy.identities.set(identity, bucket);
  }
  return bucket;
}

function compileLimit(policy: MeshHTTPLocalRateLimitPolicy, buckets: RateBuckets, trustDomain: string, counters: RateLimitCounters | undefined): CompiledLimit {
  const id = `${policy.namespace}/${policy.name}`;
  const bucket = (kind: string, rps: number): Bucket => ({ shape: bucketShape(rps), ref: buckets.bucketOf(keyHash(`${id}\0${kind}`)) });
  const overrides = new Map<string, Bucket>();
  policy.overrides.forEach((override, i) => {
    const shared = bucket(`override\0${i}`, override.requestsPerSecond);
    for (const ref of override.clientRefs) overrides.set(`spiffe://${trustDomain}/ns/${ref.namespace}/sa/${ref.name}`, shared);
  });
  return {
    id,
    port: policy.port,
    route: policy.route === undefined ? undefined : { ...policy.route, namespace: policy.namespace },
    total: policy.total === undefined ? undefined : bucket('total', policy.total),
    identityShape: policy.identity === undefined ? undefined : bucketShape(policy.identity),
    identities: new Map(),
    overrides,
    admitted: counters?.(id, 'admitted', 'within_limit'),
    limited: {
      total: counters?.(id, 'limited', 'total'),
      identity: counters?.(id, 'limited', 'identity'),
      override: counters?.(id, 'limited', 'override'),
    },
  };
}

/** The HTTPLocalRateLimitPolicies of a snapshot (its `others`), validated; those that do not validate are reported. */
export function rateLimitPoliciesOf(snapshot: Pick<MeshSnapshot, 'others'>): { policies: MeshHTTPLocalRateLimitPolicy[]; problems: PolicyProblem[] } {
  return policiesOf(snapshot, 'HTTPLocalRateLimitPolicy', (value) => value);
}

/**
 * The route tables of the Service ports whose endpoints are `podIp` at each workload port: what the
 * callers' sidecars matched requests to this pod against.
 */
export function routeTablesOf(snapshot: Pick<MeshSnapshot, 'version' | 'others' | 'service' | 'services' | 'endpoints'>, podIp: string | undefined): (port: number) => readonly RouteTable[] {
  const byPort = new Map<number, RouteTable[]>();
  if (podIp === undefined) return () => NO_TABLES;
  const compiled = compileRoutes(snapshot);
  for (const service of snapshot.services) {
    for (const port of service.ports) {
      const table = compiled.table(service.namespace, service.name, port.port);
      if (table === undefined) continue;
      for (const e of snapshot.endpoints(service, port)) {
        if (e.address !== podIp) continue;
        const list = byPort.get(e.port) ?? [];
        if (!list.includes(table)) list.push(table);
        byPort.set(e.port, list);
      }
    }
  }
  return (port) => byPort.get(port) ?? NO_TABLES;
}

/** The compiled rate limits of `workload` in `snapshot`: build them once per snapshot (routes compiled only when a policy names one). */
export function compileWorkloadRateLimits(
  snapshot: Pick<MeshSnapshot, 'version' | 'others' | 'service' | 'services' | 'endpoints'>,
  workload: PolicyWorkload,
  options: Omit<RateLimitOptions, 'problems' | 'routeTables'> & { readonly podIp?: string | undefined },
): WorkloadRateLimits {
  const { policies, problems } = rateLimitPoliciesOf(snapshot);
  const routed = policies.some((p) => p.route !== undefined && rateLimitSelects(p, workload));
  return compileRateLimits(policies, workload, { ...options, problems, routeTables: routed ? routeTablesOf(snapshot, options.podIp) : undefined });
}
