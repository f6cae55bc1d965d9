// Workload identities: a Kubernetes ServiceAccount and the SPIFFE ID the CA derives from it.
import { err, formatSpiffeId, isNamespaceName, isServiceAccountName, ok, type Result } from '@tsmesh/common';
import { CaError } from './errors.js';

/** Who a caller is, as established from its token alone. */
export interface WorkloadIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

// The name rules and the ID's form are common's (identity/spiffe.ts).
export { isNamespaceName, isServiceAccountName, isTrustDomain } from '@tsmesh/common';

/** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. */
export function spiffeIdOf(trustDomain: string, identity: WorkloadIdentity): string {
  return formatSpiffeId({ trustDomain, ...identity });
}

/** Checks both names; the error names the bad one. */
export function validateIdentity(namespace: string, serviceAccount: string): Result<WorkloadIdentity, string> {
  if (!isNamespaceName(namespace)) return err(`namespace "${namespace}" is not a valid Kubernetes namespace name`);
  if (!isServiceAccountName(serviceAccount)) {
    return err(`service account "${serviceAccount}" is not a valid Kubernetes service account name`);
  }
  return ok({ namespace, serviceAccount });
}

const SA_PREFIX = 'system:serviceaccount:';

/**
 * Parses a Kubernetes username `system:serviceaccount:<namespace>:<name>`; anything else (a user,
 * a node, extra colons, invalid names) is refused with TSMESH_ERR_TOKEN_IDENTITY.
 */
export function parseServiceAccountUsername(username: string): Result<WorkloadIdentity, CaError> {
  if (!username.startsWith(SA_PREFIX)) {
    return err(new CaError('TOKEN_IDENTITY', `token belongs to "${username}", not to a service account`));
  }
  const parts = username.slice(SA_PREFIX.length).split(':');
  const [namespace, serviceAccount] = parts;
  if (parts.length !== 2 || namespace === undefined || serviceAccount === undefined) {
    return err(new CaError('TOKEN_IDENTITY', `malformed service account username "${username}"`));
  }
  const checked = validateIdentity(namespace, serviceAccount);
  if (!checked.ok) {
    return err(new CaError('TOKEN_IDENTITY', `malformed service account username "${username}": ${checked.error}`));
  }
  return checked;
}
