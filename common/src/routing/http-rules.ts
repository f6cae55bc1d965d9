// Reads one HTTPRoute rule: its matches (path, method, headers, query parameters), filters,
// backendRefs and timeouts, validated as the Gateway API's HTTPRoute v1 schema does.
import { describeValue, isMissing } from '../mesh/fields.js';
import { parseGatewayDuration } from './duration.js';
import { pathProblem } from './filter-fields.js';
import { compileRegex } from './regex.js';
import type { RuleProblems } from './report.js';
import { ruleSessionPersistence } from './session.js';
import {
  backendRefs,
  headerMatches,
  listField,
  matchList,
  recordField,
  reportUnknownFields,
  ruleFilters,
  stringField,
  typeField,
  valueMatch,
  NO_TIMEOUTS,
  type ParsedRule,
  type ServiceLookup,
} from './rule-fields.js';
import type { HttpMatch, PathMatch, QueryParamMatch, RouteRetry, RouteTimeouts } from './types.js';

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const MAX_PATH = 1024;
const MAX_QUERY_VALUE = 1024;
const QUERY_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$/;

/** A rule without matches matches every request, as `PathPrefix /` does. */
export const MATCH_EVERYTHING: HttpMatch = Object.freeze({
  path: Object.freeze({ type: 'PathPrefix', value: '/', prefix: '' }),
  method: undefined,
  headers: Object.freeze([]),
  queryParams: Object.freeze([]),
});

const RULE_FIELDS = ['name', 'matches', 'filters', 'backendRefs', 'timeouts', 'retry', 'sessionPersistence'];

/** Reads `spec.rules[index]`; undefined when the rule must be dropped (problems say why). */
export function parseHttpRule(raw: unknown, routeNamespace: string, services: ServiceLookup, problems: RuleProblems): ParsedRule<HttpMatch> | undefined {
  const rule = recordField(raw, 'rule', problems);
  if (rule === undefined) return undefined;
  reportUnknownFields(rule, RULE_FIELDS, '', problems);
  const session = isMissing(rule['sessionPersistence']) ? undefined : ruleSessionPersistence(rule['sessionPersistence'], problems);
  const name = isMissing(rule['name']) ? undefined : stringField(rule['name'], 'name', problems, 253);
  const matches = httpMatches(rule['matches'], problems);
  const filters = ruleFilters(rule['filters'], 'filters', 'HTTPRoute', problems, { routeNamespace, services });
  const backends = backendRefs(rule['backendRefs'], routeNamespace, 'HTTPRoute', services, problems);
  const timeouts = isMissing(rule['timeouts']) ? NO_TIMEOUTS : httpTimeouts(rule['timeouts'], problems);
  const retry = isMissing(rule['retry']) ? undefined : httpRetry(rule['retry'], problems);
  if (matches !== undefined && filters?.prefixReplacedAt !== undefined) {
    // ReplacePrefixMatch replaces what a PathPrefix match matched: no other match type has a prefix to replace.
    const other = matches.findIndex((m) => m.path.type !== 'PathPrefix');
    if (other >= 0) problems.drop(`${filters.prefixReplacedAt}.type ReplacePrefixMatch needs PathPrefix matches, but matches[${other}].path.type is ${matches[other]!.path.type}`);
  }
  if (matches === undefined || filters === undefined || backends === undefined || timeouts === undefined || retry === null || session === null || problems.drops.length > 0) {
    return undefined;
  }
  return {
    index: problems.index,
    name,
    matches,
    backends,
    timeouts,
    retry,
    requestHeaderModifier: filters.request,
    responseHeaderModifier: filters.response,
    redirect: filters.redirect,
    urlRewrite: filters.rewrite,
    mirrors: filters.mirrors,
    sessionPersistence: session,
  };
}

function httpMatches(value: unknown, problems: RuleProblems): HttpMatch[] | undefined {
  return matchList(value, problems, MATCH_EVERYTHING, httpMatch);
}

function httpMatch(value: unknown, path: string, problems: RuleProblems): HttpMatch | undefined {
  const match = recordField(value, path, problems);
  if (match === undefined) return undefined;
  reportUnknownFields(match, ['path', 'headers', 'queryParams', 'method'], path, problems);
  const pathMatch = isMissing(match['path']) ? MATCH_EVERYTHING.path : httpPath(match['path'], `${path}.path`, problems);
  const method = isMissing(match['method']) ? undefined : typeField(match['method'], `${path}.method`, METHODS, 'GET', problems);
  const headers = headerMatches(match['headers'], `${path}.headers`, problems);
  const queryParams = queryParamMatches(match['queryParams'], `${path}.queryParams`, problems);
  if (pathMatch === undefined || (method === undefined && !isMissing(match['method'])) || headers === undefined || queryParams === undefined) return undefined;
  return Object.freeze({ path: pathMatch, method, headers: Object.freeze(headers), queryParams: Object.freeze(queryParams) });
}

function httpPath(value: unknown, path: string, problems: RuleProblems): PathMatch | undefined {
  const raw = recordField(value, path, problems);
  if (raw === undefined) return undefined;
  reportUnknownFields(raw, ['type', 'value'], path, problems);
  const type = typeField(raw['type'], `${path}.type`, ['Exact', 'PathPrefix', 'RegularExpression'] as const, 'PathPrefix', problems);
  const text = isMissing(raw['value']) ? '/' : stringField(raw['value'], `${path}.value`, problems, MAX_PATH);
  if (type === undefined || text === undefined) return undefined;
  if (type === 'RegularExpression') {
    const compiled = compileRegex(text);
    if (!compiled.ok) return problems.drop(`${path}.value ${describeValue(text)} ${compiled.reason}`);
    return Object.freeze({ type, value: text, regex: compiled.regex });
  }
  const invalid = pathProblem(text);
  if (invalid !== undefined) return problems.drop(`${path}.value ${describeValue(text)} ${invalid}`);
  if (type === 'Exact') return Object.freeze({ type, value: text });
  // A trailing `/` is ignored: `/abc/` matches what `/abc` matches.
  return Object.freeze({ type, value: text, prefix: text.endsWith('/') ? text.slice(0, -1) : text });
}

