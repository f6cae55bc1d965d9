// Orders the matches of every rule attached to one parent, most specific first, so matching is
// "the first entry that holds". HTTPRoute (spec, HTTPRouteRule.matches): Exact path, then the
// longest PathPrefix, then a method, then the most header matches, then the most query parameter
// matches. GRPCRoute (GRPCRouteRule.matches): the most characters of an exact service, then of an
// exact method, then the most header matches. Ties: the oldest route, then namespace/name
// alphabetically, then rule order, then match order.
//
// RegularExpression path precedence is implementation-specific; tsmesh puts it between Exact and
// PathPrefix (longer patterns first), so a catch-all `PathPrefix /` rule never hides a regex rule.
// A regex service or method ranks below any exact one and above none.
import type { GrpcMatch, HttpMatch, ValueMatch } from './types.js';

/** Where a match comes from, for the tie-breaks. */
export interface MatchOrigin {
  /** `metadata.creationTimestamp` in ms; +Infinity when absent (a mesh file's objects). */
  readonly created: number;
  /** `namespace/name`. */
  readonly key: string;
  readonly ruleIndex: number;
  readonly matchIndex: number;
}

const PATH_RANK = { Exact: 3, RegularExpression: 2, PathPrefix: 1 } as const;

/** Negative when `a` takes precedence over `b`. */
export function compareHttp(a: HttpMatch, ao: MatchOrigin, b: HttpMatch, bo: MatchOrigin): number {
  return (
    PATH_RANK[b.path.type] - PATH_RANK[a.path.type] ||
    pathLength(b) - pathLength(a) ||
    Number(b.method !== undefined) - Number(a.method !== undefined) ||
    b.headers.length - a.headers.length ||
    b.queryParams.length - a.queryParams.length ||
    compareOrigin(ao, bo)
  );
}

/** Negative when `a` takes precedence over `b`. */
export function compareGrpc(a: GrpcMatch, ao: MatchOrigin, b: GrpcMatch, bo: MatchOrigin): number {
  return (
    exactLength(b.service) - exactLength(a.service) ||
    isRegex(b.service) - isRegex(a.service) ||
    exactLength(b.method) - exactLength(a.method) ||
    isRegex(b.method) - isRegex(a.method) ||
    b.headers.length - a.headers.length ||
    compareOrigin(ao, bo)
  );
}

export function compareOrigin(a: MatchOrigin, b: MatchOrigin): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  return a.ruleIndex - b.ruleIndex || a.matchIndex - b.matchIndex;
}

/** Characters of the path value; a PathPrefix counts without its ignored trailing `/`. */
function pathLength(match: HttpMatch): number {
  return match.path.type === 'PathPrefix' ? match.path.prefix.length : match.path.value.length;
}

function exactLength(match: ValueMatch | undefined): number {
  return match?.type === 'Exact' ? match.value.length : 0;
}

function isRegex(match: ValueMatch | undefined): number {
  return match?.type === 'RegularExpression' ? 1 : 0;
}
