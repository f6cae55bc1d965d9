// Compiles a snapshot's HTTPRoutes and GRPCRoutes into one RouteTable per Service port they attach
// to (GAMMA: a parentRef of kind Service, optionally narrowed to one port), once per snapshot.
// Pure: the same snapshot gives the same tables, warnings and statuses, and nothing is logged.
//
// - Producer routes (same namespace as the Service) apply to every client; consumer routes (another
//   namespace) only to clients in their namespace, and replace the producer routes for them (GEP-1426).
// - Routes of one group merge; when HTTPRoutes and GRPCRoutes both attach to one Service port, the
//   GRPCRoutes win and the HTTPRoutes are reported as conflicted there (GEP-1426 route types).
// - Filters: header modifiers, RequestRedirect, URLRewrite and RequestMirror are compiled into the
//   decision (filters.ts applies them per request).
// - An invalid rule (unsupported filter, bad value) is dropped and reported ("Dropped Rule",
//   PartiallyInvalid); a route left without rules is not attached (Accepted=False). A filter the spec
//   forbids skipping (ExtensionRef, ExternalAuth) instead keeps the rule, answering 500.
// - A backendRef to a missing Service, port or another kind keeps its weight and fails its share.
import { describeValue, isMissing, isRecord } from '../mesh/fields.js';
import type { KubeObject, MeshService, MeshSnapshot, ServicePort } from '../mesh/types.js';
import { parseGrpcRule } from './grpc-rules.js';
import { parseHttpRule } from './http-rules.js';
import { compareGrpc, compareHttp, compareOrigin, type MatchOrigin } from './precedence.js';
import { RouteReport, RuleProblems, describeRoute, type BackendFailure } from './report.js';
import type { ParsedRule, ServiceLookup } from './rule-fields.js';
import type {
  CompiledRoutes,
  GrpcMatch,
  HttpMatch,
  RouteCondition,
  RouteDecision,
  RouteEntry,
  RouteKind,
  RouteParentStatus,
  RouteRef,
  RouteSet,
  RouteStatus,
  RouteTable,
  RouteWarning,
  ServiceParentRef,
} from './types.js';

/** What compiling reads from a snapshot. */
export type RouteSource = Pick<MeshSnapshot, 'version' | 'others' | 'service'>;

export const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1';
const DEFAULT_NAMESPACE = 'default';
const SPEC_FIELDS = ['parentRefs', 'hostnames', 'rules'];
const NO_BACKENDS: RouteDecision['backends'] = Object.freeze([]);

type AnyRule = ParsedRule<HttpMatch> | ParsedRule<GrpcMatch>;

export interface ParsedRoute {
  readonly ref: RouteRef;
  readonly origin: Pick<MatchOrigin, 'created' | 'key'>;
  readonly report: RouteReport;
  readonly parentRefs: readonly unknown[];
  /** Rules that are programmed (a fail-closed rule with its backends removed). */
  readonly rules: readonly AnyRule[];
  /** `Dropped Rule N: reason` for each rule left out. */
  readonly dropped: readonly string[];
  readonly unresolved: readonly BackendFailure[];
}

/** One Service port a route attaches to through one of its parentRefs. */
interface Attachment {
  readonly route: ParsedRoute;
  readonly parent: number;
  readonly service: MeshService;
  readonly port: ServicePort;
}

/** Compiles every route in the snapshot; never throws. */
export function compileRoutes(source: RouteSource): CompiledRoutes {
  const services: ServiceLookup = (namespace, name) => source.service(namespace, name);
  const routes = parseRoutes(source);

  const parents = new Map<ParsedRoute, Map<number, ParentState>>();
  const attachments: Attachment[] = [];
  for (const route of routes) parents.set(route, resolveParents(route, services, attachments));

  const tables = buildTables(attachments, parents);
  const statuses = routes.map((route) => routeStatus(route, parents.get(route) ?? new Map()));
  const warnings: RouteWarning[] = routes.flatMap((r) => r.report.warnings);
  return new Compiled(source.version, tables, warnings, statuses);
}

/**
 * Every HTTPRoute and GRPCRoute of the source, parsed (rules checked, backends resolved), oldest
 * first. The hook the Gateway compiler (gateway.ts) shares: it attaches the same parsed routes to
 * listeners instead of Services, then ranks them with rankRoutes.
 */
export function parseRoutes(source: RouteSource): ParsedRoute[] {
  const services: ServiceLookup = (namespace, name) => source.service(namespace, name);
  return source.others
    .filter((o) => o.apiVersion === GATEWAY_API_VERSION && (o.kind === 'HTTPRoute' || o.kind === 'GRPCRoute'))
    .map((o) => parseRoute(o, services))
    .sort((a, b) => compareOrigin({ ...a.origin, ruleIndex: 0, matchIndex: 0 }, { ...b.origin, ruleIndex: 0, matchIndex: 0 }) || (a.ref.kind < b.ref.kind ? -1 : 1));
}

