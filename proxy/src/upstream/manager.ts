// The upstream layer of one event loop: the balanced clusters (one per Service port) and the
// connection pools behind them, HTTP/1.1, HTTP/2 and opaque TCP. A mesh change updates the
// clusters and prunes every pool to the endpoints still wanted, in one place; every request,
// stream or connection goes out through an UpstreamCall made here. `/clusters` shows, per
// endpoint, the requests in flight and the open upstream connections of each protocol.
import { logger, type MeshSnapshot } from '@tsmesh/common';
import type { PickContext } from '../balance/balancer.js';
import type { EndpointStats } from '../balance/cluster.js';
import { ServiceClusters, type ClusterLocality, type EndpointInfoOf } from '../outbound/clusters.js';
import { NO_RECORDER, UpstreamCall, type UpstreamProtocol, type UpstreamRecorder } from './call.js';
import { ClusterLimits, DEFAULT_BREAKER, DEFAULT_RETRY_BUDGET, sameValues, type BreakerThresholds, type RetryBudgetSettings } from './limits.js';
import type { UpstreamSelector } from './selector.js';
import type { SharedCounts } from './shared-counts.js';

const log = logger('upstream.manager');

/** What the manager needs of a protocol's pool of upstream connections. */
export interface ConnectionPool {
  /**
   * Keeps only the endpoints whose pool keys (`poolKey`) are in `keep`: connections to the others
   * are closed once idle (a request or stream in flight finishes first).
   */
  retain(keep: ReadonlySet<string>): void;
  /** Open upstream connections per endpoint key (`ip:port`). */
  connections(): ReadonlyMap<string, number>;
  /** Closes every connection at once. */
  close(): void;
}

/** Open upstream connections of one endpoint, per protocol. */
export type ConnectionCounts = Readonly<Record<UpstreamProtocol, number>>;

export interface EndpointView extends EndpointStats {
  readonly connections: ConnectionCounts;
}

export interface ClusterView {
  readonly cluster: string;
  readonly loadBalancer: string;
  readonly endpoints: EndpointView[];
  /** With a caller zone: how the cluster prefers it (its zone, `zone` or `hints`, the share of picks kept local). */
  readonly locality?: { readonly zone: string; readonly mode: 'zone' | 'hints'; readonly localShare: number } | undefined;
}

export interface UpstreamManagerOptions {
  /** Identity and workload discovery says run at an endpoint. */
  readonly infoOf?: EndpointInfoOf;
  /** Counts connect failures, retries and overflows. */
  readonly recorder?: UpstreamRecorder;
  /** The limits of every cluster: circuit-breaker thresholds and retry budget. */
  readonly limitsOf?: (cluster: string) => { readonly thresholds: BreakerThresholds; readonly budget: RetryBudgetSettings };
  /** With several event loops: what they share (limits, retry budget, ejections), so that each bounds the sidecar. */
  readonly shared?: SharedCounts;
  /** Zone preference: the caller's zone and the pick tallies; without it every zone is alike. */
  readonly locality?: ClusterLocality;
}

const DEFAULT_LIMITS = Object.freeze({ thresholds: DEFAULT_BREAKER, budget: DEFAULT_RETRY_BUDGET });

export class UpstreamManager {
  readonly clusters: ServiceClusters;
  private readonly recorder: UpstreamRecorder;
  private readonly pools = new Map<UpstreamProtocol, ConnectionPool>();
  /** Per cluster (by name): what it lets through at once; kept while the cluster exists. */
  private readonly limits = new Map<string, ClusterLimits>();
  private readonly limitsOf: NonNullable<UpstreamManagerOptions['limitsOf']>;
  private readonly shared: SharedCounts | undefined;

  constructor(options: UpstreamManagerOptions = {}) {
    this.clusters = new ServiceClusters(options.infoOf, options.shared ? (name) => options.shared?.ejectionsFor(name) : undefined, options.locality);
    this.recorder = options.recorder ?? NO_RECORDER;
    this.shared = options.shared;
    // By default each cluster's limits come from its Service port's TrafficPolicy.
    this.limitsOf =
      options.limitsOf ??
      ((name) => {
        const policy = this.clusters.get(name)?.policy;
        if (policy === undefined) return DEFAULT_LIMITS;
        const { percent, intervalMs, minRetryCount, minRetryIntervalMs } = policy.retryBudget;
        return { thresholds: policy.connectionPool, budget: { percent, intervalMs, minRetryCount, minRetryIntervalMs } };
      });
  }

  /** Puts `pool` under the manager: pruned on every mesh change, closed with it. One per protocol. */
  adopt<P extends ConnectionPool>(protocol: UpstreamProtocol, pool: P): P {
    if (this.pools.has(protocol)) throw new Error(`an upstream ${protocol} pool is already adopted`);
    this.pools.set(protocol, pool);
    return pool;
  }

  /** Applies a mesh snapshot to the clusters, then prunes every pool to the endpoints still wanted. */
  update(snapshot: MeshSnapshot): void {
    this.clusters.update(snapshot);
    const keep = this.clusters.endpointKeys();
    for (const pool of this.pools.values()) pool.retain(keep);
    for (const [name, limits] of this.limits) {
      const wanted = this.clusters.get(name) === undefined ? undefined : this.limitsOf(name);
      // Counts in flight carry over a change of thresholds (the calls holding them release them here).
      if (wanted === undefined) this.limits.delete(name);
      else if (!sameValues(wanted.thresholds, limits.thresholds) || !sameValues(wanted.budget, limits.budget.settings)) limits.reconfigure(wanted.thresholds, wanted.budget);
    }
  }

  /**
   * A new call to `selector`'s endpoints. HTTP requests and streams to a Service's cluster are
   * under its limits; opaque TCP and fixed endpoints (passthrough, the local app) are not.
   */
  call(selector: UpstreamSelector, protocol: UpstreamProtocol, pickContext?: PickContext): UpstreamCall {
    return new UpstreamCall(selector, protocol, this.recorder, pickContext, protocol === 'tcp' ? undefined : this.limitsFor(selector.name));
  }

  /** The limits of cluster `name`, or undefined when it is not one of the mesh's Service clusters. */
  limitsFor(name: string): ClusterLimits | undefined {
    let limits = this.limits.get(name);
    if (limits === undefined && this.clusters.get(name) !== undefined) {
      const { thresholds, budget } = this.limitsOf(name);
      const slot = this.shared?.slotOf(name);
      if (this.shared && slot === undefined) log.warn({ cluster: name }, 'no shared slot left for the cluster: its limits are counted per event loop');
      this.limits.set(name, (limits = new ClusterLimits(thresholds, budget, undefined, this.shared && slot !== undefined ? { counts: this.shared, slot } : undefined)));
    }
    return limits;
  }

  /** The admin `/clusters` view: endpoints with requests in flight, ejection and open connections per protocol. */
  stats(): ClusterView[] {
    const open = new Map<UpstreamProtocol, ReadonlyMap<string, number>>();
    for (const [protocol, pool] of this.pools) open.set(protocol, pool.connections());
    const count = (protocol: UpstreamProtocol, key: string): number => open.get(protocol)?.get(key) ?? 0;
    return this.clusters.stats().map((c) => ({
      ...c,
      endpoints: c.endpoints.map((e) => ({ ...e, connections: { http1: count('http1', e.key), http2: count('http2', e.key), tcp: count('tcp', e.key) } })),
    }));
  }

  /** Closes the clusters and every pool. */
  close(): void {
    for (const pool of this.pools.values()) pool.close();
    this.clusters.close();
  }
}
