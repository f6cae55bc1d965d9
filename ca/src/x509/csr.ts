// PKCS#10 certificate signing requests: parsed with node-forge's ASN.1 codec (forge's own CSR
// reader handles RSA only) and verified with Node's crypto, so EC P-256/P-384 and RSA CSRs work.
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type Forge from 'node-forge';
import forge from './forge.js';
import { err, ok, type Result } from '@tsmesh/common';
import { CaError } from '../errors.js';
import * as der from './asn1.js';
import { OID, Tag, type Asn1 } from './asn1.js';
import {
  KEY_USAGE,
  encodeName,
  signatureAlgorithmFor,
  subjectAltNameExtension,
  type NameAttribute,
  type SubjectAltName,
} from './certificate.js';

/** A subjectAltName entry as found in a CSR; kinds the CA never issues are `other`. */
export type RequestedName = SubjectAltName | { readonly type: 'other'; readonly value: string };

/** A CSR whose signature verified and whose key is acceptable. */
export interface VerifiedCsr {
  /** The requester's SubjectPublicKeyInfo, exact DER; copied into the certificate. */
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

const SIGNATURE_ALGORITHMS: Record<string, { digest: string; keyType: 'rsa' | 'ec' }> = {
  [OID.sha256WithRSA]: { digest: 'sha256', keyType: 'rsa' },
  [OID.sha384WithRSA]: { digest: 'sha384', keyType: 'rsa' },
  [OID.sha512WithRSA]: { digest: 'sha512', keyType: 'rsa' },
  [OID.ecdsaWithSha256]: { digest: 'sha256', keyType: 'ec' },
  [OID.ecdsaWithSha384]: { digest: 'sha384', keyType: 'ec' },
  [OID.ecdsaWithSha512]: { digest: 'sha512', keyType: 'ec' },
};

/**
 * Decodes a PEM CSR, checks its key (RSA >= 2048 bits, EC P-256/P-384) and verifies its
 * self-signature. Never throws: junk is TSMESH_ERR_CSR_MALFORMED, a weak or unsupported key
 * TSMESH_ERR_CSR_KEY, a signature that does not verify TSMESH_ERR_CSR_SIGNATURE.
 */
export function verifyCsr(pem: string): Result<VerifiedCsr, CaError> {
  const decoded = decodeCsrPem(pem);
  if (!decoded.ok) return decoded;
  let parts: Buffer[];
  let tree: Asn1[];
  try {
    parts = der.rawChildren(decoded.value);
    tree = der.children(der.decode(decoded.value), 'CertificationRequest');
  } catch (cause) {
    return err(new CaError('CSR_MALFORMED', `CSR is not valid DER: ${message(cause)}`, { cause }));
  }
  const [infoDer] = parts;
  const [info, algorithm, signatureBits] = tree;
  if (parts.length !== 3 || infoDer === undefined || info === undefined) {
    return err(new CaError('CSR_MALFORMED', 'CSR does not have the PKCS#10 shape'));
  }

  let spkiDer: Buffer;
  let attributes: Asn1 | undefined;
  try {
    const infoParts = der.rawChildren(infoDer);
    const fields = der.children(info, 'CertificationRequestInfo');
    if (!der.isUniversal(fields[0], Tag.INTEGER) || der.primitive(fields[0]) !== '\x00') {
      return err(new CaError('CSR_MALFORMED', 'CSR version is not 1'));
    }
    const spki = infoParts[2];
    if (spki === undefined) throw new Error('no public key');
    spkiDer = spki;
    attributes = fields[3];
  } catch (cause) {
    return err(new CaError('CSR_MALFORMED', `CSR request info is malformed: ${message(cause)}`, { cause }));
  }

  const key = checkKey(spkiDer);
  if (!key.ok) return key;
  const { publicKey, keyDescription } = key.value;

  let signatureOk: boolean;
  try {
    const algorithmId = der.readOid(der.children(algorithm, 'AlgorithmIdentifier')[0]);
    const scheme = SIGNATURE_ALGORITHMS[algorithmId];
    if (scheme === undefined) {
      return err(new CaError('CSR_SIGNATURE', `CSR is signed with an unsupported algorithm (${algorithmId})`));
    }
    if (scheme.keyType !== publicKey.asymmetricKeyType) {
      return err(new CaError('CSR_SIGNATURE', `CSR signature algorithm ${algorithmId} does not match its ${keyDescription} key`));
    }
    signatureOk = verify(scheme.digest, infoDer, publicKey, der.readBitStringBytes(signatureBits));
  } catch (cause) {
    return err(new CaError('CSR_SIGNATURE', `CSR signature is malformed: ${message(cause)}`, { cause }));
  }
  if (!signatureOk) return err(new CaError('CSR_SIGNATURE', 'CSR signature does not verify with its own public key'));

  try {
    const { requestedNames, requestsCa } = readExtensionRequest(attributes);
    return ok({ spkiDer, publicKey, keyDescription, requestedNames, requestsCa });
  } catch (cause) {
    return err(new CaError('CSR_MALFORMED', `CSR extension request is malformed: ${message(cause)}`, { cause }));
  }
}

function decodeCsrPem(pem: string): Result<Buffer, CaError> {
  let blocks: Forge.pem.ObjectPEM[];
  try {
    blocks = forge.pem.decode(pem);
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
  if (block.procType !== null && block.procType !== undefined) {
    return err(new CaError('CSR_MALFORMED', 'encrypted PEM blocks are not accepted'));
  }
  return ok(der.fromBinary(block.body));
}

function checkKey(spkiDer: Buffer): Result<{ publicKey: KeyObject; keyDescription: string }, CaError> {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (cause) {
    return err(new CaError('CSR_KEY', `CSR public key cannot be read: ${message(cause)}`, { cause }));
  }
  const type = publicKey.asymmetricKeyType;
  const details = publicKey.asymmetricKeyDetails ?? {};
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) return err(new CaError('CSR_KEY', `RSA key of ${bits} bits is too weak (minimum ${MIN_RSA_BITS})`));
    if (bits > MAX_RSA_BITS) return err(new CaError('CSR_KEY', `RSA key of ${bits} bits is too large (maximum ${MAX_RSA_BITS})`));
    return ok({ publicKey, keyDescription: `RSA ${bits}` });
  }
  if (type === 'ec') {
    const curve = CURVES[details.namedCurve ?? ''];
    if (curve === undefined) {
      return err(new CaError('CSR_KEY', `EC curve ${details.namedCurve ?? 'unknown'} is not accepted (use P-256 or P-384)`));
    }
    return ok({ publicKey, keyDescription: `EC ${curve}` });
  }
  return err(new CaError('CSR_KEY', `${type ?? 'unknown'} keys are not accepted (use EC P-256/P-384 or RSA >= ${MIN_RSA_BITS})`));
}

