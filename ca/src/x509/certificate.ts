// Builds X.509 v3 certificates: the TBSCertificate is assembled with node-forge's ASN.1 codec and
// signed with Node's crypto, so any public key (EC or RSA) can be certified by any issuer key.
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import * as der from './asn1.js';
import { OID, type Asn1 } from './asn1.js';

/** One entry of a subjectAltName extension. */
export type SubjectAltName =
  | { readonly type: 'uri'; readonly value: string }
  | { readonly type: 'dns'; readonly value: string }
  | { readonly type: 'ip'; readonly value: string }
  | { readonly type: 'email'; readonly value: string };

/** A distinguished name attribute; only O and CN are ever written by the CA. */
export interface NameAttribute {
  readonly type: 'O' | 'CN';
  readonly value: string;
}

/** Who signs: the issuer's subject (exact DER), its key identifier and its private key. */
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

/** A random positive 128-bit serial number, as the minimal DER INTEGER content. */
export function randomSerial(): Buffer {
  let bytes = randomBytes(16);
  while (bytes.every((b) => b === 0)) bytes = randomBytes(16);
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && ((bytes[start + 1] ?? 0) & 0x80) === 0) start++;
  const trimmed = bytes.subarray(start);
  return (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : Buffer.from(trimmed);
}

/** The serial as colon-free lowercase hex without the sign byte, as logs and Node show it. */
export function serialHex(serial: Buffer): string {
  return (serial[0] === 0 && serial.length > 1 ? serial.subarray(1) : serial).toString('hex').toUpperCase();
}

/** Encodes a Name; an empty list gives the empty Name. */
export function encodeName(attributes: readonly NameAttribute[]): Buffer {
  return der.encode(
    der.seq(
      ...attributes.map((a) => der.set(der.seq(der.oid(a.type === 'O' ? OID.organization : OID.commonName), der.utf8(a.value)))),
    ),
  );
}

/** RFC 5280 key identifier: SHA-1 of the subjectPublicKey bits of an SPKI. */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const [, keyBits] = der.children(der.decode(spkiDer), 'SubjectPublicKeyInfo');
  return createHash('sha1').update(der.readBitStringBytes(keyBits)).digest();
}

function extension(id: string, critical: boolean, value: Asn1): Buffer {
  const parts = [der.oid(id)];
  if (critical) parts.push(der.bool(true));
  parts.push(der.octets(der.encode(value)));
  return der.encode(der.seq(...parts));
}

export function basicConstraintsExtension(ca: boolean, pathLength?: number): Buffer {
  const body = ca ? [der.bool(true), ...(pathLength === undefined ? [] : [der.smallInt(pathLength)])] : [];
  return extension(OID.basicConstraints, true, der.seq(...body));
}

export const KEY_USAGE = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

export function keyUsageExtension(bits: readonly number[]): Buffer {
  return extension(OID.keyUsage, true, der.namedBits(bits));
}

export function extKeyUsageExtension(purposes: readonly string[]): Buffer {
  return extension(OID.extKeyUsage, false, der.seq(...purposes.map((p) => der.oid(p))));
}

export function subjectKeyIdExtension(keyId: Buffer): Buffer {
  return extension(OID.subjectKeyIdentifier, false, der.octets(keyId));
}

export function authorityKeyIdExtension(keyId: Buffer): Buffer {
  return extension(OID.authorityKeyIdentifier, false, der.seq(der.implicitPrimitive(0, keyId)));
}

export function subjectAltNameExtension(names: readonly SubjectAltName[], critical = false): Buffer {
  return extension(OID.subjectAltName, critical, der.seq(...names.map(generalName)));
}

function generalName(name: SubjectAltName): Asn1 {
  switch (name.type) {
    case 'email':
      return der.implicitPrimitive(1, Buffer.from(name.value, 'ascii'));
    case 'dns':
      return der.implicitPrimitive(2, Buffer.from(name.value, 'ascii'));
    case 'uri':
      return der.implicitPrimitive(6, Buffer.from(name.value, 'ascii'));
    case 'ip':
      return der.implicitPrimitive(7, ipBytes(name.value));
  }
}

function ipBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6) throw new Error(`"${ip}" is not an IP address`);
  // Rewrite an embedded IPv4 tail (::ffff:1.2.3.4) as two hex groups, then expand '::'.
  const text = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  const [head = '', tail] = text.split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** The signature algorithm a key signs with: its AlgorithmIdentifier and Node's digest name. */
export function signatureAlgorithmFor(key: KeyObject): { algorithm: Asn1; digest: string | null } {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return { algorithm: der.seq(der.oid(OID.sha256WithRSA), der.nullValue()), digest: 'sha256' };
  if (type === 'ed25519') return { algorithm: der.seq(der.oid(OID.ed25519)), digest: null };
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'secp384r1') return { algorithm: der.seq(der.oid(OID.ecdsaWithSha384)), digest: 'sha384' };
    if (curve === 'secp521r1') return { algorithm: der.seq(der.oid(OID.ecdsaWithSha512)), digest: 'sha512' };
    return { algorithm: der.seq(der.oid(OID.ecdsaWithSha256)), digest: 'sha256' };
  }
  throw new Error(`cannot sign with a ${type ?? 'unknown'} key`);
}

/** Assembles the TBSCertificate, signs it with the issuer's key and returns the certificate DER. */
export function signCertificate(template: CertificateTemplate, issuer: Issuer): Buffer {
  const { algorithm, digest } = signatureAlgorithmFor(issuer.privateKey);
  const tbs = der.encode(
    der.seq(
      der.explicit(0, der.smallInt(2)),
      der.bigInt(template.serial),
      algorithm,
      der.decode(issuer.subjectDer),
      der.seq(der.time(template.notBefore), der.time(template.notAfter)),
      der.decode(template.subject),
      der.decode(template.spkiDer),
      der.explicit(3, der.seq(...template.extensions.map((e) => der.decode(e)))),
    ),
  );
  const signature = sign(digest, tbs, issuer.privateKey);
  return der.encode(der.seq(der.decode(tbs), algorithm, der.bitString(signature)));
}

/** The parts of an existing certificate needed to issue under it. */
export interface CertificateFacts {
  readonly subjectDer: Buffer;
  readonly spkiDer: Buffer;
  /** Its subjectKeyIdentifier extension, or one computed from its key when absent. */
  readonly keyId: Buffer;
}

/** Reads subject, SPKI and key identifier of a certificate, keeping the subject's exact bytes. */
export function certificateFacts(certDer: Buffer): CertificateFacts {
  const [tbs] = der.rawChildren(certDer);
  if (tbs === undefined) throw new Error('certificate has no TBSCertificate');
  const fields = der.rawChildren(tbs);
  // Skip the optional [0] version.
  const offset = fields[0]?.[0] === 0xa0 ? 1 : 0;
  const subjectDer = fields[offset + 4];
  const spkiDer = fields[offset + 5];
  if (subjectDer === undefined || spkiDer === undefined) throw new Error('certificate is truncated');
  const extensionsField = fields.slice(offset + 6).find((f) => f[0] === 0xa3);
  let keyId: Buffer | undefined;
  if (extensionsField !== undefined) {
    const [list] = der.children(der.decode(extensionsField), 'extensions');
    for (const ext of der.children(list, 'extensions')) {
      const parts = der.children(ext, 'extension');
      if (der.readOid(parts[0]) !== OID.subjectKeyIdentifier) continue;
      const value = der.decode(der.fromBinary(der.primitive(parts[parts.length - 1])));
      keyId = der.fromBinary(der.primitive(value));
    }
  }
  return { subjectDer, spkiDer, keyId: keyId ?? keyIdentifier(spkiDer) };
}

/** PEM text of a DER certificate. */
export function certificatePem(certDer: Buffer): string {
  const body = certDer.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}
