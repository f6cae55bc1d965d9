import { InFlight, PickerMemory, getLoadBalancer, loadBalancerNames, DEFAULT_LOAD_BALANCER } from './index.js';

describe('the load-balancer registry', () => {
  it('holds the five algorithms a Service can name', () => {
    expect(loadBalancerNames()).toEqual(['least-request', 'peak-ewma', 'random', 'ring-hash', 'round-robin']);
  });

  it('has the default algorithm registered', () => {
    expect(getLoadBalancer(DEFAULT_LOAD_BALANCER)?.name).toBe('least-request');
  });

  it('knows nothing of an unregistered name', () => {
    expect(getLoadBalancer('weighted-magic')).toBeUndefined();
  });
});

describe('InFlight', () => {
  it('counts acquisitions per key until they are released', () => {
    const inFlight = new InFlight();
    const a1 = inFlight.acquire('a');
    const a2 = inFlight.acquire('a');
    inFlight.acquire('b');
    expect(inFlight.get('a')).toBe(2);
    expect(inFlight.get('b')).toBe(1);
    a1();
    a2();
    expect(inFlight.get('a')).toBe(0);
  });

  it('releases each acquisition only once however often it is called', () => {
    const inFlight = new InFlight();
    const first = inFlight.acquire('a');
    inFlight.acquire('a');
    first();
    first();
    first();
    expect(inFlight.get('a')).toBe(1);
  });
});

describe('PickerMemory', () => {
  it('returns the same slot object on every call for a name', () => {
    const memory = new PickerMemory();
    const slot = memory.slot('x', () => ({ n: 1 }));
    slot.n = 2;
    expect(memory.slot('x', () => ({ n: 99 }))).toBe(slot);
    expect(memory.slot('x', () => ({ n: 99 })).n).toBe(2);
  });

  it('keeps separate slots for separate names', () => {
    const memory = new PickerMemory();
    expect(memory.slot('x', () => ({ v: 'x' }))).not.toBe(memory.slot('y', () => ({ v: 'y' })));
  });
});
