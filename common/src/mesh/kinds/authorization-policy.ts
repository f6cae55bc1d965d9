// AuthorizationPolicy (security.tsmesh.io/v1): who may call a workload, with Istio's rule shape
// (rules[].from[].source, rules[].to[].operation, rules[].when[]). Evaluation is the proxy's.
import type { FieldChecker } from '../fields.js';
import { describeValue } from '../fields.js';
import type { KindDefinition } from './kind.js';

export const AUTHZ_ACTIONS = ['ALLOW', 'DENY', 'AUDIT'] as const;
export type AuthzAction = (typeof AUTHZ_ACTIONS)[number];

/** `rules[].from[].source`: every set field must match (AND); inside one field, any value (OR). */
export interface AuthzSource {
  readonly principals?: readonly string[] | undefined;
  readonly notPrincipals?: readonly string[] | undefined;
  readonly namespaces?: readonly string[] | undefined;
  readonly notNamespaces?: readonly string[] | undefined;
}

/** `rules[].to[].operation`. Ports are the workload's own (the port the caller asked for). */
export interface AuthzOperation {
  readonly hosts?: readonly string[] | undefined;
  readonly notHosts?: readonly string[] | undefined;
  readonly ports?: readonly number[] | undefined;
  readonly notPorts?: readonly number[] | undefined;
  readonly methods?: readonly string[] | undefined;
  readonly notMethods?: readonly string[] | undefined;
  readonly paths?: readonly string[] | undefined;
  readonly notPaths?: readonly string[] | undefined;
}

/** What a `when` key reads. */
export type AuthzConditionKey =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'source.principal' }
  | { readonly kind: 'source.namespace' }
  | { readonly kind: 'destination.port' };

export interface AuthzCondition {
  readonly key: AuthzConditionKey;
  /** The key as written, for explanations. */
  readonly keyText: string;
  readonly values?: readonly string[] | undefined;
  readonly notValues?: readonly string[] | undefined;
}

export interface AuthzRule {
  /** Any source may match (OR); absent or empty: any caller. */
  readonly from: readonly AuthzSource[];
  readonly to: readonly AuthzOperation[];
  /** Every condition must match (AND). */
  readonly when: readonly AuthzCondition[];
}

export interface MeshAuthorizationPolicy {
  readonly namespace: string;
  readonly name: string;
  /** `spec.selector.matchLabels`; undefined (or empty) selects the namespace, or the mesh in the root namespace. */
  readonly selector: Readonly<Record<string, string>> | undefined;
  /** Default ALLOW. */
  readonly action: AuthzAction;
  /** No rules: the policy matches nothing (an ALLOW without rules denies everything it selects). */
  readonly rules: readonly AuthzRule[];
}

