// The routing model: what compiling HTTPRoutes and GRPCRoutes (Gateway API, GAMMA mesh profile)
// against a snapshot produces, as frozen values the proxy reads per request without awaiting.

import type { SessionPersistence } from '../mesh/traffic-policy.js';

export type RouteKind = 'HTTPRoute' | 'GRPCRoute';

/** Names one route object. */
export interface RouteRef {
  readonly kind: RouteKind;
  readonly namespace: string;
  readonly name: string;
}

/** Why a backend cannot take traffic (Gateway API `ResolvedRefs` reasons; RefNotPermitted: a Gateway route's cross-namespace backend without a ReferenceGrant). */
export type BackendProblem = 'BackendNotFound' | 'InvalidKind' | 'RefNotPermitted';

/**
 * One entry of a rule's `backendRefs`: a Service port and its weight. An invalid reference keeps
 * its weight, so exactly its share of requests fails (HTTP 500, gRPC UNAVAILABLE), as the spec asks.
 */
export interface WeightedBackend {
  readonly namespace: string;
  readonly name: string;
  /** The Service port number (not the target port); undefined only when the reference is invalid. */
  readonly port: number | undefined;
  /** 0..1000000; 0 never receives traffic. */
  readonly weight: number;
  /** Set when requests picked for this backend must fail instead of being forwarded. */
  readonly problem: BackendProblem | undefined;
}

/** Timeouts in milliseconds. undefined: not configured (the proxy's default); 0: disabled. */
export interface RouteTimeouts {
  readonly requestMs: number | undefined;
  readonly backendRequestMs: number | undefined;
}

/**
 * `rules[].retry` of an HTTPRoute (GEP-1731): when to retry a request that failed, and how often.
 * Read by the proxy's upstream layer; the Service's retry budget (trafficPolicyFor) bounds it.
 */
export interface RouteRetry {
  /** HTTP status codes (400-599) whose response is retried, ascending, no repeats; empty: none by code. */
  readonly codes: readonly number[];
  /** The most retries of one request (not counting the first attempt); undefined: the proxy's default. */
  readonly attempts: number | undefined;
  /** The least wait before a retry, in ms; undefined: the proxy's default. */
  readonly backoffMs: number | undefined;
}

export interface HeaderValue {
  /** Lower-case header name. */
  readonly name: string;
  readonly value: string;
}

/** A RequestHeaderModifier or ResponseHeaderModifier filter; at most one action per header name. */
export interface HeaderModifier {
  /** Replace the header (every field of that name) with this value. */
  readonly set: readonly HeaderValue[];
  /** Append this value to the header (comma-joined with what is there). */
  readonly add: readonly HeaderValue[];
  /** Lower-case names of headers to drop. */
  readonly remove: readonly string[];
}

/**
 * The `path` of a RequestRedirect or URLRewrite filter. `value` is a clean absolute path (no dot
 * segments, no `//`); for ReplacePrefixMatch it is held without its trailing `/` ('' for `/`).
 */
export type PathModifier = { readonly type: 'ReplaceFullPath'; readonly value: string } | { readonly type: 'ReplacePrefixMatch'; readonly value: string };

/** A RequestRedirect filter (HTTPRoute): the sidecar answers with a redirect instead of forwarding. */
export interface RequestRedirect {
  /** undefined: the request's own scheme. */
  readonly scheme: 'http' | 'https' | undefined;
  /** undefined: the request's own host. */
  readonly hostname: string | undefined;
  /** undefined: derived from the scheme (80/443), or the Service port when no scheme is set. */
  readonly port: number | undefined;
  /** undefined: the request's own (normalised) path. */
  readonly path: PathModifier | undefined;
  /** 301, 302 (standard channel), 303, 307 or 308 (experimental channel). */
  readonly statusCode: number;
}

/** A URLRewrite filter (HTTPRoute): what the backend receives instead of the request's host and path. */
export interface UrlRewrite {
  readonly hostname: string | undefined;
  readonly path: PathModifier | undefined;
}

