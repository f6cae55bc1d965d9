// Stable error codes of the workload identity (SPIFFE IDs, peer certificates, the certificate the
// sidecar holds). Callers match on `code`, never on the message.
import { TsmeshError } from '@tsmesh/common';

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
export class IdentityError extends TsmeshError {
  declare readonly code: IdentityErrorCode;
  constructor(code: IdentityErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'IdentityError';
  }
}
