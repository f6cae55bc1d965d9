// Reads the parts HTTPRoute and GRPCRoute rules share, from raw spec values: header matches,
// filters (header modifiers supported, the rest reported), weighted backendRefs. Every bad value is
// recorded on the rule's RuleProblems with its field path; nothing is dropped without a word.
import { describeValue, isMissing, isRecord } from '../mesh/fields.js';
import type { MeshService } from '../mesh/types.js';
import type { SessionPersistence } from '../mesh/traffic-policy.js';
import { normalizeHost } from './normalize.js';
import { compileRegex } from './regex.js';
import type { RuleProblems } from './report.js';
import { backendRefProblem, isServiceRef, requestMirror, requestRedirect, urlRewrite } from './filter-fields.js';
import type {
  HeaderMatch,
  HeaderModifier,
  HeaderValue,
  RequestMirror,
  RequestRedirect,
  RouteKind,
  RouteRetry,
  RouteTimeouts,
  UrlRewrite,
  ValueMatch,
  WeightedBackend,
} from './types.js';

/** RFC 7230 token characters, as the Gateway API's HeaderName allows (at most 256). */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$/;
const MAX_HEADER_VALUE = 4096;
/** What a header value written on the wire may not hold (RFC 9110 5.5 field-value, as Node checks it). */
const HEADER_VALUE_UNSAFE = /[^\t\x20-\x7e\x80-\xff]/;
const MAX_WEIGHT = 1_000_000;

export type ServiceLookup = (namespace: string, name: string) => MeshService | undefined;

/** A rule as read, before it is attached anywhere. */
export interface ParsedRule<M> {
  readonly index: number;
  readonly name: string | undefined;
  readonly matches: readonly M[];
  readonly backends: readonly WeightedBackend[];
  readonly timeouts: RouteTimeouts;
  readonly retry: RouteRetry | undefined;
  readonly requestHeaderModifier: HeaderModifier | undefined;
  readonly responseHeaderModifier: HeaderModifier | undefined;
  readonly redirect: RequestRedirect | undefined;
  readonly urlRewrite: UrlRewrite | undefined;
  readonly mirrors: readonly RequestMirror[];
  /** HTTPRoute rules' `sessionPersistence` (GEP-1619); undefined: the backend Service's, if any. */
  readonly sessionPersistence?: SessionPersistence | undefined;
}

export const NO_TIMEOUTS: RouteTimeouts = Object.freeze({ requestMs: undefined, backendRequestMs: undefined });

/** A list field: absent is empty; anything but a list drops the rule. */
/**
 * A rule's `matches`: absent or empty means the single match-everything entry; one bad entry makes
 * the whole list undefined (the rule is dropped, with every problem reported).
 */
export function matchList<M>(
  value: unknown,
  problems: RuleProblems,
  everything: M,
  parse: (item: unknown, path: string, problems: RuleProblems) => M | undefined,
): M[] | undefined {
  const items = listField(value, 'matches', problems);
  if (items === undefined) return undefined;
  if (items.length === 0) return [everything];
  const matches = items.map((item, i) => parse(item, `matches[${i}]`, problems));
  return matches.every((m): m is M => m !== undefined) ? matches : undefined;
}

export function listField(value: unknown, path: string, problems: RuleProblems): readonly unknown[] | undefined {
  if (isMissing(value)) return [];
  if (Array.isArray(value)) return value;
  return problems.drop(`${path} must be a list, got ${describeValue(value)}`);
}

export function recordField(value: unknown, path: string, problems: RuleProblems): Record<string, unknown> | undefined {
  if (isRecord(value)) return value;
  return problems.drop(`${path} must be a mapping, got ${describeValue(value)}`);
}

/** Reports the keys of `record` that are not in `known`: they have no effect here. */
export function reportUnknownFields(record: Record<string, unknown>, known: readonly string[], path: string, problems: RuleProblems): void {
  for (const key of Object.keys(record)) {
    if (!known.includes(key)) problems.ignore(`${path === '' ? '' : `${path}.`}${key} is not a field tsmesh knows`);
  }
}

export function stringField(value: unknown, path: string, problems: RuleProblems, maxLength: number): string | undefined {
  if (typeof value === 'string' && value.length > 0 && value.length <= maxLength) return value;
  return problems.drop(`${path} must be a string of 1 to ${maxLength} characters, got ${describeValue(value)}`);
}

