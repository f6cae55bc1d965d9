// Stable error codes of the proxy package: the data path, the workload identity, the control-plane
// client and `tsmesh iptables`. Add a code here (and a constructor below) rather than inventing a
// string at the call site; callers match on `code`, never on the message.
import { codedError, MESH_ERRORS, TsmeshError } from '@tsmesh/common';

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
  return codedError(PROXY_ERRORS.NO_ENDPOINTS, `no endpoints available${where}`, cause);
}

/** A Service asked for a load-balancing algorithm that is not registered; `fallback` is used instead. */
export function unknownLoadBalancerError(name: string, known: readonly string[], fallback: string): TsmeshError {
  return new TsmeshError(
    PROXY_ERRORS.UNKNOWN_LOAD_BALANCER,
    `unknown load balancer "${name}" (expected one of ${known.join(', ')}); using ${fallback}`,
  );
}

/** The sidecar's control-plane client (control-client/). */
export const DISCOVERY_ERRORS = {
  /** TSMESH_CONTROL_ADDR (or the option) is not host:port, or the expected server identity is not a SPIFFE ID. */
  CONTROL_ADDR: 'TSMESH_ERR_CONTROL_ADDR',
  /** No workload certificate yet: the control plane only talks mTLS. */
  CONTROL_NO_IDENTITY: 'TSMESH_ERR_CONTROL_NO_IDENTITY',
  /** Connecting failed (network, TLS, server identity), timed out, or the connection was lost. */
  CONTROL_UNREACHABLE: 'TSMESH_ERR_CONTROL_UNREACHABLE',
  /** The control plane answered the stream with an error status (401/403: our certificate). */
  CONTROL_REFUSED: 'TSMESH_ERR_CONTROL_REFUSED',
  /** The control plane sent something that is not the protocol. */
  CONTROL_PROTOCOL: 'TSMESH_ERR_CONTROL_PROTOCOL',
  /** No snapshot could be applied before start() gave up. */
  CONTROL_START_TIMEOUT: 'TSMESH_ERR_CONTROL_START_TIMEOUT',
  /** A snapshot holds objects that do not validate: it was refused (NACK) and the last good one kept. */
  SNAPSHOT_REJECTED: 'TSMESH_ERR_SNAPSHOT_REJECTED',
  /** A snapshot line over the size limit, or whose parse needed more memory or time than allowed: refused (NACK), not read. */
  SNAPSHOT_TOO_LARGE: 'TSMESH_ERR_SNAPSHOT_TOO_LARGE',
  /** A snapshot whose objects nest deeper than the depth limit: refused (NACK) before parsing. */
  SNAPSHOT_TOO_DEEP: 'TSMESH_ERR_SNAPSHOT_TOO_DEEP',
  /** close() came first. */
  CONTROL_CLOSED: 'TSMESH_ERR_CONTROL_CLOSED',
} as const;

export type DiscoveryErrorCode = (typeof DISCOVERY_ERRORS)[keyof typeof DISCOVERY_ERRORS];

export class DiscoveryError extends TsmeshError<DiscoveryErrorCode> {
  override readonly name = 'DiscoveryError';
}

/** The workload identity (identity/): SPIFFE IDs, peer certificates, the certificate the sidecar holds. */
export const IDENTITY_ERRORS = {
  /** A URI that is not `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. */
  SPIFFE_ID: 'TSMESH_ERR_SPIFFE_ID',
  /** The peer presented no certificate. */
  PEER_NO_CERTIFICATE: 'TSMESH_ERR_PEER_NO_CERTIFICATE',
  /** The peer's leaf certificate is a CA certificate (basicConstraints CA:TRUE). */
  PEER_CA_CERTIFICATE: 'TSMESH_ERR_PEER_CA_CERTIFICATE',
  /** The peer's leaf does not carry exactly one URI SAN, or its SANs cannot be read. */
  PEER_SAN: 'TSMESH_ERR_PEER_SAN',
  /** The peer's SPIFFE ID belongs to another trust domain. */
  PEER_TRUST_DOMAIN: 'TSMESH_ERR_PEER_TRUST_DOMAIN',
  /** TSMESH_CA_TOKEN_FILE cannot be read or is empty. */
  TOKEN_FILE: 'TSMESH_ERR_TOKEN_FILE',
  /** TSMESH_TRUST_BUNDLE_FILE cannot be read or holds no certificate. */
  TRUST_BUNDLE_FILE: 'TSMESH_ERR_TRUST_BUNDLE_FILE',
  /** The CA answered with a certificate the sidecar must not use (other identity, other key, bad chain). */
  IDENTITY_CERTIFICATE: 'TSMESH_ERR_IDENTITY_CERTIFICATE',
  /** The identity manager was stopped before it got a certificate. */
  IDENTITY_STOPPED: 'TSMESH_ERR_IDENTITY_STOPPED',
} as const;

export type IdentityErrorCode = (typeof IDENTITY_ERRORS)[keyof typeof IDENTITY_ERRORS];

/** An identity failure: always one of IDENTITY_ERRORS, with the underlying error as `cause`. */
export class IdentityError extends TsmeshError<IdentityErrorCode> {
  override readonly name = 'IdentityError';
}

/** The traffic-redirection setup, `tsmesh iptables` (iptables/). */
export const IPTABLES_ERRORS = {
  /** A flag or flag value was rejected; nothing was changed. */
  BAD_FLAG: MESH_ERRORS.BAD_FLAG,
  /** iptables-save / iptables-restore (or the ip6tables pair) is not installed. */
  TOOL_MISSING: 'TSMESH_ERR_IPTABLES_TOOL_MISSING',
  /** The current nat table could not be read. */
  READ_STATE: 'TSMESH_ERR_IPTABLES_READ_STATE',
  /** iptables-restore refused the generated ruleset. */
  RESTORE: 'TSMESH_ERR_IPTABLES_RESTORE',
  /** The IPv6 inbound source address (::6) could not be added to or removed from lo. */
  ADDRESS: 'TSMESH_ERR_IPTABLES_ADDRESS',
} as const;
