// Outbound routing at request level (GAMMA): an HTTPRoute/GRPCRoute attached to the Service the
// client addressed picks the rule, then a weighted backend Service, whose cluster balances the
// request. Without an attached route, the addressed Service itself is the backend. Weighted
// backends are picked by smooth weighted round-robin (common/src/routing/weights.ts). Routes are
// compiled once per mesh snapshot; every request reads the current compilation, so a weight
// change applies to connections that are already open.
//
// Where routes apply, rules match one normalised view of the request (requestView: dot segments
// removed, slashes merged, unreserved characters decoded, encoded slashes refused; Host from
// `:authority` without case or port), and that normalised path is what the endpoint receives.
// Route filters are turned into the target here: a redirect's Location, a rewritten path and host,
// response header edits and the sampled mirrors (common/src/routing/filters.ts does the path work).
import {
  compileRoutes,
  err,
  logger,
  matchHttp,
  pickBackend,
  ok,
  redirectLocation,
  requestView,
  rewritePath,
  routeSetFor,
  TsmeshError,
  withQuery,
  type CompiledRoutes,
  type HeaderModifier,
  type MeshSnapshot,
  type RequestMirror,
  type Result,
  type RouteDecision,
  type RouteTable,
  type RouteWarning,
  type SessionPersistence,
} from '@tsmesh/common';
import type { HeaderEdit, HttpRequestInfo, HttpRouteTarget, MirrorTarget } from '../http/context.js';
import { SessionAffinity } from '../balance/session.js';
import type { UpstreamSelector } from '../upstream/selector.js';
import { PROXY_ERRORS } from '../errors.js';
import { retryPolicyOf } from '../upstream/retry.js';
import type { ClusterEntry, ServiceClusters } from './clusters.js';

const log = logger('outbound.route');

function toEdit(mod: HeaderModifier | undefined): HeaderEdit | undefined {
  if (!mod) return undefined;
  return {
    set: mod.set.map((h) => [h.name, h.value] as const),
    add: mod.add.map((h) => [h.name, h.value] as const),
    remove: mod.remove,
  };
}

/** Where a request's route table comes from instead of the mesh's Service tables (`tsmesh gateway`'s listeners, gateway/tables.ts). */
export interface RouteTables {
  /** Compiles a snapshot's routes; returns the warnings to log. */
  update(snapshot: MeshSnapshot): readonly RouteWarning[];
  table(entry: ClusterEntry, authority: string): RouteTable | undefined;
}

export class OutboundRouter {
  private routes: CompiledRoutes | undefined;
  /** Per rule sessionPersistence (one object per compilation), the backend selectors that bind with it. */
  private readonly ruleSessions = new WeakMap<SessionPersistence, WeakMap<UpstreamSelector, UpstreamSelector>>();

  constructor(
    private readonly clusters: ServiceClusters,
    /** The namespace of this sidecar's workload: selects consumer routes. */
    private readonly clientNamespace: string,
    private readonly tables?: RouteTables,
  ) {}

  update(snapshot: MeshSnapshot): void {
    const warnings = this.tables ? this.tables.update(snapshot) : (this.routes = compileRoutes(snapshot)).warnings;
    for (const w of warnings) log.warn({ route: `${w.route.kind} ${w.route.namespace}/${w.route.name}`, version: snapshot.version }, w.message);
  }

