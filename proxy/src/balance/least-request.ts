// least-request: power of two choices. Each pick draws two distinct endpoints at random and
// takes the one with fewer requests in flight, which steers load away from slow or busy
// endpoints without scanning them all and without herding onto a single "least" one.
import type { Result, TsmeshError } from '@tsmesh/common';
import type { BalancedEndpoint, InFlight, LoadBalancerFactory, Pick, Picker } from './balancer.js';
import { acquirePick, EmptyPicker, otherRandomIndex, randomIndex } from './picks.js';

class LeastRequestPicker<E extends BalancedEndpoint> implements Picker<E> {
  constructor(
    private readonly endpoints: readonly E[],
    private readonly inFlight: InFlight,
  ) {}

  pick(): Result<Pick<E>, TsmeshError> {
    const n = this.endpoints.length;
    if (n === 1) return acquirePick(this.endpoints[0] as E, this.inFlight);
    const i = randomIndex(n);
    const first = this.endpoints[i] as E;
    const second = this.endpoints[otherRandomIndex(i, n)] as E;
    // (i, j) is a uniformly random ordered pair, so keeping `first` on a tie is a fair coin.
    const chosen = this.inFlight.get(second.key) < this.inFlight.get(first.key) ? second : first;
    return acquirePick(chosen, this.inFlight);
  }
}

export const leastRequestBalancer: LoadBalancerFactory = {
  name: 'least-request',
  createPicker<E extends BalancedEndpoint>(endpoints: readonly E[], inFlight: InFlight): Picker<E> {
    if (endpoints.length === 0) return new EmptyPicker<E>();
    return new LeastRequestPicker([...endpoints], inFlight);
  },
};