const SOURCE_FIELDS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'] as const;
const OPERATION_STRING_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
/** Istio fields tsmesh does not evaluate: refused, since a policy silently half-applied is worse than none. */
const UNSUPPORTED_SOURCE_FIELDS = ['requestPrincipals', 'notRequestPrincipals', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'];
const HEADER_KEY = /^request\.headers\[([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\]$/;

export const authorizationPolicyKind: KindDefinition<MeshAuthorizationPolicy> = {
  apiVersion: 'security.tsmesh.io/v1',
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec') ?? {};
    check.knownFields(spec, 'spec', ['selector', 'action', 'rules']);
    const selector = check.object(spec['selector'], 'spec.selector');
    if (selector !== undefined) check.knownFields(selector, 'spec.selector', ['matchLabels']);
    const rules = (check.array(spec['rules'], 'spec.rules') ?? []).map((rule, i) => ruleOf(check, rule, `spec.rules[${i}]`));
    return Object.freeze({
      namespace: meta.namespace,
      name: meta.name,
      selector: selector === undefined ? undefined : Object.freeze(check.stringMap(selector['matchLabels'], 'spec.selector.matchLabels')),
      action: check.oneOf(spec['action'], 'spec.action', AUTHZ_ACTIONS) ?? 'ALLOW',
      rules: Object.freeze(rules),
    });
  },
};

function ruleOf(check: FieldChecker, value: unknown, path: string): AuthzRule {
  const rule = check.object(value, path, true) ?? {};
  check.knownFields(rule, path, ['from', 'to', 'when']);
  const from = (check.array(rule['from'], `${path}.from`) ?? []).map((item, i) => {
    const at = `${path}.from[${i}]`;
    const entry = check.object(item, at, true) ?? {};
    check.knownFields(entry, at, ['source']);
    return sourceOf(check, entry['source'], `${at}.source`);
  });
  const to = (check.array(rule['to'], `${path}.to`) ?? []).map((item, i) => {
    const at = `${path}.to[${i}]`;
    const entry = check.object(item, at, true) ?? {};
    check.knownFields(entry, at, ['operation']);
    return operationOf(check, entry['operation'], `${at}.operation`);
  });
  const when = (check.array(rule['when'], `${path}.when`) ?? []).map((item, i) => conditionOf(check, item, `${path}.when[${i}]`));
  return Object.freeze({ from: Object.freeze(from), to: Object.freeze(to), when: Object.freeze(when) });
}

function sourceOf(check: FieldChecker, value: unknown, path: string): AuthzSource {
  const source = check.object(value, path, true) ?? {};
  for (const key of Object.keys(source)) {
    if (UNSUPPORTED_SOURCE_FIELDS.includes(key)) check.fail(`${path}.${key}`, 'is not supported by tsmesh (supported: principals, notPrincipals, namespaces, notNamespaces)');
  }
  check.knownFields(source, path, [...SOURCE_FIELDS, ...UNSUPPORTED_SOURCE_FIELDS]);
  const result: Record<string, readonly string[]> = {};
  for (const field of SOURCE_FIELDS) {
    const list = patterns(check, source[field], `${path}.${field}`);
    if (list !== undefined) result[field] = list;
  }
  if (value !== undefined && Object.keys(source).length === 0) check.fail(path, `must set at least one of ${SOURCE_FIELDS.join(', ')}`);
  return Object.freeze(result);
}

function operationOf(check: FieldChecker, value: unknown, path: string): AuthzOperation {
  const operation = check.object(value, path, true) ?? {};
  check.knownFields(operation, path, [...OPERATION_STRING_FIELDS, 'ports', 'notPorts']);
  const result: Record<string, readonly string[] | readonly number[]> = {};
  for (const field of OPERATION_STRING_FIELDS) {
    const list = patterns(check, operation[field], `${path}.${field}`);
    if (list !== undefined) result[field] = list;
  }
  for (const field of ['ports', 'notPorts'] as const) {
    const list = ports(check, operation[field], `${path}.${field}`);
    if (list !== undefined) result[field] = list;
  }
  if (value !== undefined && Object.keys(operation).length === 0) check.fail(path, 'must set at least one of hosts, ports, methods, paths or their not… forms');
  return Object.freeze(result);
}

function conditionOf(check: FieldChecker, value: unknown, path: string): AuthzCondition {
  const condition = check.object(value, path, true) ?? {};
  check.knownFields(condition, path, ['key', 'values', 'notValues']);
  const keyText = check.string(condition['key'], `${path}.key`, true) ?? '';
  const key = conditionKey(check, keyText, `${path}.key`);
  const values = patterns(check, condition['values'], `${path}.values`);
  const notValues = patterns(check, condition['notValues'], `${path}.notValues`);
  if (values === undefined && notValues === undefined) check.fail(path, 'must set values or notValues');
  return Object.freeze({ key, keyText, values, notValues });
}

function conditionKey(check: FieldChecker, text: string, path: string): AuthzConditionKey {
  const header = HEADER_KEY.exec(text);
  if (header?.[1] !== undefined) return { kind: 'header', name: header[1].toLowerCase() };
  if (text === 'source.principal' || text === 'source.namespace' || text === 'destination.port') return { kind: text };
  if (text !== '') {
    check.fail(path, `must be request.headers[<name>], source.principal, source.namespace or destination.port, got ${describeValue(text)}`);
  }
  return { kind: 'source.principal' };
}

/**
 * A list of match strings: exact, `prefix*`, `*suffix`, or `*` alone (any non-empty value). A `*`
 * anywhere else would be taken literally by nothing and by everything differently: refused.
 * Absent or empty: undefined (the field is not set).
 */
function patterns(check: FieldChecker, value: unknown, path: string): readonly string[] | undefined {
  const list = check.array(value, path);
  if (list === undefined || list.length === 0) return undefined;
  const out: string[] = [];
  list.forEach((item, i) => {
    const text = check.string(item, `${path}[${i}]`, true);
    if (text === undefined) return;
    const inner = text.length > 1 ? text.slice(1, -1) : '';
    if (inner.includes('*') || (text.length > 1 && text.startsWith('*') && text.endsWith('*'))) {
      check.fail(`${path}[${i}]`, `"*" may only be the first or the last character (prefix*, *suffix or *), got ${describeValue(text)}`);
      return;
    }
    out.push(text);
  });
  return Object.freeze(out);
}

/** Ports as Istio writes them (strings of digits), or as numbers. */
function ports(check: FieldChecker, value: unknown, path: string): readonly number[] | undefined {
  const list = check.array(value, path);
  if (list === undefined || list.length === 0) return undefined;
  const out: number[] = [];
  list.forEach((item, i) => {
    const port = typeof item === 'string' && /^[0-9]{1,5}$/.test(item) ? Number(item) : item;
    const checked = check.port(port, `${path}[${i}]`, true);
    if (checked !== undefined) out.push(checked);
  });
  return Object.freeze(out);
}
