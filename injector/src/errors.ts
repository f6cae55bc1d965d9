// Stable error codes of the sidecar injector (webhook and `tsmesh inject`).
import { codedError, TsmeshError } from '@tsmesh/common';

export const INJECTOR_ERRORS = {
  /** A `tsmesh.io/*` annotation or the inject label has a value we cannot use: the pod is denied. */
  BAD_ANNOTATION: 'TSMESH_ERR_INJECT_BAD_ANNOTATION',
  /** The pod already has a container, volume or port named like one the injector adds. */
  NAME_COLLISION: 'TSMESH_ERR_INJECT_NAME_COLLISION',
  /** The object is not a pod we can read (no spec.containers, wrong field types). */
  INVALID_POD: 'TSMESH_ERR_INJECT_INVALID_POD',
  /** The webhook body is not an admission.k8s.io/v1 AdmissionReview with a request. */
  BAD_REVIEW: 'TSMESH_ERR_INJECT_BAD_REVIEW',
  /** The labels of the pod's namespace could not be read. */
  NAMESPACE_LOOKUP: 'TSMESH_ERR_INJECT_NAMESPACE_LOOKUP',
  /** The Kubernetes version could not be read from the API server. */
  KUBE_VERSION: 'TSMESH_ERR_INJECT_KUBE_VERSION',
  /** A JSONPatch operation could not be applied (bad pointer, failed test). */
  PATCH: 'TSMESH_ERR_INJECT_PATCH',
  /** A manifest given to `tsmesh inject` does not parse as YAML. */
  MANIFEST_PARSE: 'TSMESH_ERR_INJECT_MANIFEST_PARSE',
  /** A flag or environment variable of the injector has a bad value. */
  BAD_FLAG: 'TSMESH_ERR_BAD_FLAG',
  /** The TLS certificate or key of the webhook cannot be read. */
  TLS_FILES: 'TSMESH_ERR_INJECT_TLS_FILES',
  /** A request to the webhook server failed before an AdmissionReview was read (its own code, when it has none). */
  REQUEST: 'TSMESH_ERR_INJECT_REQUEST',
} as const;

export type InjectorErrorCode = (typeof INJECTOR_ERRORS)[keyof typeof INJECTOR_ERRORS];

export const injectorError: (code: InjectorErrorCode, message: string, cause?: unknown) => TsmeshError = codedError;

/** The same error (same code) with where it happened in front of its message. */
export function withContext(error: TsmeshError, context: string): TsmeshError {
  return new TsmeshError(error.code, `${context}: ${error.message}`, { cause: error });
}

/** True for errors that are the pod author's to fix (answered with 400), false for our own failures (500). */
export function isUserError(error: TsmeshError): boolean {
  return (
    error.code === INJECTOR_ERRORS.BAD_ANNOTATION ||
    error.code === INJECTOR_ERRORS.NAME_COLLISION ||
    error.code === INJECTOR_ERRORS.INVALID_POD ||
    error.code === INJECTOR_ERRORS.BAD_REVIEW
  );
}
