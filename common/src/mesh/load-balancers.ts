// The load-balancing algorithm names the proxy's registry (proxy/src/balance/) provides, known here
// only to warn about a misspelt name. The mesh model passes every name through unchanged: the
// registry alone decides, and falls back to DEFAULT_LOAD_BALANCER with TSMESH_ERR_UNKNOWN_LOAD_BALANCER.

/** The algorithms the proxy registers (tests/src/registry checks the two lists agree). */
export const LOAD_BALANCERS = ['round-robin', 'least-request', 'random', 'ring-hash', 'peak-ewma'] as const;
export type KnownLoadBalancer = (typeof LOAD_BALANCERS)[number];

/** What a Service gets without an annotation or a TrafficPolicy naming an algorithm. */
export const DEFAULT_LOAD_BALANCER: KnownLoadBalancer = 'least-request';

/** The algorithm consistent hashing (`TrafficPolicy` `loadBalancer.hash`) applies to. */
export const RING_HASH: KnownLoadBalancer = 'ring-hash';

export function isKnownLoadBalancer(name: string): name is KnownLoadBalancer {
  return (LOAD_BALANCERS as readonly string[]).includes(name);
}

/** The warning for a name the registry may not know; undefined for a known name. */
export function unknownLoadBalancerWarning(name: string): string | undefined {
  if (isKnownLoadBalancer(name)) return undefined;
  return `${JSON.stringify(name)} is not one of ${LOAD_BALANCERS.join(', ')}; the proxy uses ${DEFAULT_LOAD_BALANCER} unless its registry knows the name`;
}
