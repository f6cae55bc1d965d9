// Builds PKCS#10 certificate signing requests (RFC 2986) for the sidecar: the schema library
// assembles CertificationRequestInfo, node:crypto signs it. Deliberately free of @peculiar/x509
// (and its dependency-injection runtime): this is the X.509 code every sidecar with an identity loads.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attribute, Extension, Extensions, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { encodeName, subjectAltNameExtension, type NameAttribute, type SubjectAltName } from './names.js';
import { toPem } from './pem.js';
import { signatureSchemeFor, signDer } from './signature.js';

/** PKCS#9 extensionRequest (RFC 2985 5.4.2): the extensions a CSR asks for. */
export const EXTENSION_REQUEST_OID = '1.2.840.113549.1.9.14';

/** What a CSR built by `buildCsr` asks for. */
export interface CsrRequest {
  /** Requested subjectAltNames (sent as one extension). */
  readonly names?: readonly SubjectAltName[];
  /** Further DER-encoded Extension elements to request, e.g. basicConstraintsExtension(true). */
  readonly extensions?: readonly Buffer[];
  /** Subject attributes; empty by default. */
  readonly subject?: readonly NameAttribute[];
}

/** Builds a PEM PKCS#10 CSR signed by `privateKey` (EC, RSA or Ed25519). Synchronous. */
export function buildCsr(privateKey: KeyObject, request: CsrRequest = {}): string {
  const spkiDer = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const extensions = [...(request.names?.length ? [subjectAltNameExtension(request.names)] : []), ...(request.extensions ?? [])];
  const attributes = new Attributes(
    extensions.length
      ? [
          new Attribute({
            type: EXTENSION_REQUEST_OID,
            values: [AsnConvert.serialize(new Extensions(extensions.map((e) => AsnConvert.parse(e, Extension))))],
          }),
        ]
      : [],
  );
  const info = new CertificationRequestInfo({
    version: 0,
    subject: AsnConvert.parse(encodeName(request.subject ?? []), Name),
    subjectPKInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
    attributes,
  });
  const scheme = signatureSchemeFor(privateKey);
  const infoDer = AsnConvert.serialize(info);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: scheme.algorithm,
    signature: signDer(infoDer, privateKey, scheme),
  });
  return toPem(AsnConvert.serialize(csr), 'CERTIFICATE REQUEST');
}
