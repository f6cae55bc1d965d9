import { jest } from '@jest/globals';
import { InFlight, PickerMemory, type BalancedEndpoint, type Picker } from './balancer.js';
import { roundRobinBalancer } from './round-robin.js';

const endpoint = (i: number): BalancedEndpoint => ({ key: `10.0.0.${i}:8080`, address: `10.0.0.${i}`, port: 8080 });
const three = [endpoint(1), endpoint(2), endpoint(3)];

function pickKey(picker: Picker<BalancedEndpoint>): string {
  const result = picker.pick();
  if (!result.ok) throw result.error;
  result.value.release();
  return result.value.endpoint.key;
}

function counts(keys: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const key of keys) out.set(key, (out.get(key) ?? 0) + 1);
  return out;
}

afterEach(() => {
  jest.restoreAllMocks();
});

describe('round-robin', () => {
  it('gives each of 3 endpoints its share within ±1 over 3000 picks', () => {
    const picker = roundRobinBalancer.createPicker(three, new InFlight());
    const tally = counts(Array.from({ length: 3000 }, () => pickKey(picker)));
    expect(tally.size).toBe(3);
    for (const n of tally.values()) expect(Math.abs(n - 1000)).toBeLessThanOrEqual(1);
  });

  it('stays within ±1 of the share when the picks do not divide evenly', () => {
    const picker = roundRobinBalancer.createPicker(three, new InFlight());
    const tally = counts(Array.from({ length: 3001 }, () => pickKey(picker)));
    for (const n of tally.values()) expect(Math.abs(n - 3001 / 3)).toBeLessThanOrEqual(1);
  });

  it('never picks the same endpoint twice within a rotation', () => {
    const picker = roundRobinBalancer.createPicker(three, new InFlight());
    const keys = Array.from({ length: 300 }, () => pickKey(picker));
    for (let i = 0; i + 3 <= keys.length; i++) expect(new Set(keys.slice(i, i + 3)).size).toBe(3);
  });

  it('keeps the rotation when the picker is rebuilt over the same endpoints', () => {
    const inFlight = new InFlight();
    const memory = new PickerMemory();
    const keys: string[] = [];
    for (let rebuild = 0; rebuild < 430; rebuild++) {
      // Same set, arriving in a different order each time (as discovery may deliver it).
      const order = rebuild % 2 === 0 ? three : [...three].reverse();
      const picker = roundRobinBalancer.createPicker(order, inFlight, memory);
      for (let i = 0; i < 7 && keys.length < 3001; i++) keys.push(pickKey(picker));
    }
    expect(keys).toHaveLength(3001);
    for (let i = 0; i + 3 <= keys.length; i++) expect(new Set(keys.slice(i, i + 3)).size).toBe(3);
    for (const n of counts(keys).values()) expect(Math.abs(n - 3001 / 3)).toBeLessThanOrEqual(1);
  });

  it('continues after the last picked endpoint when the set changes', () => {
    const inFlight = new InFlight();
    const memory = new PickerMemory();
    const first = roundRobinBalancer.createPicker(three, inFlight, memory);
    while (pickKey(first) !== endpoint(2).key);
    const second = roundRobinBalancer.createPicker([endpoint(1), endpoint(3), endpoint(4)], inFlight, memory);
    expect([pickKey(second), pickKey(second), pickKey(second)]).toEqual([
      endpoint(3).key,
      endpoint(4).key,
      endpoint(1).key,
    ]);
  });

  it("starts a cluster's first picker at a random offset", () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.7);
    const picker = roundRobinBalancer.createPicker(three, new InFlight(), new PickerMemory());
    expect(pickKey(picker)).toBe(endpoint(3).key);
  });

  it('counts each pick in flight until it is released', () => {
    const inFlight = new InFlight();
    const picker = roundRobinBalancer.createPicker([endpoint(1)], inFlight);
    const result = picker.pick();
    if (!result.ok) throw result.error;
    expect(inFlight.get(endpoint(1).key)).toBe(1);
    result.value.release();
    expect(inFlight.get(endpoint(1).key)).toBe(0);
  });

  it('fails with TSMESH_ERR_NO_ENDPOINTS when there is no endpoint', () => {
    const result = roundRobinBalancer.createPicker([], new InFlight()).pick();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('TSMESH_ERR_NO_ENDPOINTS');
  });
});
