import { describe, expect, test } from '@jest/globals';
import type { WeightedBackend } from '@tsmesh/common';
import { pickWeighted } from './router.js';

const backend = (name: string, weight: number): WeightedBackend => ({ namespace: 'shop', name, port: 80, weight, problem: undefined });

function picks(backends: readonly WeightedBackend[], n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const b = pickWeighted(backends);
    if (b) counts[b.name] = (counts[b.name] ?? 0) + 1;
  }
  return counts;
}

describe('pickWeighted (smooth weighted round-robin)', () => {
  test('gives each backend exactly its share over every window of the total weight', () => {
    const backends = [backend('v1', 50), backend('v2', 50)];
    expect(picks(backends, 1000)).toEqual({ v1: 500, v2: 500 });
    const canary = [backend('stable', 99), backend('canary', 1)];
    expect(picks(canary, 100)).toEqual({ stable: 99, canary: 1 });
    expect(picks(canary, 1000)).toEqual({ stable: 990, canary: 10 });
  });

  test('interleaves instead of sending runs: 50/50 alternates', () => {
    const backends = [backend('a', 1), backend('b', 1)];
    const seen = Array.from({ length: 6 }, () => pickWeighted(backends)?.name);
    expect(seen).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  });

  test('never picks a backend of weight 0, and picks nothing when every weight is 0', () => {
    expect(picks([backend('on', 3), backend('off', 0)], 30)).toEqual({ on: 30 });
    expect(pickWeighted([backend('x', 0), backend('y', 0)])).toBeUndefined();
    expect(pickWeighted([])).toBeUndefined();
  });

  test('keeps separate state per rule (per backend list)', () => {
    const ruleA = [backend('a1', 1), backend('a2', 1)];
    const ruleB = [backend('b1', 1), backend('b2', 1)];
    expect([pickWeighted(ruleA)?.name, pickWeighted(ruleB)?.name, pickWeighted(ruleA)?.name, pickWeighted(ruleB)?.name]).toEqual(['a1', 'b1', 'a2', 'b2']);
  });
});
