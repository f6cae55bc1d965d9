// Compiles the Gateways of one controller (GatewayClass `controllerName`) and the HTTPRoutes,
// GRPCRoutes and TLSRoutes attached to them into what `tsmesh gateway` serves: per port, the
// listeners (with their certificates) and one RouteTable per hostname (HTTP, HTTPS) or one
// weighted backend set per server name (TLS passthrough), plus the Gateway API status of each
// route parent and listener. Routes are parsed and ranked by the mesh's own compiler (compile.ts), so a
// rule behaves the same behind a Gateway as behind a Service. Pure, like compileRoutes.
//
// Attachment (Gateway API spec): a parentRef of kind Gateway (the default) names a Gateway, and
// optionally one listener (`sectionName`) or port; among those listeners the route attaches to
// each whose `allowedRoutes` admit its kind and namespace and whose hostname intersects the
// route's `hostnames`. Backends in another namespace need a ReferenceGrant there.
import { isRecord, isMissing, describeValue } from '../mesh/fields.js';
import { GATEWAY_GROUP, isGatewayHostname, selectorMatches, type MeshGateway, type MeshListener, type MeshReferenceGrant } from '../mesh/kinds/gateway.js';
import type { MeshSecret } from '../mesh/kinds/secret.js';
import { validateObject } from '../mesh/objects.js';
import { parseRoutes, rankRoutes, type ParsedRoute, type RouteSource } from './compile.js';
import { parseTlsRoutes, type ParsedTlsRoute, type TlsRouteRef } from './gateway-tls.js';
import type { BackendFailure } from './report.js';
import type { RouteCondition, RouteKind, RouteRef, RouteSet, RouteTable, RouteWarning, WeightedBackend } from './types.js';

export const GATEWAY_CONTROLLER = 'tsmesh.io/gateway-controller';
/** The route kinds a Gateway may attach: the mesh's HTTP kinds, and TLSRoute for passthrough. */
export type GatewayRouteKind = RouteKind | 'TLSRoute' | 'TCPRoute';
export type GatewayRouteRef = RouteRef | TlsRouteRef;
const SUPPORTED_ROUTE_KINDS: Readonly<Record<string, readonly GatewayRouteKind[]>> = { HTTP: ['HTTPRoute', 'GRPCRoute'], HTTPS: ['HTTPRoute', 'GRPCRoute'], TLS: ['TLSRoute'], TCP: ['TCPRoute'] };

