// Load-balancing interface and registry. An algorithm is one file plus one registration line
// in balance/index.ts. A Picker is the momentary state of a balancer: rebuilt whenever the
// endpoint set changes, and `pick()` is synchronous so the hot path never awaits configuration.
import type { Result } from '@tsmesh/common';
import type { TsmeshError } from '@tsmesh/common';

/** A concrete upstream address a request can be sent to. */
export interface BalancedEndpoint {
  /** Stable identity across snapshots, `address:port`. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
}

/** Per-request input to a pick. */
export interface PickContext {
  /** Consistent-hash key (ring-hash), e.g. a header value; ignored by other algorithms. */
  readonly hashKey?: string;
  /**
   * Endpoint keys to stay away from when another eligible endpoint exists (those a retried call
   * has already tried). Honoured by BalancedCluster.pick for every algorithm.
   */
  readonly avoid?: readonly string[];
  /**
   * The endpoint key a session is bound to (session persistence): BalancedCluster.pick takes it
   * when it is eligible (in the Service, not ejected) and not avoided; otherwise the algorithm picks.
   */
  readonly prefer?: string;
}

/** A pick that the caller must `release()` exactly once when the request/stream ends. */
export interface Pick<E extends BalancedEndpoint> {
  readonly endpoint: E;
  release(): void;
}

export interface Picker<E extends BalancedEndpoint> {
  /** Chooses one endpoint; fails (as a value) only when there is no endpoint at all. Never throws, never awaits. */
  pick(ctx?: PickContext): Result<Pick<E>, TsmeshError>;
}

/**
 * In-flight request counts per endpoint key, owned by the cluster and shared by successive
 * pickers, so that replacing the picker on an endpoint change does not forget the load.
 */
export class InFlight {
  private readonly counts = new Map<string, number>();

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  acquire(key: string): () => void {
    this.counts.set(key, this.get(key) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.get(key) - 1;
      if (next <= 0) this.counts.delete(key);
      else this.counts.set(key, next);
    };
  }
}

/**
 * Per-cluster state that outlives pickers, beside InFlight: each algorithm keeps here, under
 * its own name, whatever must survive a picker rebuild (round-robin's rotation position).
 */
export class PickerMemory {
  private readonly slots = new Map<string, object>();

  /** The slot `name`, created by `create` on first use; the same object on every later call. */
  slot<T extends object>(name: string, create: () => T): T {
    const existing = this.slots.get(name);
    if (existing !== undefined) return existing as T;
    const made = create();
    this.slots.set(name, made);
    return made;
  }
}

export interface LoadBalancerFactory {
  /** The value of the Service annotation `tsmesh.io/load-balancer` that selects it. */
  readonly name: string;
  /**
   * Builds a picker over `endpoints` (already filtered to those that may take new requests).
   * `inFlight` and `memory` belong to the cluster and are shared by its successive pickers;
   * without `memory` the picker starts from scratch. Every pick acquires `inFlight` for its endpoint.
   */
  createPicker<E extends BalancedEndpoint>(
    endpoints: readonly E[],
    inFlight: InFlight,
    memory?: PickerMemory,
  ): Picker<E>;
}

const registry = new Map<string, LoadBalancerFactory>();

export function registerLoadBalancer(factory: LoadBalancerFactory): void {
  registry.set(factory.name, factory);
}

export function getLoadBalancer(name: string): LoadBalancerFactory | undefined {
  return registry.get(name);
}

export function loadBalancerNames(): string[] {
  return [...registry.keys()].sort();
}

/** The default algorithm lives in the mesh model (common/src/mesh/load-balancers.ts), chosen by the `balancers` benchmark. */
export { DEFAULT_LOAD_BALANCER } from '@tsmesh/common';
