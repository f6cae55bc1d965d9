// The numbers every part of the mesh must agree on about a sidecar: the ids it runs as (the capture
// rules exempt its traffic by them), the ports it binds (the injector declares them, the capture
// rules redirect to them and never capture the reserved range) and the source address it delivers
// inbound traffic from (the capture rules let it through). Istio uses the same numbers, so tools
// and habits carry over.

/** The sidecar's uid and gid: its own traffic is never captured. */
export const PROXY_UID = 1337;
export const PROXY_GID = 1337;

/** Where the capture rules send a pod's outgoing TCP. */
export const OUTBOUND_CAPTURE_PORT = 15001;
/** Where the capture rules send a pod's incoming TCP. */
export const INBOUND_CAPTURE_PORT = 15006;
/** The admin endpoints, on loopback only. */
export const ADMIN_PORT = 15000;
/** Readiness, liveness, rewritten app probes and /metrics. */
export const HEALTH_PORT = 15020;

/** Ports 15000-15099 of a pod belong to the mesh and are never captured, in either direction. */
export const MESH_RESERVED_PORTS = Object.freeze({ first: 15000, last: 15099 });

export function isMeshReservedPort(port: number): boolean {
  return port >= MESH_RESERVED_PORTS.first && port <= MESH_RESERVED_PORTS.last;
}

/** The address the inbound proxy delivers to the application from, per IP family (passes the capture rules). */
export const INBOUND_SOURCE_ADDRESSES = Object.freeze({ 4: '127.0.0.6', 6: '::6' } as const);
