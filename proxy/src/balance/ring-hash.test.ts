import { jest } from '@jest/globals';
import { InFlight, type BalancedEndpoint, type Picker } from './balancer.js';
import { ringHashBalancer } from './ring-hash.js';

const endpoint = (i: number): BalancedEndpoint => ({ key: `10.0.0.${i}:8080`, address: `10.0.0.${i}`, port: 8080 });
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
const KEYS = Array.from({ length: 10000 }, (_, i) => `user-${i}`);

function owner(picker: Picker<BalancedEndpoint>, hashKey?: string): string {
  const result = picker.pick(hashKey === undefined ? undefined : { hashKey });
  if (!result.ok) throw result.error;
  result.value.release();
  return result.value.endpoint.key;
}

function owners(endpoints: BalancedEndpoint[]): Map<string, string> {
  const picker = ringHashBalancer.createPicker(endpoints, new InFlight());
  return new Map(KEYS.map((key) => [key, owner(picker, key)]));
}

afterEach(() => {
  jest.restoreAllMocks();
});

describe('ring-hash', () => {
  it('sends the same key to the same endpoint every time', () => {
    const picker = ringHashBalancer.createPicker(range(5).map(endpoint), new InFlight());
    const first = owner(picker, 'session-abc');
    for (let i = 0; i < 50; i++) expect(owner(picker, 'session-abc')).toBe(first);
  });

  it('does not depend on the order the endpoints arrive in', () => {
    const forward = owners(range(5).map(endpoint));
    const backward = owners(range(5).reverse().map(endpoint));
    expect(backward).toEqual(forward);
  });

  it('keeps the endpoint of every key whose endpoint stays when one is removed', () => {
    const before = owners(range(5).map(endpoint));
    const removed = endpoint(3).key;
    const after = owners(range(5).filter((i) => i !== 3).map(endpoint));
    let kept = 0;
    for (const key of KEYS) {
      if (before.get(key) !== removed) expect(after.get(key)).toBe(before.get(key));
      if (after.get(key) === before.get(key)) kept += 1;
    }
    // The removed endpoint owned about a fifth of the keys; only those move.
    expect(kept / KEYS.length).toBeGreaterThan(0.7);
  });

  it('moves keys only to an endpoint that is added', () => {
    const before = owners(range(4).map(endpoint));
    const after = owners(range(5).map(endpoint));
    for (const key of KEYS) {
      if (after.get(key) !== before.get(key)) expect(after.get(key)).toBe(endpoint(5).key);
    }
  });

  it('spreads keys roughly evenly over the endpoints', () => {
    const tally = new Map<string, number>();
    for (const key of owners(range(4).map(endpoint)).values()) tally.set(key, (tally.get(key) ?? 0) + 1);
    expect(tally.size).toBe(4);
    for (const n of tally.values()) {
      expect(n / KEYS.length).toBeGreaterThan(0.15);
      expect(n / KEYS.length).toBeLessThan(0.35);
    }
  });

  it('picks at random when the request has no hash key', () => {
    const picker = ringHashBalancer.createPicker(range(4).map(endpoint), new InFlight());
    jest.spyOn(Math, 'random').mockReturnValueOnce(0).mockReturnValueOnce(0.99);
    expect(owner(picker)).toBe(endpoint(1).key);
    expect(owner(picker)).toBe(endpoint(4).key);
  });

  it('builds a ring over a thousand endpoints and spreads keys over many of them', () => {
    // Speed is a benchmark's business; this checks the large ring is built and used correctly.
    const picker = ringHashBalancer.createPicker(
      Array.from({ length: 1000 }, (_, i) => ({ key: `10.1.${i >> 8}.${i & 255}:80`, address: '', port: 80 })),
      new InFlight(),
    );
    const owners = new Set(Array.from({ length: 2000 }, (_, i) => owner(picker, `key-${i}`)));
    expect([...owners].every((o) => /^10\.1\./.test(o))).toBe(true);
    expect(owners.size).toBeGreaterThan(500);
  });

  it('counts a pick in flight until it is released', () => {
    const inFlight = new InFlight();
    const result = ringHashBalancer.createPicker([endpoint(1)], inFlight).pick({ hashKey: 'k' });
    if (!result.ok) throw result.error;
    expect(inFlight.get(endpoint(1).key)).toBe(1);
    result.value.release();
    expect(inFlight.get(endpoint(1).key)).toBe(0);
  });

  it('fails with TSMESH_ERR_NO_ENDPOINTS when there is no endpoint', () => {
    const result = ringHashBalancer.createPicker([], new InFlight()).pick({ hashKey: 'k' });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('TSMESH_ERR_NO_ENDPOINTS');
  });
});
