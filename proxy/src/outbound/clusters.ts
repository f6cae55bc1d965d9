// One balanced cluster per Service port, kept in step with the mesh snapshot. Endpoint
// conditions decide who gets new requests: ready ones; when none is ready, serving ones that
// are terminating (as kube-proxy does), so a rollout's last replicas still answer. Each cluster
// prefers the caller's zone (balance/locality.ts) unless its Service says `tsmesh.io/locality: off`.
import type { EffectiveTrafficPolicy, HashSource, MeshEndpoint, MeshService, MeshSnapshot, OutlierDetectionSettings, ServicePort } from '@tsmesh/common';
import { logger } from '@tsmesh/common';
import { BalancedCluster, SessionAffinity, type EndpointStats } from '../balance/index.js';
import type { SharedEjections } from '../balance/ejection.js';
import type { ZonePickTally } from '../balance/locality.js';
import { clusterSelector, endpointOf, type UpstreamEndpoint, type UpstreamSelector } from '../upstream/selector.js';
import { serviceKey } from './target.js';
import { poolKey } from '../h2/pool.js';
import { sameValues } from '../upstream/limits.js';

const log = logger('outbound.clusters');

export interface ClusterEntry {
  readonly key: string;
  readonly service: MeshService;
  readonly port: ServicePort;
  readonly cluster: BalancedCluster<UpstreamEndpoint>;
  readonly selector: UpstreamSelector & { hash: HashSource | undefined; session: SessionAffinity | undefined };
  /** The Service port's effective TrafficPolicy (defaults filled). */
  readonly policy: EffectiveTrafficPolicy;
}

/** The cluster's passive-health settings of an outlierDetection. */
function healthOf(o: OutlierDetectionSettings) {
  return {
    consecutiveFailures: Math.max(1, o.consecutiveConnectFailures),
    consecutive5xx: o.consecutive5xxErrors,
    consecutiveGatewayErrors: o.consecutiveGatewayErrors,
    baseEjectionMs: o.baseEjectionTimeMs,
    maxEjectionPercent: o.maxEjectionPercent,
    intervalMs: o.intervalMs,
    successRateStdevFactor: o.successRateStdevFactor,
    successRateMinimumHosts: o.successRateMinimumHosts,
    successRateRequestVolume: o.successRateRequestVolume,
  };
}

/** Which endpoints may take new requests, per the EndpointSlice conditions. */
export function eligibleEndpoints(endpoints: readonly MeshEndpoint[]): readonly MeshEndpoint[] {
  const ready = endpoints.filter((e) => e.ready && !e.terminating);
  if (ready.length > 0) return ready;
  return endpoints.filter((e) => e.serving);
}

/** An endpoint's zone and topology hints, only those set. */
function zoneOf(e: MeshEndpoint): Pick<UpstreamEndpoint, 'zone' | 'forZones'> {
  if (e.zone === undefined && e.forZones === undefined) return {};
  return { ...(e.zone === undefined ? {} : { zone: e.zone }), ...(e.forZones === undefined ? {} : { forZones: e.forZones }) };
}

/** What discovery says runs at an endpoint: the identity mTLS must verify (meshed pods only) and its workload. */
export type EndpointInfoOf = (
  snapshot: MeshSnapshot,
  endpoint: MeshEndpoint,
  port: ServicePort,
) => Pick<UpstreamEndpoint, 'identity' | 'peer'>;

/** Zone preference: the caller's zone in a snapshot, and where each cluster counts its local and cross-zone picks. */
export interface ClusterLocality {
  zoneOf(snapshot: MeshSnapshot): string | undefined;
  tally?(cluster: string): ZonePickTally;
}

export class ServiceClusters {
  private readonly entries = new Map<string, ClusterEntry>();

  constructor(
    private readonly infoOf: EndpointInfoOf = () => ({}),
    /** With several event loops: each cluster's endpoint health as every loop sees it. */
    private readonly sharedHealth?: (cluster: string) => SharedEjections | undefined,
    /** Without it no cluster prefers a zone. */
    private readonly locality?: ClusterLocality,
  ) {}

