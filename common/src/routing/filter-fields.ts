// Reads the RequestRedirect, URLRewrite and RequestMirror filters of a rule, validated as the
// Gateway API v1 schema does (standard channel, plus the experimental 303/307/308 redirect codes);
// every bad value is recorded on the rule's RuleProblems with its field path.
import { describeValue, isMissing, isRecord } from '../mesh/fields.js';
import type { MeshService } from '../mesh/types.js';
import { normalizePath } from './normalize.js';
import type { RuleProblems } from './report.js';
import type { BackendProblem, PathModifier, RequestMirror, RequestRedirect, UrlRewrite } from './types.js';

const MAX_PATH = 1024;
const MAX_HOSTNAME = 253;
/** The characters an Exact or PathPrefix value may hold (unreserved, sub-delims, `:@/`, %-escapes). */
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;
/** PreciseHostname: lower-case RFC 1123 labels, no wildcard, no port. */
const PRECISE_HOSTNAME = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
export const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;
const SCHEMES = ['http', 'https'] as const;

type ServiceLookup = (namespace: string, name: string) => MeshService | undefined;

/** Why an Exact or PathPrefix value (or a path modifier's value) is not a clean absolute path, per HTTPPathMatch. */
export function pathProblem(text: string): string | undefined {
  if (!text.startsWith('/')) return 'must start with "/"';
  if (text.includes('//')) return 'must not contain "//"';
  if (text.includes('/./') || text.includes('/../') || text.endsWith('/.') || text.endsWith('/..')) return 'must not contain "." or ".." segments';
  if (/%2f/i.test(text)) return 'must not contain an encoded "/" (%2F)';
  if (text.includes('#')) return 'must not contain "#"';
  if (!PATH_CHARS.test(text)) return 'must hold only path characters or %-escapes';
  return undefined;
}

function known(record: Record<string, unknown>, fields: readonly string[], path: string, problems: RuleProblems): void {
  for (const key of Object.keys(record)) if (!fields.includes(key)) problems.ignore(`${path}.${key} is not a field tsmesh knows`);
}

function mapping(value: unknown, path: string, problems: RuleProblems): Record<string, unknown> | undefined {
  if (isRecord(value)) return value;
  return problems.drop(`${path} must be a mapping, got ${describeValue(value)}`);
}

/** A PreciseHostname (redirect or rewrite `hostname`). */
function hostname(value: unknown, path: string, problems: RuleProblems): string | undefined | null {
  if (isMissing(value)) return undefined;
  if (typeof value === 'string' && value.length <= MAX_HOSTNAME && PRECISE_HOSTNAME.test(value)) return value;
  problems.drop(`${path} must be a hostname (lower-case RFC 1123 labels, no wildcard, no port, at most ${MAX_HOSTNAME} characters), got ${describeValue(value)}`);
  return null;
}

function integer(value: unknown, path: string, min: number, max: number, problems: RuleProblems): number | undefined | null {
  if (isMissing(value)) return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  problems.drop(`${path} must be an integer from ${min} to ${max}, got ${describeValue(value)}`);
  return null;
}

/**
 * A `path` modifier: `type` names which of `replaceFullPath` or `replacePrefixMatch` is set (the
 * other must not be). The value must be a clean, normalised absolute path, so that a rewritten
 * path cannot bring back a dot segment or an escape routing removed; `replacePrefixMatch` may be
 * empty (the prefix is removed).
 */
