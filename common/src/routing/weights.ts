// Weighted backend choice for one request: each backend gets weight/(sum of weights) of the
// requests; weight 0 gets none. Smooth weighted round-robin: every pick adds each weight to its
// running score and takes the highest, which then gives back the total. Over any window of
// `total` picks each backend gets exactly its weight (50/50 alternates, 99/1 sends one in a
// hundred), where a random pick only converges. The scores live beside the compiled rule (a
// WeakMap on its frozen backend list), so a recompiled route starts fresh and nothing outlives it.
import type { WeightedBackend } from './types.js';

const scores = new WeakMap<readonly object[], number[]>();

/**
 * Picks the next backend of a rule. undefined when there is none to pick (no backends, or every
 * weight 0): the request must be answered 500 (gRPC: UNAVAILABLE). A picked backend with a
 * `problem` must be answered the same way. Successive calls with the same list share its state.
 */
export function pickBackend<B extends Pick<WeightedBackend, 'weight'>>(backends: readonly B[]): B | undefined {
  let total = 0;
  for (const backend of backends) total += backend.weight;
  if (total <= 0) return undefined;
  let score = scores.get(backends);
  if (!score) {
    score = backends.map(() => 0);
    scores.set(backends, score);
  }
  let best = -1;
  for (let i = 0; i < backends.length; i++) {
    score[i] = (score[i] ?? 0) + (backends[i]?.weight ?? 0);
    if (best < 0 || (score[i] ?? 0) > (score[best] ?? 0)) best = i;
  }
  score[best] = (score[best] ?? 0) - total;
  return backends[best];
}
