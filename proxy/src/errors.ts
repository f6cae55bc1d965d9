// Stable error codes of the proxy. Add a code here (and a constructor below) rather than
// inventing a string at the call site; callers match on `code`, never on the message.
import { TsmeshError } from '@tsmesh/common';

export const PROXY_ERRORS = {
  NO_ENDPOINTS: 'TSMESH_ERR_NO_ENDPOINTS',
  UNKNOWN_LOAD_BALANCER: 'TSMESH_ERR_UNKNOWN_LOAD_BALANCER',
  /** Routes apply to the request and none matched (answered 404). */
  NO_ROUTE: 'TSMESH_ERR_NO_ROUTE',
  /** Routing cannot read the request (a path that does not normalise, Host against :authority): 400. */
  BAD_REQUEST: 'TSMESH_ERR_BAD_REQUEST',
  /** A cluster's circuit breaker refused the request (answered 503, flag `UO`). */
  OVERFLOW: 'TSMESH_ERR_OVERFLOW',
  /** An AuthorizationPolicy refused the request (answered 403; gRPC PERMISSION_DENIED; flag `RBAC`). */
  AUTHZ_DENIED: 'TSMESH_ERR_AUTHZ_DENIED',
  /** A flag or environment variable of `tsmesh proxy` has a bad value. */
  CONFIG: 'TSMESH_ERR_PROXY_CONFIG',
  /** The original destination of a captured connection cannot be read (SO_ORIGINAL_DST). */
  ORIGINAL_DST: 'TSMESH_ERR_ORIGINAL_DST',
  /** A mesh peer presented a certificate without the expected SPIFFE ID. */
  PEER_IDENTITY: 'TSMESH_ERR_PEER_IDENTITY',
  /** mTLS was needed before this workload held a certificate. */
  NO_IDENTITY: 'TSMESH_ERR_NO_IDENTITY',
  /** A mesh TLS handshake failed, timed out, or negotiated less than TLS 1.3 or no mesh ALPN. */
  TLS_HANDSHAKE: 'TSMESH_ERR_TLS_HANDSHAKE',
} as const;

export type ProxyErrorCode = (typeof PROXY_ERRORS)[keyof typeof PROXY_ERRORS];

/** A balancer had no endpoint to offer (the forwarder answers 503 / closes the connection). */
export function noEndpointsError(cluster?: string, cause?: unknown): TsmeshError {
  const where = cluster === undefined ? '' : ` for ${cluster}`;
  return new TsmeshError(
    PROXY_ERRORS.NO_ENDPOINTS,
    `no endpoints available${where}`,
    cause === undefined ? undefined : { cause },
  );
}

/** A Service asked for a load-balancing algorithm that is not registered; `fallback` is used instead. */
export function unknownLoadBalancerError(name: string, known: readonly string[], fallback: string): TsmeshError {
  return new TsmeshError(
    PROXY_ERRORS.UNKNOWN_LOAD_BALANCER,
    `unknown load balancer "${name}" (expected one of ${known.join(', ')}); using ${fallback}`,
  );
}
