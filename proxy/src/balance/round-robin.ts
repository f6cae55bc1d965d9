// round-robin: strict rotation over the endpoints in key order. The position survives picker
// rebuilds because it lives in the cluster's PickerMemory rather than in the picker.
import type { Result, TsmeshError } from '@tsmesh/common';
import type { BalancedEndpoint, InFlight, LoadBalancerFactory, Pick, Picker } from './balancer.js';
import { PickerMemory } from './balancer.js';
import { acquirePick, EmptyPicker, randomIndex } from './picks.js';

/**
 * What round-robin remembers across pickers: the key it picked last. A new picker resumes
 * right after that key in its (sorted) endpoint order, so a rebuild over the same set continues
 * the rotation exactly (fairness stays within ±1), and a rebuild over a changed set continues
 * from the same place on the ring instead of restarting. A cluster's first picker starts at a
 * random offset so that many proxies do not all hit the same endpoint first.
 */
interface RotationCursor {
  lastKey: string | undefined;
}

const SLOT = 'round-robin';

class RoundRobinPicker<E extends BalancedEndpoint> implements Picker<E> {
  private next: number;

  constructor(
    private readonly endpoints: readonly E[],
    private readonly inFlight: InFlight,
    private readonly cursor: RotationCursor,
  ) {
    this.next = cursor.lastKey === undefined ? randomIndex(endpoints.length) : firstAfter(endpoints, cursor.lastKey);
  }

  pick(): Result<Pick<E>, TsmeshError> {
    const endpoint = this.endpoints[this.next] as E;
    this.next = this.next + 1 === this.endpoints.length ? 0 : this.next + 1;
    this.cursor.lastKey = endpoint.key;
    return acquirePick(endpoint, this.inFlight);
  }
}

/** Index of the first endpoint whose key sorts after `key`, wrapping to 0. `sorted` is non-empty. */
function firstAfter(sorted: readonly BalancedEndpoint[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as BalancedEndpoint).key <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo === sorted.length ? 0 : lo;
}

function byKey(a: BalancedEndpoint, b: BalancedEndpoint): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export const roundRobinBalancer: LoadBalancerFactory = {
  name: 'round-robin',
  createPicker<E extends BalancedEndpoint>(
    endpoints: readonly E[],
    inFlight: InFlight,
    memory: PickerMemory = new PickerMemory(),
  ): Picker<E> {
    if (endpoints.length === 0) return new EmptyPicker<E>();
    const cursor = memory.slot<RotationCursor>(SLOT, () => ({ lastKey: undefined }));
    return new RoundRobinPicker([...endpoints].sort(byKey), inFlight, cursor);
  },
};