function readExtensionRequest(attributes: Asn1 | undefined): { requestedNames: RequestedName[]; requestsCa: boolean } {
  const requestedNames: RequestedName[] = [];
  let requestsCa = false;
  if (attributes === undefined) return { requestedNames, requestsCa };
  if (!der.isContext(attributes, 0)) throw new Error('attributes are not tagged [0]');
  for (const attribute of der.children(attributes, 'attributes')) {
    const [type, values] = der.children(attribute, 'attribute');
    if (der.readOid(type) !== OID.extensionRequest) continue;
    for (const extensions of der.children(values, 'attribute values')) {
      for (const extension of der.children(extensions, 'extensions')) {
        const parts = der.children(extension, 'extension');
        const id = der.readOid(parts[0]);
        const value = der.decode(der.fromBinary(der.primitive(parts[parts.length - 1], 'extension value')));
        if (id === OID.subjectAltName) requestedNames.push(...readGeneralNames(value));
        if (id === OID.basicConstraints) {
          const [ca] = der.children(value, 'basicConstraints');
          if (der.isUniversal(ca, Tag.BOOLEAN) && der.primitive(ca) !== '\x00') requestsCa = true;
        }
        if (id === OID.keyUsage) {
          const bits = der.readNamedBits(value);
          if (bits.has(KEY_USAGE.keyCertSign) || bits.has(KEY_USAGE.cRLSign)) requestsCa = true;
        }
      }
    }
  }
  return { requestedNames, requestsCa };
}

function readGeneralNames(value: Asn1): RequestedName[] {
  return der.children(value, 'GeneralNames').map((name): RequestedName => {
    if (name.tagClass !== der.TagClass.CONTEXT_SPECIFIC) return { type: 'other', value: 'non-context name' };
    const raw = typeof name.value === 'string' ? der.fromBinary(name.value) : undefined;
    switch (name.type) {
      case 1:
        return { type: 'email', value: raw?.toString('latin1') ?? '' };
      case 2:
        return { type: 'dns', value: raw?.toString('latin1') ?? '' };
      case 6:
        return { type: 'uri', value: raw?.toString('latin1') ?? '' };
      case 7:
        return { type: 'ip', value: raw === undefined ? '' : formatIp(raw) };
      default:
        return { type: 'other', value: `GeneralName [${name.type}]` };
    }
  });
}

function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    // The URL parser prints the canonical compressed form.
    return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
  }
  return `0x${bytes.toString('hex')}`;
}

/** What a CSR built by `buildCsr` asks for. */
export interface CsrRequest {
  /** Requested subjectAltNames (sent as one extension). */
  readonly names?: readonly SubjectAltName[];
  /** Further DER-encoded Extension elements to request, e.g. basicConstraintsExtension(true). */
  readonly extensions?: readonly Buffer[];
  /** Subject attributes; empty by default. */
  readonly subject?: readonly NameAttribute[];
}

/** Builds a PEM PKCS#10 CSR signed by `privateKey` (EC, RSA or Ed25519). */
export function buildCsr(privateKey: KeyObject, request: CsrRequest = {}): string {
  const spkiDer = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const extensions = [...(request.names?.length ? [subjectAltNameExtension(request.names)] : []), ...(request.extensions ?? [])];
  const attributes = extensions.length
    ? [der.seq(der.oid(OID.extensionRequest), der.set(der.seq(...extensions.map((e) => der.decode(e)))))]
    : [];
  const info = der.encode(
    der.seq(
      der.smallInt(0),
      der.decode(encodeName(request.subject ?? [])),
      der.decode(spkiDer),
      forge.asn1.create(der.TagClass.CONTEXT_SPECIFIC, 0, true, attributes),
    ),
  );
  const { algorithm, digest } = signatureAlgorithmFor(privateKey);
  const signature = sign(digest, info, privateKey);
  const csrDer = der.encode(der.seq(der.decode(info), algorithm, der.bitString(signature)));
  return forge.pem.encode({ type: 'CERTIFICATE REQUEST', body: der.toBinary(csrDer) });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