function parseRoute(object: KubeObject, services: ServiceLookup): ParsedRoute {
  const kind = object.kind as RouteKind;
  const namespace = typeof object.metadata.namespace === 'string' && object.metadata.namespace !== '' ? object.metadata.namespace : DEFAULT_NAMESPACE;
  const name = object.metadata.name ?? '';
  const ref: RouteRef = Object.freeze({ kind, namespace, name });
  const report = new RouteReport(ref);
  const stamp = object.metadata['creationTimestamp'];
  const parsedStamp = typeof stamp === 'string' ? Date.parse(stamp) : Number.NaN;
  const origin = { created: Number.isFinite(parsedStamp) ? parsedStamp : Number.POSITIVE_INFINITY, key: `${namespace}/${name}` };
  const spec = isRecord(object['spec']) ? object['spec'] : {};
  for (const key of Object.keys(spec)) {
    if (!SPEC_FIELDS.includes(key)) report.warn(`spec.${key} is not a field tsmesh knows (ignored)`);
  }
  const hostnames = spec['hostnames'];
  const serviceParent = Array.isArray(spec['parentRefs']) && spec['parentRefs'].some((p) => isRecord(p) && p['kind'] === 'Service');
  if (serviceParent && Array.isArray(hostnames) && hostnames.length > 0) {
    report.warn('spec.hostnames has no effect on routes attached to Services (GAMMA); match the Host header instead (ignored)');
  }
  const parentRefs = Array.isArray(spec['parentRefs']) ? spec['parentRefs'] : [];
  let rawRules: readonly unknown[] = [{}]; // the API server's default: one rule matching everything
  if (Array.isArray(spec['rules']) && spec['rules'].length > 0) rawRules = spec['rules'];
  else if (!isMissing(spec['rules']) && !Array.isArray(spec['rules'])) {
    report.warn(`spec.rules must be a list, got ${describeValue(spec['rules'])} (route not attached)`);
    rawRules = [];
  }

  const rules: AnyRule[] = [];
  const dropped: string[] = [];
  const unresolved: BackendFailure[] = [];
  rawRules.forEach((raw, index) => {
    const problems = new RuleProblems(report, index);
    const rule = kind === 'HTTPRoute' ? parseHttpRule(raw, namespace, services, problems) : parseGrpcRule(raw, namespace, services, problems);
    if (rule === undefined && problems.drops.length === 0) problems.drop('is invalid');
    if (!problems.settle() || rule === undefined) {
      dropped.push(`Dropped Rule ${index}: ${problems.drops.join('; ')}`);
      return;
    }
    unresolved.push(...problems.backendFailures);
    for (const failure of problems.failures) unresolved.push({ reason: 'InvalidKind', message: `rule ${index} ${failure}` });
    rules.push(problems.failures.length > 0 ? { ...rule, backends: NO_BACKENDS } : rule);
  });
  return { ref, origin, report, parentRefs, rules, dropped, unresolved };
}

/** What became of one parentRef that names an existing Service. */
interface ParentState {
  readonly parentRef: ServiceParentRef;
  /** Why it cannot attach (headless Service, no such port), as a NoMatchingParent message. */
  problem: string | undefined;
  attachedPorts: number;
  conflicts: string[];
}

