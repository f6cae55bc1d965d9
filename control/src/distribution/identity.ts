// Who a sidecar is: the SPIFFE ID of the client certificate the TLS stack verified against the
// trust bundle. The control plane trusts nothing else the sidecar says about itself.
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { err, ok, parseSpiffeIdParts, type Result, type TsmeshError } from '@tsmesh/common';
import { CONTROL_DISTRIBUTION_ERRORS, distributionError } from '../errors.js';
import type { WorkloadIdentity } from './views.js';

/** The identity in a tsmesh SPIFFE ID, or why the text is not one (common's parseSpiffeId). */
export function parseWorkloadId(uri: string): Result<WorkloadIdentity, string> {
  const parsed = parseSpiffeIdParts(uri);
  if (parsed.ok) return ok({ spiffeId: uri, ...parsed.value });
  return err(`${JSON.stringify(uri.slice(0, 256))} is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>: ${parsed.error}`);
}

/**
 * The workload behind a TLS connection. Fails with TSMESH_ERR_CONTROL_UNAUTHENTICATED when there is
 * no verified client certificate, and TSMESH_ERR_CONTROL_FORBIDDEN when it is a CA certificate or
 * does not carry exactly one URI SAN that is a SPIFFE ID of `trustDomain`.
 */
export function workloadOf(socket: TLSSocket, trustDomain: string): Result<WorkloadIdentity, TsmeshError> {
  const raw = socket.getPeerCertificate().raw as Buffer | undefined;
  if (raw === undefined || raw.length === 0) {
    return err(distributionError(CONTROL_DISTRIBUTION_ERRORS.UNAUTHENTICATED, 'a client certificate is required (the workload certificate from the tsmesh CA)'));
  }
  if (!socket.authorized) {
    const why = socket.authorizationError instanceof Error ? socket.authorizationError.message : String(socket.authorizationError);
    return err(distributionError(CONTROL_DISTRIBUTION_ERRORS.UNAUTHENTICATED, `the client certificate is not trusted: ${why}`));
  }
  const forbidden = (message: string): Result<never, TsmeshError> => err(distributionError(CONTROL_DISTRIBUTION_ERRORS.FORBIDDEN, message));
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(raw);
  } catch (cause) {
    return err(distributionError(CONTROL_DISTRIBUTION_ERRORS.UNAUTHENTICATED, 'the client certificate cannot be parsed', cause));
  }
  if (leaf.ca) return forbidden('the client certificate is a CA certificate');
  const sans = leaf.subjectAltName ?? '';
  // Node quotes a SAN value holding a comma or a quote; no SPIFFE ID needs either, so refuse the lot.
  if (sans.includes('"')) return forbidden(`the client certificate's subjectAltName cannot be read: ${JSON.stringify(sans.slice(0, 256))}`);
  const uris = sans === '' ? [] : sans.split(', ').filter((name) => name.startsWith('URI:')).map((name) => name.slice('URI:'.length));
  const [uri] = uris;
  if (uri === undefined || uris.length !== 1) return forbidden(`the client certificate must carry exactly one URI SAN (a SPIFFE ID), found ${uris.length}`);
  const identity = parseWorkloadId(uri);
  if (!identity.ok) return forbidden(identity.error);
  if (identity.value.trustDomain !== trustDomain) {
    return forbidden(`the workload identity ${uri} is not of the mesh's trust domain "${trustDomain}"`);
  }
  return identity;
}