/** A `type` field with a default: unknown values make the rule invalid (UnsupportedValue). */
export function typeField<T extends string>(value: unknown, path: string, allowed: readonly T[], fallback: T, problems: RuleProblems): T | undefined {
  if (isMissing(value)) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  return problems.drop(`${path} ${describeValue(value)} is not supported (expected ${allowed.join(' or ')})`);
}

/** An Exact or RegularExpression match on `value`. */
export function valueMatch(type: 'Exact' | 'RegularExpression', value: string, path: string, problems: RuleProblems): ValueMatch | undefined {
  if (type === 'Exact') return Object.freeze({ type, value });
  const compiled = compileRegex(value);
  if (!compiled.ok) return problems.drop(`${path} ${describeValue(value)} ${compiled.reason}`);
  return Object.freeze({ type, value, regex: compiled.regex });
}

/** `matches[].headers`: names are case-insensitive; a repeated name counts once (the first), as the spec says. */
export function headerMatches(value: unknown, path: string, problems: RuleProblems): HeaderMatch[] | undefined {
  const items = listField(value, path, problems);
  if (items === undefined) return undefined;
  const matches: HeaderMatch[] = [];
  let valid = true;
  items.forEach((item, i) => {
    const at = `${path}[${i}]`;
    const header = recordField(item, at, problems);
    if (header === undefined) return void (valid = false);
    reportUnknownFields(header, ['type', 'name', 'value'], at, problems);
    const rawName = header['name'];
    const name = typeof rawName === 'string' && HEADER_NAME.test(rawName) ? rawName.toLowerCase() : problems.drop(`${at}.name must be a header name, got ${describeValue(rawName)}`);
    const type = typeField(header['type'], `${at}.type`, ['Exact', 'RegularExpression'] as const, 'Exact', problems);
    const text = stringField(header['value'], `${at}.value`, problems, MAX_HEADER_VALUE);
    if (name === undefined || type === undefined || text === undefined) return void (valid = false);
    const match = valueMatch(type, name === 'host' && type === 'Exact' ? hostValue(text, `${at}.value`, problems) : text, `${at}.value`, problems);
    if (match === undefined) return void (valid = false);
    if (matches.some((m) => m.name === name)) problems.ignore(`${at} repeats header ${describeValue(name)}; only the first counts`);
    else matches.push(Object.freeze({ name, match }));
  });
  return valid ? matches : undefined;
}

/**
 * An Exact Host value as requests are compared with it (normalizeHost: case, port and trailing dot
 * dropped); a port in it is reported, since it no longer narrows the match.
 */
function hostValue(text: string, path: string, problems: RuleProblems): string {
  const host = normalizeHost(text);
  if (host !== text.toLowerCase().replace(/\.$/, '')) {
    problems.ignore(`${path} ${describeValue(text)} names a port; Host matches compare the host alone, as ${describeValue(host)}`);
  }
  return host;
}

/** Filters one rule carries, as read; a backendRef's filters are all reported. */
export interface RuleFilters {
  readonly request: HeaderModifier | undefined;
  readonly response: HeaderModifier | undefined;
  readonly redirect: RequestRedirect | undefined;
  readonly rewrite: UrlRewrite | undefined;
  readonly mirrors: readonly RequestMirror[];
  /** The field path of the path modifier that is a ReplacePrefixMatch (it needs PathPrefix matches). */
  readonly prefixReplacedAt: string | undefined;
}

/** What reading a rule's RequestMirror needs: where its backendRef's Service is looked up. */
export interface FilterContext {
  readonly routeNamespace: string;
  readonly services: ServiceLookup;
}

const HTTP_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'CORS', 'ExternalAuth', 'ExtensionRef'];
const GRPC_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef'];
/** Filters the spec forbids skipping: when they cannot be applied, requests must get an error. */
const MUST_NOT_SKIP = ['ExtensionRef', 'ExternalAuth'];
/** The supported filters and the field holding each one's settings. */
const FILTER_FIELDS: Readonly<Record<string, string>> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
};

/**
 * `filters` of a rule. Header modifiers, RequestRedirect, URLRewrite (HTTPRoute) and RequestMirror
 * are supported; a filter that must not be skipped (ExtensionRef, ExternalAuth) makes the rule
 * answer 500; any other filter drops the rule, as does a repeated filter (RequestMirror may
 * repeat) or a RequestRedirect beside a URLRewrite. Without `context` (a backendRef's filters)
 * every filter is reported.
 */
