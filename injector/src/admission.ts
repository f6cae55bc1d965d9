// AdmissionReview admission.k8s.io/v1 in and out: checks what the API server sent and builds the answer
// (allowed, optional base64 JSONPatch, or a denial with an HTTP-like status code).
import { err, ok, type Result } from '@tsmesh/common';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
import type { PatchOperation } from './jsonpatch.js';
import { isPlainObject } from './pod.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** The part of an AdmissionRequest the injector reads. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly operation?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly kind?: { group?: string; version?: string; kind?: string };
  readonly resource?: { group?: string; version?: string; resource?: string };
  readonly subResource?: string;
  readonly dryRun?: boolean;
  readonly object?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** Reads a request body as an AdmissionReview; the error says what is wrong with it. */
export function readAdmissionReview(body: unknown): Result<AdmissionRequest> {
  const bad = (message: string) => err(injectorError(INJECTOR_ERRORS.BAD_REVIEW, `not an AdmissionReview: ${message}`));
  if (!isPlainObject(body)) return bad('the body is not a JSON object');
  if (body.kind !== 'AdmissionReview') return bad(`kind is ${JSON.stringify(body.kind)}, expected "AdmissionReview"`);
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    return bad(`apiVersion is ${JSON.stringify(body.apiVersion)}, expected "${ADMISSION_API_VERSION}"`);
  }
  const request = body.request;
  if (!isPlainObject(request)) return bad('it has no request');
  if (typeof request.uid !== 'string' || request.uid === '') return bad('request.uid is missing');
  for (const field of ['operation', 'namespace', 'name', 'subResource'] as const) {
    if (request[field] !== undefined && typeof request[field] !== 'string') return bad(`request.${field} is not a string`);
  }
  for (const field of ['kind', 'resource'] as const) {
    if (request[field] !== undefined && !isPlainObject(request[field])) return bad(`request.${field} is not an object`);
  }
  return ok(request as unknown as AdmissionRequest);
}

function review(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

function withWarnings(response: AdmissionResponse, warnings: readonly string[]): AdmissionResponse {
  return warnings.length > 0 ? { ...response, warnings: [...warnings] } : response;
}

/** Lets the object through unchanged. */
export function allow(uid: string, warnings: readonly string[] = []): AdmissionReviewResponse {
  return review(withWarnings({ uid, allowed: true }, warnings));
}

/** Lets the object through with the patch applied (an empty patch is a plain allow). */
export function allowWithPatch(
  uid: string,
  patch: readonly PatchOperation[],
  warnings: readonly string[] = [],
): AdmissionReviewResponse {
  if (patch.length === 0) return allow(uid, warnings);
  const encoded = Buffer.from(JSON.stringify(patch)).toString('base64');
  return review(withWarnings({ uid, allowed: true, patchType: 'JSONPatch', patch: encoded }, warnings));
}

/** Refuses the object; the API server shows `message` to whoever created it. */
export function deny(uid: string, code: number, message: string): AdmissionReviewResponse {
  const reason = code === 400 ? 'BadRequest' : code === 500 ? 'InternalError' : undefined;
  return review({ uid, allowed: false, status: { code, message, ...(reason ? { reason } : {}) } });
}