  /** The per-request router for connections addressed to `entry`'s Service port. */
  routerFor(entry: ClusterEntry): (req: HttpRequestInfo) => Result<HttpRouteTarget, TsmeshError> {
    // Without a route, the Service's default retry (TrafficPolicy `retry`) applies.
    const direct = ok<HttpRouteTarget>({ selector: entry.selector, retry: retryPolicyOf(undefined, entry.policy.retry) });
    return (req) => {
      const table = this.tables ? this.tables.table(entry, req.authority) : this.routes?.table(entry.service.namespace, entry.service.name, entry.port.port);
      if (!table || !routeSetFor(table, this.clientNamespace)) return direct;
      const view = requestView({ method: req.method, target: req.url, authority: req.authority, header: (n) => req.header(n) }, this.clientNamespace);
      if (!view.ok) return err(new TsmeshError(PROXY_ERRORS.BAD_REQUEST, `routes of ${entry.key} cannot read ${req.method} ${req.url}: ${view.reason}`));
      const decision = matchHttp(table, view.request);
      if (!decision) return err(new TsmeshError(PROXY_ERRORS.NO_ROUTE, `no route rule of ${entry.key} matches ${req.method} ${view.request.path}`));
      const routeName = `${decision.route.namespace}/${decision.route.name}#${decision.ruleIndex}`;
      const query = queryOf(view.target);
      const responseHeaders = toEdit(decision.responseHeaderModifier);
      if (decision.redirect) {
        const location = redirectLocation(decision.redirect, {
          scheme: 'http',
          authority: req.authority,
          fallbackHost: `${entry.service.name}.${entry.service.namespace}.svc`,
          path: view.request.path,
          query,
          servicePort: entry.port.port,
          matchedPrefix: decision.matchedPrefix,
        });
        if (location === undefined) return err(new TsmeshError(PROXY_ERRORS.BAD_REQUEST, `route ${routeName} cannot redirect ${view.request.path}`));
        return ok({ selector: entry.selector, redirect: { status: decision.redirect.statusCode, location }, responseHeaders, routeName });
      }
      // The endpoint gets the path the rule matched (or its rewrite); an unchanged target is forwarded as received.
      let path = view.target === req.url ? undefined : view.target;
      const rewrite = decision.urlRewrite;
      if (rewrite?.path) {
        const rewritten = rewritePath(view.request.path, rewrite.path, decision.matchedPrefix);
        if (rewritten === undefined) return err(new TsmeshError(PROXY_ERRORS.BAD_REQUEST, `route ${routeName} cannot rewrite ${view.request.path}`));
        path = withQuery(rewritten, query);
      }
      const backend = pickBackend(decision.backends);
      const cluster = backend && !backend.problem && backend.port !== undefined ? this.clusters.get(`${backend.namespace}/${backend.name}:${backend.port}`) : undefined;
      const timeoutMs = decision.timeouts.requestMs || undefined;
      const tryTimeoutMs = decision.timeouts.backendRequestMs || undefined;
      if (!cluster) return ok({ selector: entry.selector, directStatus: 500, routeName });
      // The rule's own retry wins whole over the backend Service's default.
      const retry = retryPolicyOf(decision.retry, cluster.policy.retry);
      return ok({
        selector: decision.sessionPersistence ? this.sessionSelector(decision.sessionPersistence, cluster) : cluster.selector,
        timeoutMs,
        tryTimeoutMs,
        retry,
        requestHeaders: toEdit(decision.requestHeaderModifier),
        routeName,
        path,
        authority: rewrite?.hostname,
        responseHeaders,
        mirrors: decision.mirrors ? this.mirrorsOf(decision) : undefined,
      });
    };
  }

  /**
   * `cluster`'s selector with the rule's session persistence in place of the Service's: the same
   * endpoints, health and tokens (a token names an endpoint of the cluster, whoever issued it).
   * Made once per rule, backend and compilation.
   */
  private sessionSelector(settings: SessionPersistence, cluster: ClusterEntry): UpstreamSelector {
    let bySelector = this.ruleSessions.get(settings);
    if (bySelector === undefined) this.ruleSessions.set(settings, (bySelector = new WeakMap()));
    let selector = bySelector.get(cluster.selector);
    if (selector === undefined) {
      selector = Object.create(cluster.selector, { session: { value: new SessionAffinity(cluster.key, settings), enumerable: true } }) as UpstreamSelector;
      bySelector.set(cluster.selector, selector);
    }
    return selector;
  }

  /** The mirror clusters this request is copied to: each mirror samples its share of requests on its own. */
  private mirrorsOf(decision: RouteDecision): readonly MirrorTarget[] | undefined {
    let out: MirrorTarget[] | undefined;
    for (const mirror of decision.mirrors ?? []) {
      if (mirror.problem || mirror.port === undefined || !sampled(mirror)) continue;
      const key = `${mirror.namespace}/${mirror.name}:${mirror.port}`;
      const cluster = this.clusters.get(key);
      if (cluster) (out ??= []).push({ selector: cluster.selector, cluster: key });
    }
    return out;
  }
}

function sampled(mirror: RequestMirror): boolean {
  if (mirror.numerator >= mirror.denominator) return true;
  return mirror.numerator > 0 && Math.random() * mirror.denominator < mirror.numerator;
}

/** The query string of a request target, as sent; undefined when there is none. */
function queryOf(target: string): string | undefined {
  const q = target.indexOf('?');
  return q < 0 ? undefined : target.slice(q + 1);
}
