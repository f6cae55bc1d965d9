// Zone preference, applied by BalancedCluster under every algorithm: which endpoints are local to
// the caller (same EndpointSlice `zone`, or topology-aware routing hints naming the caller's zone),
// and what share of picks stays local. The share follows Envoy's priority rule: the local zone takes
// min(1, 1.4 × its healthy fraction); the rest spills to the other zones, all of it when no local
// endpoint is healthy. Computed once per picker rebuild; a pick only draws a number.
import type { Result, TsmeshError } from '@tsmesh/common';
import type { BalancedEndpoint, Pick, PickContext, Picker } from './balancer.js';
import { fnv1a32 } from './hash.js';

/**
 * Envoy's overprovisioning factor: a zone with 5 of 7 endpoints healthy (71 %) still takes all of
 * its callers' traffic; with 2 of 5 (40 %) it takes 56 % and the rest goes to the other zones.
 */
export const LOCALITY_OVERPROVISIONING = 1.4;

/** What locality reads of an endpoint. */
export interface ZonedEndpoint {
  readonly zone?: string | undefined;
  readonly forZones?: readonly string[] | undefined;
}

/** Picks counted by the cluster: plain numbers, read (and reset) by whoever exports them. */
export interface ZonePickTally {
  local: number;
  crossZone: number;
}

export interface LocalityPlan<E> {
  /** `hints`: every endpoint carries topology-aware routing hints, and those naming the caller's zone are local. */
  readonly mode: 'zone' | 'hints';
  /** Healthy local endpoints. */
  readonly local: readonly E[];
  /** Healthy endpoints of the other zones. */
  readonly remote: readonly E[];
  /** The fraction of picks that go to `local` (0 to 1). */
  readonly localShare: number;
  /** Keys of every local endpoint, healthy or not (for counting picks). */
  readonly localKeys: ReadonlySet<string>;
}

/**
 * The split of one cluster for a caller in `zone`. `all` are the endpoints that may take requests
 * (ready), `healthy` those of them the balancer may pick now (not ejected), `unready` endpoints
 * listed but not ready, which count towards their zone's size. Undefined without a caller zone, or
 * when no endpoint has a zone or hints.
 */
export function planLocality<E extends BalancedEndpoint & ZonedEndpoint>(
  zone: string | undefined,
  all: readonly E[],
  healthy: readonly E[],
  unready: readonly ZonedEndpoint[] = [],
): LocalityPlan<E> | undefined {
  if (zone === undefined || all.length === 0) return undefined;
  // kube-proxy's rule: hints are used only when every endpoint has them.
  const hints = all.every((e) => e.forZones !== undefined && e.forZones.length > 0);
  // Endpoints that say nothing of where they run (a mesh file without zones) give nothing to prefer.
  if (!hints && !all.some((e) => e.zone !== undefined) && !unready.some((e) => e.zone !== undefined)) return undefined;
  const isLocal = hints ? (e: ZonedEndpoint) => e.forZones?.includes(zone) === true : (e: ZonedEndpoint) => e.zone === zone;
  const localKeys = new Set<string>();
  for (const e of all) if (isLocal(e)) localKeys.add(e.key);
  let size = localKeys.size;
  for (const e of unready) if (isLocal(e)) size++;
  const local = healthy.filter((e) => localKeys.has(e.key));
  const remote = healthy.filter((e) => !localKeys.has(e.key));
  let localShare = size === 0 ? 0 : Math.min(1, (LOCALITY_OVERPROVISIONING * local.length) / size);
  if (remote.length === 0) localShare = local.length === 0 ? 0 : 1;
  return { mode: hints ? 'hints' : 'zone', local, remote: local.length === 0 ? healthy : remote, localShare, localKeys };
}

const TWO_TO_32 = 2 ** 32;

/**
 * Sends `share` of the picks to the local zone's picker and the rest to the other zones'. With a
 * consistent-hash key the draw comes from the key, so a key stays on one side (and one endpoint).
 */
export class LocalityPicker<E extends BalancedEndpoint> implements Picker<E> {
  constructor(
    private readonly local: Picker<E>,
    private readonly remote: Picker<E>,
    private readonly share: number,
  ) {}

  pick(ctx?: PickContext): Result<Pick<E>, TsmeshError> {
    const key = ctx?.hashKey;
    // Mixed (golden-ratio multiply) so that the draw is not the ring position's own hash.
    const draw = key === undefined ? Math.random() : (Math.imul(fnv1a32(key), 0x9e3779b1) >>> 0) / TWO_TO_32;
    return draw < this.share ? this.local.pick(ctx) : this.remote.pick(ctx);
  }
}
