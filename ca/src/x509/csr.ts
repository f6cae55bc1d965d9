// Reads and checks PKCS#10 certificate signing requests (RFC 2986), which reach the CA from any
// caller: PEM and the requested extensions through @peculiar/x509, the structure through its schema
// library under resource limits, the self-signature with node:crypto over the exact bytes received.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { fromBER } from 'asn1js';
import { AsnConvert, type IAsnParseOptions } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { Extensions, id_ce_basicConstraints, id_ce_keyUsage, id_ce_subjectAltName } from '@peculiar/asn1-x509';
import { err, ok, type Result } from '@tsmesh/common';
import { CaError } from '../errors.js';
import { x509 } from './x509-lib.js';
import { KEY_USAGE } from './certificate.js';
import { EXTENSION_REQUEST_OID } from './csr-build.js';
import type { SubjectAltName } from './names.js';
import { SIGNATURE_OIDS } from './signature.js';

export { buildCsr, type CsrRequest } from './csr-build.js';

/** A subjectAltName entry as found in a CSR; kinds the CA never issues are `other`. */
export type RequestedName = SubjectAltName | { readonly type: 'other'; readonly value: string };

/** A CSR whose signature verified and whose key is acceptable. */
export interface VerifiedCsr {
  /** The requester's SubjectPublicKeyInfo (DER); copied into the certificate. */
  readonly spkiDer: Buffer;
  readonly publicKey: KeyObject;
  /** e.g. "EC P-256", "RSA 2048". */
  readonly keyDescription: string;
  /** Every subjectAltName entry requested, in order. */
  readonly requestedNames: readonly RequestedName[];
  /** True when the CSR asks for basicConstraints cA:true or keyCertSign/cRLSign usage. */
  readonly requestsCa: boolean;
}

export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 8192;
const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384' };
/** DER tag of an OBJECT IDENTIFIER: what ECParameters must hold (namedCurve). */
const OID_TAG = 0x06;

/** Limits for the BER decoder on hostile input: a CSR is a few hundred bytes and a few levels deep. */
const PARSE_LIMITS: IAsnParseOptions = { berOptions: { maxDepth: 16, maxNodes: 512, maxContentLength: 64 * 1024 } };

const SIGNATURE_ALGORITHMS: Record<string, { digest: string; keyType: 'rsa' | 'ec' }> = {
  [SIGNATURE_OIDS.sha256WithRSA]: { digest: 'sha256', keyType: 'rsa' },
  [SIGNATURE_OIDS.sha384WithRSA]: { digest: 'sha384', keyType: 'rsa' },
  [SIGNATURE_OIDS.sha512WithRSA]: { digest: 'sha512', keyType: 'rsa' },
  [SIGNATURE_OIDS.ecdsaWithSha256]: { digest: 'sha256', keyType: 'ec' },
  [SIGNATURE_OIDS.ecdsaWithSha384]: { digest: 'sha384', keyType: 'ec' },
  [SIGNATURE_OIDS.ecdsaWithSha512]: { digest: 'sha512', keyType: 'ec' },
};

/**
 * Decodes a PEM CSR, checks its key (RSA 2048..8192 bits, EC P-256/P-384) and verifies its
 * self-signature. Never throws: junk is TSMESH_ERR_CSR_MALFORMED, a weak or unsupported key
 * TSMESH_ERR_CSR_KEY, a signature that does not verify TSMESH_ERR_CSR_SIGNATURE.
 */
export function verifyCsr(pem: string): Result<VerifiedCsr, CaError> {
  const decoded = decodeCsrPem(pem);
  if (!decoded.ok) return decoded;

  let csr: CertificationRequest;
  try {
    const outer = fromBER(decoded.value, PARSE_LIMITS.berOptions);
    if (outer.offset === -1 || outer.result.error) throw new Error(outer.result.error || 'undecodable');
    if (outer.offset !== decoded.value.byteLength) throw new Error(`${decoded.value.byteLength - outer.offset} bytes after the CertificationRequest`);
    csr = AsnConvert.parse(decoded.value, CertificationRequest, PARSE_LIMITS);
  } catch (cause) {
    return err(new CaError('CSR_MALFORMED', `CSR is not a DER CertificationRequest: ${message(cause)}`, { cause }));
  }
  const info = csr.certificationRequestInfo;
  if (info.version !== 0) return err(new CaError('CSR_MALFORMED', `CSR version is ${info.version + 1}, not 1 (RFC 2986 4.1)`));

  const spkiDer = Buffer.from(AsnConvert.serialize(info.subjectPKInfo));
  const key = checkKey(spkiDer, info.subjectPKInfo.algorithm.parameters);
  if (!key.ok) return key;
  const { publicKey, keyDescription } = key.value;

  const algorithmId = csr.signatureAlgorithm.algorithm;
  const scheme = SIGNATURE_ALGORITHMS[algorithmId];
  if (scheme === undefined) return err(new CaError('CSR_SIGNATURE', `CSR is signed with an unsupported algorithm (${algorithmId})`));
  if (scheme.keyType !== publicKey.asymmetricKeyType) {
    return err(new CaError('CSR_SIGNATURE', `CSR signature algorithm ${algorithmId} does not match its ${keyDescription} key`));
  }
  // The signature covers the CertificationRequestInfo exactly as received (RFC 2986 4.2), never a re-encoding.
  const signed = csr.certificationRequestInfoRaw;
  if (signed === undefined) return err(new CaError('CSR_MALFORMED', 'CSR request info bytes are missing'));
  let signatureOk: boolean;
  try {
    signatureOk = verify(scheme.digest, new Uint8Array(signed), publicKey, new Uint8Array(csr.signature));
  } catch (cause) {
    return err(new CaError('CSR_SIGNATURE', `CSR signature is malformed: ${message(cause)}`, { cause }));
  }
  if (!signatureOk) return err(new CaError('CSR_SIGNATURE', 'CSR signature does not verify with its own public key'));

  try {
    const { requestedNames, requestsCa } = readExtensionRequests(csr);
    return ok({ spkiDer, publicKey, keyDescription, requestedNames, requestsCa });
  } catch (cause) {
    return err(new CaError('CSR_MALFORMED', `CSR extension request is malformed: ${message(cause)}`, { cause }));
  }
}