/** `matches[].queryParams`: names match exactly (case-sensitive); a repeated name counts once (the first). */
function queryParamMatches(value: unknown, path: string, problems: RuleProblems): QueryParamMatch[] | undefined {
  const items = listField(value, path, problems);
  if (items === undefined) return undefined;
  const matches: QueryParamMatch[] = [];
  let valid = true;
  items.forEach((item, i) => {
    const at = `${path}[${i}]`;
    const param = recordField(item, at, problems);
    if (param === undefined) return void (valid = false);
    reportUnknownFields(param, ['type', 'name', 'value'], at, problems);
    const rawName = param['name'];
    const name = typeof rawName === 'string' && QUERY_NAME.test(rawName) ? rawName : problems.drop(`${at}.name must be a query parameter name, got ${describeValue(rawName)}`);
    const type = typeField(param['type'], `${at}.type`, ['Exact', 'RegularExpression'] as const, 'Exact', problems);
    const text = stringField(param['value'], `${at}.value`, problems, MAX_QUERY_VALUE);
    if (name === undefined || type === undefined || text === undefined) return void (valid = false);
    const match = valueMatch(type, text, `${at}.value`, problems);
    if (match === undefined) return void (valid = false);
    if (matches.some((m) => m.name === name)) problems.ignore(`${at} repeats query parameter ${describeValue(name)}; only the first counts`);
    else matches.push(Object.freeze({ name, match }));
  });
  return valid ? matches : undefined;
}

/** `timeouts.request` and `timeouts.backendRequest`: GEP-2257 durations, backendRequest no longer than request. */
function httpTimeouts(value: unknown, problems: RuleProblems): RouteTimeouts | undefined {
  const raw = recordField(value, 'timeouts', problems);
  if (raw === undefined) return undefined;
  reportUnknownFields(raw, ['request', 'backendRequest'], 'timeouts', problems);
  const duration = (field: 'request' | 'backendRequest'): number | undefined | null => {
    const text = raw[field];
    if (isMissing(text)) return undefined;
    const ms = typeof text === 'string' ? parseGatewayDuration(text) : undefined;
    if (ms !== undefined) return ms;
    problems.drop(`timeouts.${field} ${describeValue(text)} is not a Gateway API duration (1 to 4 of a 1-5 digit number and h, m, s or ms, e.g. "10s", "1m30s", "500ms")`);
    return null;
  };
  const requestMs = duration('request');
  const backendRequestMs = duration('backendRequest');
  if (requestMs === null || backendRequestMs === null) return undefined;
  if (requestMs !== undefined && requestMs !== 0 && backendRequestMs !== undefined && backendRequestMs > requestMs) {
    return problems.drop(`timeouts.backendRequest ${describeValue(raw['backendRequest'])} must not be longer than timeouts.request ${describeValue(raw['request'])}`);
  }
  return Object.freeze({ requestMs, backendRequestMs });
}

/** The most retries of one request a rule may ask for: far beyond any sensible value, short of a retry storm by one rule. */
export const MAX_RETRY_ATTEMPTS = 100;

/**
 * `retry` (GEP-1731): `codes` HTTP statuses from 400 to 599, `attempts` a count of retries,
 * `backoff` a GEP-2257 duration. null when it is invalid: the rule is dropped, as for timeouts.
 */
function httpRetry(value: unknown, problems: RuleProblems): RouteRetry | null {
  const raw = recordField(value, 'retry', problems);
  if (raw === undefined) return null;
  reportUnknownFields(raw, ['codes', 'attempts', 'backoff'], 'retry', problems);
  let valid = true;
  const codes = new Set<number>();
  const list = listField(raw['codes'], 'retry.codes', problems);
  if (list === undefined) valid = false;
  (list ?? []).forEach((code, i) => {
    if (typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599) codes.add(code);
    else {
      valid = false;
      problems.drop(`retry.codes[${i}] must be an HTTP status code from 400 to 599, got ${describeValue(code)}`);
    }
  });
  const rawAttempts = raw['attempts'];
  let attempts: number | undefined;
  if (!isMissing(rawAttempts)) {
    if (typeof rawAttempts === 'number' && Number.isInteger(rawAttempts) && rawAttempts >= 0 && rawAttempts <= MAX_RETRY_ATTEMPTS) attempts = rawAttempts;
    else {
      valid = false;
      problems.drop(`retry.attempts must be an integer from 0 to ${MAX_RETRY_ATTEMPTS}, got ${describeValue(rawAttempts)}`);
    }
  }
  const rawBackoff = raw['backoff'];
  let backoffMs: number | undefined;
  if (!isMissing(rawBackoff)) {
    backoffMs = typeof rawBackoff === 'string' ? parseGatewayDuration(rawBackoff) : undefined;
    if (backoffMs === undefined) {
      valid = false;
      problems.drop(`retry.backoff ${describeValue(rawBackoff)} is not a Gateway API duration (1 to 4 of a 1-5 digit number and h, m, s or ms, e.g. "100ms", "1s")`);
    }
  }
  if (!valid) return null;
  return Object.freeze({ codes: Object.freeze([...codes].sort((a, b) => a - b)), attempts, backoffMs });
}