/** A Gateway API condition (route parent, listener or Gateway). */
export interface GatewayCondition {
  readonly type: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

/** A certificate an HTTPS listener presents: the PEM chain and key of a kubernetes.io/tls Secret. */
export interface ListenerCertificate {
  readonly secret: string; // namespace/name
  readonly cert: string;
  readonly key: string;
  /** The certificate's DNS subjectAltNames, lower-case (may hold `*.` wildcards). */
  readonly dnsNames: readonly string[];
}

export interface CompiledListener {
  readonly gateway: string; // namespace/name
  readonly name: string;
  readonly port: number;
  readonly protocol: MeshListener['protocol'];
  readonly hostname: string | undefined;
  /** HTTPS: the certificates that resolved (none: the listener is not programmed). */
  readonly certificates: readonly ListenerCertificate[];
  readonly attachedRoutes: number;
  readonly conditions: readonly GatewayCondition[];
  /** Whether the proxy serves it (Programmed=True). */
  readonly programmed: boolean;
}

/** One HTTP or HTTPS port the gateway listens on: its listeners (all of one protocol) and the routes by hostname. */
export interface HttpGatewayPort {
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly listeners: readonly CompiledListener[];
  /** The RouteTable for a request's host (lower-case, no port): never undefined, an empty one answers 404. */
  table(host: string): RouteTable;
}

/** What a passthrough connection goes to: the weighted backends of the TLSRoute its server name picked. */
export interface TlsDestination {
  readonly route: TlsRouteRef;
  /** Never empty; a backend with a `problem` (or all of weight 0) refuses the connection. */
  readonly backends: readonly WeightedBackend[];
}

/** One port of TLS Passthrough listeners, routed by the ClientHello's server name. */
export interface TlsGatewayPort {
  readonly port: number;
  readonly protocol: 'TLS';
  readonly listeners: readonly CompiledListener[];
  /**
   * TLS: the destination for a server name (lower-case): exact, then the longest wildcard, then
   * any; undefined: refuse. TCP: the oldest TCPRoute's, whatever the name.
   */
  destination(serverName: string): TlsDestination | undefined;
}

/** One port of TCP listeners: the port alone picks the route (the argument is ignored). */
export interface TcpGatewayPort extends Omit<TlsGatewayPort, 'protocol'> {
  readonly protocol: 'TCP';
}

/** A port whose connections are relayed whole: TLS Passthrough or TCP. */
export type StreamGatewayPort = TlsGatewayPort | TcpGatewayPort;
export type GatewayPort = HttpGatewayPort | StreamGatewayPort;

export interface GatewayParentRef {
  readonly group: string;
  readonly kind: 'Gateway';
  readonly namespace: string;
  readonly name: string;
  readonly sectionName: string | undefined;
  readonly port: number | undefined;
}

export interface GatewayRouteStatus {
  readonly route: GatewayRouteRef;
  readonly parents: readonly { readonly parentRef: GatewayParentRef; readonly controllerName: string; readonly conditions: readonly RouteCondition[] }[];
}

export interface CompiledGateways {
  readonly version: string;
  /** namespace/name of each Gateway served. */
  readonly gateways: readonly string[];
  readonly listeners: readonly CompiledListener[];
  readonly ports: readonly GatewayPort[];
  readonly routeStatuses: readonly GatewayRouteStatus[];
  readonly warnings: readonly RouteWarning[];
  /** Problems with the Gateways themselves (a class of another controller is not one). */
  readonly problems: readonly string[];
}

export interface GatewayCompileOptions {
  readonly controllerName?: string;
  /** Serve only this Gateway (`namespace/name`). */
  readonly only?: string;
}

type Source = RouteSource;

/** Compiles every Gateway of the controller in `source`; never throws. */
export function compileGateways(source: Source, options: GatewayCompileOptions = {}): CompiledGateways {
  const controller = options.controllerName ?? GATEWAY_CONTROLLER;
  const model = readModel(source);
  const problems: string[] = [];
  const ourClasses = new Set([...model.classes].filter(([, c]) => c === controller).map(([name]) => name));
  const gateways = model.gateways.filter((g) => ourClasses.has(g.gatewayClassName) && (options.only === undefined || options.only === `${g.namespace}/${g.name}`));
  if (options.only !== undefined && gateways.length === 0) problems.push(`Gateway ${options.only} is not in the mesh, or its GatewayClass is not one of controller ${controller}`);

  const listeners = new Map<MeshListener, ListenerState>();
  const byPort = new Map<number, ListenerState[]>();
  for (const gateway of gateways) {
    for (const listener of gateway.listeners) {
      const state = listenerState(gateway, listener, model);
      listeners.set(listener, state);
      const same = byPort.get(listener.port) ?? [];
      const first = same.find((s) => s.programmed);
      if (state.programmed && first && first.listener.protocol !== listener.protocol) {
        state.programmed = false;
        state.conditions.push(cond('Conflicted', 'True', 'ProtocolConflict', `port ${listener.port} is already served as ${first.listener.protocol} by listener ${first.gateway.namespace}/${first.gateway.name}/${first.listener.name}`));
      }
      same.push(state);
      byPort.set(listener.port, same);
    }
  }

  const specs = new Map(source.others.map((o) => [`${o.kind} ${o.metadata.namespace ?? 'default'}/${o.metadata.name ?? ''}`, o['spec']]));
  const httpRoutes = parseRoutes(source).map((r) => withGrants(r, model.grants, specs.get(`${r.ref.kind} ${r.ref.namespace}/${r.ref.name}`)));
  const tlsRoutes = parseTlsRoutes(source).map((r) => tlsWithGrants(r, model.grants));
  const routes: AttachableRoute[] = [...httpRoutes, ...tlsRoutes];
  const routeStatuses: GatewayRouteStatus[] = [];
  for (const route of routes) {
    const parents: GatewayRouteStatus['parents'][number][] = [];
    route.parentRefs.forEach((raw) => {
      const ref = gatewayParent(raw, route.ref.namespace);
      if (ref === undefined) return;
      const gateway = gateways.find((g) => g.namespace === ref.namespace && g.name === ref.name);
      if (gateway === undefined) return; // not ours: another controller writes its status
      parents.push({ parentRef: ref, controllerName: controller, conditions: attach(route, ref, gateway, listeners, model) });
    });
    if (parents.length > 0) routeStatuses.push(Object.freeze({ route: route.ref, parents: Object.freeze(parents) }));
  }

  const ports = [...byPort.entries()]
    .filter(([, states]) => states.some((s) => s.programmed))
    .sort(([a], [b]) => a - b)
    .map(([port, states]) => gatewayPort(port, states.filter((s) => s.programmed)));
  const compiledListeners = [...listeners.values()].map(finishListener);
  const attached = (r: AttachableRoute): boolean => routeStatuses.some((s) => s.route === r.ref);
  const warnings = httpRoutes.filter(attached).flatMap((r) => r.report.warnings);
  // TLSRoutes are not mesh routes (RouteWarning names only those): their warnings join the problems.
  problems.push(...tlsRoutes.filter(attached).flatMap((r) => r.warnings));
  return Object.freeze({
    version: source.version,
    gateways: Object.freeze(gateways.map((g) => `${g.namespace}/${g.name}`)),
    listeners: Object.freeze(compiledListeners),
    ports: Object.freeze(ports),
    routeStatuses: Object.freeze(routeStatuses),
    warnings: Object.freeze(warnings),
    problems: Object.freeze([...problems, ...model.problems]),
  });
}

interface Model {
  readonly classes: Map<string, string>;
  readonly gateways: readonly MeshGateway[];
  readonly grants: readonly MeshReferenceGrant[];
  readonly secrets: Map<string, MeshSecret>;
  readonly namespaceLabels: Map<string, Readonly<Record<string, string>>>;
  readonly problems: string[];
}

/** The Gateway kinds of the snapshot, validated (the mesh file already refused invalid ones). */
function readModel(source: Source): Model {
  const model: Model = { classes: new Map(), gateways: [], grants: [], secrets: new Map(), namespaceLabels: new Map(), problems: [] };
  const gateways: MeshGateway[] = [];
  const grants: MeshReferenceGrant[] = [];
  for (const object of source.others) {
    if (!['GatewayClass', 'Gateway', 'ReferenceGrant', 'Secret', 'Namespace'].includes(object.kind)) continue;
    const checked = validateObject(object);
    if (!checked.ok) {
      model.problems.push(checked.error.message);
      continue;
    }
    const v = checked.value;
    if (v.kind === 'GatewayClass') model.classes.set(v.value.name, v.value.controllerName);
    else if (v.kind === 'Gateway') gateways.push(v.value);
    else if (v.kind === 'ReferenceGrant') grants.push(v.value);
    else if (v.kind === 'Secret') model.secrets.set(`${v.value.namespace}/${v.value.name}`, v.value);
    else if (v.kind === 'Namespace') model.namespaceLabels.set(v.value.name, v.value.labels);
  }
  gateways.sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  return { ...model, gateways, grants };
}

/** Whether a ReferenceGrant in `toNamespace` lets `from` refer to the object `to`. */
export function referenceGranted(
  grants: readonly MeshReferenceGrant[],
  from: { group: string; kind: string; namespace: string },
  to: { group: string; kind: string; namespace: string; name: string },
): boolean {
  if (from.namespace === to.namespace) return true;
  return grants.some(
    (g) =>
      g.namespace === to.namespace &&
      g.from.some((f) => f.group === from.group && f.kind === from.kind && f.namespace === from.namespace) &&
      g.to.some((t) => t.group === to.group && t.kind === to.kind && (t.name === undefined || t.name === to.name)),
  );
}

/** What attaching a route to listeners reads of it, whatever its kind. */
interface AttachableRoute {
  readonly ref: GatewayRouteRef;
  readonly origin: { readonly created: number; readonly key: string };
  readonly parentRefs: readonly unknown[];
  readonly rules: readonly unknown[];
  readonly dropped: readonly string[];
  readonly unresolved: readonly BackendFailure[];
  readonly refused: readonly string[];
  readonly hostnames: readonly string[];
}

/** A TLSRoute with its grants checked (as GrantedRoute for the HTTP kinds). */
interface GrantedTlsRoute extends ParsedTlsRoute {
  readonly refused: readonly string[];
  readonly hostnames: readonly string[];
}

function tlsWithGrants(route: ParsedTlsRoute, grants: readonly MeshReferenceGrant[]): GrantedTlsRoute {
  const { hostnames, invalid } = hostnamesOf(route.spec);
  const warnings = [...route.warnings, ...invalid.map((bad) => `${route.ref.kind} ${route.ref.namespace}/${route.ref.name}: spec.hostnames entry ${bad} is not a hostname (RFC 1123, optionally starting with "*."; ignored)`)];
  const refused: string[] = [];
  const from = { group: GATEWAY_GROUP, kind: route.ref.kind, namespace: route.ref.namespace };
  const rules = route.rules.map((rule, index) => ({
    backends: rule.backends.map((b): WeightedBackend => {
      if (b.problem !== undefined || referenceGranted(grants, from, { group: '', kind: 'Service', namespace: b.namespace, name: b.name })) return b;
      refused.push(`rule ${index} backendRef Service ${b.namespace}/${b.name} is in another namespace and no ReferenceGrant there permits it`);
      return Object.freeze({ ...b, problem: 'RefNotPermitted' });
    }),
  }));
  return { ...route, rules, backends: Object.freeze(rules.flatMap((r) => r.backends)), warnings, refused, hostnames };
}

/** A route whose cross-namespace backends and mirrors without a ReferenceGrant are marked RefNotPermitted. */
interface GrantedRoute extends ParsedRoute {
  readonly refused: readonly string[];
  /** `spec.hostnames`, lower-case; invalid ones left out (and reported). */
  readonly hostnames: readonly string[];
}

function withGrants(route: ParsedRoute, grants: readonly MeshReferenceGrant[], spec: unknown): GrantedRoute {
  const { hostnames, invalid } = hostnamesOf(spec);
  for (const bad of invalid) route.report.warn(`spec.hostnames entry ${bad} is not a hostname (RFC 1123, optionally starting with "*."; ignored)`);
  const refused: string[] = [];
  const from = { group: GATEWAY_GROUP, kind: route.ref.kind, namespace: route.ref.namespace };
  const permitted = (namespace: string, name: string): boolean => referenceGranted(grants, from, { group: '', kind: 'Service', namespace, name });
  const rules = route.rules.map((rule) => {
    let changed = false;
    const backends = rule.backends.map((b): WeightedBackend => {
      if (b.problem !== undefined || permitted(b.namespace, b.name)) return b;
      changed = true;
      refused.push(`rule ${rule.index} backendRef Service ${b.namespace}/${b.name} is in another namespace and no ReferenceGrant there permits it`);
      return Object.freeze({ ...b, problem: 'RefNotPermitted' });
    });
    const mirrors = rule.mirrors.map((m) => (m.problem !== undefined || permitted(m.namespace, m.name) ? m : ((changed = true), Object.freeze({ ...m, problem: 'RefNotPermitted' as const }))));
    return changed ? { ...rule, backends, mirrors } : rule;
  });
  return { ...route, rules, refused, hostnames };
}

function gatewayParent(raw: unknown, routeNamespace: string): GatewayParentRef | undefined {
  if (!isRecord(raw)) return undefined;
  const kind = raw['kind'] ?? 'Gateway';
  const group = raw['group'] ?? GATEWAY_GROUP;
  if (kind !== 'Gateway' || group !== GATEWAY_GROUP) return undefined;
  const namespace = typeof raw['namespace'] === 'string' && raw['namespace'] !== '' ? raw['namespace'] : routeNamespace;
  const port = typeof raw['port'] === 'number' ? raw['port'] : undefined;
  const sectionName = typeof raw['sectionName'] === 'string' ? raw['sectionName'] : undefined;
  return Object.freeze({ group: GATEWAY_GROUP, kind: 'Gateway', namespace, name: typeof raw['name'] === 'string' ? raw['name'] : '', sectionName, port });
}

interface ListenerState {
  readonly gateway: MeshGateway;
  readonly listener: MeshListener;
  readonly kinds: readonly GatewayRouteKind[];
  readonly certificates: ListenerCertificate[];
  readonly conditions: GatewayCondition[];
  programmed: boolean;
  /** Host key ('' any, `*.suffix`, exact) → routes attached through this listener. */
  readonly hosts: Map<string, Set<AttachableRoute>>;
  readonly attached: Set<AttachableRoute>;
}

function listenerState(gateway: MeshGateway, listener: MeshListener, model: Model): ListenerState {
  const state: ListenerState = { gateway, listener, kinds: [], certificates: [], conditions: [], programmed: true, hosts: new Map(), attached: new Set() };
  const supported = SUPPORTED_ROUTE_KINDS[listener.protocol];
  const at = `listener ${listener.name} of Gateway ${gateway.namespace}/${gateway.name}`;
  // TLS is served in Passthrough mode only; HTTP and HTTPS never pass through.
  const passthrough = listener.tls?.mode === 'Passthrough';
  if (supported === undefined || passthrough !== (listener.protocol === 'TLS')) {
    state.programmed = false;
    state.conditions.push(cond('Accepted', 'False', 'UnsupportedProtocol', `${at}: protocol ${listener.protocol}${listener.tls ? ` (tls mode ${listener.tls.mode})` : ''} is not served by tsmesh gateway yet (HTTP, HTTPS, TLS with mode Passthrough and TCP are)`));
    return state;
  }
  const wanted = listener.allowedRoutes.kinds;
  const kinds = wanted === undefined ? supported : supported.filter((k) => wanted.some((w) => w.group === GATEWAY_GROUP && w.kind === k));
  (state.kinds as GatewayRouteKind[]).push(...kinds);
  const invalidKinds = (wanted ?? []).filter((w) => w.group !== GATEWAY_GROUP || !(supported as readonly string[]).includes(w.kind));
  const refProblems: GatewayCondition[] = [];
  if (invalidKinds.length > 0) refProblems.push(cond('ResolvedRefs', 'False', 'InvalidRouteKinds', `${at}: route kinds ${invalidKinds.map((k) => `${k.group}/${k.kind}`).join(', ')} are not supported on ${listener.protocol}`));
  if (listener.protocol === 'HTTPS') {
    for (const ref of listener.tls?.certificateRefs ?? []) {
      const namespace = ref.namespace ?? gateway.namespace;
      const name = `${namespace}/${ref.name}`;
      if (ref.group !== '' || ref.kind !== 'Secret') {
        refProblems.push(cond('ResolvedRefs', 'False', 'InvalidCertificateRef', `${at}: certificateRef ${ref.group}/${ref.kind} ${name} is not a core Secret`));
        continue;
      }
      if (!referenceGranted(model.grants, { group: GATEWAY_GROUP, kind: 'Gateway', namespace: gateway.namespace }, { group: '', kind: 'Secret', namespace, name: ref.name })) {
        refProblems.push(cond('ResolvedRefs', 'False', 'RefNotPermitted', `${at}: Secret ${name} is in another namespace and no ReferenceGrant there permits it`));
        continue;
      }
      const secret = model.secrets.get(name);
      if (secret?.tls === undefined) {
        refProblems.push(cond('ResolvedRefs', 'False', 'InvalidCertificateRef', `${at}: Secret ${name} ${secret ? 'is not of type kubernetes.io/tls' : 'does not exist'}`));
        continue;
      }
      state.certificates.push(Object.freeze({ secret: name, cert: secret.tls.cert, key: secret.tls.key, dnsNames: secret.tls.dnsNames }));
    }
    if (state.certificates.length === 0) state.programmed = false;
  }
  state.conditions.push(cond('Accepted', 'True', 'Accepted', `${at} is accepted`));
  state.conditions.push(refProblems[0] ?? cond('ResolvedRefs', 'True', 'ResolvedRefs', 'All references resolved'));
  if (refProblems.length > 1) state.conditions[state.conditions.length - 1] = { ...refProblems[0]!, message: refProblems.map((c) => c.message).join('; ') };
  return state;
}

function finishListener(state: ListenerState): CompiledListener {
  const conditions = [...state.conditions];
  if (state.conditions.some((c) => c.type === 'Accepted' && c.status === 'True')) {
    conditions.push(state.programmed ? cond('Programmed', 'True', 'Programmed', 'served') : cond('Programmed', 'False', 'Invalid', 'not served: see the other conditions'));
  }
  return Object.freeze({
    gateway: `${state.gateway.namespace}/${state.gateway.name}`,
    name: state.listener.name,
    port: state.listener.port,
    protocol: state.listener.protocol,
    hostname: state.listener.hostname,
    certificates: Object.freeze(state.certificates),
    attachedRoutes: state.attached.size,
    conditions: Object.freeze(conditions),
    programmed: state.programmed,
  });
}

/** The route's Accepted and ResolvedRefs conditions for one Gateway parent; records the attachments. */
function attach(route: AttachableRoute, ref: GatewayParentRef, gateway: MeshGateway, listeners: Map<MeshListener, ListenerState>, model: Model): RouteCondition[] {
  const resolved = resolvedRefs(route);
  const gw = `Gateway ${gateway.namespace}/${gateway.name}`;
  if (route.rules.length === 0) return [cond('Accepted', 'False', 'UnsupportedValue', route.dropped.join('; ') || 'The route has no rules'), resolved];
  const named = gateway.listeners.filter((l) => (ref.sectionName ?? l.name) === l.name && (ref.port ?? l.port) === l.port);
  if (named.length === 0) {
    const what = [ref.sectionName === undefined ? '' : `listener ${describeValue(ref.sectionName)}`, ref.port === undefined ? '' : `port ${ref.port}`].filter((s) => s !== '').join(' on ');
    return [cond('Accepted', 'False', 'NoMatchingParent', `${gw} has no ${what}`), resolved];
  }
  const allowed = named.filter((l) => {
    const state = listeners.get(l);
    return state !== undefined && state.kinds.includes(route.ref.kind) && namespaceAllowed(l, gateway.namespace, route.ref.namespace, model);
  });
  if (allowed.length === 0) {
    return [cond('Accepted', 'False', 'NotAllowedByListeners', `no listener of ${gw} admits ${route.ref.kind} from namespace ${route.ref.namespace} (allowedRoutes)`), resolved];
  }
  const routeHosts = route.hostnames;
  let matched = 0;
  for (const listener of allowed) {
    const hosts = intersectHostnames(listener.hostname, routeHosts);
    if (hosts.length === 0) continue;
    matched++;
    const state = listeners.get(listener);
    if (state === undefined) continue;
    state.attached.add(route);
    for (const host of hosts) {
      const set = state.hosts.get(host) ?? new Set();
      set.add(route);
      state.hosts.set(host, set);
    }
  }
  if (matched === 0) {
    return [cond('Accepted', 'False', 'NoMatchingListenerHostname', `no hostname of the route intersects a listener hostname of ${gw} (${allowed.map((l) => l.hostname ?? '*').join(', ')})`), resolved];
  }
  const conditions = [cond('Accepted', 'True', 'Accepted', `Route attached to ${gw}`), resolved];
  if (route.dropped.length > 0) conditions.push(cond('PartiallyInvalid', 'True', 'UnsupportedValue', route.dropped.join('; ')));
  return conditions;
}

function resolvedRefs(route: AttachableRoute): RouteCondition {
  if (route.refused.length > 0) return cond('ResolvedRefs', 'False', 'RefNotPermitted', route.refused.join('; '));
  const failure = route.unresolved[0];
  if (failure !== undefined) return cond('ResolvedRefs', 'False', failure.reason, route.unresolved.map((f) => f.message).join('; '));
  return cond('ResolvedRefs', 'True', 'ResolvedRefs', 'All references resolved');
}

function namespaceAllowed(listener: MeshListener, gatewayNamespace: string, routeNamespace: string, model: Model): boolean {
  const { from, selector } = listener.allowedRoutes;
  if (from === 'All') return true;
  if (from === 'Same') return routeNamespace === gatewayNamespace;
  if (selector === undefined) return false;
  // The API server labels every namespace with its name (kubernetes.io/metadata.name).
  const labels = { ...(model.namespaceLabels.get(routeNamespace) ?? {}), 'kubernetes.io/metadata.name': routeNamespace };
  return selectorMatches(selector, labels);
}


/**
 * The hostnames requests may carry for a route on a listener (Gateway API hostname intersection):
 * '' means any host. Empty: they do not intersect. A wildcard `*.a.b` covers one or more labels
 * before `.a.b`, never `a.b` itself.
 */
export function intersectHostnames(listener: string | undefined, route: readonly string[] | undefined): string[] {
  if (route === undefined || route.length === 0) return [listener ?? ''];
  if (listener === undefined) return [...new Set(route)];
  const out = new Set<string>();
  for (const host of route) {
    if (host === listener) out.add(host);
    else if (coveredBy(host, listener)) out.add(host);
    else if (coveredBy(listener, host)) out.add(listener);
  }
  return [...out];
}

/** Whether `pattern` (exact or `*.suffix`) covers every name `name` (exact or wildcard) stands for. */
export function coveredBy(name: string, pattern: string): boolean {
  if (!pattern.startsWith('*.')) return name === pattern;
  const suffix = pattern.slice(1); // `.a.b`
  return name.endsWith(suffix) && name.length > suffix.length && (name.startsWith('*.') ? name.length > pattern.length : true);
}

/** Oldest first, then by namespace/name: the Gateway API's order among conflicting routes. */
function byAge<R extends AttachableRoute>(routes: Iterable<R>): R[] {
  return [...routes].sort((a, b) => a.origin.created - b.origin.created || (a.origin.key < b.origin.key ? -1 : a.origin.key > b.origin.key ? 1 : 0));
}

/** Host key ('' any, `*.suffix`, exact) → the routes of every listener of the port attached for it. */
function hostsOf(states: readonly ListenerState[]): Map<string, Set<AttachableRoute>> {
  const hosts = new Map<string, Set<AttachableRoute>>();
  for (const state of states) {
    for (const [host, routes] of state.hosts) {
      const set = hosts.get(host) ?? new Set();
      for (const r of routes) set.add(r);
      hosts.set(host, set);
    }
  }
  return hosts;
}

/** Looks a host up in exact names, then wildcards (longest first), then the any-host entry. */
function hostLookup<T>(entries: ReadonlyMap<string, T>): (host: string) => T | undefined {
  const exact = new Map<string, T>();
  const wildcards: { suffix: string; value: T }[] = [];
  let any: T | undefined;
  for (const [host, value] of entries) {
    if (host === '') any = value;
    else if (host.startsWith('*.')) wildcards.push({ suffix: host.slice(1), value });
    else exact.set(host, value);
  }
  wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  return (host) => {
    const found = exact.get(host);
    if (found !== undefined) return found;
    for (const w of wildcards) if (host.endsWith(w.suffix) && host.length > w.suffix.length) return w.value;
    return any;
  };
}

const isTlsRoute = (r: AttachableRoute): r is GrantedTlsRoute => r.ref.kind === 'TLSRoute' || r.ref.kind === 'TCPRoute';
const isHttpRoute = (r: AttachableRoute): r is GrantedRoute => !isTlsRoute(r);

function tlsGatewayPort(port: number, states: readonly ListenerState[]): StreamGatewayPort {
  const destinations = new Map<string, TlsDestination>();
  for (const [host, routes] of hostsOf(states)) {
    // Several TLSRoutes for one server name: the oldest takes it (the spec's conflict resolution).
    const route = byAge([...routes].filter(isTlsRoute)).find((r) => r.backends.length > 0);
    if (route !== undefined) destinations.set(host, Object.freeze({ route: route.ref, backends: route.backends }));
  }
  const listeners = Object.freeze(states.map(finishListener));
  if (states[0]?.listener.protocol === 'TCP') {
    // TCPRoutes have no hostnames: every attached route is for any host; the oldest takes the port.
    const routes = byAge([...hostsOf(states).values()].flatMap((set) => [...set]).filter(isTlsRoute)).filter((r) => r.backends.length > 0);
    const first = routes[0];
    const only: TlsDestination | undefined = first && Object.freeze({ route: first.ref, backends: first.backends });
    return Object.freeze({ port, protocol: 'TCP', listeners, destination: () => only });
  }
  const lookup = hostLookup(destinations);
  return Object.freeze({
    port,
    protocol: 'TLS',
    listeners,
    destination: (serverName: string) => (serverName === '' ? undefined : lookup(serverName)),
  });
}

function gatewayPort(port: number, states: readonly ListenerState[]): GatewayPort {
  if (states[0]?.listener.protocol === 'TLS' || states[0]?.listener.protocol === 'TCP') return tlsGatewayPort(port, states);
  const protocol = states[0]?.listener.protocol === 'HTTPS' ? 'HTTPS' : 'HTTP';
  const gateway = states[0]?.gateway;
  const hosts = hostsOf(states);
  const table = (routes: Iterable<AttachableRoute>): RouteTable => {
    const list = byAge([...routes].filter(isHttpRoute));
    // HTTPRoutes and GRPCRoutes on one hostname: GRPCRoutes take it, as on a mesh Service (GEP-1426).
    const kind: RouteKind = list.some((r) => r.ref.kind === 'GRPCRoute') ? 'GRPCRoute' : 'HTTPRoute';
    const set: RouteSet = rankRoutes(kind, list.filter((r) => r.ref.kind === kind));
    return Object.freeze({ namespace: gateway?.namespace ?? '', name: gateway?.name ?? '', port, portName: '', producer: set, consumers: new Map() });
  };
  const lookup = hostLookup(new Map([...hosts].map(([host, routes]) => [host, table(routes)])));
  const empty = table([]);
  return Object.freeze({
    port,
    protocol,
    listeners: Object.freeze(states.map(finishListener)),
    table: (host: string): RouteTable => lookup(host) ?? empty,
  });
}

function cond(type: string, status: 'True' | 'False', reason: string, message: string): RouteCondition & GatewayCondition {
  return Object.freeze({ type, status, reason, message }) as RouteCondition & GatewayCondition;
}

/** Reads and checks `spec.hostnames` of a route object (for gateway attachment). */
export function hostnamesOf(spec: unknown): { hostnames: readonly string[]; invalid: readonly string[] } {
  const raw = isRecord(spec) ? spec['hostnames'] : undefined;
  if (isMissing(raw) || !Array.isArray(raw)) return { hostnames: [], invalid: [] };
  const hostnames: string[] = [];
  const invalid: string[] = [];
  for (const h of raw) {
    if (typeof h === 'string' && isGatewayHostname(h.toLowerCase())) hostnames.push(h.toLowerCase());
    else invalid.push(describeValue(h));
  }
  return { hostnames, invalid };
}
