// TrafficPolicy (policy.tsmesh.io/v1alpha1): the traffic knobs Gateway API has no field for —
// algorithm and consistent hash, connection pool, outlier detection, retry budget, and the default
// retry policy (GRPCRoute has no `retry`; an HTTPRoute's own wins) — attached to
// Services of its namespace by `targetRefs` (Gateway API policy attachment). Merged per Service
// port by effectiveTrafficPolicy (mesh/traffic-policy.ts).
import type { FieldChecker } from '../fields.js';
import { describeValue, isMissing } from '../fields.js';
import { RING_HASH, unknownLoadBalancerWarning } from '../load-balancers.js';
import {
  creationTime,
  GRPC_STATUS_CODES,
  SUCCESS_RATE_DEFAULTS,
  type ServiceRetrySettings,
  type ConnectionPoolSettings,
  type HashSource,
  type MeshTrafficPolicy,
  type OutlierDetectionSettings,
  type PolicyTargetRef,
  type RetryBudgetSettings,
} from '../traffic-policy.js';
import type { KindDefinition } from './kind.js';

export const TRAFFIC_POLICY_API_VERSION = 'policy.tsmesh.io/v1alpha1';
/** Gateway API's limit on targetRefs. */
export const MAX_TARGET_REFS = 16;
const MAX_INT32 = 2_147_483_647;
/** RFC 7230 token, as Gateway API's HeaderName. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$/;

const SPEC_FIELDS = ['targetRefs', 'loadBalancer', 'connectionPool', 'outlierDetection', 'retryBudget', 'retry'];
/** As HTTPRoute's `retry.attempts` (common/src/routing/http-rules.ts MAX_RETRY_ATTEMPTS). */
const MAX_RETRY_ATTEMPTS = 100;
const HASH_SOURCES = ['header', 'cookie', 'queryParameter', 'sourceIP'] as const;

export const trafficPolicyKind: KindDefinition<MeshTrafficPolicy> = {
  apiVersion: TRAFFIC_POLICY_API_VERSION,
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec', true) ?? {};
    check.knownFields(spec, 'spec', SPEC_FIELDS);
    return Object.freeze({
      namespace: meta.namespace,
      name: meta.name,
      createdAt: creationTime(raw),
      targetRefs: serviceTargetRefs(check, spec['targetRefs'], true),
      loadBalancer: loadBalancer(check, spec['loadBalancer']),
      connectionPool: connectionPool(check, spec['connectionPool']),
      outlierDetection: outlierDetection(check, spec['outlierDetection']),
      retryBudget: retryBudget(check, spec['retryBudget']),
      retry: retry(check, spec['retry']),
    });
  },
};

/**
 * `spec.targetRefs`: 1 to 16 Services of the policy's namespace (`group: ""` or absent, `kind: Service`),
 * each the whole Service or, with `sectionName`, one named port of it. With `portsAllowed` false
 * (BackendTrafficPolicy) sectionName is refused. Entries of another kind are refused unless
 * `otherKinds` collects them (a Gateway API policy may name ServiceImports, which tsmesh skips).
 */
export function serviceTargetRefs(check: FieldChecker, value: unknown, portsAllowed: boolean, otherKinds?: string[]): readonly PolicyTargetRef[] {
  const list = check.array(value, 'spec.targetRefs', true);
  if (list === undefined) return Object.freeze([]);
  if (list.length === 0 || list.length > MAX_TARGET_REFS) {
    check.fail('spec.targetRefs', `must list from 1 to ${MAX_TARGET_REFS} targets, got ${list.length}`);
  }
  const refs: PolicyTargetRef[] = [];
  list.forEach((item, i) => {
    const path = `spec.targetRefs[${i}]`;
    const ref = check.object(item, path, true);
    if (ref === undefined) return;
    check.knownFields(ref, path, portsAllowed ? ['group', 'kind', 'name', 'sectionName'] : ['group', 'kind', 'name']);
    // Gateway API requires group; "" (the core group) is what a Service takes, so absent means "".
    const group = isMissing(ref['group']) ? '' : ref['group'];
    const kind = ref['kind'];
    const name = check.string(ref['name'], `${path}.name`, true);
    if (typeof group !== 'string') return void check.fail(`${path}.group`, `must be "" (the core API group of Service), got ${describeValue(group)}`);
    if (typeof kind !== 'string' || kind === '') return void check.fail(`${path}.kind`, `must be "Service", got ${describeValue(kind)}`);
    if (group !== '' || kind !== 'Service') {
      if (otherKinds !== undefined) return void otherKinds.push(`${path} names ${kind} in group ${describeValue(group)}; only Services are supported (target skipped)`);
      if (group !== '') return void check.fail(`${path}.group`, `must be "" (the core API group of Service), got ${describeValue(group)}`);
      return void check.fail(`${path}.kind`, `must be "Service", got ${describeValue(kind)}`);
    }
    const sectionName = portsAllowed ? check.dnsLabel(ref['sectionName'], `${path}.sectionName`) : undefined;
    if (name === undefined || (!isMissing(ref['sectionName']) && sectionName === undefined)) return;
    refs.push(Object.freeze({ name, sectionName }));
  });
  return Object.freeze(refs);
}

