// A balanced cluster: the endpoints of one Service port, the algorithm its Service asked for,
// and the passive health of its endpoints, behind a synchronous `pick()`. The forwarders call
// `pick()`, send to `value.endpoint`, `release()` when the request or connection ends, and
// report connect failures and successes so broken endpoints are ejected.
import { logger, type Result, type TsmeshError } from '@tsmesh/common';
import { unknownLoadBalancerError } from '../errors.js';
import {
  DEFAULT_LOAD_BALANCER,
  getLoadBalancer,
  InFlight,
  loadBalancerNames,
  PickerMemory,
  type BalancedEndpoint,
  type LoadBalancerFactory,
  type Pick,
  type PickContext,
  type Picker,
} from './balancer.js';
import { EndpointHealth, type EndpointHealthOptions } from './ejection.js';
import { LocalityPicker, planLocality, type LocalityPlan, type ZonedEndpoint, type ZonePickTally } from './locality.js';
import { acquirePick, EmptyPicker } from './picks.js';
import { latencyOf } from './peak-ewma.js';

const log = logger('balance.cluster');

export interface BalancedClusterOptions {
  /** Names the cluster in logs and errors, e.g. `reviews.default:9080`. */
  readonly name: string;
  /** The Service's `tsmesh.io/load-balancer` value; absent or unknown: DEFAULT_LOAD_BALANCER. */
  readonly loadBalancer?: string;
  /** Passive-health settings for the cluster's endpoints. */
  readonly health?: EndpointHealthOptions;
  /** Where local and cross-zone picks are counted (the metrics' tally for this cluster); default: the cluster's own. */
  readonly zonePicks?: ZonePickTally;
}

/** A registered algorithm for `name`, and a warning when it had to fall back to the default. */
export interface ResolvedLoadBalancer {
  readonly factory: LoadBalancerFactory;
  readonly warning: TsmeshError | undefined;
}

/** One endpoint as the admin endpoint `/clusters` shows it. */
export interface EndpointStats {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly inFlight: number;
  readonly ejected: boolean;
}

/**
 * Finds the algorithm registered as `name` (undefined: the default). An unknown name falls
 * back to DEFAULT_LOAD_BALANCER with a TSMESH_ERR_UNKNOWN_LOAD_BALANCER warning, never a throw.
 * The algorithms register when `balance/index.js` is loaded; import the balancers through it.
 */
export function resolveLoadBalancer(name: string | undefined): ResolvedLoadBalancer {
  const wanted = getLoadBalancer(name ?? DEFAULT_LOAD_BALANCER);
  if (wanted !== undefined) return { factory: wanted, warning: undefined };
  const fallback = getLoadBalancer(DEFAULT_LOAD_BALANCER);
  if (fallback === undefined) {
    // A wiring bug, not a configuration problem: nothing imported balance/index.js.
    throw new Error(`load balancer "${DEFAULT_LOAD_BALANCER}" is not registered; import balance/index.js`);
  }
  return {
    factory: fallback,
    warning: unknownLoadBalancerError(name ?? '', loadBalancerNames(), DEFAULT_LOAD_BALANCER),
  };
}

export class BalancedCluster<E extends BalancedEndpoint & ZonedEndpoint> {
  /** Requests in flight per endpoint key, shared by every picker this cluster builds. */
  readonly inFlight = new InFlight();
  /** Ejections of this cluster's endpoints. */
  readonly health: EndpointHealth;
  readonly name: string;
  private readonly memory = new PickerMemory();
  private factory: LoadBalancerFactory;
  private current: readonly E[] = [];
  private currentKeys: ReadonlySet<string> = new Set();
  private picker: Picker<E>;
  /** The endpoints the picker balances over (not ejected, or all of them in panic mode). */
  private eligible: readonly E[] = [];
  private eligibleByKey = new Map<string, E>();
  /** The caller's zone (undefined: no zone preference) and the endpoints listed but not ready, which count towards their zone. */
  private zone: string | undefined;
  private unready: readonly ZonedEndpoint[] = [];
  private plan: LocalityPlan<E> | undefined;
  /** Picks that went to the caller's zone and to others, counted while the caller's zone is known. */
  readonly zonePicks: ZonePickTally;

