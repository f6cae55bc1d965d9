// How the CA learns who is calling: an Authenticator turns a bearer token into a workload
// identity. Implementations: token-file.ts (local mode) and token-review.ts (Kubernetes).
import type { Result } from '@tsmesh/common';
import type { CaError } from '../errors.js';
import type { WorkloadIdentity } from '../identity.js';

/** The audience every token presented to the CA must carry. */
export const CA_AUDIENCE = 'tsmesh-ca';

export interface Authenticator {
  /** A short name for logs, e.g. "token-file". */
  readonly kind: string;
  /**
   * Resolves the identity a token proves. Never rejects: an unknown, expired or wrong-audience
   * token is `{ok:false}` with a TSMESH_ERR_TOKEN_* CaError (401), and a backend that cannot be
   * reached is TSMESH_ERR_TOKEN_REVIEW_UNAVAILABLE (503).
   */
  authenticate(token: string): Promise<Result<WorkloadIdentity, CaError>>;
}
