// ring-hash: consistent hashing on PickContext.hashKey. Each endpoint owns many points
// (virtual nodes) on a 32-bit ring placed by its key alone, and a request goes to the owner of
// the first point at or after the hash of its key. Removing an endpoint moves only the keys it
// owned; every other key keeps its endpoint. Without a hash key a pick is uniformly random.
import type { Result, TsmeshError } from '@tsmesh/common';
import type { BalancedEndpoint, InFlight, LoadBalancerFactory, Pick, PickContext, Picker } from './balancer.js';
import { ringPosition } from './hash.js';
import { acquirePick, EmptyPicker, randomIndex } from './picks.js';

/** The ring has at least this many points, spread over the endpoints. */
const MIN_RING_SIZE = 1024;
/** Points per endpoint never go below this, so that large sets still split evenly. */
const MIN_POINTS_PER_ENDPOINT = 64;

class RingHashPicker<E extends BalancedEndpoint> implements Picker<E> {
  constructor(
    private readonly endpoints: readonly E[],
    private readonly inFlight: InFlight,
    /** Point positions, ascending. */
    private readonly positions: Uint32Array,
    /** owners[i]: index in `endpoints` of the endpoint owning positions[i]. */
    private readonly owners: Uint32Array,
  ) {}

  pick(ctx?: PickContext): Result<Pick<E>, TsmeshError> {
    const key = ctx?.hashKey;
    const index = key === undefined ? randomIndex(this.endpoints.length) : this.ownerOf(ringPosition(key));
    return acquirePick(this.endpoints[index] as E, this.inFlight);
  }

  private ownerOf(position: number): number {
    let lo = 0;
    let hi = this.positions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.positions[mid] as number) < position) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === this.positions.length ? 0 : lo] as number;
  }
}

/** How many ring points each of `count` endpoints gets. */
export function pointsPerEndpoint(count: number): number {
  return Math.max(MIN_POINTS_PER_ENDPOINT, Math.ceil(MIN_RING_SIZE / count));
}

function buildPicker<E extends BalancedEndpoint>(endpoints: readonly E[], inFlight: InFlight): RingHashPicker<E> {
  const perEndpoint = pointsPerEndpoint(endpoints.length);
  const total = endpoints.length * perEndpoint;
  const rawPositions = new Uint32Array(total);
  const rawOwners = new Uint32Array(total);
  endpoints.forEach((endpoint, e) => {
    for (let p = 0; p < perEndpoint; p++) {
      rawPositions[e * perEndpoint + p] = ringPosition(`${endpoint.key}_${p}`);
      rawOwners[e * perEndpoint + p] = e;
    }
  });
  // Colliding points are ordered by endpoint key, so the ring never depends on input order.
  const order = Array.from({ length: total }, (_, i) => i).sort((a, b) => {
    const pa = rawPositions[a] as number;
    const pb = rawPositions[b] as number;
    if (pa !== pb) return pa - pb;
    const ka = (endpoints[rawOwners[a] as number] as E).key;
    const kb = (endpoints[rawOwners[b] as number] as E).key;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  const positions = new Uint32Array(total);
  const owners = new Uint32Array(total);
  order.forEach((from, to) => {
    positions[to] = rawPositions[from] as number;
    owners[to] = rawOwners[from] as number;
  });
  return new RingHashPicker(endpoints, inFlight, positions, owners);
}

export const ringHashBalancer: LoadBalancerFactory = {
  name: 'ring-hash',
  createPicker<E extends BalancedEndpoint>(endpoints: readonly E[], inFlight: InFlight): Picker<E> {
    if (endpoints.length === 0) return new EmptyPicker<E>();
    return buildPicker([...endpoints], inFlight);
  },
};