/** A RequestMirror filter: a copy of each sampled request goes to this Service port, its answer ignored. */
export interface RequestMirror {
  readonly namespace: string;
  readonly name: string;
  /** The Service port number; undefined only when the reference is invalid. */
  readonly port: number | undefined;
  /** Set when the reference cannot be resolved: no copy is sent (the primary request is unaffected). */
  readonly problem: BackendProblem | undefined;
  /** The share of requests copied, numerator/denominator (`percent` p is p/100); 1/1 when absent. */
  readonly numerator: number;
  readonly denominator: number;
}

/** What to do with a request that matched: one rule of one route, prebuilt at compile time. */
export interface RouteDecision {
  readonly route: RouteRef;
  readonly ruleIndex: number;
  /** `rules[].name`, when the route names its rules. */
  readonly ruleName: string | undefined;
  /** Which entry of the rule's `matches` matched (0 for a rule without matches). */
  readonly matchIndex: number;
  /**
   * Where to send the request: pick one with pickBackend. None to pick (an empty list, all weights
   * zero) means the rule cannot forward: answer 500 (gRPC: UNAVAILABLE).
   */
  readonly backends: readonly WeightedBackend[];
  readonly timeouts: RouteTimeouts;
  /** `retry`; undefined when the rule has none (the proxy's default retry behaviour applies). */
  readonly retry: RouteRetry | undefined;
  readonly requestHeaderModifier: HeaderModifier | undefined;
  readonly responseHeaderModifier: HeaderModifier | undefined;
  /** A RequestRedirect filter: answer the redirect, forward nothing. */
  readonly redirect?: RequestRedirect | undefined;
  /** A URLRewrite filter: forward with this host and path. */
  readonly urlRewrite?: UrlRewrite | undefined;
  /** RequestMirror filters, in order. */
  readonly mirrors?: readonly RequestMirror[] | undefined;
  /** The matched PathPrefix (without trailing `/`, '' for `/`): what ReplacePrefixMatch replaces. */
  readonly matchedPrefix?: string | undefined;
  /** The rule's `sessionPersistence` (GEP-1619): binds the requests it matches, over the backend Service's own. */
  readonly sessionPersistence?: SessionPersistence | undefined;
}

/** A compiled RE2 pattern (linear-time matching); see compileRegex. */
export interface RouteRegex {
  /** Whether the whole value matches (the pattern is anchored at both ends). */
  testExact(value: string): boolean;
}

/** Matches a value exactly, or against an anchored regular expression. */
export type ValueMatch = { readonly type: 'Exact'; readonly value: string } | { readonly type: 'RegularExpression'; readonly value: string; readonly regex: RouteRegex };

export interface HeaderMatch {
  /**
   * Lower-case header name (header names are case-insensitive). For `host`, an Exact value is
   * held as normalizeHost makes it (lower-case, no port, no trailing dot), as the request's is.
   */
  readonly name: string;
  readonly match: ValueMatch;
}

export interface QueryParamMatch {
  /** Query parameter names are case-sensitive. */
  readonly name: string;
  readonly match: ValueMatch;
}

export type PathMatch =
  | { readonly type: 'Exact'; readonly value: string }
  /** `prefix` is `value` without its trailing `/` ('' for `/`): matched element by element. */
  | { readonly type: 'PathPrefix'; readonly value: string; readonly prefix: string }
  | { readonly type: 'RegularExpression'; readonly value: string; readonly regex: RouteRegex };

/** One entry of an HTTPRoute rule's `matches`: every condition must hold. */
export interface HttpMatch {
  readonly path: PathMatch;
  readonly method: string | undefined;
  readonly headers: readonly HeaderMatch[];
  readonly queryParams: readonly QueryParamMatch[];
}

