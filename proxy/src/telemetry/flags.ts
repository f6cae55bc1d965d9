// Response flags: short codes saying why a request or connection ended the way it did, written
// in the access log and on spans. The codes (and their meanings) follow Envoy's, which operators
// already read.

export const RESPONSE_FLAGS = {
  /** Upstream request timeout (the route's timeout fired). */
  UT: 'upstream request timeout',
  /** Upstream reset the stream or connection before or during the response. */
  UR: 'upstream reset',
  /** Connecting to the upstream failed (refused, timed out, TLS handshake failed). */
  UF: 'upstream connect failure',
  /** Upstream connection terminated after the response started. */
  UC: 'upstream connection termination',
  /** No route matched the request (or the original destination is unknown). */
  NR: 'no route',
  /** The cluster had no healthy endpoint. */
  UH: 'no healthy upstream',
  /** A circuit breaker of the cluster (requests in flight, concurrent retries) refused the request. */
  UO: 'upstream overflow',
  /** Protocol detection timed out; the connection was treated as opaque TCP. */
  DT: 'protocol detect timeout',
  /** Downstream closed or reset before the response completed. */
  DC: 'downstream connection termination',
  /**
   * Downstream protocol error: an HTTP request the sidecar could not parse where it must (an
   * unfinished request line); refused, never passed on as bytes.
   */
  DPE: 'downstream protocol error',
  /** Idle timeout: nothing crossed the connection or stream for the configured time. */
  SI: 'idle timeout',
  /** Refused by authorization or mTLS policy. */
  RBAC: 'denied by policy',
  /** Refused by a local rate limit (HTTPLocalRateLimitPolicy): answered 429 (gRPC RESOURCE_EXHAUSTED). */
  RL: 'rate limited',
} as const;

export type ResponseFlag = keyof typeof RESPONSE_FLAGS;

/** Flags as written in logs and on spans: comma-separated in the order given, `-` when none. */
export function formatFlags(flags: readonly ResponseFlag[] | undefined): string {
  return flags === undefined || flags.length === 0 ? '-' : flags.join(',');
}
