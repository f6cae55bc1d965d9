import { describe, expect, it } from '@jest/globals';
import { BalancedCluster, InFlight, PickerMemory, type BalancedEndpoint, type Picker } from './index.js';
import { DECAY_MS, DEFAULT_RTT_MS, LatencyEstimates, peakEwmaBalancer } from './peak-ewma.js';

const endpoints: BalancedEndpoint[] = [1, 2, 3].map((i) => ({ key: `10.0.0.${i}:80`, address: `10.0.0.${i}`, port: 80 }));

function share(cluster: BalancedCluster<BalancedEndpoint>, picks: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < picks; i++) {
    const p = cluster.pick();
    if (!p.ok) throw p.error;
    counts[p.value.endpoint.key] = (counts[p.value.endpoint.key] ?? 0) + 1;
    p.value.release();
  }
  return counts;
}

function memoryWith(latency: LatencyEstimates): PickerMemory {
  const memory = new PickerMemory();
  memory.slot('latency', () => latency);
  return memory;
}

function pickCounts(picker: Picker<BalancedEndpoint>, picks: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < picks; i++) {
    const p = picker.pick();
    if (!p.ok) throw p.error;
    counts[p.value.endpoint.key] = (counts[p.value.endpoint.key] ?? 0) + 1;
    p.value.release();
  }
  return counts;
}

describe('LatencyEstimates (peak EWMA)', () => {
  it('jumps to a slower sample at once and decays towards faster ones with the time constant', () => {
    let t = 0;
    const e = new LatencyEstimates(() => t);
    expect(e.get('a')).toBe(DEFAULT_RTT_MS);
    e.observe('a', 10);
    e.observe('a', 100);
    expect(e.get('a')).toBe(100);
    t += DECAY_MS;
    e.observe('a', 10);
    // One time constant later the old peak weighs e^-1.
    expect(e.get('a')).toBeCloseTo(100 * Math.exp(-1) + 10 * (1 - Math.exp(-1)), 6);
    e.retain(new Set());
    expect(e.get('a')).toBe(DEFAULT_RTT_MS);
  });

  it('decays an estimate with time even without a new sample, so a shed replica is tried again', () => {
    let t = 0;
    const e = new LatencyEstimates(() => t);
    e.observe('a', 100);
    t += DECAY_MS;
    expect(e.get('a')).toBeCloseTo(100 * Math.exp(-1), 6);
    t += 3 * DECAY_MS;
    expect(e.get('a')).toBeCloseTo(100 * Math.exp(-4), 6);
    // A slower sample than the decayed estimate is the new peak.
    e.observe('a', 5);
    expect(e.get('a')).toBe(5);
  });

  it('says which endpoints have been sampled', () => {
    const e = new LatencyEstimates(() => 0);
    e.observe('a', 1);
    expect(e.sampled('a')).toBe(true);
    expect(e.sampled('b')).toBe(false);
  });
});

describe('peak-ewma balancer', () => {
  it('is registered and sheds a slow replica, yet keeps the fast ones evenly loaded', () => {
    const { cluster, warning } = BalancedCluster.create<BalancedEndpoint>({ name: 'a', loadBalancer: 'peak-ewma' });
    expect(warning).toBeUndefined();
    cluster.setEndpoints(endpoints);
    cluster.reportLatency('10.0.0.1:80', 200);
    cluster.reportLatency('10.0.0.2:80', 2);
    cluster.reportLatency('10.0.0.3:80', 2);
    const counts = share(cluster, 3000);
    // P2C draws two distinct endpoints, and the slow one loses every draw it is in.
    expect(counts['10.0.0.1:80'] ?? 0).toBe(0);
    expect(Math.abs((counts['10.0.0.2:80'] ?? 0) - (counts['10.0.0.3:80'] ?? 0))).toBeLessThan(300);
    cluster.close();
  });

  it('recovers a replica it shed once its old peak has decayed below the others', () => {
    let t = 0;
    const latency = new LatencyEstimates(() => t);
    const picker = peakEwmaBalancer.createPicker(endpoints.slice(0, 2), new InFlight(), memoryWith(latency));
    latency.observe('10.0.0.1:80', 200);
    latency.observe('10.0.0.2:80', 2);
    expect(pickCounts(picker, 100)['10.0.0.1:80'] ?? 0).toBe(0);
    // 200 ms decays below 2 ms after ln(100) time constants; the fast one keeps being sampled at 2 ms.
    t += 5 * DECAY_MS;
    latency.observe('10.0.0.2:80', 2);
    expect(pickCounts(picker, 100)['10.0.0.1:80']).toBe(100);
  });

  it('tries an endpoint with no sample yet while nothing is in flight to it, then holds it at the default RTT', () => {
    const { cluster } = BalancedCluster.create<BalancedEndpoint>({ name: 'c', loadBalancer: 'peak-ewma' });
    cluster.setEndpoints(endpoints);
    cluster.reportLatency('10.0.0.1:80', 2);
    cluster.reportLatency('10.0.0.2:80', 2);
    // 10.0.0.3 is new: it wins every draw it is in (two thirds of them) while idle...
    const fresh = share(cluster, 3000)['10.0.0.3:80'] ?? 0;
    expect(fresh).toBeGreaterThan(1800);
    expect(fresh).toBeLessThan(2200);
    // ...but one request in flight without an answer yet costs the default RTT, so it is not flooded.
    const held = cluster.inFlight.acquire('10.0.0.3:80');
    expect(share(cluster, 300)['10.0.0.3:80'] ?? 0).toBe(0);
    held();
    cluster.close();
  });

  it('weighs requests in flight: a fast replica with many requests in flight loses to an idle slower one', () => {
    const { cluster } = BalancedCluster.create<BalancedEndpoint>({ name: 'b', loadBalancer: 'peak-ewma' });
    cluster.setEndpoints(endpoints.slice(0, 2));
    cluster.reportLatency('10.0.0.1:80', 5);
    cluster.reportLatency('10.0.0.2:80', 20);
    const held = Array.from({ length: 10 }, () => cluster.inFlight.acquire('10.0.0.1:80'));
    const counts = share(cluster, 100);
    expect(counts['10.0.0.2:80']).toBe(100); // 5 × 11 > 20 × 1
    for (const release of held) release();
    cluster.close();
  });
});