/** One entry of a GRPCRoute rule's `matches`: undefined service or method matches any. */
export interface GrpcMatch {
  readonly service: ValueMatch | undefined;
  readonly method: ValueMatch | undefined;
  readonly headers: readonly HeaderMatch[];
}

/** One match of one rule, in precedence order within its RouteSet; the first that holds wins. */
export type RouteEntry =
  | { readonly kind: 'HTTPRoute'; readonly match: HttpMatch; readonly decision: RouteDecision }
  | { readonly kind: 'GRPCRoute'; readonly match: GrpcMatch; readonly decision: RouteDecision };

/** The routes of one kind that apply together to some clients of one Service port, merged. */
export interface RouteSet {
  readonly kind: RouteKind;
  /** The routes merged here, oldest first (then by namespace/name). */
  readonly routes: readonly RouteRef[];
  /** Every match of every rule, highest precedence first. */
  readonly entries: readonly RouteEntry[];
}

/**
 * The routes attached to one Service port. A request reaches it when its original destination is
 * that Service port; which RouteSet applies depends on the client's namespace (routeSetFor).
 */
export interface RouteTable {
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
  /** The Service port's name ('' when unnamed). */
  readonly portName: string;
  /** Producer routes (in the Service's namespace): for every client without consumer routes. */
  readonly producer: RouteSet | undefined;
  /** Consumer routes (in another namespace), by that namespace: only for clients in it. */
  readonly consumers: ReadonlyMap<string, RouteSet>;
}

/** A problem found while compiling: the route it concerns and a message naming the field. */
export interface RouteWarning {
  readonly route: RouteRef;
  /** e.g. `HTTPRoute demo/canary: rule 0 filter RequestMirror is not supported (rule dropped)`. */
  readonly message: string;
}

export type RouteConditionType = 'Accepted' | 'ResolvedRefs' | 'PartiallyInvalid';

/** A Gateway API route condition, as the control plane would write it into `status.parents[].conditions`. */
export interface RouteCondition {
  readonly type: RouteConditionType;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

/** A Service a route attached to, as its parentRef named it. */
export interface ServiceParentRef {
  readonly namespace: string;
  readonly name: string;
  readonly port: number | undefined;
  readonly sectionName: string | undefined;
}

export interface RouteParentStatus {
  readonly parentRef: ServiceParentRef;
  readonly conditions: readonly RouteCondition[];
}

/** The status of one route for each Service parent that exists (unresolvable parents are left out, as the spec says). */
export interface RouteStatus {
  readonly route: RouteRef;
  readonly parents: readonly RouteParentStatus[];
}

/** Everything compiled from one snapshot. */
export interface CompiledRoutes {
  /** The version of the snapshot compiled. */
  readonly version: string;
  readonly tables: readonly RouteTable[];
  readonly warnings: readonly RouteWarning[];
  readonly statuses: readonly RouteStatus[];
  /** The routes attached to a Service port (by number), or undefined when none are: route as without routes. */
  table(namespace: string, name: string, port: number): RouteTable | undefined;
}

/**
 * What HTTP matching reads from a request. The proxy builds it with requestView, so the path is
 * normalised and `host` is the normalised `:authority`; matching itself takes the values as given.
 */
export interface HttpRequestInfo {
  readonly method: string;
  /** The path without the query string (normalised: see requestView). */
  readonly path: string;
  /** The parsed query string (a URLSearchParams fits); only the first value of a repeated parameter counts. */
  readonly query?: { get(name: string): string | null } | undefined;
  /** A header's value by lower-case name; repeated headers joined with ', ' by the caller. */
  readonly headers: (name: string) => string | undefined;
  /** The calling workload's namespace, which selects consumer routes. */
  readonly clientNamespace?: string | undefined;
}

/** What gRPC matching reads from a request (`/service/method` already split). */
export interface GrpcRequestInfo {
  readonly service: string;
  readonly method: string;
  readonly headers: (name: string) => string | undefined;
  readonly clientNamespace?: string | undefined;
}
