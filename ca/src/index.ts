// @tsmesh/ca: the in-cluster certificate authority and the client helpers workloads use with it.
export { buildApp, rfc3339, DEFAULT_BODY_LIMIT, type AppOptions, type CaApp, type CertificateResponse } from './server/app.js';
export { CaMetrics, CA_METRIC_NAMES, SIGN_BUCKETS, type CaMetricsOptions } from './server/metrics.js';
export { startCa, authenticatorFor, type RunningCa, type StartOptions } from './server/serve.js';
export { parseCaConfig, parseDuration, parseListen, DEFAULT_LISTEN, type CaConfig } from './config.js';
export { CA_AUDIENCE, type Authenticator } from './auth/authenticator.js';
export { TokenFileAuthenticator, parseTokenFile, type TokenFileOptions } from './auth/token-file.js';
export { TokenReviewAuthenticator, type TokenReviewOptions } from './auth/token-review.js';
export {
  CertificateAuthority,
  type AuthorityOptions,
  type IssuedCertificate,
  type ServingCredentials,
} from './authority/authority.js';
export { loadSigningMaterial, STATE_FILES, type MaterialSources } from './authority/load.js';
export type { SigningMaterial } from './authority/material.js';
export { verifyCsr, buildCsr, type VerifiedCsr, type CsrRequest, type SubjectAltName } from './x509/index.js';
export {
  generateWorkloadCsr,
  requestCertificate,
  type WorkloadCsr,
  type CertificateRequestOptions,
  type CertificateAnswer,
} from './client.js';
export { CA_ERRORS, CA_SETUP_ERRORS, CaError, CaRequestError, type ErrorBody } from './errors.js';
export {
  spiffeIdOf,
  parseServiceAccountUsername,
  DEFAULT_TRUST_DOMAIN,
  type WorkloadIdentity,
} from './identity.js';