function loadBalancer(check: FieldChecker, value: unknown): MeshTrafficPolicy['loadBalancer'] {
  const section = check.object(value, 'spec.loadBalancer');
  if (section === undefined) return undefined;
  check.knownFields(section, 'spec.loadBalancer', ['algorithm', 'hash']);
  const algorithm = check.string(section['algorithm'], 'spec.loadBalancer.algorithm');
  if (algorithm !== undefined) {
    const warning = unknownLoadBalancerWarning(algorithm);
    if (warning !== undefined) check.warn('spec.loadBalancer.algorithm', warning);
  }
  const hash = hashSource(check, section['hash']);
  if (hash !== undefined && algorithm !== undefined && algorithm !== RING_HASH) {
    check.warn('spec.loadBalancer.hash', `takes effect with the ${RING_HASH} algorithm only, not ${describeValue(algorithm)}`);
  }
  return Object.freeze({ algorithm, hash });
}

/** `hash`: exactly one of header, cookie, queryParameter (names) or sourceIP (true). */
function hashSource(check: FieldChecker, value: unknown): HashSource | undefined {
  const path = 'spec.loadBalancer.hash';
  const hash = check.object(value, path);
  if (hash === undefined) return undefined;
  check.knownFields(hash, path, HASH_SOURCES);
  const set = HASH_SOURCES.filter((source) => !isMissing(hash[source]));
  if (set.length !== 1) {
    return check.fail(path, `must set exactly one of ${HASH_SOURCES.join(', ')}, got ${set.length === 0 ? 'none' : set.join(' and ')}`);
  }
  const source = set[0];
  if (source === 'sourceIP') {
    if (hash['sourceIP'] !== true) return check.fail(`${path}.sourceIP`, `must be true (leave it out to hash on something else), got ${describeValue(hash['sourceIP'])}`);
    return Object.freeze({ type: 'sourceIP' });
  }
  if (source === undefined) return undefined;
  const name = check.string(hash[source], `${path}.${source}`);
  if (name === undefined) return undefined;
  if (source === 'header' && !HEADER_NAME.test(name)) return check.fail(`${path}.header`, `must be an HTTP header name, got ${describeValue(name)}`);
  // Header names are case-insensitive; cookie and query parameter names are not.
  return Object.freeze({ type: source, name: source === 'header' ? name.toLowerCase() : name });
}

function connectionPool(check: FieldChecker, value: unknown): Partial<ConnectionPoolSettings> | undefined {
  const path = 'spec.connectionPool';
  const section = check.object(value, path);
  if (section === undefined) return undefined;
  const fields = ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries'] as const;
  check.knownFields(section, path, [...fields, 'idleTimeout']);
  const settings: Partial<Record<(typeof fields)[number] | 'idleTimeoutMs', number>> = {};
  for (const field of fields) {
    const n = check.integer(section[field], `${path}.${field}`, 1, MAX_INT32);
    if (n !== undefined) settings[field] = n;
  }
  const idle = check.duration(section['idleTimeout'], `${path}.idleTimeout`);
  if (idle !== undefined) settings.idleTimeoutMs = idle;
  return Object.freeze(settings);
}

