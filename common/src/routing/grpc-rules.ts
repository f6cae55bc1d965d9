// Reads one GRPCRoute rule: matches on service and method (Exact or RegularExpression) and
// headers, filters and backendRefs, validated as the Gateway API's GRPCRoute v1 schema does.
import { describeValue, isMissing } from '../mesh/fields.js';
import type { RuleProblems } from './report.js';
import {
  backendRefs,
  headerMatches,
  matchList,
  NO_TIMEOUTS,
  recordField,
  reportUnknownFields,
  ruleFilters,
  stringField,
  typeField,
  valueMatch,
  type ParsedRule,
  type ServiceLookup,
} from './rule-fields.js';
import type { GrpcMatch, ValueMatch } from './types.js';

/** Fully-qualified protobuf service names (`pkg.Service`), as the spec allows for Exact. */
const SERVICE_NAME = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const METHOD_NAME = /^[A-Za-z_][A-Za-z_0-9]*$/;
const MAX_NAME = 1024;

/** A rule without matches matches every gRPC request. */
export const MATCH_EVERY_CALL: GrpcMatch = Object.freeze({ service: undefined, method: undefined, headers: Object.freeze([]) });

const RULE_FIELDS = ['name', 'matches', 'filters', 'backendRefs', 'sessionPersistence'];

/** Reads `spec.rules[index]`; undefined when the rule must be dropped (problems say why). */
export function parseGrpcRule(raw: unknown, routeNamespace: string, services: ServiceLookup, problems: RuleProblems): ParsedRule<GrpcMatch> | undefined {
  const rule = recordField(raw, 'rule', problems);
  if (rule === undefined) return undefined;
  reportUnknownFields(rule, [...RULE_FIELDS, 'timeouts', 'retry'], '', problems);
  if (!isMissing(rule['timeouts'])) problems.ignore('timeouts is not a GRPCRoute field (HTTPRoute only)');
  // Gateway API's GRPCRoute has no retry field (GEP-1731 covers HTTPRoute); say so rather than guess a shape.
  if (!isMissing(rule['retry'])) problems.ignore('retry is not a GRPCRoute field (HTTPRoute only, GEP-1731); a TrafficPolicy retry on the backend Service retries gRPC codes');
  if (!isMissing(rule['sessionPersistence'])) problems.ignore('sessionPersistence is not supported');
  const name = isMissing(rule['name']) ? undefined : stringField(rule['name'], 'name', problems, 253);
  const matches = grpcMatches(rule['matches'], problems);
  const filters = ruleFilters(rule['filters'], 'filters', 'GRPCRoute', problems, { routeNamespace, services });
  const backends = backendRefs(rule['backendRefs'], routeNamespace, 'GRPCRoute', services, problems);
  if (matches === undefined || filters === undefined || backends === undefined || problems.drops.length > 0) return undefined;
  return {
    index: problems.index,
    name,
    matches,
    backends,
    timeouts: NO_TIMEOUTS,
    retry: undefined,
    requestHeaderModifier: filters.request,
    responseHeaderModifier: filters.response,
    redirect: undefined,
    urlRewrite: undefined,
    mirrors: filters.mirrors,
  };
}

function grpcMatches(value: unknown, problems: RuleProblems): GrpcMatch[] | undefined {
  return matchList(value, problems, MATCH_EVERY_CALL, grpcMatch);
}

function grpcMatch(value: unknown, path: string, problems: RuleProblems): GrpcMatch | undefined {
  const match = recordField(value, path, problems);
  if (match === undefined) return undefined;
  reportUnknownFields(match, ['method', 'headers'], path, problems);
  const headers = headerMatches(match['headers'], `${path}.headers`, problems);
  let service: ValueMatch | undefined;
  let method: ValueMatch | undefined;
  if (!isMissing(match['method'])) {
    const at = `${path}.method`;
    const raw = recordField(match['method'], at, problems);
    if (raw === undefined) return undefined;
    reportUnknownFields(raw, ['type', 'service', 'method'], at, problems);
    const type = typeField(raw['type'], `${at}.type`, ['Exact', 'RegularExpression'] as const, 'Exact', problems);
    if (type === undefined) return undefined;
    if (isMissing(raw['service']) && isMissing(raw['method'])) return problems.drop(`${at} must name a service, a method or both`);
    const part = (field: 'service' | 'method', pattern: RegExp): ValueMatch | undefined | null => {
      if (isMissing(raw[field])) return undefined;
      const text = stringField(raw[field], `${at}.${field}`, problems, MAX_NAME);
      if (text === undefined) return null;
      if (type === 'Exact' && !pattern.test(text)) {
        problems.drop(`${at}.${field} ${describeValue(text)} is not a valid gRPC ${field} name`);
        return null;
      }
      return valueMatch(type, text, `${at}.${field}`, problems) ?? null;
    };
    const s = part('service', SERVICE_NAME);
    const m = part('method', METHOD_NAME);
    if (s === null || m === null) return undefined;
    service = s;
    method = m;
  }
  if (headers === undefined) return undefined;
  return Object.freeze({ service, method, headers: Object.freeze(headers) });
}
