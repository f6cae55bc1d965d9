// A route rule's `sessionPersistence` (Gateway API GEP-1619, HTTPRoute rules): the same settings as a
// BackendTrafficPolicy's, for the requests the rule matches. The name becomes a cookie or header
// name on the wire, so it must be an RFC 9110 token.
import { describeValue, isMissing } from '../mesh/fields.js';
import type { SessionPersistence } from '../mesh/traffic-policy.js';
import { parseGatewayDuration } from './duration.js';
import type { RuleProblems } from './report.js';
import { recordField, reportUnknownFields, typeField } from './rule-fields.js';

/** RFC 9110 section 5.6.2 token; Gateway API caps sessionName at 128 characters. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/;

/** Reads `sessionPersistence`; null when it is invalid (the rule is dropped, problems say why). */
export function ruleSessionPersistence(value: unknown, problems: RuleProblems): SessionPersistence | null {
  const raw = recordField(value, 'sessionPersistence', problems);
  if (raw === undefined) return null;
  reportUnknownFields(raw, ['sessionName', 'absoluteTimeout', 'idleTimeout', 'type', 'cookieConfig'], 'sessionPersistence', problems);
  let valid = true;
  const name = raw['sessionName'];
  if (!isMissing(name) && (typeof name !== 'string' || !TOKEN.test(name))) {
    valid = false;
    problems.drop(`sessionPersistence.sessionName must be a cookie or header name (an RFC 9110 token of 1 to 128 characters), got ${describeValue(name)}`);
  }
  const duration = (field: 'absoluteTimeout' | 'idleTimeout'): number | undefined => {
    const text = raw[field];
    if (isMissing(text)) return undefined;
    const ms = typeof text === 'string' ? parseGatewayDuration(text) : undefined;
    if (ms === undefined || ms === 0) {
      valid = false;
      problems.drop(`sessionPersistence.${field} ${describeValue(text)} is not a Gateway API duration longer than 0s (e.g. "1h", "30m")`);
    }
    return ms;
  };
  const absoluteTimeoutMs = duration('absoluteTimeout');
  const idleTimeoutMs = duration('idleTimeout');
  const type = typeField(raw['type'], 'sessionPersistence.type', ['Cookie', 'Header'] as const, 'Cookie', problems);
  let cookieLifetimeType: SessionPersistence['cookieLifetimeType'];
  if (!isMissing(raw['cookieConfig'])) {
    const cookie = recordField(raw['cookieConfig'], 'sessionPersistence.cookieConfig', problems);
    if (cookie === undefined) valid = false;
    else {
      reportUnknownFields(cookie, ['lifetimeType'], 'sessionPersistence.cookieConfig', problems);
      const lifetime = isMissing(cookie['lifetimeType']) ? undefined : typeField(cookie['lifetimeType'], 'sessionPersistence.cookieConfig.lifetimeType', ['Permanent', 'Session'] as const, 'Permanent', problems);
      if (!isMissing(cookie['lifetimeType']) && lifetime === undefined) valid = false;
      cookieLifetimeType = lifetime;
    }
  }
  if (!valid || type === undefined) return null;
  if (idleTimeoutMs !== undefined) problems.ignore('sessionPersistence.idleTimeout is not enforced by tsmesh: a session ends with absoluteTimeout or the client');
  return Object.freeze({ sessionName: typeof name === 'string' ? name : undefined, absoluteTimeoutMs, idleTimeoutMs, type, cookieLifetimeType });
}
