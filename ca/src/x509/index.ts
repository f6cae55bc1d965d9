// @tsmesh/ca/x509: the mesh's one X.509 stack, on @peculiar/x509 and its ASN.1 schema library.
// The CA signs CSRs and makes its root and intermediate with it, the injector its webhook
// certificates. The sidecar imports only csr-build.js (through @tsmesh/ca/client), which leaves
// @peculiar/x509 unloaded.
export { toPem } from './pem.js';
export { encodeName, subjectAltNameExtension, encodeExtension, type NameAttribute, type SubjectAltName } from './names.js';
export { signatureSchemeFor, signDer, SIGNATURE_OIDS, type SignatureScheme } from './signature.js';
export {
  authorityKeyIdExtension,
  basicConstraintsExtension,
  certificateExtensions,
  certificateFacts,
  certificatePem,
  EXTENDED_KEY_USAGE,
  extKeyUsageExtension,
  KEY_USAGE,
  keyIdentifier,
  keyUsageExtension,
  randomSerial,
  serialHex,
  signCertificate,
  subjectKeyIdExtension,
  type CertificateFacts,
  type ExtensionEntry,
  type CertificateTemplate,
  type Issuer,
} from './certificate.js';
export { buildCsr, EXTENSION_REQUEST_OID, type CsrRequest } from './csr-build.js';
export { verifyCsr, MIN_RSA_BITS, MAX_RSA_BITS, type RequestedName, type VerifiedCsr } from './csr.js';
