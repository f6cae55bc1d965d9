// ring-hash: consistent hashing on PickContext.hashKey. Each endpoint owns many points
// (virtual nodes) on a 32-bit ring placed by its key alone, and a request goes to the owner of
// the first point at or after the hash of its key. Removing an endpoint moves only the keys it
// owned; every other key keeps its endpoint. Without a hash key a pick is uniformly random.
import type { Result, TsmeshError } from '@tsmesh/common';
import type { BalancedEndpoint, InFlight, LoadBalancerFactory, Pick, PickContext, Picker } from './balancer.js';
import { ringPosition } from './hash.js';
import { acquirePick, EmptyPicker, randomIndex } from './picks.js';

/**
 * Ring points per endpoint. Fixed, not derived from the set size: if the count changed with the
 * set, removing one endpoint would move points of every other one and reshuffle their keys.
 * 160 points keep each endpoint's share within about ±10% of even.
 */
export const POINTS_PER_ENDPOINT = 160;

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

/** Owner indexes live in the low bits of a packed point, which caps a set at 2^20 endpoints. */
const OWNER_BITS = 20;

function byKey(a: BalancedEndpoint, b: BalancedEndpoint): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function buildPicker<E extends BalancedEndpoint>(endpoints: readonly E[], inFlight: InFlight): RingHashPicker<E> {
  // Key order makes the ring independent of the order endpoints arrive in: colliding points
  // resolve to the endpoint with the smaller key.
  const sorted = [...endpoints].sort(byKey).slice(0, 2 ** OWNER_BITS);
  // Each point packed as position * 2^20 + owner (exact below 2^53), so one native numeric
  // sort orders the ring without a comparator.
  const packed = new Float64Array(sorted.length * POINTS_PER_ENDPOINT);
  sorted.forEach((endpoint, owner) => {
    for (let p = 0; p < POINTS_PER_ENDPOINT; p++) {
      packed[owner * POINTS_PER_ENDPOINT + p] = ringPosition(`${endpoint.key}_${p}`) * 2 ** OWNER_BITS + owner;
    }
  });
  packed.sort();
  const positions = new Uint32Array(packed.length);
  const owners = new Uint32Array(packed.length);
  packed.forEach((point, i) => {
    const owner = point % 2 ** OWNER_BITS;
    owners[i] = owner;
    positions[i] = (point - owner) / 2 ** OWNER_BITS;
  });
  return new RingHashPicker(sorted, inFlight, positions, owners);
}

export const ringHashBalancer: LoadBalancerFactory = {
  name: 'ring-hash',
  createPicker<E extends BalancedEndpoint>(endpoints: readonly E[], inFlight: InFlight): Picker<E> {
    if (endpoints.length === 0) return new EmptyPicker<E>();
    return buildPicker(endpoints, inFlight);
  },
};