export function ruleFilters(value: unknown, path: string, kind: RouteKind, problems: RuleProblems, context?: FilterContext): RuleFilters | undefined {
  const items = listField(value, path, problems);
  if (items === undefined) return undefined;
  const known = kind === 'HTTPRoute' ? HTTP_FILTERS : GRPC_FILTERS;
  let request: HeaderModifier | undefined;
  let response: HeaderModifier | undefined;
  let redirect: RequestRedirect | undefined;
  let rewrite: UrlRewrite | undefined;
  let prefixReplacedAt: string | undefined;
  const mirrors: RequestMirror[] = [];
  const seen = new Set<string>();
  let valid = true;
  items.forEach((item, i) => {
    const at = `${path}[${i}]`;
    const filter = recordField(item, at, problems);
    const type = filter?.['type'];
    if (filter === undefined || typeof type !== 'string' || !known.includes(type)) {
      valid = false;
      if (filter !== undefined) problems.drop(`${at}.type ${describeValue(type)} is not a ${kind} filter`);
      return;
    }
    const where = path === 'filters' ? '' : `${path.slice(0, -'.filters'.length)} `;
    if (MUST_NOT_SKIP.includes(type)) return problems.failClosed(`${where}filter ${type} is not supported`);
    const field = FILTER_FIELDS[type];
    if (field === undefined || context === undefined) {
      valid = false;
      problems.drop(`${where}filter ${type} is not supported`);
      return;
    }
    if (type !== 'RequestMirror' && seen.has(type)) {
      valid = false;
      problems.drop(`${at}: filter ${type} is repeated`);
      return;
    }
    seen.add(type);
    const settings = filter[field];
    const fieldPath = `${at}.${field}`;
    switch (type) {
      case 'RequestHeaderModifier':
      case 'ResponseHeaderModifier': {
        const modifier = headerModifier(settings, fieldPath, problems);
        if (modifier === undefined) valid = false;
        else if (type === 'RequestHeaderModifier') request = modifier;
        else response = modifier;
        return;
      }
      case 'RequestRedirect':
        redirect = requestRedirect(settings, fieldPath, problems);
        if (redirect === undefined) valid = false;
        else if (redirect.path?.type === 'ReplacePrefixMatch') prefixReplacedAt = `${fieldPath}.path`;
        return;
      case 'URLRewrite':
        rewrite = urlRewrite(settings, fieldPath, problems);
        if (rewrite === undefined) valid = false;
        else if (rewrite.path?.type === 'ReplacePrefixMatch') prefixReplacedAt = `${fieldPath}.path`;
        return;
      default: {
        const mirror = requestMirror(settings, fieldPath, context.routeNamespace, context.services, problems);
        if (mirror === undefined) valid = false;
        else mirrors.push(mirror);
      }
    }
  });
  if (seen.has('RequestRedirect') && seen.has('URLRewrite')) {
    valid = false;
    problems.drop(`${path}: a RequestRedirect and a URLRewrite filter cannot be used in one rule`);
  }
  return valid ? { request, response, redirect, rewrite, mirrors: Object.freeze(mirrors), prefixReplacedAt } : undefined;
}

