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
import {
  compileRoutes,
  err,
  logger,
  matchHttp,
  pickBackend,
  ok,
  requestView,
  routeSetFor,
  TsmeshError,
  type CompiledRoutes,
  type HeaderModifier,
  type MeshSnapshot,
  type Result,
} from '@tsmesh/common';
import type { HeaderEdit, HttpRequestInfo, HttpRouteTarget } from '../http/context.js';
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

export class OutboundRouter {
  private routes: CompiledRoutes | undefined;

  constructor(
    private readonly clusters: ServiceClusters,
    /** The namespace of this sidecar's workload: selects consumer routes. */
    private readonly clientNamespace: string,
  ) {}

  update(snapshot: MeshSnapshot): void {
    this.routes = compileRoutes(snapshot);
    for (const w of this.routes.warnings) log.warn({ route: `${w.route.kind} ${w.route.namespace}/${w.route.name}`, version: snapshot.version }, w.message);
  }

  /** The per-request router for connections addressed to `entry`'s Service port. */
  routerFor(entry: ClusterEntry): (req: HttpRequestInfo) => Result<HttpRouteTarget, TsmeshError> {
    // Without a route, the Service's default retry (TrafficPolicy `retry`) applies.
    const direct = ok<HttpRouteTarget>({ selector: entry.selector, retry: retryPolicyOf(undefined, entry.policy.retry) });
    return (req) => {
      const table = this.routes?.table(entry.service.namespace, entry.service.name, entry.port.port);
      if (!table || !routeSetFor(table, this.clientNamespace)) return direct;
      const view = requestView({ method: req.method, target: req.url, authority: req.authority, header: (n) => req.header(n) }, this.clientNamespace);
      if (!view.ok) return err(new TsmeshError(PROXY_ERRORS.BAD_REQUEST, `routes of ${entry.key} cannot read ${req.method} ${req.url}: ${view.reason}`));
      const decision = matchHttp(table, view.request);
      if (!decision) return err(new TsmeshError(PROXY_ERRORS.NO_ROUTE, `no route rule of ${entry.key} matches ${req.method} ${view.request.path}`));
      // The endpoint gets the path the rule matched; an unchanged target is forwarded as received.
      const path = view.target === req.url ? undefined : view.target;
      const routeName = `${decision.route.namespace}/${decision.route.name}#${decision.ruleIndex}`;
      const backend = pickBackend(decision.backends);
      const cluster = backend && !backend.problem && backend.port !== undefined ? this.clusters.get(`${backend.namespace}/${backend.name}:${backend.port}`) : undefined;
      const timeoutMs = decision.timeouts.requestMs || undefined;
      const tryTimeoutMs = decision.timeouts.backendRequestMs || undefined;
      if (!cluster) return ok({ selector: entry.selector, directStatus: 500, routeName });
      // The rule's own retry wins whole over the backend Service's default.
      const retry = retryPolicyOf(decision.retry, cluster.policy.retry);
      return ok({ selector: cluster.selector, timeoutMs, tryTimeoutMs, retry, requestHeaders: toEdit(decision.requestHeaderModifier), routeName, path });
    };
  }
}
