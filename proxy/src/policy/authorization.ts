// Inbound authorization (AuthorizationPolicy): the policies that select this workload, compiled
// once per snapshot into a matcher the inbound side asks on every HTTP request or TCP connection.
// Order, as Istio's: any matching DENY denies; else, when an ALLOW policy selects the workload, the
// request must match one; else it is allowed. AUDIT policies never decide; they only mark.
import {
  policySelects,
  type AuthzAction,
  type AuthzCondition,
  type AuthzOperation,
  type AuthzRule,
  type AuthzSource,
  type MeshAuthorizationPolicy,
  type MeshSnapshot,
} from '@tsmesh/common';
import { compilePattern, firstMatch, type StringPattern } from './match.js';
import { DEFAULT_ROOT_NAMESPACE, policiesOf, type PolicyProblem, type PolicyWorkload } from './peer-authentication.js';

/** What the sidecar knows of one request (HTTP) or connection (TCP, `http` undefined). */
export interface AuthzRequest {
  /** The verified peer's SPIFFE ID without `spiffe://` (`cluster.local/ns/shop/sa/frontend`); undefined for plaintext. */
  readonly principal: string | undefined;
  /** The verified peer's namespace; undefined for plaintext. */
  readonly namespace: string | undefined;
  /** The workload's port the caller asked for. */
  readonly port: number;
  readonly http: AuthzHttpRequest | undefined;
}

/** The normalised request view (requestView): the path without query, the host without case or port. */
export interface AuthzHttpRequest {
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
  /** A request header by lower-case name. */
  header(name: string): string | undefined;
}

export type AuthzReason = 'no_policy' | 'allow_matched' | 'deny_matched' | 'no_allow_matched';

export interface AuthzDecision {
  readonly allowed: boolean;
  /** `namespace/name` of the policy that decided; undefined when none did (no ALLOW policy, or none matched). */
  readonly policy: string | undefined;
  readonly reason: AuthzReason;
}

/** One policy's verdict in an explanation. */
export interface AuthzPolicyVerdict {
  readonly policy: string;
  readonly action: AuthzAction;
  /** The index of the first rule that matched; undefined when none did. */
  readonly matchedRule: number | undefined;
}

export interface AuthzExplanation {
  readonly decision: AuthzDecision;
  /** The AUDIT policies that matched. */
  readonly audited: readonly string[];
  /** Every policy that selects this workload, in evaluation order (DENY, ALLOW, AUDIT). */
  readonly policies: readonly AuthzPolicyVerdict[];
}

/** The compiled authorization of one workload. */
export interface WorkloadAuthorization {
  /** False when no policy selects the workload: nothing needs asking (and nothing is parsed for it). */
  readonly active: boolean;
  /** Whether any policy has HTTP-only fields or conditions (the request view is needed only then). */
  readonly needsHttp: boolean;
  /** The decision for a request or connection; allocates nothing. */
  check(request: AuthzRequest): AuthzDecision;
  /** The first AUDIT policy that matches, `namespace/name`; undefined when none does. */
  audit(request: AuthzRequest): string | undefined;
  /** Which policy decided and why, policy by policy (for the admin endpoint). */
  explain(request: AuthzRequest): AuthzExplanation;
  /** `namespace/name` of every policy selecting the workload. */
  readonly policies: readonly string[];
  /** AuthorizationPolicies of the snapshot that did not validate and were left out. */
  readonly problems: readonly PolicyProblem[];
}

interface CompiledSource {
  readonly principals: readonly StringPattern[] | undefined;
  readonly notPrincipals: readonly StringPattern[] | undefined;
  readonly namespaces: readonly StringPattern[] | undefined;
  readonly notNamespaces: readonly StringPattern[] | undefined;
}

interface CompiledOperation {
  readonly hosts: readonly StringPattern[] | undefined;
  readonly notHosts: readonly StringPattern[] | undefined;
  readonly ports: ReadonlySet<number> | undefined;
  readonly notPorts: ReadonlySet<number> | undefined;
  readonly methods: readonly StringPattern[] | undefined;
  readonly notMethods: readonly StringPattern[] | undefined;
  readonly paths: readonly StringPattern[] | undefined;
  readonly notPaths: readonly StringPattern[] | undefined;
}

interface CompiledCondition {
  readonly key: AuthzCondition['key'];
  readonly values: readonly StringPattern[] | undefined;
  readonly notValues: readonly StringPattern[] | undefined;
}

interface CompiledRule {
  readonly from: readonly CompiledSource[];
  readonly to: readonly CompiledOperation[];
  readonly when: readonly CompiledCondition[];
  /** Reads methods, paths, hosts or request headers: what a TCP connection cannot tell. */
  readonly httpOnly: boolean;
}

interface CompiledPolicy {
  readonly id: string;
  readonly action: AuthzAction;
  readonly rules: readonly CompiledRule[];
  /** The decision this policy gives when it matches (allocated once). */
  readonly decision: AuthzDecision;
}

