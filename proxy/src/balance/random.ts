// random: every endpoint equally likely on every pick, with no state at all.
import type { Result, TsmeshError } from '@tsmesh/common';
import type { BalancedEndpoint, InFlight, LoadBalancerFactory, Pick, Picker } from './balancer.js';
import { acquirePick, EmptyPicker, randomIndex } from './picks.js';

class RandomPicker<E extends BalancedEndpoint> implements Picker<E> {
  constructor(
    private readonly endpoints: readonly E[],
    private readonly inFlight: InFlight,
  ) {}

  pick(): Result<Pick<E>, TsmeshError> {
    return acquirePick(this.endpoints[randomIndex(this.endpoints.length)] as E, this.inFlight);
  }
}

export const randomBalancer: LoadBalancerFactory = {
  name: 'random',
  createPicker<E extends BalancedEndpoint>(endpoints: readonly E[], inFlight: InFlight): Picker<E> {
    if (endpoints.length === 0) return new EmptyPicker<E>();
    return new RandomPicker([...endpoints], inFlight);
  },
};
