// Outbound routing at request level (GAMMA): an HTTPRoute/GRPCRoute attached to the Service the
// client addressed picks the rule, then a weighted backend Service, whose cluster balances the
// request. Without an attached route, the addressed Service itself is the backend. Routes are
// compiled once per mesh snapshot; every request reads the current compilation, so a weight
// change applies to connections that are already open.
import {
  compileRoutes,
  err,
  logger,
  matchHttp,
  ok,
  routeSetFor,
  TsmeshError,
  type CompiledRoutes,
  type HeaderModifier,
  type MeshSnapshot,
  type Result,
  type WeightedBackend,
} from '@tsmesh/common';
import type { HeaderEdit, HttpRequestInfo, HttpRouteTarget } from '../http/context.js';
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

/**
 * Smooth weighted round-robin over a rule's backends: every pick adds each weight to its running
 * score and takes the highest, which then gives back the total. Over any window of `total` picks
 * each backend gets exactly its weight (50/50 alternates, 99/1 sends one in a hundred), where a
 * random pick only converges. The scores live beside the compiled rule (a WeakMap on its frozen
 * backend list), so a recompiled route starts fresh and no state outlives it.
 */
const scores = new WeakMap<readonly WeightedBackend[], number[]>();

export function pickWeighted(backends: readonly WeightedBackend[]): WeightedBackend | undefined {
  let total = 0;
  for (const b of backends) total += b.weight;
  if (total <= 0) return undefined;
  let score = scores.get(backends);
  if (!score) {
    score = backends.map(() => 0);
    scores.set(backends, score);
  }
  let best = -1;
  for (let i = 0; i < backends.length; i++) {
    score[i] = (score[i] ?? 0) + (backends[i]?.weight ?? 0);
    if (best < 0 || (score[i] ?? 0) > (score[best] ?? 0)) best = i;
  }
  score[best] = (score[best] ?? 0) - total;
  return backends[best];
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
    const direct = ok<HttpRouteTarget>({ selector: entry.selector });
    return (req) => {
      const table = this.routes?.table(entry.service.namespace, entry.service.name, entry.port.port);
      if (!table || !routeSetFor(table, this.clientNamespace)) return direct;
      const q = req.url.indexOf('?');
      const path = q >= 0 ? req.url.slice(0, q) : req.url;
      const query = q >= 0 ? new URLSearchParams(req.url.slice(q + 1)) : undefined;
      const decision = matchHttp(table, { method: req.method, path, query, headers: (n) => req.header(n), clientNamespace: this.clientNamespace });
      if (!decision) return err(new TsmeshError('TSMESH_ERR_NO_ROUTE', `no route rule of ${entry.key} matches ${req.method} ${path}`));
      const routeName = `${decision.route.namespace}/${decision.route.name}#${decision.ruleIndex}`;
      const backend = pickWeighted(decision.backends);
      const cluster = backend && !backend.problem && backend.port !== undefined ? this.clusters.get(`${backend.namespace}/${backend.name}:${backend.port}`) : undefined;
      const timeoutMs = decision.timeouts.requestMs || undefined;
      if (!cluster) return ok({ selector: entry.selector, directStatus: 500, routeName });
      return ok({ selector: cluster.selector, timeoutMs, requestHeaders: toEdit(decision.requestHeaderModifier), routeName });
    };
  }
}
