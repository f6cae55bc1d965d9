// Stable error codes of mesh distribution (the control plane's side of the sidecar protocol).
import { TsmeshError } from '@tsmesh/common';

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

export function distributionError(code: DistributionErrorCode, message: string, cause?: unknown): TsmeshError {
  return new TsmeshError(code, message, cause === undefined ? undefined : { cause });
}
