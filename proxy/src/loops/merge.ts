// The sidecar's one view over several event loops: Prometheus metrics merged by name and label
// set (counters and histograms summed exactly), and the admin `/clusters` stats merged by cluster
// and endpoint (in-flight requests summed, ejected where any loop ejected it).
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { ClusterStats } from './data-plane.js';
import type { ConnectionCounts } from '../upstream/manager.js';
import type { MetricsJson } from './messages.js';

/**
 * One registry over several `getMetricsAsJSON()` views, each metric merged by its `aggregator`
 * (prom-client's: `sum` for counters, histograms and the proxy's gauges; the process metrics
 * come from the main thread alone).
 */
export function mergeMetrics(views: readonly MetricsJson[]): Registry {
  return AggregatorRegistry.aggregate(views as MetricsJson[]);
}

/** One endpoint as one loop sees it. */
export interface LoopEndpointStats {
  readonly loop: number;
  readonly inFlight: number;
  readonly ejected: boolean;
  readonly connections: ConnectionCounts;
}

/** The `/clusters` entry of a sidecar with several loops: the fields of one loop's, plus `loops`. */
export interface MergedClusterStats {
  readonly cluster: string;
  readonly loadBalancer: string;
  /** Zone preference, as the first loop that has one says (every loop has the same zone and shares ejections). */
  readonly locality?: ClusterStats[number]['locality'];
  readonly endpoints: Array<{
    readonly key: string;
    readonly address: string;
    readonly port: number;
    /** Summed over the loops. */
    readonly inFlight: number;
    /** Ejected by at least one loop (each loop ejects on the failures it sees). */
    readonly ejected: boolean;
    /** Open upstream connections per protocol, summed over the loops. */
    readonly connections: ConnectionCounts;
    readonly loops: LoopEndpointStats[];
  }>;
}

/**
 * Merges the `/clusters` stats of several loops, in the order they first appear. A cluster or
 * endpoint missing from a loop (one that has not applied the latest mesh yet) is simply not in its `loops`.
 */
export function mergeClusters(views: ReadonlyArray<{ readonly loop: number; readonly clusters: ClusterStats }>): MergedClusterStats[] {
  const clusters = new Map<string, { cluster: string; loadBalancer: string; locality: MergedClusterStats['locality']; endpoints: Map<string, MergedClusterStats['endpoints'][number]> }>();
  for (const { loop, clusters: stats } of views) {
    for (const entry of stats) {
      let cluster = clusters.get(entry.cluster);
      if (cluster === undefined) clusters.set(entry.cluster, (cluster = { cluster: entry.cluster, loadBalancer: entry.loadBalancer, locality: undefined, endpoints: new Map() }));
      cluster.locality ??= entry.locality;
      for (const endpoint of entry.endpoints) {
        const seen = cluster.endpoints.get(endpoint.key);
        const here = { loop, inFlight: endpoint.inFlight, ejected: endpoint.ejected, connections: endpoint.connections };
        cluster.endpoints.set(
          endpoint.key,
          seen === undefined
            ? { key: endpoint.key, address: endpoint.address, port: endpoint.port, inFlight: endpoint.inFlight, ejected: endpoint.ejected, connections: endpoint.connections, loops: [here] }
            : {
                ...seen,
                inFlight: seen.inFlight + endpoint.inFlight,
                ejected: seen.ejected || endpoint.ejected,
                connections: sumConnections(seen.connections, endpoint.connections),
                loops: [...seen.loops, here],
              },
        );
      }
    }
  }
  return [...clusters.values()].map((c) => ({ cluster: c.cluster, loadBalancer: c.loadBalancer, ...(c.locality === undefined ? {} : { locality: c.locality }), endpoints: [...c.endpoints.values()] }));
}

function sumConnections(a: ConnectionCounts, b: ConnectionCounts): ConnectionCounts {
  return { http1: a.http1 + b.http1, http2: a.http2 + b.http2, tcp: a.tcp + b.tcp };
}
