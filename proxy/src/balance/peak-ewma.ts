// peak-ewma: latency-aware power of two choices (Finagle's and Linkerd's default). Each endpoint
// carries a moving average of its response latency that jumps up to any slower sample at once
// (the peak) and decays towards faster ones with a time constant; a pick draws two endpoints
// and takes the one whose latency × (requests in flight + 1) is lower. A slow replica is shed
// within a few requests; a recovered one wins its share back as its average decays.
import type { Result, TsmeshError } from '@tsmesh/common';
import type { BalancedEndpoint, InFlight, LoadBalancerFactory, Pick, Picker, PickerMemory } from './balancer.js';
import { acquirePick, EmptyPicker, randomIndex } from './picks.js';

/** Time constant of the decay, ms (Linkerd's 10 s). */
export const DECAY_MS = 10_000;
/** What an endpoint with no sample yet is assumed to take, ms (Linkerd's default RTT). */
export const DEFAULT_RTT_MS = 30;

interface Estimate {
  ewma: number;
  stamp: number;
}

/** Per-cluster latency estimates, kept across pickers in the cluster's PickerMemory. */
export class LatencyEstimates {
  private readonly estimates = new Map<string, Estimate>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Records one response of `key` that took `ms` (first byte of the response). */
  observe(key: string, ms: number): void {
    if (!(ms >= 0)) return;
    const now = this.now();
    const e = this.estimates.get(key);
    if (e === undefined) {
      this.estimates.set(key, { ewma: ms, stamp: now });
      return;
    }
    if (ms > e.ewma) e.ewma = ms;
    else {
      const w = Math.exp(-Math.max(now - e.stamp, 0) / DECAY_MS);
      e.ewma = e.ewma * w + ms * (1 - w);
    }
    e.stamp = now;
  }

  /** The current estimate of `key`, ms. */
  get(key: string): number {
    return this.estimates.get(key)?.ewma ?? DEFAULT_RTT_MS;
  }

  /** Forgets endpoints not in `keys`. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.estimates.keys()) if (!keys.has(key)) this.estimates.delete(key);
  }
}

/** The estimates of a cluster (one per PickerMemory). */
export function latencyOf(memory: PickerMemory): LatencyEstimates {
  return memory.slot('latency', () => new LatencyEstimates());
}

class PeakEwmaPicker<E extends BalancedEndpoint> implements Picker<E> {
  constructor(
    private readonly endpoints: readonly E[],
    private readonly inFlight: InFlight,
    private readonly latency: LatencyEstimates,
  ) {}

  pick(): Result<Pick<E>, TsmeshError> {
    const n = this.endpoints.length;
    if (n === 1) return acquirePick(this.endpoints[0] as E, this.inFlight);
    const i = randomIndex(n);
    let j = randomIndex(n - 1);
    if (j >= i) j += 1;
    const first = this.endpoints[i] as E;
    const second = this.endpoints[j] as E;
    const cost = (e: E): number => this.latency.get(e.key) * (this.inFlight.get(e.key) + 1);
    return acquirePick(cost(second) < cost(first) ? second : first, this.inFlight);
  }
}

export const peakEwmaBalancer: LoadBalancerFactory = {
  name: 'peak-ewma',
  createPicker<E extends BalancedEndpoint>(endpoints: readonly E[], inFlight: InFlight, memory?: PickerMemory): Picker<E> {
    if (endpoints.length === 0) return new EmptyPicker<E>();
    return new PeakEwmaPicker([...endpoints], inFlight, memory ? latencyOf(memory) : new LatencyEstimates());
  },
};