function pathModifier(value: unknown, path: string, problems: RuleProblems): PathModifier | undefined {
  const raw = mapping(value, path, problems);
  if (raw === undefined) return undefined;
  known(raw, ['type', 'replaceFullPath', 'replacePrefixMatch'], path, problems);
  const type = raw['type'];
  if (type !== 'ReplaceFullPath' && type !== 'ReplacePrefixMatch') {
    return problems.drop(`${path}.type ${describeValue(type)} is not supported (expected ReplaceFullPath or ReplacePrefixMatch)`);
  }
  const field = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const other = type === 'ReplaceFullPath' ? 'replacePrefixMatch' : 'replaceFullPath';
  if (!isMissing(raw[other])) return problems.drop(`${path}.${other} must not be set when ${path}.type is ${type}`);
  const text = raw[field];
  const at = `${path}.${field}`;
  if (isMissing(text)) return problems.drop(`${at} is required when ${path}.type is ${type}`);
  if (typeof text !== 'string' || text.length > MAX_PATH) return problems.drop(`${at} must be a string of at most ${MAX_PATH} characters, got ${describeValue(text)}`);
  if (type === 'ReplacePrefixMatch' && text === '') return Object.freeze({ type, value: '' });
  const invalid = pathProblem(text);
  if (invalid !== undefined) return problems.drop(`${at} ${describeValue(text)} ${invalid}`);
  const normal = normalizePath(text);
  if (!normal.ok) return problems.drop(`${at} ${describeValue(text)} is not a usable path: ${normal.reason}`);
  if (normal.path !== text) return problems.drop(`${at} ${describeValue(text)} must be a normalised path (it reads as ${describeValue(normal.path)})`);
  if (type === 'ReplaceFullPath') return Object.freeze({ type, value: text });
  return Object.freeze({ type, value: text.endsWith('/') ? text.slice(0, -1) : text });
}

/** `requestRedirect` of a RequestRedirect filter. */
export function requestRedirect(value: unknown, path: string, problems: RuleProblems): RequestRedirect | undefined {
  const raw = mapping(value, path, problems);
  if (raw === undefined) return undefined;
  known(raw, ['scheme', 'hostname', 'path', 'port', 'statusCode'], path, problems);
  let valid = true;
  let scheme: RequestRedirect['scheme'];
  if (!isMissing(raw['scheme'])) {
    if ((SCHEMES as readonly unknown[]).includes(raw['scheme'])) scheme = raw['scheme'] as 'http' | 'https';
    else {
      valid = false;
      problems.drop(`${path}.scheme ${describeValue(raw['scheme'])} is not supported (expected http or https)`);
    }
  }
  const host = hostname(raw['hostname'], `${path}.hostname`, problems);
  const port = integer(raw['port'], `${path}.port`, 1, 65535, problems);
  let statusCode = 302;
  if (!isMissing(raw['statusCode'])) {
    if ((REDIRECT_CODES as readonly unknown[]).includes(raw['statusCode'])) statusCode = raw['statusCode'] as number;
    else {
      valid = false;
      problems.drop(`${path}.statusCode ${describeValue(raw['statusCode'])} is not supported (expected ${REDIRECT_CODES.join(', ')})`);
    }
  }
  const modifier = isMissing(raw['path']) ? undefined : pathModifier(raw['path'], `${path}.path`, problems);
  if (!valid || host === null || port === null || (modifier === undefined && !isMissing(raw['path']))) return undefined;
  return Object.freeze({ scheme, hostname: host, port, path: modifier, statusCode });
}

/** `urlRewrite` of a URLRewrite filter. */
export function urlRewrite(value: unknown, path: string, problems: RuleProblems): UrlRewrite | undefined {
  const raw = mapping(value, path, problems);
  if (raw === undefined) return undefined;
  known(raw, ['hostname', 'path'], path, problems);
  const host = hostname(raw['hostname'], `${path}.hostname`, problems);
  const modifier = isMissing(raw['path']) ? undefined : pathModifier(raw['path'], `${path}.path`, problems);
  if (host === null || (modifier === undefined && !isMissing(raw['path']))) return undefined;
  return Object.freeze({ hostname: host, path: modifier });
}

/**
 * `requestMirror` of a RequestMirror filter: a Service `backendRef` (port required), and at most
 * one of `percent` (0-100) and `fraction` (numerator <= denominator, denominator default 100),
 * GEP-3171. A missing Service or port is reported (ResolvedRefs) and sends no copies.
 */
