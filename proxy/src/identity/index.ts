// Workload identity: SPIFFE IDs, the sidecar's own certificate (obtained and renewed from the CA)
// and the identity a verified peer presents.
export { IDENTITY_ERRORS, IdentityError, type IdentityErrorCode } from '../errors.js';
export {
  isTrustDomain,
  parseSpiffeId,
  parseSubjectAltNames,
  peerIdentityFromCertificate,
  spiffeIdFor,
  type AltName,
  type PeerIdentity,
  type SpiffeIdentity,
} from './spiffe.js';
export { DEFAULT_BACKOFF, renewalAtMs, retryDelayMs, type BackoffOptions } from './backoff.js';
export { buildMaterial, describeCertificate, splitPemCertificates, unionRoots, type CertificateDescription, type IdentityMaterial } from './material.js';
export {
  WorkloadIdentityManager,
  identityOptionsFromConfig,
  type IdentityDescription,
  type IdentitySettings,
  type WorkloadIdentityOptions,
} from './workload-identity.js';