const ALLOWED_WITHOUT_POLICY: AuthzDecision = Object.freeze({ allowed: true, policy: undefined, reason: 'no_policy' });
const DENIED_WITHOUT_MATCH: AuthzDecision = Object.freeze({ allowed: false, policy: undefined, reason: 'no_allow_matched' });

const patterns = (list: readonly string[] | undefined, lowerCase = false): readonly StringPattern[] | undefined =>
  list === undefined ? undefined : Object.freeze(list.map((p) => compilePattern(p, lowerCase)));
const portSet = (list: readonly number[] | undefined): ReadonlySet<number> | undefined => (list === undefined ? undefined : new Set(list));

function compileSource(source: AuthzSource): CompiledSource {
  return {
    principals: patterns(source.principals),
    notPrincipals: patterns(source.notPrincipals),
    namespaces: patterns(source.namespaces),
    notNamespaces: patterns(source.notNamespaces),
  };
}

function compileOperation(operation: AuthzOperation): CompiledOperation {
  return {
    hosts: patterns(operation.hosts, true),
    notHosts: patterns(operation.notHosts, true),
    ports: portSet(operation.ports),
    notPorts: portSet(operation.notPorts),
    methods: patterns(operation.methods),
    notMethods: patterns(operation.notMethods),
    paths: patterns(operation.paths),
    notPaths: patterns(operation.notPaths),
  };
}

function isHttpOnlyOperation(o: AuthzOperation): boolean {
  return o.hosts !== undefined || o.notHosts !== undefined || o.methods !== undefined || o.notMethods !== undefined || o.paths !== undefined || o.notPaths !== undefined;
}

function compileRule(rule: AuthzRule): CompiledRule {
  return {
    from: rule.from.map(compileSource),
    to: rule.to.map(compileOperation),
    when: rule.when.map((c) => ({ key: c.key, values: patterns(c.values), notValues: patterns(c.notValues) })),
    httpOnly: rule.to.some(isHttpOnlyOperation) || rule.when.some((c) => c.key.kind === 'header'),
  };
}

/** A field set with positive patterns matches when the value matches one; an absent value matches none. */
function positive(list: readonly StringPattern[] | undefined, value: string | undefined): boolean {
  return list === undefined || firstMatch(list, value) >= 0;
}

/** A `not…` field matches when the value matches none of it; an absent value (plaintext, no header) matches none. */
function negative(list: readonly StringPattern[] | undefined, value: string | undefined): boolean {
  return list === undefined || firstMatch(list, value) < 0;
}

function sourceMatches(s: CompiledSource, r: AuthzRequest): boolean {
  return positive(s.principals, r.principal) && negative(s.notPrincipals, r.principal) && positive(s.namespaces, r.namespace) && negative(s.notNamespaces, r.namespace);
}

/**
 * An operation against a request. For a TCP connection (`http` undefined) the HTTP-only fields are
 * skipped: callers decide beforehand whether a rule that has them may match at all.
 */
function operationMatches(o: CompiledOperation, r: AuthzRequest): boolean {
  if (o.ports !== undefined && !o.ports.has(r.port)) return false;
  if (o.notPorts?.has(r.port) === true) return false;
  const http = r.http;
  if (http === undefined) return true;
  return (
    positive(o.methods, http.method) &&
    negative(o.notMethods, http.method) &&
    positive(o.paths, http.path) &&
    negative(o.notPaths, http.path) &&
    positive(o.hosts, http.host) &&
    negative(o.notHosts, http.host)
  );
}

function conditionValue(c: CompiledCondition, r: AuthzRequest): string | undefined {
  switch (c.key.kind) {
    case 'header':
      return r.http?.header(c.key.name);
    case 'source.principal':
      return r.principal;
    case 'source.namespace':
      return r.namespace;
    default:
      return String(r.port);
  }
}

function conditionMatches(c: CompiledCondition, r: AuthzRequest): boolean {
  // A header condition on a TCP connection is skipped here, like the HTTP-only operation fields.
  if (c.key.kind === 'header' && r.http === undefined) return true;
  const value = conditionValue(c, r);
  return positive(c.values, value) && negative(c.notValues, value);
}

/**
 * One rule: every part set must match (from: any source; to: any operation; when: all conditions).
 * On a TCP connection a rule with HTTP-only fields is, as Istio documents it, ignored by ALLOW and
 * AUDIT (it matches nothing: the stricter reading) and applied by DENY without those fields (it
 * denies more).
 */
