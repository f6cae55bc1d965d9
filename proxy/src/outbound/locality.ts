// The caller's zone, for zone-preferring balancing (balance/locality.ts). The sidecar learns it
// without asking the API server for Nodes: an explicit setting first, then what the mesh already
// says about its own pod.
import type { MeshSnapshot } from '@tsmesh/common';

/** The well-known node label; Kubernetes copies it onto pods too (PodTopologyLabelsAdmission, beta in 1.35). */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** Who the sidecar is, as far as its zone goes. */
export interface ZoneSource {
  /** `--zone` / `TSMESH_ZONE`. */
  readonly zone: string | undefined;
  /** `TSMESH_POD_IP`. */
  readonly podIp: string | undefined;
}

/**
 * The sidecar's zone: `--zone`/`TSMESH_ZONE`; else its pod's `topology.kubernetes.io/zone` label;
 * else the `zone` an EndpointSlice gives its pod IP (any Service the pod backs). Undefined when
 * none says: the sidecar then balances over every zone alike.
 */
export function callerZone(snapshot: MeshSnapshot, self: ZoneSource): string | undefined {
  if (self.zone !== undefined) return self.zone;
  const ip = self.podIp;
  if (ip === undefined) return undefined;
  const label = snapshot.podByIp(ip)?.labels[ZONE_LABEL];
  if (label !== undefined && label !== '') return label;
  for (const service of snapshot.services) {
    for (const port of service.ports) {
      for (const endpoint of snapshot.endpoints(service, port)) {
        if (endpoint.address === ip && endpoint.zone !== undefined) return endpoint.zone;
      }
    }
  }
  return undefined;
}
