import { pickBackend } from './weights.js';

interface B {
  readonly name: string;
  readonly weight: number;
}

/** A random source that walks 0..n-1 (centred in each slot) so n picks hit every ticket once. */
function sweep(n: number): () => number {
  let i = 0;
  return () => (i++ % n + 0.5) / n;
}

function counts(backends: readonly B[], picks: number): Record<string, number> {
  const random = sweep(picks);
  const out: Record<string, number> = {};
  for (let i = 0; i < picks; i++) {
    const name = pickBackend(backends, random)?.name ?? 'none';
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

describe('pickBackend (spec: weight/(sum of all weights))', () => {
  it('splits 99/1 exactly over 100 picks', () => {
    expect(counts([{ name: 'stable', weight: 99 }, { name: 'canary', weight: 1 }], 100)).toEqual({ stable: 99, canary: 1 });
  });

  it('splits 90/10 exactly over 1000 picks', () => {
    expect(counts([{ name: 'a', weight: 90 }, { name: 'b', weight: 10 }], 1000)).toEqual({ a: 900, b: 100 });
  });

  it('treats weights as proportions, not percentages (3 and 1 give 75% and 25%)', () => {
    expect(counts([{ name: 'a', weight: 3 }, { name: 'b', weight: 1 }], 400)).toEqual({ a: 300, b: 100 });
  });

  it('never picks a backend of weight 0', () => {
    expect(counts([{ name: 'off', weight: 0 }, { name: 'on', weight: 5 }, { name: 'off2', weight: 0 }], 1000)).toEqual({ on: 1000 });
  });

  it('sends everything to a single backend with a weight above 0', () => {
    expect(counts([{ name: 'only', weight: 7 }], 10)).toEqual({ only: 10 });
  });

  it('picks none when every weight is 0 (the request answers 500)', () => {
    expect(pickBackend([{ name: 'a', weight: 0 }, { name: 'b', weight: 0 }])).toBeUndefined();
  });

  it('picks none from an empty list', () => {
    expect(pickBackend([])).toBeUndefined();
  });

  it('maps the ends of the random range onto the first and last backends', () => {
    const backends = [{ name: 'a', weight: 1 }, { name: 'b', weight: 0 }, { name: 'c', weight: 1 }];
    expect(pickBackend(backends, () => 0)?.name).toBe('a');
    expect(pickBackend(backends, () => 0.999999)?.name).toBe('c');
    expect(pickBackend(backends, () => 1)?.name).toBe('c');
  });

  it('handles the largest weights the spec allows', () => {
    expect(counts([{ name: 'a', weight: 1_000_000 }, { name: 'b', weight: 1_000_000 }], 2)).toEqual({ a: 1, b: 1 });
  });

  it('uses Math.random by default', () => {
    const backends = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }];
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(pickBackend(backends)?.name ?? 'none');
    expect([...seen].sort()).toEqual(['a', 'b']);
  });
});