function decodeCsrPem(pem: string): Result<Uint8Array, CaError> {
  let blocks: ReturnType<typeof x509.PemConverter.decodeWithHeaders>;
  try {
    blocks = x509.PemConverter.decodeWithHeaders(pem);
  } catch (cause) {
    return err(new CaError('CSR_MALFORMED', `CSR is not PEM: ${message(cause)}`, { cause }));
  }
  const [block] = blocks;
  if (blocks.length !== 1 || block === undefined) {
    return err(new CaError('CSR_MALFORMED', `expected exactly one PEM block, found ${blocks.length}`));
  }
  if (block.type !== 'CERTIFICATE REQUEST' && block.type !== 'NEW CERTIFICATE REQUEST') {
    return err(new CaError('CSR_MALFORMED', `expected a CERTIFICATE REQUEST PEM block, found ${block.type}`));
  }
  if (block.headers.length > 0) {
    return err(new CaError('CSR_MALFORMED', `PEM headers (${block.headers.map((h) => h.key).join(', ')}) are not accepted: encrypted blocks never are`));
  }
  return ok(new Uint8Array(block.rawData));
}

function checkKey(spkiDer: Buffer, algorithmParameters: ArrayBuffer | null | undefined): Result<{ publicKey: KeyObject; keyDescription: string }, CaError> {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (cause) {
    return err(new CaError('CSR_KEY', `CSR public key cannot be read: ${message(cause)}`, { cause }));
  }
  const details = publicKey.asymmetricKeyDetails ?? {};
  if (publicKey.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) return err(new CaError('CSR_KEY', `RSA key of ${bits} bits is too weak; at least ${MIN_RSA_BITS} required`));
    if (bits > MAX_RSA_BITS) return err(new CaError('CSR_KEY', `RSA key of ${bits} bits is larger than the ${MAX_RSA_BITS} accepted`));
    return ok({ publicKey, keyDescription: `RSA ${bits}` });
  }
  if (publicKey.asymmetricKeyType === 'ec') {
    const curve = details.namedCurve ?? 'unknown';
    const name = CURVES[curve];
    if (name === undefined) return err(new CaError('CSR_KEY', `EC curve ${curve} is not accepted (P-256 or P-384)`));
    // RFC 5480 2.1.1: PKIX names the curve; a specifiedCurve (explicit parameters) must not be certified.
    if (algorithmParameters === undefined || algorithmParameters === null || new Uint8Array(algorithmParameters)[0] !== OID_TAG) {
      return err(new CaError('CSR_KEY', `EC key gives its curve as explicit parameters; only a named curve (RFC 5480 2.1.1) is accepted`));
    }
    return ok({ publicKey, keyDescription: `EC ${name}` });
  }
  return err(new CaError('CSR_KEY', `${publicKey.asymmetricKeyType ?? 'unknown'} keys are not accepted (EC P-256/P-384 or RSA >= ${MIN_RSA_BITS})`));
}

/** Every extension of every extensionRequest attribute value (RFC 2985 5.4.2), not only the first. */
function readExtensionRequests(csr: CertificationRequest): { requestedNames: RequestedName[]; requestsCa: boolean } {
  const requestedNames: RequestedName[] = [];
  let requestsCa = false;
  for (const attribute of csr.certificationRequestInfo.attributes) {
    if (attribute.type !== EXTENSION_REQUEST_OID) continue;
    for (const value of attribute.values) {
      for (const extension of AsnConvert.parse(value, Extensions, PARSE_LIMITS)) {
        const extensionDer = AsnConvert.serialize(extension);
        if (extension.extnID === id_ce_subjectAltName) {
          const names = new x509.SubjectAlternativeNameExtension(extensionDer, PARSE_LIMITS).names.items;
          requestedNames.push(...names.map(requestedName));
        } else if (extension.extnID === id_ce_basicConstraints) {
          if (new x509.BasicConstraintsExtension(extensionDer, PARSE_LIMITS).ca) requestsCa = true;
        } else if (extension.extnID === id_ce_keyUsage) {
          const usages = new x509.KeyUsagesExtension(extensionDer, PARSE_LIMITS).usages;
          if (usages & (KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign)) requestsCa = true;
        }
      }
    }
  }
  return { requestedNames, requestsCa };
}

function requestedName(name: x509.GeneralName): RequestedName {
  switch (name.type) {
    case 'url':
      return { type: 'uri', value: name.value };
    case 'dns':
      return { type: 'dns', value: name.value };
    case 'ip':
      return { type: 'ip', value: name.value };
    case 'email':
      return { type: 'email', value: name.value };
    default:
      return { type: 'other', value: `${name.type} name` };
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
