// Stable error codes of the certificate authority and the HTTP status each one answers with.
import { TsmeshError } from '@tsmesh/common';

/** Every refusal the CA can answer, with its HTTP status. Codes are part of the API: never rename. */
export const CA_ERRORS = {
  TOKEN_MISSING: { code: 'TSMESH_ERR_TOKEN_MISSING', status: 401 },
  TOKEN_INVALID: { code: 'TSMESH_ERR_TOKEN_INVALID', status: 401 },
  TOKEN_AUDIENCE: { code: 'TSMESH_ERR_TOKEN_AUDIENCE', status: 401 },
  TOKEN_IDENTITY: { code: 'TSMESH_ERR_TOKEN_IDENTITY', status: 401 },
  TOKEN_REVIEW_UNAVAILABLE: { code: 'TSMESH_ERR_TOKEN_REVIEW_UNAVAILABLE', status: 503 },
  BAD_REQUEST: { code: 'TSMESH_ERR_BAD_REQUEST', status: 400 },
  BODY_TOO_LARGE: { code: 'TSMESH_ERR_BODY_TOO_LARGE', status: 413 },
  UNSUPPORTED_MEDIA_TYPE: { code: 'TSMESH_ERR_UNSUPPORTED_MEDIA_TYPE', status: 415 },
  NOT_FOUND: { code: 'TSMESH_ERR_NOT_FOUND', status: 404 },
  CSR_MALFORMED: { code: 'TSMESH_ERR_CSR_MALFORMED', status: 400 },
  CSR_SIGNATURE: { code: 'TSMESH_ERR_CSR_SIGNATURE', status: 400 },
  CSR_KEY: { code: 'TSMESH_ERR_CSR_KEY', status: 400 },
  CSR_IDENTITY: { code: 'TSMESH_ERR_CSR_IDENTITY', status: 403 },
  CSR_CA: { code: 'TSMESH_ERR_CSR_CA', status: 403 },
  INTERNAL: { code: 'TSMESH_ERR_CA_INTERNAL', status: 500 },
} as const;

export type CaErrorKind = keyof typeof CA_ERRORS;

/** Codes for failures outside a request: start-up, state directory, token file, the client helper. */
export const CA_SETUP_ERRORS = {
  BAD_FLAG: 'TSMESH_ERR_BAD_FLAG',
  STATE_DIR: 'TSMESH_ERR_CA_STATE_DIR',
  CA_MATERIAL: 'TSMESH_ERR_CA_MATERIAL',
  TOKEN_FILE: 'TSMESH_ERR_TOKEN_FILE',
  CA_UNREACHABLE: 'TSMESH_ERR_CA_UNREACHABLE',
  CA_REFUSED: 'TSMESH_ERR_CA_REFUSED',
  CA_BAD_ANSWER: 'TSMESH_ERR_CA_BAD_ANSWER',
} as const;

/** A refusal of one request: carries the stable code and the HTTP status it is answered with. */
export class CaError extends TsmeshError {
  readonly status: number;
  constructor(kind: CaErrorKind, message: string, options?: { cause?: unknown }) {
    super(CA_ERRORS[kind].code, message, options);
    this.name = 'CaError';
    this.status = CA_ERRORS[kind].status;
  }
}

/** The JSON body of every error answer: `{ "error": { "code", "message" } }`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(error: { code: string; message: string }): ErrorBody {
  return { error: { code: error.code, message: error.message } };
}

/** What `requestCertificate` fails with; `status`/`serverCode` are set when the CA answered. */
export class CaRequestError extends TsmeshError {
  readonly status: number | undefined;
  readonly serverCode: string | undefined;
  constructor(
    code: string,
    message: string,
    options?: { cause?: unknown; status?: number; serverCode?: string },
  ) {
    super(code, message, options);
    this.name = 'CaRequestError';
    this.status = options?.status;
    this.serverCode = options?.serverCode;
  }
}
