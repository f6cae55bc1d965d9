// The balance stage: algorithms registered by name (the `tsmesh.io/load-balancer` values),
// passive health, and the BalancedCluster the forwarders pick from.
import { registerLoadBalancer } from './balancer.js';
import { leastRequestBalancer } from './least-request.js';
import { peakEwmaBalancer } from './peak-ewma.js';
import { randomBalancer } from './random.js';
import { ringHashBalancer } from './ring-hash.js';
import { roundRobinBalancer } from './round-robin.js';

registerLoadBalancer(roundRobinBalancer);
registerLoadBalancer(leastRequestBalancer);
registerLoadBalancer(randomBalancer);
registerLoadBalancer(ringHashBalancer);
registerLoadBalancer(peakEwmaBalancer);

export * from './balancer.js';
export * from './cluster.js';
export * from './ejection.js';
export { fnv1a32, ringPosition } from './hash.js';
export { LatencyEstimates, latencyOf } from './peak-ewma.js';
export { DEFAULT_SESSION_NAME, SessionAffinity, sessionToken } from './session.js';
export { leastRequestBalancer, peakEwmaBalancer, randomBalancer, ringHashBalancer, roundRobinBalancer };