function outlierDetection(check: FieldChecker, value: unknown): Partial<OutlierDetectionSettings> | undefined {
  const path = 'spec.outlierDetection';
  const section = check.object(value, path);
  if (section === undefined) return undefined;
  const successRate = ['successRateMinimumHosts', 'successRateRequestVolume', 'successRateStdevFactor'] as const;
  check.knownFields(section, path, ['consecutive5xxErrors', 'consecutiveGatewayErrors', 'consecutiveConnectFailures', 'interval', 'baseEjectionTime', 'maxEjectionPercent', ...successRate]);
  const settings: { -readonly [K in keyof OutlierDetectionSettings]?: number } = {};
  for (const field of ['consecutive5xxErrors', 'consecutiveGatewayErrors', 'consecutiveConnectFailures'] as const) {
    const n = check.integer(section[field], `${path}.${field}`, 0, MAX_INT32);
    if (n !== undefined) settings[field] = n;
  }
  for (const field of successRate) {
    const n = check.integer(section[field], `${path}.${field}`, 1, MAX_INT32);
    if (n !== undefined) settings[field] = n;
  }
  // Any success-rate field turns it on; the others take Envoy's defaults.
  if (successRate.some((f) => settings[f] !== undefined)) for (const f of successRate) settings[f] ??= SUCCESS_RATE_DEFAULTS[f];
  const interval = check.duration(section['interval'], `${path}.interval`);
  if (interval !== undefined) settings.intervalMs = interval;
  const base = check.duration(section['baseEjectionTime'], `${path}.baseEjectionTime`);
  if (base !== undefined) settings.baseEjectionTimeMs = base;
  const percent = check.integer(section['maxEjectionPercent'], `${path}.maxEjectionPercent`, 0, 100);
  if (percent !== undefined) settings.maxEjectionPercent = percent;
  return Object.freeze(settings);
}

/** `retryBudget` (Linkerd's model): `percent` 0-100, `minRetriesPerSecond`, `interval`. */
function retryBudget(check: FieldChecker, value: unknown): Partial<RetryBudgetSettings> | undefined {
  const path = 'spec.retryBudget';
  const section = check.object(value, path);
  if (section === undefined) return undefined;
  check.knownFields(section, path, ['percent', 'minRetriesPerSecond', 'interval']);
  const settings: { -readonly [K in keyof RetryBudgetSettings]?: number } = {};
  const percent = check.integer(section['percent'], `${path}.percent`, 0, 100);
  if (percent !== undefined) settings.percent = percent;
  const perSecond = check.integer(section['minRetriesPerSecond'], `${path}.minRetriesPerSecond`, 0, MAX_INT32);
  if (perSecond !== undefined) {
    settings.minRetryCount = perSecond;
    settings.minRetryIntervalMs = 1_000;
  }
  const interval = check.duration(section['interval'], `${path}.interval`);
  if (interval !== undefined) settings.intervalMs = interval;
  return Object.freeze(settings);
}

/**
 * `retry`: the Service's default retry policy. `attempts` 0-100 retries, `backoff` a Gateway API
 * duration, `codes` HTTP statuses 400-599, `grpcCodes` gRPC status names (`UNAVAILABLE`).
 */
function retry(check: FieldChecker, value: unknown): ServiceRetrySettings | undefined {
  const path = 'spec.retry';
  const section = check.object(value, path);
  if (section === undefined) return undefined;
  check.knownFields(section, path, ['attempts', 'backoff', 'codes', 'grpcCodes']);
  const attempts = check.integer(section['attempts'], `${path}.attempts`, 0, MAX_RETRY_ATTEMPTS);
  const backoffMs = check.duration(section['backoff'], `${path}.backoff`, false);
  const codes = new Set<number>();
  (check.array(section['codes'], `${path}.codes`) ?? []).forEach((code, i) => {
    if (typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599) codes.add(code);
    else check.fail(`${path}.codes[${i}]`, `must be an HTTP status code from 400 to 599, got ${describeValue(code)}`);
  });
  const grpcCodes = new Set<number>();
  (check.array(section['grpcCodes'], `${path}.grpcCodes`) ?? []).forEach((name, i) => {
    const code = typeof name === 'string' && Object.prototype.hasOwnProperty.call(GRPC_STATUS_CODES, name) ? GRPC_STATUS_CODES[name] : undefined;
    if (code !== undefined) grpcCodes.add(code);
    else check.fail(`${path}.grpcCodes[${i}]`, `must be a gRPC status code name (${Object.keys(GRPC_STATUS_CODES).join(', ')}), got ${describeValue(name)}`);
  });
  const ascending = (a: number, b: number): number => a - b;
  return Object.freeze({
    attempts,
    backoffMs,
    codes: Object.freeze([...codes].sort(ascending)),
    grpcCodes: Object.freeze([...grpcCodes].sort(ascending)),
  });
}
