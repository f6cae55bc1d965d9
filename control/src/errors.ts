// Stable error codes of the control plane: discovery from Kubernetes or a mesh file, and mesh
// distribution to sidecars. Add a code here rather than writing its string at the call site.
import { codedError, TsmeshError } from '@tsmesh/common';

export const CONTROL_ERRORS = {
  /** No usable Kubernetes configuration (no file, no in-cluster service account, no current cluster). */
  KUBE_CONFIG: 'TSMESH_ERR_CONTROL_KUBECONFIG',
  /** The API server answered a request with an error status, or could not be reached. */
  KUBE_API: 'TSMESH_ERR_CONTROL_KUBE_API',
  /** The first list of every watched kind did not complete (timeout, or access refused). */
  KUBE_SYNC: 'TSMESH_ERR_CONTROL_KUBE_SYNC',
  /** A flag or environment variable of the control plane has a bad value. */
  BAD_FLAG: 'TSMESH_ERR_BAD_FLAG',
} as const;

export type ControlErrorCode = (typeof CONTROL_ERRORS)[keyof typeof CONTROL_ERRORS];

export const controlError: (code: ControlErrorCode, message: string, cause?: unknown) => TsmeshError = codedError;

/** Mesh distribution: the control plane's side of the sidecar protocol (the wire's own codes are common's DISTRIBUTION_ERRORS). */
export const CONTROL_DISTRIBUTION_ERRORS = {
  /** The sidecar presented no certificate, or one the trust bundle does not verify. */
  UNAUTHENTICATED: 'TSMESH_ERR_CONTROL_UNAUTHENTICATED',
  /** The verified certificate carries no usable workload identity (SPIFFE ID, trust domain). */
  FORBIDDEN: 'TSMESH_ERR_CONTROL_FORBIDDEN',
  /** The serving certificate, key or trust bundle cannot be read or used. */
  TLS_FILES: 'TSMESH_ERR_CONTROL_TLS',
  /** The server cannot listen on its address. */
  LISTEN: 'TSMESH_ERR_CONTROL_LISTEN',
} as const;

export type DistributionErrorCode = (typeof CONTROL_DISTRIBUTION_ERRORS)[keyof typeof CONTROL_DISTRIBUTION_ERRORS];

export const distributionError: (code: DistributionErrorCode, message: string, cause?: unknown) => TsmeshError = codedError;

/**
 * The message of a thrown value, with its cause's (fetch says only "fetch failed"; the cause says
 * why). Duck-typed: errors from another realm (undici's, a VM context's) fail `instanceof Error`.
 */
export function describeError(error: unknown): string {
  const message = messageOf(error);
  const cause = typeof error === 'object' && error !== null ? (error as { cause?: unknown }).cause : undefined;
  if (cause === undefined || cause === null) return message;
  const because = messageOf(cause) || String((cause as { code?: unknown }).code ?? '');
  return because === '' || message.includes(because) ? message : `${message}: ${because}`;
}

function messageOf(value: unknown): string {
  if (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string') {
    return (value as { message: string }).message;
  }
  return String(value);
}