/** Finds the Service ports each parentRef names and records the attachments; reports the rest. */
function resolveParents(route: ParsedRoute, services: ServiceLookup, attachments: Attachment[]): Map<number, ParentState> {
  const states = new Map<number, ParentState>();
  const seen = new Set<ServicePort>();
  route.parentRefs.forEach((raw, i) => {
    if (!isRecord(raw)) return;
    const at = `parentRefs[${i}]`;
    // ParentReference defaults to kind Gateway: those belong to an ingress controller, not the mesh.
    if ((raw['kind'] ?? 'Gateway') !== 'Service') return;
    const group = raw['group'];
    if (!isMissing(group) && group !== '' && group !== 'core') {
      return route.report.warn(`${at} names kind Service in group ${describeValue(group)}; only core Services are mesh parents (not attached)`);
    }
    const namespace = typeof raw['namespace'] === 'string' && raw['namespace'] !== '' ? raw['namespace'] : route.ref.namespace;
    const name = typeof raw['name'] === 'string' ? raw['name'] : '';
    const port = raw['port'];
    const sectionName = raw['sectionName'];
    if (!isMissing(port) && !(typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535)) {
      return route.report.warn(`${at}.port must be an integer from 1 to 65535, got ${describeValue(port)} (not attached)`);
    }
    if (!isMissing(sectionName) && typeof sectionName !== 'string') {
      return route.report.warn(`${at}.sectionName must be a Service port name, got ${describeValue(sectionName)} (not attached)`);
    }
    const service = services(namespace, name);
    if (service === undefined) return route.report.warn(`${at} refers to Service ${namespace}/${name}, which does not exist (not attached)`);
    const state: ParentState = {
      parentRef: Object.freeze({ namespace, name, port: port ?? undefined, sectionName: sectionName ?? undefined }),
      problem: undefined,
      attachedPorts: 0,
      conflicts: [],
    };
    states.set(i, state);
    if (route.rules.length === 0) return;
    if (service.headless) {
      state.problem = `Service ${namespace}/${name} is headless: it has no cluster IP whose traffic routes could take`;
      return route.report.warn(`${at}: ${state.problem} (not attached)`);
    }
    // Routes carry TCP streams; a UDP or SCTP port of the same number is not theirs.
    const ports = service.ports.filter((p) => p.protocol === 'TCP' && (port ?? p.port) === p.port && (sectionName ?? p.name) === p.name);
    if (ports.length === 0) {
      const wanted = [port === undefined || port === null ? '' : `port ${port}`, typeof sectionName === 'string' ? `port name ${describeValue(sectionName)}` : ''].filter((s) => s !== '').join(' and ');
      state.problem = `Service ${namespace}/${name} has no TCP port with ${wanted || 'any number'}`;
      return route.report.warn(`${at}: ${state.problem} (not attached)`);
    }
    for (const servicePort of ports) {
      if (seen.has(servicePort)) continue; // two parentRefs naming the same port attach once
      seen.add(servicePort);
      state.attachedPorts++;
      attachments.push({ route, parent: i, service, port: servicePort });
    }
  });
  return states;
}

/** Groups attachments by Service port and client scope, settles kind conflicts, orders entries. */
function buildTables(attachments: readonly Attachment[], parents: Map<ParsedRoute, Map<number, ParentState>>): RouteTable[] {
  // Service port → scope ('' for producer routes, else the consumer namespace) → attachments.
  const byPort = new Map<ServicePort, { service: MeshService; scopes: Map<string, Attachment[]> }>();
  for (const attachment of attachments) {
    let entry = byPort.get(attachment.port);
    if (entry === undefined) byPort.set(attachment.port, (entry = { service: attachment.service, scopes: new Map() }));
    const scope = attachment.route.ref.namespace === attachment.service.namespace ? '' : attachment.route.ref.namespace;
    const group = entry.scopes.get(scope);
    if (group === undefined) entry.scopes.set(scope, [attachment]);
    else group.push(attachment);
  }

  const tables: RouteTable[] = [];
  for (const [port, { service, scopes }] of byPort) {
    let producer: RouteSet | undefined;
    const consumers = new Map<string, RouteSet>();
    for (const scope of [...scopes.keys()].sort()) {
      const set = routeSet(scopes.get(scope) ?? [], service, port, parents);
      if (scope === '') producer = set;
      else consumers.set(scope, set);
    }
    tables.push(Object.freeze({ namespace: service.namespace, name: service.name, port: port.port, portName: port.name, producer, consumers }));
  }
  return tables.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : a.port - b.port));
}

/** Merges the routes of one group; GRPCRoutes take the port when both kinds attach to it. */
function routeSet(group: readonly Attachment[], service: MeshService, port: ServicePort, parents: Map<ParsedRoute, Map<number, ParentState>>): RouteSet {
  const kind: RouteKind = group.some((a) => a.route.ref.kind === 'GRPCRoute') ? 'GRPCRoute' : 'HTTPRoute';
  const winners = group.filter((a) => a.route.ref.kind === kind);
  for (const loser of group.filter((a) => a.route.ref.kind !== kind)) {
    const grpc = winners.map((w) => describeRoute(w.route.ref)).join(', ');
    const message = `GRPCRoute takes precedence over HTTPRoute on Service ${service.namespace}/${service.name} port ${port.port} (held by ${grpc})`;
    parents.get(loser.route)?.get(loser.parent)?.conflicts.push(message);
    loser.route.report.warn(`parentRefs[${loser.parent}]: ${message} (not attached there)`);
  }

  return rankRoutes(kind, [...new Set(winners.map((a) => a.route))]);
}

