import { jest } from '@jest/globals';
import { InFlight, type BalancedEndpoint } from './balancer.js';
import { randomBalancer } from './random.js';

const endpoint = (i: number): BalancedEndpoint => ({ key: `10.0.0.${i}:8080`, address: `10.0.0.${i}`, port: 8080 });

afterEach(() => {
  jest.restoreAllMocks();
});

describe('random', () => {
  it('spreads picks uniformly', () => {
    const endpoints = [endpoint(1), endpoint(2), endpoint(3), endpoint(4)];
    const picker = randomBalancer.createPicker(endpoints, new InFlight());
    const tally = new Map<string, number>();
    for (let i = 0; i < 8000; i++) {
      const result = picker.pick();
      if (!result.ok) throw result.error;
      result.value.release();
      tally.set(result.value.endpoint.key, (tally.get(result.value.endpoint.key) ?? 0) + 1);
    }
    expect(tally.size).toBe(4);
    // 2000 expected each; the standard deviation is about 39.
    for (const n of tally.values()) expect(Math.abs(n - 2000)).toBeLessThan(250);
  });

  it('maps the whole random range onto the endpoints', () => {
    const endpoints = [endpoint(1), endpoint(2), endpoint(3)];
    const picker = randomBalancer.createPicker(endpoints, new InFlight());
    const spy = jest.spyOn(Math, 'random');
    const keyFor = (value: number): string => {
      spy.mockReturnValueOnce(value);
      const result = picker.pick();
      if (!result.ok) throw result.error;
      return result.value.endpoint.key;
    };
    expect(keyFor(0)).toBe(endpoint(1).key);
    expect(keyFor(0.5)).toBe(endpoint(2).key);
    expect(keyFor(0.9999999999999999)).toBe(endpoint(3).key);
  });

  it('counts a pick in flight until it is released', () => {
    const inFlight = new InFlight();
    const result = randomBalancer.createPicker([endpoint(1)], inFlight).pick();
    if (!result.ok) throw result.error;
    expect(inFlight.get(endpoint(1).key)).toBe(1);
    result.value.release();
    expect(inFlight.get(endpoint(1).key)).toBe(0);
  });

  it('fails with TSMESH_ERR_NO_ENDPOINTS when there is no endpoint', () => {
    const result = randomBalancer.createPicker([], new InFlight()).pick();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('TSMESH_ERR_NO_ENDPOINTS');
  });
});