export function requestMirror(value: unknown, path: string, routeNamespace: string, services: ServiceLookup, problems: RuleProblems): RequestMirror | undefined {
  const raw = mapping(value, path, problems);
  if (raw === undefined) return undefined;
  known(raw, ['backendRef', 'percent', 'fraction'], path, problems);
  const at = `${path}.backendRef`;
  if (isMissing(raw['backendRef'])) return problems.drop(`${at} is required`);
  const ref = mapping(raw['backendRef'], at, problems);
  if (ref === undefined) return undefined;
  known(ref, ['group', 'kind', 'name', 'namespace', 'port'], at, problems);
  const name = ref['name'];
  const namespace = isMissing(ref['namespace']) ? routeNamespace : ref['namespace'];
  if (typeof name !== 'string' || name === '' || name.length > 253) return problems.drop(`${at}.name must be a string of 1 to 253 characters, got ${describeValue(name)}`);
  if (typeof namespace !== 'string' || namespace === '' || namespace.length > 63) return problems.drop(`${at}.namespace must be a string of 1 to 63 characters, got ${describeValue(namespace)}`);
  const group = isMissing(ref['group']) ? '' : ref['group'];
  const kind = isMissing(ref['kind']) ? 'Service' : ref['kind'];
  const isService = isServiceRef(group, kind);
  let port: number | undefined;
  if (isService) {
    if (isMissing(ref['port'])) return problems.drop(`${at}.port is required for a Service`);
    const p = integer(ref['port'], `${at}.port`, 1, 65535, problems);
    if (p === null || p === undefined) return undefined;
    port = p;
  }
  const percent = integer(raw['percent'], `${path}.percent`, 0, 100, problems);
  if (percent === null) return undefined;
  let numerator = 1;
  let denominator = 1;
  if (percent !== undefined) {
    if (!isMissing(raw['fraction'])) return problems.drop(`${path}: set percent or fraction, not both`);
    numerator = percent;
    denominator = 100;
  } else if (!isMissing(raw['fraction'])) {
    const fraction = mapping(raw['fraction'], `${path}.fraction`, problems);
    if (fraction === undefined) return undefined;
    known(fraction, ['numerator', 'denominator'], `${path}.fraction`, problems);
    if (isMissing(fraction['numerator'])) return problems.drop(`${path}.fraction.numerator is required`);
    const n = integer(fraction['numerator'], `${path}.fraction.numerator`, 0, 2 ** 31 - 1, problems);
    const d = integer(fraction['denominator'], `${path}.fraction.denominator`, 1, 2 ** 31 - 1, problems);
    if (n === null || n === undefined || d === null) return undefined;
    numerator = n;
    denominator = d ?? 100;
    if (numerator > denominator) return problems.drop(`${path}.fraction.numerator ${numerator} must not be greater than its denominator ${denominator}`);
  }
  const refused = backendRefProblem(at, group, kind, namespace, name, port, services);
  if (refused !== undefined) problems.mirror(refused.reason, refused.detail);
  return Object.freeze({ namespace, name, port, problem: refused?.reason, numerator, denominator });
}

/** Whether a backend reference's group and kind (defaults applied) name a core Service, the one kind the mesh sends to. */
export function isServiceRef(group: unknown, kind: unknown): boolean {
  return (group === '' || group === 'core') && kind === 'Service';
}

/**
 * Why a backend reference (a rule's backendRef, a RequestMirror's) cannot be sent to, with the
 * message for the route's status: not a Service (InvalidKind), or no such Service or port
 * (BackendNotFound). Undefined when it can.
 */
export function backendRefProblem(
  at: string,
  group: unknown,
  kind: unknown,
  namespace: string,
  name: string,
  port: number | undefined,
  services: ServiceLookup,
): { readonly reason: Exclude<BackendProblem, 'RefNotPermitted'>; readonly detail: string } | undefined {
  if (!isServiceRef(group, kind)) return { reason: 'InvalidKind', detail: `${at} refers to ${describeValue(kind)} in group ${describeValue(group)}; only Services are supported` };
  const service = services(namespace, name);
  if (service === undefined) return { reason: 'BackendNotFound', detail: `${at} refers to Service ${namespace}/${name}, which does not exist` };
  if (!service.ports.some((p) => p.port === port)) {
    return { reason: 'BackendNotFound', detail: `${at} refers to port ${port} of Service ${namespace}/${name}, which has no such port` };
  }
  return undefined;
}