/** Merges routes of one kind into a RouteSet: every match of every rule, highest precedence first. */
export function rankRoutes(kind: RouteKind, routes: readonly ParsedRoute[]): RouteSet {
  const ranked: { entry: RouteEntry; origin: MatchOrigin }[] = [];
  for (const route of routes) {
    for (const rule of route.rules) {
      rule.matches.forEach((match, matchIndex) => {
        const decision: RouteDecision = Object.freeze({
          route: route.ref,
          ruleIndex: rule.index,
          ruleName: rule.name,
          matchIndex,
          backends: Object.freeze(rule.backends),
          timeouts: rule.timeouts,
          retry: rule.retry,
          requestHeaderModifier: rule.requestHeaderModifier,
          responseHeaderModifier: rule.responseHeaderModifier,
          redirect: rule.redirect,
          urlRewrite: rule.urlRewrite,
          mirrors: rule.mirrors.length > 0 ? rule.mirrors : undefined,
          matchedPrefix: replacesPrefix(rule) && 'path' in match && match.path.type === 'PathPrefix' ? match.path.prefix : undefined,
          sessionPersistence: rule.sessionPersistence,
        });
        const entry = Object.freeze({ kind, match, decision } as RouteEntry);
        ranked.push({ entry, origin: { ...route.origin, ruleIndex: rule.index, matchIndex } });
      });
    }
  }
  ranked.sort((a, b) =>
    a.entry.kind === 'HTTPRoute' && b.entry.kind === 'HTTPRoute'
      ? compareHttp(a.entry.match, a.origin, b.entry.match, b.origin)
      : compareGrpc(a.entry.match as GrpcMatch, a.origin, b.entry.match as GrpcMatch, b.origin),
  );
  return Object.freeze({
    kind,
    routes: Object.freeze(routes.map((r) => r.ref)),
    entries: Object.freeze(ranked.map((r) => r.entry)),
  });
}

/** Whether a rule's redirect or rewrite replaces the matched PathPrefix (the decision then carries it). */
function replacesPrefix(rule: AnyRule): boolean {
  return rule.redirect?.path?.type === 'ReplacePrefixMatch' || rule.urlRewrite?.path?.type === 'ReplacePrefixMatch';
}

/** The Gateway API conditions of a route for each Service parent that exists. */
function routeStatus(route: ParsedRoute, states: Map<number, ParentState>): RouteStatus {
  const parents: RouteParentStatus[] = [];
  for (const state of states.values()) {
    const conditions: RouteCondition[] = [accepted(route, state)];
    const failure = route.unresolved[0];
    conditions.push(
      failure === undefined
        ? condition('ResolvedRefs', 'True', 'ResolvedRefs', 'All references resolved')
        : condition('ResolvedRefs', 'False', failure.reason, route.unresolved.map((f) => f.message).join('; ')),
    );
    // Only set while some rules are programmed and some dropped; the message must start "Dropped Rule".
    if (route.dropped.length > 0 && route.rules.length > 0) {
      conditions.push(condition('PartiallyInvalid', 'True', 'UnsupportedValue', route.dropped.join('; ')));
    }
    parents.push(Object.freeze({ parentRef: state.parentRef, conditions: Object.freeze(conditions) }));
  }
  return Object.freeze({ route: route.ref, parents: Object.freeze(parents) });
}

function accepted(route: ParsedRoute, state: ParentState): RouteCondition {
  if (route.rules.length === 0) {
    return condition('Accepted', 'False', 'UnsupportedValue', route.dropped.length > 0 ? route.dropped.join('; ') : 'The route has no rules');
  }
  if (state.problem !== undefined) return condition('Accepted', 'False', 'NoMatchingParent', state.problem);
  if (state.attachedPorts > 0 && state.conflicts.length >= state.attachedPorts) {
    return condition('Accepted', 'False', 'Conflicted', state.conflicts.join('; '));
  }
  return condition('Accepted', 'True', 'Accepted', 'Route attached to the Service');
}

function condition(type: RouteCondition['type'], status: RouteCondition['status'], reason: string, message: string): RouteCondition {
  return Object.freeze({ type, status, reason, message });
}

class Compiled implements CompiledRoutes {
  readonly tables: readonly RouteTable[];
  readonly warnings: readonly RouteWarning[];
  readonly statuses: readonly RouteStatus[];
  /** namespace → name → port → table: no string building per lookup. */
  private readonly index = new Map<string, Map<string, Map<number, RouteTable>>>();

  constructor(
    readonly version: string,
    tables: readonly RouteTable[],
    warnings: readonly RouteWarning[],
    statuses: readonly RouteStatus[],
  ) {
    this.tables = Object.freeze(tables);
    this.warnings = Object.freeze(warnings);
    this.statuses = Object.freeze(statuses);
    for (const table of tables) {
      let names = this.index.get(table.namespace);
      if (names === undefined) this.index.set(table.namespace, (names = new Map()));
      let ports = names.get(table.name);
      if (ports === undefined) names.set(table.name, (ports = new Map()));
      ports.set(table.port, table);
    }
    Object.freeze(this);
  }

  table(namespace: string, name: string, port: number): RouteTable | undefined {
    return this.index.get(namespace)?.get(name)?.get(port);
  }
}