  /**
   * Makes a cluster with no endpoints yet (every pick fails until `setEndpoints`). `warning` is
   * set when the requested algorithm is unknown and the default is used instead.
   */
  static create<E extends BalancedEndpoint & ZonedEndpoint>(
    options: BalancedClusterOptions,
  ): { cluster: BalancedCluster<E>; warning: TsmeshError | undefined } {
    const { factory, warning } = resolveLoadBalancer(options.loadBalancer);
    return { cluster: new BalancedCluster<E>(options, factory), warning };
  }

  private constructor(options: BalancedClusterOptions, factory: LoadBalancerFactory) {
    this.name = options.name;
    this.factory = factory;
    this.health = new EndpointHealth(options.health);
    this.zonePicks = options.zonePicks ?? { local: 0, crossZone: 0 };
    this.picker = new EmptyPicker<E>(this.name);
    this.health.onChange(() => this.rebuild());
  }

  /** The name of the algorithm in use. */
  get loadBalancer(): string {
    return this.factory.name;
  }

  /** Every endpoint of the cluster, ejected or not. */
  get endpoints(): readonly E[] {
    return this.current;
  }

  /** The picker in force; replaced (never mutated) whenever endpoints, ejections or the algorithm change. */
  get currentPicker(): Picker<E> {
    return this.picker;
  }

  /**
   * The caller's locality view, for `/clusters`: its zone, how local endpoints are chosen and the
   * share of picks they get, after taking in ejections decided on the other event loops.
   */
  get locality(): { readonly zone: string; readonly mode: 'zone' | 'hints'; readonly localShare: number } | undefined {
    this.health.sync();
    const plan = this.plan;
    return plan === undefined || this.zone === undefined ? undefined : { zone: this.zone, mode: plan.mode, localShare: plan.localShare };
  }

  /**
   * Prefers endpoints in `zone` (the caller's; undefined: none, every zone alike) from the next pick
   * on: see balance/locality.ts for the local share and the failover.
   */
  setLocality(zone: string | undefined): void {
    if (zone === this.zone) return;
    this.zone = zone;
    this.rebuild();
  }

  /**
   * Replaces the endpoint set (the first of duplicate keys wins) and builds a new picker.
   * In-flight counts and the rotation position carry over; health of departed endpoints is forgotten.
   * `unready` are the Service's endpoints that take no request now (not ready): they only count
   * towards their zone's size, so a zone with most endpoints not ready spills traffic to the others.
   */
  setEndpoints(endpoints: readonly E[], unready: readonly ZonedEndpoint[] = []): void {
    this.unready = unready;
    const byKey = new Map<string, E>();
    for (const endpoint of endpoints) if (!byKey.has(endpoint.key)) byKey.set(endpoint.key, endpoint);
    this.current = Object.freeze([...byKey.values()]);
    this.currentKeys = new Set(byKey.keys());
    this.health.retain(this.currentKeys);
    this.health.setTotal(this.current.length);
    latencyOf(this.memory).retain(this.currentKeys);
    this.rebuild();
  }

  /** Switches algorithm (a changed Service annotation); returns a warning when it fell back to the default. */
  setLoadBalancer(name: string | undefined): TsmeshError | undefined {
    const { factory, warning } = resolveLoadBalancer(name);
    if (factory !== this.factory) {
      this.factory = factory;
      this.rebuild();
    }
    return warning;
  }

  /**
   * Chooses an endpoint for one request or connection; the caller must `release()` the pick
   * when it ends. Synchronous; fails with TSMESH_ERR_NO_ENDPOINTS only when the cluster is empty.
   */
  pick(ctx?: PickContext): Result<Pick<E>, TsmeshError> {
    this.health.sync(); // ejections decided on the other event loops, if any
    const picked = this.choose(ctx);
    const plan = this.plan;
    if (plan !== undefined && picked.ok) {
      if (plan.localKeys.has(picked.value.endpoint.key)) this.zonePicks.local++;
      else this.zonePicks.crossZone++;
    }
    return picked;
  }

  private choose(ctx: PickContext | undefined): Result<Pick<E>, TsmeshError> {
    const avoid = ctx?.avoid;
    if (ctx?.prefer !== undefined && !avoid?.includes(ctx.prefer)) {
      const bound = this.eligibleByKey.get(ctx.prefer);
      if (bound !== undefined) return acquirePick(bound, this.inFlight);
    }
    const picked = this.picker.pick(ctx);
    if (avoid === undefined || avoid.length === 0 || !picked.ok || !avoid.includes(picked.value.endpoint.key)) return picked;
    // The algorithm chose an endpoint to avoid: ask it again a few times (round robin moves on,
    // the random ones draw again), then take the least loaded endpoint not avoided, if any.
    let last = picked;
    for (let i = 0; i < 3; i++) {
      last.value.release();
      const again = this.picker.pick(ctx);
      if (!again.ok || !avoid.includes(again.value.endpoint.key)) return again;
      last = again;
    }
    let best: E | undefined;
    for (const e of this.eligible) {
      if (avoid.includes(e.key)) continue;
      if (best === undefined || this.inFlight.get(e.key) < this.inFlight.get(best.key)) best = e;
    }
    if (best === undefined) return last;
    last.value.release();
    return acquirePick(best, this.inFlight);
  }