/** `set`, `add` and `remove` of a header modifier; one action per header name, as the spec requires. */
function headerModifier(value: unknown, path: string, problems: RuleProblems): HeaderModifier | undefined {
  const raw = recordField(value, path, problems);
  if (raw === undefined) return undefined;
  reportUnknownFields(raw, ['set', 'add', 'remove'], path, problems);
  const seen = new Set<string>();
  let valid = true;
  const claim = (name: string, at: string): boolean => {
    if (!seen.has(name)) return seen.add(name), true;
    valid = false;
    problems.drop(`${at} names header ${describeValue(name)} a second time (one action per header)`);
    return false;
  };
  const pairs = (field: 'set' | 'add'): HeaderValue[] => {
    const out: HeaderValue[] = [];
    (listField(raw[field], `${path}.${field}`, problems) ?? []).forEach((item, i) => {
      const at = `${path}.${field}[${i}]`;
      const header = recordField(item, at, problems);
      const rawName = header?.['name'];
      const name = typeof rawName === 'string' && HEADER_NAME.test(rawName) ? rawName.toLowerCase() : undefined;
      if (header !== undefined && name === undefined) problems.drop(`${at}.name must be a header name, got ${describeValue(rawName)}`);
      let text = header === undefined ? undefined : stringField(header['value'], `${at}.value`, problems, MAX_HEADER_VALUE);
      // A CR or LF would end the header where it is written (request or response splitting).
      if (text !== undefined && HEADER_VALUE_UNSAFE.test(text)) text = problems.drop(`${at}.value must hold only visible characters, spaces and tabs (no CR, LF or other control characters), got ${describeValue(text)}`);
      if (name === undefined || text === undefined) return void (valid = false);
      if (claim(name, at)) out.push(Object.freeze({ name, value: text }));
    });
    return out;
  };
  const set = pairs('set');
  const add = pairs('add');
  const remove: string[] = [];
  (listField(raw['remove'], `${path}.remove`, problems) ?? []).forEach((item, i) => {
    const at = `${path}.remove[${i}]`;
    if (typeof item !== 'string' || !HEADER_NAME.test(item)) {
      valid = false;
      return void problems.drop(`${at} must be a header name, got ${describeValue(item)}`);
    }
    if (claim(item.toLowerCase(), at)) remove.push(item.toLowerCase());
  });
  return valid ? Object.freeze({ set: Object.freeze(set), add: Object.freeze(add), remove: Object.freeze(remove) }) : undefined;
}

/**
 * `backendRefs`: Services by namespace (default: the route's), name and port, with weights
 * (default 1). A reference to another kind or a missing Service or port stays in the list, its
 * weight kept, marked so its share of requests fails. A mesh needs no ReferenceGrant (GEP-1426).
 */
export function backendRefs(value: unknown, routeNamespace: string, kind: RouteKind, services: ServiceLookup, problems: RuleProblems): WeightedBackend[] | undefined {
  const items = listField(value, 'backendRefs', problems);
  if (items === undefined) return undefined;
  const backends: WeightedBackend[] = [];
  let valid = true;
  items.forEach((item, i) => {
    const at = `backendRefs[${i}]`;
    const ref = recordField(item, at, problems);
    if (ref === undefined) return void (valid = false);
    reportUnknownFields(ref, ['group', 'kind', 'name', 'namespace', 'port', 'weight', 'filters'], at, problems);
    const name = stringField(ref['name'], `${at}.name`, problems, 253);
    const namespace = isMissing(ref['namespace']) ? routeNamespace : stringField(ref['namespace'], `${at}.namespace`, problems, 63);
    const group = isMissing(ref['group']) ? '' : ref['group'];
    const refKind = isMissing(ref['kind']) ? 'Service' : ref['kind'];
    const isService = isServiceRef(group, refKind);
    const port = backendPort(ref['port'], `${at}.port`, isService, problems);
    const weight = backendWeight(ref['weight'], `${at}.weight`, problems);
    const filters = isMissing(ref['filters']) ? undefined : ruleFilters(ref['filters'], `${at}.filters`, kind, problems);
    if (name === undefined || namespace === undefined || port === null || weight === undefined || (!isMissing(ref['filters']) && filters === undefined)) {
      return void (valid = false);
    }
    const refused = backendRefProblem(at, group, refKind, namespace, name, port, services);
    if (refused !== undefined) problems.backend(refused.reason, refused.detail);
    backends.push(Object.freeze({ namespace, name, port, weight, problem: refused?.reason }));
  });
  return valid ? backends : undefined;
}

/** A Service backend needs a port (the spec requires it); other kinds are failed anyway. null: invalid. */
function backendPort(value: unknown, path: string, isService: boolean, problems: RuleProblems): number | undefined | null {
  if (isMissing(value)) {
    if (!isService) return undefined;
    problems.drop(`${path} is required for a Service`);
    return null;
  }
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535) return value;
  problems.drop(`${path} must be an integer from 1 to 65535, got ${describeValue(value)}`);
  return null;
}

function backendWeight(value: unknown, path: string, problems: RuleProblems): number | undefined {
  if (isMissing(value)) return 1;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_WEIGHT) return value;
  return problems.drop(`${path} must be an integer from 0 to ${MAX_WEIGHT}, got ${describeValue(value)}`);
}
