import { InFlight, type BalancedEndpoint, type Picker } from './balancer.js';
import { leastRequestBalancer } from './least-request.js';

const endpoint = (i: number): BalancedEndpoint => ({ key: `10.0.0.${i}:8080`, address: `10.0.0.${i}`, port: 8080 });

function pickKey(picker: Picker<BalancedEndpoint>, hold = false): string {
  const result = picker.pick();
  if (!result.ok) throw result.error;
  if (!hold) result.value.release();
  return result.value.endpoint.key;
}

describe('least-request (power of two choices)', () => {
  it('picks the only endpoint when there is one', () => {
    const inFlight = new InFlight();
    inFlight.acquire(endpoint(1).key);
    const picker = leastRequestBalancer.createPicker([endpoint(1)], inFlight);
    expect(pickKey(picker)).toBe(endpoint(1).key);
  });

  it('sends traffic to the other endpoints while one holds requests', () => {
    const inFlight = new InFlight();
    const endpoints = [endpoint(1), endpoint(2), endpoint(3)];
    const picker = leastRequestBalancer.createPicker(endpoints, inFlight);
    for (let i = 0; i < 5; i++) inFlight.acquire(endpoint(1).key);
    const keys = Array.from({ length: 1000 }, () => pickKey(picker));
    expect(keys).not.toContain(endpoint(1).key);
    expect(keys).toContain(endpoint(2).key);
    expect(keys).toContain(endpoint(3).key);
  });

  it('takes the less-loaded of two endpoints every time', () => {
    const inFlight = new InFlight();
    const picker = leastRequestBalancer.createPicker([endpoint(1), endpoint(2)], inFlight);
    inFlight.acquire(endpoint(2).key);
    for (let i = 0; i < 200; i++) expect(pickKey(picker)).toBe(endpoint(1).key);
  });

  it('keeps held requests evenly spread', () => {
    const inFlight = new InFlight();
    const endpoints = [endpoint(1), endpoint(2), endpoint(3), endpoint(4)];
    const picker = leastRequestBalancer.createPicker(endpoints, inFlight);
    for (let i = 0; i < 400; i++) pickKey(picker, true);
    const loads = endpoints.map((e) => inFlight.get(e.key));
    expect(loads.reduce((a, b) => a + b, 0)).toBe(400);
    // Uniform random would leave a gap of about 20 here; two choices keep it within a few
    // (measured: over 3 in under 1% of runs, never over 6 in 20,000).
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(10);
  });

  it('breaks ties at random', () => {
    const picker = leastRequestBalancer.createPicker([endpoint(1), endpoint(2)], new InFlight());
    const keys = Array.from({ length: 4000 }, () => pickKey(picker));
    const ones = keys.filter((k) => k === endpoint(1).key).length;
    expect(ones).toBeGreaterThan(1800);
    expect(ones).toBeLessThan(2200);
  });

  it('fails with TSMESH_ERR_NO_ENDPOINTS when there is no endpoint', () => {
    const result = leastRequestBalancer.createPicker([], new InFlight()).pick();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('TSMESH_ERR_NO_ENDPOINTS');
  });
});