  /** Rebuilds every cluster's endpoints from `snapshot`; clusters of vanished Service ports are closed. */
  update(snapshot: MeshSnapshot): void {
    const seen = new Set<string>();
    const zone = this.locality?.zoneOf(snapshot);
    for (const service of snapshot.services) {
      if (service.headless) continue; // headless: clients dial pod IPs, handled as endpoints
      for (const port of service.ports) {
        if (port.protocol !== 'TCP') continue;
        const key = serviceKey(service, port);
        seen.add(key);
        const all = snapshot.endpoints(service, port);
        const eligible = eligibleEndpoints(all);
        const endpoints = eligible.map((e) => endpointOf(e.address, e.port, { ...this.infoOf(snapshot, e, port), ...zoneOf(e) }));
        // Not ready (and not going away): they count towards their zone's size, see balance/locality.ts.
        const unready = zone === undefined || eligible.length === all.length ? [] : all.filter((e) => !e.ready && !e.terminating);
        const policy = snapshot.trafficPolicyFor(service, port);
        const algorithm = policy.loadBalancer.algorithm;
        let entry = this.entries.get(key);
        if (!entry || entry.service !== service || entry.policy !== policy) {
          const previous = entry;
          const cluster = previous?.cluster ?? this.create(key, algorithm);
          if (previous && previous.policy.loadBalancer.algorithm !== algorithm) {
            const warning = cluster.setLoadBalancer(algorithm);
            if (warning) log.warn({ cluster: key, err: warning.message }, 'load balancer fallback');
          }
          if (!previous || !sameValues(previous.policy.outlierDetection, policy.outlierDetection)) cluster.configureHealth(healthOf(policy.outlierDetection));
          const selector = previous?.selector ?? clusterSelector(key, cluster);
          selector.hash = policy.loadBalancer.hash;
          if (!previous || previous.policy.sessionPersistence !== policy.sessionPersistence) {
            selector.session = policy.sessionPersistence === undefined ? undefined : new SessionAffinity(key, policy.sessionPersistence);
          }
          entry = { key, service, port, cluster, selector, policy };
          this.entries.set(key, entry);
        }
        entry.cluster.setLocality(service.locality === 'off' ? undefined : zone);
        entry.cluster.setEndpoints(endpoints, unready);
      }
    }
    for (const [key, entry] of this.entries) {
      if (seen.has(key)) continue;
      entry.cluster.close();
      this.entries.delete(key);
    }
  }

  get(key: string): ClusterEntry | undefined {
    return this.entries.get(key);
  }

  /** The pool key of every endpoint currently wanted, for pruning upstream connection pools. */
  endpointKeys(): Set<string> {
    const keys = new Set<string>();
    for (const entry of this.entries.values()) for (const e of entry.cluster.endpoints) keys.add(poolKey(e));
    return keys;
  }

  stats(): Array<{ cluster: string; loadBalancer: string; endpoints: EndpointStats[]; locality?: BalancedCluster<UpstreamEndpoint>['locality'] }> {
    return [...this.entries.values()].map((e) => {
      const locality = e.cluster.locality;
      return { cluster: e.key, loadBalancer: e.cluster.loadBalancer, endpoints: e.cluster.stats(), ...(locality === undefined ? {} : { locality }) };
    });
  }

  close(): void {
    for (const entry of this.entries.values()) entry.cluster.close();
    this.entries.clear();
  }

  private create(key: string, loadBalancer: string): BalancedCluster<UpstreamEndpoint> {
    const shared = this.sharedHealth?.(key);
    if (this.sharedHealth && shared === undefined) log.warn({ cluster: key }, 'no shared slot left for the cluster: its outlier detection is kept per event loop');
    const zonePicks = this.locality?.tally?.(key);
    const { cluster, warning } = BalancedCluster.create<UpstreamEndpoint>({ name: key, loadBalancer, health: { shared }, ...(zonePicks === undefined ? {} : { zonePicks }) });
    if (warning) log.warn({ cluster: key, err: warning.message }, 'load balancer fallback');
    return cluster;
  }
}
