// XBackendTrafficPolicy (gateway.networking.x-k8s.io/v1alpha1, Gateway API's experimental channel):
// `retryConstraint` (a retry budget) and `sessionPersistence` for the Services it targets. The
// budget is applied through trafficPolicyFor (where it wins over a TrafficPolicy's retryBudget);
// session persistence is enforced by the sidecar for HTTP (proxy/src/balance/session.ts), but for
// the options reported in `unsupported`.
import type { FieldChecker } from '../fields.js';
import { creationTime, type MeshBackendTrafficPolicy, type RetryBudgetSettings, type SessionPersistence } from '../traffic-policy.js';
import type { KindDefinition } from './kind.js';
import { serviceTargetRefs } from './traffic-policy.js';

export const BACKEND_TRAFFIC_POLICY_API_VERSION = 'gateway.networking.x-k8s.io/v1alpha1';
const MAX_INT32 = 2_147_483_647;

export const backendTrafficPolicyKind: KindDefinition<MeshBackendTrafficPolicy> = {
  apiVersion: BACKEND_TRAFFIC_POLICY_API_VERSION,
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec', true) ?? {};
    check.knownFields(spec, 'spec', ['targetRefs', 'retryConstraint', 'sessionPersistence']);
    const unsupported: string[] = [];
    const targetRefs = serviceTargetRefs(check, spec['targetRefs'], false, unsupported);
    const sessionPersistence = session(check, spec['sessionPersistence']);
    if (sessionPersistence !== undefined) unsupported.push(...unenforcedSession(sessionPersistence));
    // Also as warnings, which the control plane logs and posts as Events on the object.
    for (const detail of unsupported) check.warn('', detail);
    return Object.freeze({
      namespace: meta.namespace,
      name: meta.name,
      createdAt: creationTime(raw),
      targetRefs,
      retryConstraint: retryConstraint(check, spec['retryConstraint']),
      sessionPersistence,
      unsupported: Object.freeze(unsupported),
    });
  },
};

/** `retryConstraint: {budget: {percent, interval}, minRetryRate: {count, interval}}`, mapped onto RetryBudgetSettings. */
function retryConstraint(check: FieldChecker, value: unknown): Partial<RetryBudgetSettings> | undefined {
  const path = 'spec.retryConstraint';
  const section = check.object(value, path);
  if (section === undefined) return undefined;
  check.knownFields(section, path, ['budget', 'minRetryRate']);
  const settings: { -readonly [K in keyof RetryBudgetSettings]?: number } = {};
  const budget = check.object(section['budget'], `${path}.budget`);
  if (budget !== undefined) {
    check.knownFields(budget, `${path}.budget`, ['percent', 'interval']);
    const percent = check.integer(budget['percent'], `${path}.budget.percent`, 0, 100);
    if (percent !== undefined) settings.percent = percent;
    const interval = check.duration(budget['interval'], `${path}.budget.interval`);
    if (interval !== undefined) settings.intervalMs = interval;
  }
  const rate = check.object(section['minRetryRate'], `${path}.minRetryRate`);
  if (rate !== undefined) {
    check.knownFields(rate, `${path}.minRetryRate`, ['count', 'interval']);
    const count = check.integer(rate['count'], `${path}.minRetryRate.count`, 0, MAX_INT32);
    if (count !== undefined) settings.minRetryCount = count;
    const interval = check.duration(rate['interval'], `${path}.minRetryRate.interval`);
    if (interval !== undefined) settings.minRetryIntervalMs = interval;
  }
  return Object.freeze(settings);
}

/** The options of a sessionPersistence the sidecar does not apply, one sentence each. */
function unenforcedSession(session: SessionPersistence): string[] {
  const out: string[] = [];
  if (session.idleTimeoutMs !== undefined) out.push('spec.sessionPersistence.idleTimeout is not enforced by tsmesh: a session ends with absoluteTimeout or the client');
  if (session.type === 'Cookie' && session.cookieLifetimeType === 'Session' && session.absoluteTimeoutMs !== undefined) {
    out.push('spec.sessionPersistence.absoluteTimeout is not enforced with cookieConfig.lifetimeType Session: a session cookie carries no lifetime');
  }
  return out;
}

function session(check: FieldChecker, value: unknown): SessionPersistence | undefined {
  const path = 'spec.sessionPersistence';
  const section = check.object(value, path);
  if (section === undefined) return undefined;
  check.knownFields(section, path, ['sessionName', 'absoluteTimeout', 'idleTimeout', 'type', 'cookieConfig']);
  const cookie = check.object(section['cookieConfig'], `${path}.cookieConfig`);
  if (cookie !== undefined) check.knownFields(cookie, `${path}.cookieConfig`, ['lifetimeType']);
  return Object.freeze({
    sessionName: check.string(section['sessionName'], `${path}.sessionName`),
    absoluteTimeoutMs: check.duration(section['absoluteTimeout'], `${path}.absoluteTimeout`),
    idleTimeoutMs: check.duration(section['idleTimeout'], `${path}.idleTimeout`),
    type: check.oneOf(section['type'], `${path}.type`, ['Cookie', 'Header'] as const) ?? 'Cookie',
    cookieLifetimeType: cookie === undefined ? undefined : check.oneOf(cookie['lifetimeType'], `${path}.cookieConfig.lifetimeType`, ['Permanent', 'Session'] as const),
  });
}
