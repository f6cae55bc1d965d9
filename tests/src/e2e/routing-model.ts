// What the routing probe reports and how the suite reads it: answers timestamped by the client
// application, the sidecar's config changes timestamped by polling, and the moments a new route
// revision was applied and showed in the answers. Pure: shared by the probe and the suite.

/** Each HTTPRoute/GRPCRoute of the suite carries its revision in this annotation, kept in /config_dump. */
export const REVISION_ANNOTATION = 'routing.tsmesh.test/revision';

/** One answer of a load: ms since the epoch, the server (`!error` for a failure), whether the canary header was sent. */
export type Answer = [at: number, server: string, canary: 0 | 1];

/** The sidecar's mesh state as the probe saw it change. */
export interface ConfigState {
  /** ms since the epoch. */
  at: number;
  version: string;
  /** `namespace/name` of each route → its revision annotation. */
  revisions: Record<string, string>;
  /** Whether the sidecar is connected to the control plane now. */
  connected: boolean | undefined;
}

export interface LoadReport {
  ok: number;
  failed: number;
  /** The first failures, each `<ms since the epoch> <message>`. */
  errors: string[];
  counts: Record<string, number>;
  /** Sockets the client used (1: every request rode one keep-alive connection). */
  connections: number;
  answers: Answer[];
  /** Every change of the sidecar's state seen by polling /config_dump (first entry: the state at start). */
  config: ConfigState[];
}

/** The first state at or after `after` in which `route` has `revision`. */
export function appliedAt(config: readonly ConfigState[], route: string, revision: string, after: number): ConfigState | undefined {
  return config.find((s) => s.at >= after && s.revisions[route] === revision);
}

/**
 * The first answer at or after `after` that opens a window of `size` answers satisfying `holds` (for a
 * 50/50 → 99/1 change: at most 2 of 50 from the canary, which 50/50 gives with probability ~1e-12
 * and 99/1 fails with probability ~1.4%). Its time is an upper bound of when the new split took effect.
 */
export function firstWindow(answers: readonly Answer[], after: number, size: number, holds: (window: readonly Answer[]) => boolean): Answer | undefined {
  const start = answers.findIndex((a) => a[0] >= after);
  if (start < 0) return undefined;
  for (let i = start; i + size <= answers.length; i++) {
    if (holds(answers.slice(i, i + size))) return answers[i];
  }
  return undefined;
}

/** How many of `answers` came from `server`. */
export function countOf(answers: readonly Answer[], server: string): number {
  let n = 0;
  for (const a of answers) if (a[1] === server) n++;
  return n;
}

/** The answers in [from, to). */
export function between(answers: readonly Answer[], from: number, to = Number.POSITIVE_INFINITY): Answer[] {
  return answers.filter((a) => a[0] >= from && a[0] < to);
}
