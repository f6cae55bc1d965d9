// Weighted backend choice for one request: each backend gets weight/sum of the requests; weight 0
// gets none. Integer arithmetic, so an injected random source gives exact, testable proportions.
import type { WeightedBackend } from './types.js';

/**
 * Picks a backend in proportion to the weights. undefined when there is none to pick (no
 * backends, or every weight 0): the request must be answered 500 (gRPC: UNAVAILABLE). A picked
 * backend with a `problem` must be answered the same way. `random` returns a number in [0, 1).
 */
export function pickBackend<B extends Pick<WeightedBackend, 'weight'>>(backends: readonly B[], random: () => number = Math.random): B | undefined {
  let total = 0;
  for (const backend of backends) total += backend.weight;
  if (total <= 0) return undefined;
  // A value in 0..total-1; clamped so a source that returns 1 still lands on the last backend.
  const ticket = Math.min(Math.floor(random() * total), total - 1);
  let upTo = 0;
  for (const backend of backends) {
    upTo += backend.weight;
    if (ticket < upTo) return backend;
  }
  return undefined;
}
