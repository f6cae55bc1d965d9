// The open-loop arrival schedule of the mesh-latency benchmark: N one-connection generators at
// evenly spread phases, so the total rate arrives spread over each tick rather than in bursts.

export interface Schedule {
  /** Interval between two sends on one connection, in nanoseconds. */
  readonly periodNs: bigint;
  /** Offset of each connection's first send from the start, in nanoseconds (ascending). */
  readonly phasesNs: readonly bigint[];
}

/** Spreads `ratePerSecond` over `connections` connections at evenly spaced phases. */
export function spreadSchedule(ratePerSecond: number, connections: number): Schedule {
  if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) throw new RangeError(`rate ${ratePerSecond} must be positive`);
  if (!Number.isInteger(connections) || connections < 1) throw new RangeError(`connections ${connections} must be a positive integer`);
  const periodNs = BigInt(Math.round((1e9 * connections) / ratePerSecond));
  const phasesNs = Array.from({ length: connections }, (_, i) => (periodNs * BigInt(i)) / BigInt(connections));
  return Object.freeze({ periodNs, phasesNs: Object.freeze(phasesNs) });
}

/** Scheduled send time (ns from the start) of request `n` (0-based) on connection `c`. */
export function sendTimeNs(schedule: Schedule, c: number, n: number): bigint {
  const phase = schedule.phasesNs[c];
  if (phase === undefined) throw new RangeError(`connection ${c} is not in the schedule`);
  return phase + schedule.periodNs * BigInt(n);
}
