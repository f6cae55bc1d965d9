// peak-ewma: latency-aware power of two choices (Finagle's and Linkerd's default). Each endpoint
// carries a moving average of its response latency that jumps up to any slower sample at once
// (the peak) and decays towards faster ones with a time constant; a pick draws two endpoints
// and takes the one whose latency × (requests in flight + 1) is lower. A slow replica is shed
// within a few requests. Its estimate keeps decaying while it gets no request, so it is tried
// again once the old peak has faded below the others (a recovered replica wins its share back).
// An endpoint with no sample yet costs nothing while idle (it is tried first, as in Finagle) and
// the default RTT per request once it has one in flight (so a new endpoint is not flooded).
import type { Result, TsmeshError } from '@tsmesh/common';
import type { BalancedEndpoint, InFlight, LoadBalancerFactory, Pick, Picker, PickerMemory } from './balancer.js';
import { acquirePick, EmptyPicker, otherRandomIndex, randomIndex } from './picks.js';

/** Time constant of the decay, ms (Linkerd's 10 s). */
export const DECAY_MS = 10_000;
/** What an endpoint with no sample yet is assumed to take, ms (Linkerd's default RTT). */
export const DEFAULT_RTT_MS = 30;

/** Relative difference under which two costs count as equal. */
const TIE = 0.01;

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
    const w = Math.exp(-Math.max(now - e.stamp, 0) / DECAY_MS);
    // A sample above the estimate as decayed until now is the new peak.
    if (ms > e.ewma * w) e.ewma = ms;
    else e.ewma = e.ewma * w + ms * (1 - w);
    e.stamp = now;
  }

  /**
   * The current estimate of `key`, ms: its last estimate decayed towards zero for the time since
   * (as if the time without a sample were fast answers); the default RTT before any sample.
   */
  get(key: string): number {
    const e = this.estimates.get(key);
    if (e === undefined) return DEFAULT_RTT_MS;
    const elapsed = this.now() - e.stamp;
    return elapsed > 0 ? e.ewma * Math.exp(-elapsed / DECAY_MS) : e.ewma;
  }

  /** Whether `key` has answered at least once (since it last joined the cluster). */
  sampled(key: string): boolean {
    return this.estimates.has(key);
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
    const first = this.endpoints[i] as E;
    const second = this.endpoints[otherRandomIndex(i, n)] as E;
    const cost = (e: E): number => {
      const pending = this.inFlight.get(e.key);
      if (!this.latency.sampled(e.key)) return pending === 0 ? 0 : DEFAULT_RTT_MS * (pending + 1);
      return this.latency.get(e.key) * (pending + 1);
    };
    // Costs within TIE of each other are a tie, kept as `first`: a fair coin, since (i, j) is a
    // uniformly random ordered pair. Estimates that close say nothing (one was only stamped a
    // moment earlier and has decayed a hair more), and equally fast replicas stay evenly loaded
    // instead of herding onto whichever answered last.
    return acquirePick(cost(second) < cost(first) * (1 - TIE) ? second : first, this.inFlight);
  }
}

export const peakEwmaBalancer: LoadBalancerFactory = {
  name: 'peak-ewma',
  createPicker<E extends BalancedEndpoint>(endpoints: readonly E[], inFlight: InFlight, memory?: PickerMemory): Picker<E> {
    if (endpoints.length === 0) return new EmptyPicker<E>();
    return new PeakEwmaPicker([...endpoints], inFlight, memory ? latencyOf(memory) : new LatencyEstimates());
  },
};