  /** `key`'s response took `ms` to start (latency-aware balancing learns from it). Unknown keys are ignored. */
  reportLatency(key: string, ms: number): void {
    if (this.currentKeys.has(key)) latencyOf(this.memory).observe(key, ms);
  }

  /** `key`'s latency estimate, ms (peak EWMA; the default RTT before any sample). */
  latencyEstimate(key: string): number {
    return latencyOf(this.memory).get(key);
  }

  /** New outlier-detection settings (a changed policy); endpoints ejected now stay ejected until their time. */
  configureHealth(options: Omit<EndpointHealthOptions, 'now'>): void {
    this.health.configure(options);
  }

  /** A connection to `key` failed (refused, reset, timed out). Unknown keys are ignored. */
  reportFailure(key: string): void {
    if (!this.currentKeys.has(key)) return;
    this.health.recordOutcome(key, false);
    this.health.reportFailure(key, 'connect');
  }

  /**
   * `key` answered with `status`: a 5xx (502-504 also as a gateway error) counts towards its
   * outlier detection; anything else is a success. Unknown keys are ignored.
   */
  reportResponse(key: string, status: number): void {
    if (!this.currentKeys.has(key)) return;
    this.health.recordOutcome(key, status < 500);
    if (status >= 500 && status <= 599) this.health.reportFailure(key, status >= 502 && status <= 504 ? 'gateway' : '5xx');
    else this.health.reportSuccess(key);
  }

  /** A connection to `key` succeeded. Unknown keys are ignored. */
  reportSuccess(key: string): void {
    if (this.currentKeys.has(key)) this.health.reportSuccess(key);
  }

  /** Per-endpoint in-flight counts and ejection, in endpoint order. */
  stats(): EndpointStats[] {
    return this.current.map((endpoint) => ({
      key: endpoint.key,
      address: endpoint.address,
      port: endpoint.port,
      inFlight: this.inFlight.get(endpoint.key),
      ejected: this.health.isEjected(endpoint.key),
    }));
  }

  /** Stops the ejection timers. Picks keep working on the last picker. */
  close(): void {
    this.health.close();
  }

  private rebuild(): void {
    const eligible = this.health.filter(this.current);
    this.eligible = eligible;
    this.eligibleByKey = new Map(eligible.map((e) => [e.key, e]));
    this.plan = undefined;
    if (eligible.length === 0) {
      this.picker = new EmptyPicker<E>(this.name);
      return;
    }
    if (eligible.length < this.current.length) {
      log.debug({ cluster: this.name, eligible: eligible.length, total: this.current.length }, 'picker excludes ejected endpoints');
    } else if (this.health.ejected().some((key) => this.currentKeys.has(key))) {
      log.warn({ cluster: this.name }, 'every endpoint is ejected; balancing over all of them (panic mode)');
    }
    const plan = planLocality(this.zone, this.current, eligible, this.unready);
    this.plan = plan;
    if (plan === undefined) {
      this.picker = this.factory.createPicker(eligible, this.inFlight, this.memory);
    } else if (plan.localShare >= 1) {
      this.picker = this.factory.createPicker(plan.local, this.inFlight, this.memory);
    } else if (plan.localShare <= 0) {
      if (plan.localKeys.size > 0) log.debug({ cluster: this.name, zone: this.zone }, 'no healthy endpoint in the local zone; balancing over the others');
      this.picker = this.factory.createPicker(plan.remote, this.inFlight, this.memory);
    } else {
      log.debug({ cluster: this.name, zone: this.zone, localShare: plan.localShare }, 'local zone degraded; spilling part of its traffic to the others');
      const local = this.factory.createPicker(plan.local, this.inFlight, this.memory);
      const remote = this.factory.createPicker(plan.remote, this.inFlight, this.memory);
      this.picker = new LocalityPicker(local, remote, plan.localShare);
    }
  }
}

