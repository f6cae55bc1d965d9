// Test support: CSRs with any part chosen by the test (version, subject, key, attributes, the exact
// CertificationRequestInfo bytes, the signature), built with the schema library, for conformance
// and attack tests that a well-behaved builder cannot produce.
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Attribute, Extension, Extensions, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { Attributes, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { EXTENSION_REQUEST_OID } from '../x509/csr-build.js';
import { encodeName, type NameAttribute } from '../x509/names.js';
import { toPem } from '../x509/pem.js';
import { signatureSchemeFor } from '../x509/signature.js';

export interface CraftedCsr {
  /** Signs the request info; also the key whose SPKI is used unless `spkiDer` is given. */
  readonly key: KeyObject;
  readonly spkiDer?: Buffer;
  readonly version?: number;
  readonly subject?: readonly NameAttribute[];
  /** Each entry is one extensionRequest attribute; each inner list its Extensions (DER Extension elements). */
  readonly extensionRequests?: readonly (readonly Buffer[])[];
  /** Rewrites the DER of CertificationRequestInfo before it is signed and sent. */
  readonly rewriteInfo?: (infoDer: Buffer) => Buffer;
  /** Signs these bytes instead of the CertificationRequestInfo sent (`canonical`: its DER before any rewrite). */
  readonly signOver?: (sent: Buffer, canonical: Buffer) => Buffer;
  /** Signature algorithm OID sent; by default the key's own. */
  readonly algorithmOid?: string;
}

/** A DER element: tag, definite length (short or long form as needed), content. */
export function tlv(tag: number, content: Buffer): Buffer {
  const length = content.length < 0x80 ? Buffer.from([content.length]) : lengthBytes(content.length);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

function lengthBytes(n: number): Buffer {
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** The DER of a CSR with the parts asked for. */
export function craftCsrDer(options: CraftedCsr): Buffer {
  const spkiDer = options.spkiDer ?? createPublicKey(options.key).export({ format: 'der', type: 'spki' });
  const info = new CertificationRequestInfo({
    version: options.version ?? 0,
    subject: AsnConvert.parse(encodeName(options.subject ?? []), Name),
    subjectPKInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
    attributes: new Attributes(
      (options.extensionRequests ?? []).map(
        (list) =>
          new Attribute({
            type: EXTENSION_REQUEST_OID,
            values: [AsnConvert.serialize(new Extensions(list.map((e) => AsnConvert.parse(e, Extension))))],
          }),
      ),
    ),
  });
  const canonical = Buffer.from(AsnConvert.serialize(info));
  const sent = options.rewriteInfo?.(canonical) ?? canonical;
  const scheme = signatureSchemeFor(options.key);
  const signature = sign(scheme.digest, options.signOver?.(sent, canonical) ?? sent, options.key);
  const algorithm = Buffer.from(
    AsnConvert.serialize(options.algorithmOid ? new AlgorithmIdentifier({ algorithm: options.algorithmOid }) : scheme.algorithm),
  );
  return tlv(0x30, Buffer.concat([sent, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
}

export function craftCsr(options: CraftedCsr): string {
  return toPem(craftCsrDer(options), 'CERTIFICATE REQUEST');
}

/** Re-encodes the outermost length of a DER element in the (non-minimal) long form, as BER allows. */
export function longFormOuterLength(der: Buffer): Buffer {
  const first = der[1] ?? 0;
  const headerLength = first < 0x80 ? 2 : 2 + (first & 0x7f);
  const content = der.subarray(headerLength);
  return Buffer.concat([Buffer.from([der[0] ?? 0, 0x82, content.length >> 8, content.length & 0xff]), content]);
}
