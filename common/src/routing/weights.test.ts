import { pickBackend } from './weights.js';

interface B {
  readonly name: string;
  readonly weight: number;
}

function counts(backends: readonly B[], picks: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < picks; i++) {
    const name = pickBackend(backends)?.name ?? 'none';
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

describe('pickBackend (spec: weight/(sum of all weights), smooth weighted round-robin)', () => {
  it('splits 99/1 exactly over every 100 picks', () => {
    const backends = [{ name: 'stable', weight: 99 }, { name: 'canary', weight: 1 }];
    expect(counts(backends, 100)).toEqual({ stable: 99, canary: 1 });
    expect(counts(backends, 100)).toEqual({ stable: 99, canary: 1 });
  });

  it('splits 90/10 and 50/50 exactly over 1000 picks', () => {
    expect(counts([{ name: 'a', weight: 90 }, { name: 'b', weight: 10 }], 1000)).toEqual({ a: 900, b: 100 });
    expect(counts([{ name: 'a', weight: 50 }, { name: 'b', weight: 50 }], 1000)).toEqual({ a: 500, b: 500 });
  });

  it('treats weights as proportions, not percentages (3 and 1 give 75% and 25%)', () => {
    expect(counts([{ name: 'a', weight: 3 }, { name: 'b', weight: 1 }], 400)).toEqual({ a: 300, b: 100 });
  });

  it('interleaves instead of sending runs: 1/1 alternates, 2/1 never sends the light backend twice in a row', () => {
    const even = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }];
    expect(Array.from({ length: 6 }, () => pickBackend(even)?.name)).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
    const uneven = [{ name: 'heavy', weight: 2 }, { name: 'light', weight: 1 }];
    expect(Array.from({ length: 6 }, () => pickBackend(uneven)?.name)).toEqual(['heavy', 'light', 'heavy', 'heavy', 'light', 'heavy']);
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

  it('handles the largest weights the spec allows', () => {
    expect(counts([{ name: 'a', weight: 1_000_000 }, { name: 'b', weight: 1_000_000 }], 2)).toEqual({ a: 1, b: 1 });
  });

  it('keeps separate state per rule (per backend list)', () => {
    const ruleA = [{ name: 'a1', weight: 1 }, { name: 'a2', weight: 1 }];
    const ruleB = [{ name: 'b1', weight: 1 }, { name: 'b2', weight: 1 }];
    expect([pickBackend(ruleA)?.name, pickBackend(ruleB)?.name, pickBackend(ruleA)?.name, pickBackend(ruleB)?.name]).toEqual(['a1', 'b1', 'a2', 'b2']);
  });
});
