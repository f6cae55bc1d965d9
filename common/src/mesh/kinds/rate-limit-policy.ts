// HTTPLocalRateLimitPolicy (policy.tsmesh.io/v1): how many HTTP requests per second the sidecar of
// the selected workloads admits, in all (`total`), per calling identity (`identity`) and for named
// callers (`overrides`), in the spirit of Linkerd's. Enforcement (token buckets) is the proxy's.
import type { FieldChecker } from '../fields.js';
import { describeValue } from '../fields.js';
import type { KindDefinition } from './kind.js';

export const RATE_LIMIT_API_VERSION = 'policy.tsmesh.io/v1';
/** The largest `requestsPerSecond` accepted: past it a local limit means nothing a sidecar can serve. */
export const MAX_REQUESTS_PER_SECOND = 1_000_000;

/** A caller an override names; only ServiceAccounts (an identity is a ServiceAccount's SPIFFE ID). */
export interface RateLimitClientRef {
  readonly kind: 'ServiceAccount';
  readonly name: string;
  /** Defaulted to the policy's namespace. */
  readonly namespace: string;
}

export interface RateLimitOverride {
  readonly requestsPerSecond: number;
  /** The callers that share this override's one bucket instead of their per-identity ones. */
  readonly clientRefs: readonly RateLimitClientRef[];
}

/** `spec.route`: limit only the requests one route (of the policy's namespace), or one named rule of it, routes. */
export interface RateLimitRoute {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly name: string;
  /** `rules[].name`; undefined: every rule of the route. */
  readonly ruleName: string | undefined;
}

export interface MeshHTTPLocalRateLimitPolicy {
  readonly namespace: string;
  readonly name: string;
  /** `spec.selector.matchLabels`; undefined or empty: every workload of the policy's namespace. */
  readonly selector: Readonly<Record<string, string>> | undefined;
  /** `spec.port`: the workload port it limits; undefined: every port. */
  readonly port: number | undefined;
  /** `spec.route`: only requests that route (matched inbound as the caller's sidecar matches it); undefined: every request. */
  readonly route: RateLimitRoute | undefined;
  /** `spec.total.requestsPerSecond`: one bucket for every caller together. */
  readonly total: number | undefined;
  /** `spec.identity.requestsPerSecond`: one bucket per calling identity (mTLS callers only). */
  readonly identity: number | undefined;
  readonly overrides: readonly RateLimitOverride[];
}

export const httpLocalRateLimitPolicyKind: KindDefinition<MeshHTTPLocalRateLimitPolicy> = {
  apiVersion: RATE_LIMIT_API_VERSION,
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec', true) ?? {};
    check.knownFields(spec, 'spec', ['selector', 'port', 'route', 'total', 'identity', 'overrides']);
    const selector = check.object(spec['selector'], 'spec.selector');
    if (selector !== undefined) check.knownFields(selector, 'spec.selector', ['matchLabels']);
    const matchLabels = selector === undefined ? undefined : check.stringMap(selector['matchLabels'], 'spec.selector.matchLabels');
    const total = limitOf(check, spec['total'], 'spec.total');
    const identity = limitOf(check, spec['identity'], 'spec.identity');
    const overrides = (check.array(spec['overrides'], 'spec.overrides') ?? []).map((item, i) => overrideOf(check, item, `spec.overrides[${i}]`, meta.namespace));
    if (spec['total'] === undefined && spec['identity'] === undefined && overrides.length === 0) {
      check.fail('spec', 'must set at least one of total, identity or overrides (a policy without a limit limits nothing)');
    }
    const seen = new Map<string, string>();
    overrides.forEach((override, i) =>
      override.clientRefs.forEach((ref, j) => {
        const key = `${ref.namespace}/${ref.name}`;
        const first = seen.get(key);
        if (first !== undefined) check.fail(`spec.overrides[${i}].clientRefs[${j}]`, `ServiceAccount ${key} is already named by ${first}: a caller belongs to one override`);
        else seen.set(key, `spec.overrides[${i}].clientRefs[${j}]`);
      }),
    );
    return Object.freeze({
      namespace: meta.namespace,
      name: meta.name,
      selector: matchLabels === undefined || Object.keys(matchLabels).length === 0 ? undefined : Object.freeze(matchLabels),
      port: check.port(spec['port'], 'spec.port'),
      route: routeOf(check, spec['route']),
      total,
      identity,
      overrides: Object.freeze(overrides),
    });
  },
};

const SECTION_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function routeOf(check: FieldChecker, value: unknown): RateLimitRoute | undefined {
  const route = check.object(value, 'spec.route');
  if (route === undefined) return undefined;
  check.knownFields(route, 'spec.route', ['kind', 'name', 'ruleName']);
  const kind = check.oneOf(route['kind'], 'spec.route.kind', ['HTTPRoute', 'GRPCRoute'] as const) ?? 'HTTPRoute';
  const name = check.dnsSubdomain(route['name'], 'spec.route.name', true) ?? '';
  const ruleName = check.string(route['ruleName'], 'spec.route.ruleName');
  if (ruleName !== undefined && (ruleName.length > 253 || !SECTION_NAME.test(ruleName))) {
    check.fail('spec.route.ruleName', `must be a rule name (lower-case letters, digits and '-', at most 253), got ${describeValue(ruleName)}`);
  }
  return Object.freeze({ kind, name, ruleName });
}

/** `{requestsPerSecond: N}`: an integer from 1 to MAX_REQUESTS_PER_SECOND. */
function limitOf(check: FieldChecker, value: unknown, path: string): number | undefined {
  const limit = check.object(value, path);
  if (limit === undefined) return undefined;
  check.knownFields(limit, path, ['requestsPerSecond']);
  return check.integer(limit['requestsPerSecond'], `${path}.requestsPerSecond`, 1, MAX_REQUESTS_PER_SECOND, true);
}

function overrideOf(check: FieldChecker, value: unknown, path: string, namespace: string): RateLimitOverride {
  const override = check.object(value, path, true) ?? {};
  check.knownFields(override, path, ['requestsPerSecond', 'clientRefs']);
  const requestsPerSecond = check.integer(override['requestsPerSecond'], `${path}.requestsPerSecond`, 1, MAX_REQUESTS_PER_SECOND, true) ?? 1;
  const refs = check.array(override['clientRefs'], `${path}.clientRefs`, true) ?? [];
  if (Array.isArray(override['clientRefs']) && refs.length === 0) check.fail(`${path}.clientRefs`, 'must name at least one ServiceAccount');
  const clientRefs = refs.map((item, i) => {
    const at = `${path}.clientRefs[${i}]`;
    const ref = check.object(item, at, true) ?? {};
    check.knownFields(ref, at, ['kind', 'name', 'namespace']);
    const kind = check.string(ref['kind'], `${at}.kind`, true);
    if (kind !== undefined && kind !== 'ServiceAccount') {
      check.fail(`${at}.kind`, `must be ServiceAccount (a caller's identity is its ServiceAccount), got ${describeValue(kind)}`);
    }
    const name = check.dnsSubdomain(ref['name'], `${at}.name`, true) ?? '';
    const ns = check.dnsLabel(ref['namespace'], `${at}.namespace`) ?? namespace;
    return Object.freeze({ kind: 'ServiceAccount' as const, name, namespace: ns });
  });
  return Object.freeze({ requestsPerSecond, clientRefs: Object.freeze(clientRefs) });
}
