// Builds and reads X.509 v3 certificates (RFC 5280). Extensions come from @peculiar/x509, the
// TBSCertificate is assembled with the schema library and signed synchronously with node:crypto,
// so any public key (EC or RSA) can be certified by any issuer key without awaiting WebCrypto.
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  Certificate,
  Extension,
  Extensions,
  Name,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Time,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { x509 } from './x509-lib.js';
import { toPem } from './pem.js';
import { signatureSchemeFor, signDer } from './signature.js';

export { encodeName, subjectAltNameExtension, type NameAttribute, type SubjectAltName } from './names.js';

/** Who signs: the issuer's subject (DER), its key identifier and its private key. */
export interface Issuer {
  readonly subjectDer: Buffer;
  readonly keyId: Buffer;
  readonly privateKey: KeyObject;
}

/** Everything that varies between the certificates the CA makes. */
export interface CertificateTemplate {
  readonly serial: Buffer;
  readonly subject: Buffer;
  readonly spkiDer: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER-encoded Extension elements, in order. */
  readonly extensions: readonly Buffer[];
}

/** Object identifiers of the extended key usages the mesh writes (RFC 5280 4.2.1.12). */
export const EXTENDED_KEY_USAGE = {
  serverAuth: x509.ExtendedKeyUsage.serverAuth,
  clientAuth: x509.ExtendedKeyUsage.clientAuth,
} as const;

/** Key usage flags (RFC 5280 4.2.1.3), as @peculiar/x509 numbers them. */
export const KEY_USAGE = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
} as const;

/** A random positive serial of at most 128 bits (RFC 5280 4.1.2.2), as the minimal DER INTEGER content. */
export function randomSerial(): Buffer {
  let bytes = randomBytes(16);
  while (bytes.every((b) => b === 0)) bytes = randomBytes(16);
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && ((bytes[start + 1] ?? 0) & 0x80) === 0) start++;
  const trimmed = bytes.subarray(start);
  return (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : Buffer.from(trimmed);
}

/** The serial as upper-case hex without the sign byte, as Node's X509Certificate shows it. */
export function serialHex(serial: Buffer): string {
  return (serial[0] === 0 && serial.length > 1 ? serial.subarray(1) : serial).toString('hex').toUpperCase();
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's bits, for any key type. */
export function keyIdentifier(spkiDer: Uint8Array): Buffer {
  const spki = AsnConvert.parse(spkiDer, SubjectPublicKeyInfo);
  return createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest();
}

const raw = (extension: x509.Extension): Buffer => Buffer.from(extension.rawData);

/** basicConstraints, always critical (RFC 5280 4.2.1.9); `cA` is omitted when false, as DER requires. */
export function basicConstraintsExtension(ca: boolean, pathLength?: number): Buffer {
  return raw(new x509.BasicConstraintsExtension(ca, pathLength, true));
}

/** keyUsage, always critical (RFC 5280 4.2.1.3); `usages` are KEY_USAGE flags. */
export function keyUsageExtension(usages: readonly number[]): Buffer {
  return raw(new x509.KeyUsagesExtension(usages.reduce((all, flag) => all | flag, 0), true));
}

/** extKeyUsage (RFC 5280 4.2.1.12), non-critical. */
export function extKeyUsageExtension(purposes: readonly string[]): Buffer {
  return raw(new x509.ExtendedKeyUsageExtension([...purposes], false));
}

/** subjectKeyIdentifier (RFC 5280 4.2.1.2). */
export function subjectKeyIdExtension(keyId: Buffer): Buffer {
  return raw(new x509.SubjectKeyIdentifierExtension(keyId.toString('hex')));
}

/** authorityKeyIdentifier with the keyIdentifier field only (RFC 5280 4.2.1.1). */
export function authorityKeyIdExtension(keyId: Buffer): Buffer {
  return raw(new x509.AuthorityKeyIdentifierExtension(keyId.toString('hex')));
}

/** Certificates hold whole seconds: UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
function certificateTime(date: Date): Time {
  const whole = new Date(Math.floor(date.getTime() / 1000) * 1000);
  return new Time(whole.getUTCFullYear() < 2050 ? { utcTime: whole } : { generalTime: whole });
}

/** The last issuer Name decoded: a CA signs under one issuer for long stretches. */
let lastIssuer: { readonly der: Buffer; readonly name: Name } | undefined;

function issuerName(der: Buffer): Name {
  if (lastIssuer === undefined || !lastIssuer.der.equals(der)) lastIssuer = { der: Buffer.from(der), name: AsnConvert.parse(der, Name) };
  return lastIssuer.name;
}

/** Assembles the TBSCertificate, signs it with the issuer's key and returns the certificate DER. */
export function signCertificate(template: CertificateTemplate, issuer: Issuer): Buffer {
  const scheme = signatureSchemeFor(issuer.privateKey);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(template.serial).buffer,
    signature: scheme.algorithm,
    issuer: issuerName(issuer.subjectDer),
    validity: new Validity(),
    subject: AsnConvert.parse(template.subject, Name),
    subjectPublicKeyInfo: AsnConvert.parse(template.spkiDer, SubjectPublicKeyInfo),
    extensions: new Extensions(template.extensions.map((e) => AsnConvert.parse(e, Extension))),
  });
  tbs.validity.notBefore = certificateTime(template.notBefore);
  tbs.validity.notAfter = certificateTime(template.notAfter);
  const tbsDer = AsnConvert.serialize(tbs);
  const certificate = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: scheme.algorithm,
    signatureValue: signDer(tbsDer, issuer.privateKey, scheme),
  });
  return Buffer.from(AsnConvert.serialize(certificate));
}

/** The parts of an existing certificate needed to issue under it. */
export interface CertificateFacts {
  readonly subjectDer: Buffer;
  readonly spkiDer: Buffer;
  /** Its subjectKeyIdentifier extension, or one computed from its key when absent. */
  readonly keyId: Buffer;
}

/** Reads subject, SPKI and key identifier of a certificate (DER). Throws on a malformed certificate. */
export function certificateFacts(certDer: Uint8Array): CertificateFacts {
  const cert = new x509.X509Certificate(certDer);
  const spkiDer = Buffer.from(cert.publicKey.rawData);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  return {
    subjectDer: Buffer.from(cert.subjectName.toArrayBuffer()),
    spkiDer,
    keyId: ski === null ? keyIdentifier(spkiDer) : Buffer.from(ski.keyId, 'hex'),
  };
}

/** One extension of a certificate as found in it: the value is the DER inside extnValue. */
export interface ExtensionEntry {
  readonly id: string;
  readonly critical: boolean;
  readonly value: Buffer;
}

/** The extensions of a certificate (DER), in order. Throws on a malformed certificate. */
export function certificateExtensions(certDer: Uint8Array): ExtensionEntry[] {
  return new x509.X509Certificate(certDer).extensions.map((e) => ({ id: e.type, critical: e.critical, value: Buffer.from(e.value) }));
}

/** PEM text of a DER certificate. */
export function certificatePem(certDer: Uint8Array): string {
  return toPem(certDer, 'CERTIFICATE');
}