function ruleMatches(rule: CompiledRule, action: AuthzAction, r: AuthzRequest): boolean {
  if (r.http === undefined && rule.httpOnly && action !== 'DENY') return false;
  // Index loops: no closure or iterator per request.
  if (rule.from.length > 0) {
    let any = false;
    for (let i = 0; i < rule.from.length && !any; i++) any = sourceMatches(rule.from[i] as CompiledSource, r);
    if (!any) return false;
  }
  if (rule.to.length > 0) {
    let any = false;
    for (let i = 0; i < rule.to.length && !any; i++) any = operationMatches(rule.to[i] as CompiledOperation, r);
    if (!any) return false;
  }
  for (let i = 0; i < rule.when.length; i++) if (!conditionMatches(rule.when[i] as CompiledCondition, r)) return false;
  return true;
}

/** The index of the first rule of `policy` that matches; -1 when none (a policy without rules matches nothing). */
function matchedRule(policy: CompiledPolicy, r: AuthzRequest): number {
  for (let i = 0; i < policy.rules.length; i++) if (ruleMatches(policy.rules[i] as CompiledRule, policy.action, r)) return i;
  return -1;
}

function compilePolicy(policy: MeshAuthorizationPolicy): CompiledPolicy {
  const id = `${policy.namespace}/${policy.name}`;
  return {
    id,
    action: policy.action,
    rules: policy.rules.map(compileRule),
    decision: Object.freeze({ allowed: policy.action !== 'DENY', policy: id, reason: policy.action === 'DENY' ? 'deny_matched' : 'allow_matched' }),
  };
}

/** Whether `policy` selects `workload` (common's policySelects: the rule the control plane reports by too). */
export const selects: (policy: MeshAuthorizationPolicy, workload: PolicyWorkload, rootNamespace?: string) => boolean = policySelects;

/** By namespace then name: a stable order whatever order the objects came in. */
function byId(a: CompiledPolicy, b: CompiledPolicy): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Compiles the authorization of `workload` from validated policies (see selects for which apply). */
export function compileAuthorization(
  all: readonly MeshAuthorizationPolicy[],
  workload: PolicyWorkload,
  options: { readonly rootNamespace?: string; readonly problems?: readonly PolicyProblem[] } = {},
): WorkloadAuthorization {
  const root = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const selected = all.filter((p) => selects(p, workload, root)).map(compilePolicy).sort(byId);
  const deny = selected.filter((p) => p.action === 'DENY');
  const allow = selected.filter((p) => p.action === 'ALLOW');
  const audit = selected.filter((p) => p.action === 'AUDIT');
  const ordered = [...deny, ...allow, ...audit];
  const check = (r: AuthzRequest): AuthzDecision => {
    for (let i = 0; i < deny.length; i++) {
      const policy = deny[i] as CompiledPolicy;
      if (matchedRule(policy, r) >= 0) return policy.decision;
    }
    if (allow.length === 0) return ALLOWED_WITHOUT_POLICY;
    for (let i = 0; i < allow.length; i++) {
      const policy = allow[i] as CompiledPolicy;
      if (matchedRule(policy, r) >= 0) return policy.decision;
    }
    return DENIED_WITHOUT_MATCH;
  };
  return Object.freeze({
    active: selected.length > 0,
    needsHttp: selected.some((p) => p.rules.some((rule) => rule.httpOnly)),
    check,
    audit(r: AuthzRequest): string | undefined {
      for (let i = 0; i < audit.length; i++) {
        const policy = audit[i] as CompiledPolicy;
        if (matchedRule(policy, r) >= 0) return policy.id;
      }
      return undefined;
    },
    explain(r: AuthzRequest): AuthzExplanation {
      const verdicts = ordered.map((p) => {
        const rule = matchedRule(p, r);
        return { policy: p.id, action: p.action, matchedRule: rule >= 0 ? rule : undefined };
      });
      return { decision: check(r), audited: verdicts.filter((v) => v.action === 'AUDIT' && v.matchedRule !== undefined).map((v) => v.policy), policies: verdicts };
    },
    policies: Object.freeze(ordered.map((p) => p.id)),
    problems: Object.freeze([...(options.problems ?? [])]),
  });
}

/** The AuthorizationPolicies of a snapshot (its `others`), validated; those that do not validate are reported. */
export function authorizationPoliciesOf(snapshot: Pick<MeshSnapshot, 'others'>): { policies: MeshAuthorizationPolicy[]; problems: PolicyProblem[] } {
  return policiesOf(snapshot, 'AuthorizationPolicy', (value) => value);
}

/** The compiled authorization of `workload` in `snapshot`: build it once per snapshot. */
export function compileWorkloadAuthorization(snapshot: Pick<MeshSnapshot, 'others'>, workload: PolicyWorkload, rootNamespace: string = DEFAULT_ROOT_NAMESPACE): WorkloadAuthorization {
  const { policies, problems } = authorizationPoliciesOf(snapshot);
  return compileAuthorization(policies, workload, { rootNamespace, problems });
}

/** The principal (`td/ns/<ns>/sa/<sa>`) and namespace Istio's rules compare: common's. */
export { principalOf } from '@tsmesh/common';
