// Building blocks shared by the algorithms: the pick that holds an in-flight slot, the answer
// for an empty endpoint set, and the random index they draw from.
import { err, ok, type Result, type TsmeshError } from '@tsmesh/common';
import { noEndpointsError } from '../errors.js';
import type { BalancedEndpoint, InFlight, Pick, Picker } from './balancer.js';

/** Counts a request on `endpoint` until the returned pick is released (release is idempotent). */
export function acquirePick<E extends BalancedEndpoint>(endpoint: E, inFlight: InFlight): Result<Pick<E>, TsmeshError> {
  return ok({ endpoint, release: inFlight.acquire(endpoint.key) });
}

/** A picker over no endpoints: every pick fails with TSMESH_ERR_NO_ENDPOINTS. */
export class EmptyPicker<E extends BalancedEndpoint> implements Picker<E> {
  // One error per picker: a cluster with no endpoints may be asked thousands of times a second.
  private readonly failure: Result<never, TsmeshError>;

  constructor(cluster?: string) {
    this.failure = err(noEndpointsError(cluster));
  }

  pick(): Result<Pick<E>, TsmeshError> {
    return this.failure;
  }
}

/** A uniformly random integer in [0, n). */
export function randomIndex(n: number): number {
  return Math.floor(Math.random() * n);
}

/**
 * A uniformly random index in [0, n) other than `i` (n >= 2): the second choice of a
 * power-of-two-choices pick, so that with `i` uniform, (i, j) is a uniformly random ordered pair.
 */
export function otherRandomIndex(i: number, n: number): number {
  const j = randomIndex(n - 1);
  return j >= i ? j + 1 : j;
}
