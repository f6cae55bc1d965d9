// Which signature algorithm a key signs with, and the synchronous signing step: node:crypto signs
// the DER the schema library produced, so issuing a certificate never waits on WebCrypto.
import { sign, type KeyObject } from 'node:crypto';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';

export const SIGNATURE_OIDS = {
  sha256WithRSA: '1.2.840.113549.1.1.11',
  sha384WithRSA: '1.2.840.113549.1.1.12',
  sha512WithRSA: '1.2.840.113549.1.1.13',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
} as const;

/** A signing scheme: its AlgorithmIdentifier and Node's digest name (null for Ed25519). */
export interface SignatureScheme {
  readonly algorithm: AlgorithmIdentifier;
  readonly digest: string | null;
}

/**
 * The scheme a key signs with: RSA with SHA-256 (parameters NULL, RFC 4055), ECDSA with the hash
 * that matches the curve (RFC 5758 3.2: parameters absent), Ed25519 (RFC 8410). Throws for other keys.
 */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return { algorithm: new AlgorithmIdentifier({ algorithm: SIGNATURE_OIDS.sha256WithRSA, parameters: null }), digest: 'sha256' };
  if (type === 'ed25519') return { algorithm: new AlgorithmIdentifier({ algorithm: SIGNATURE_OIDS.ed25519 }), digest: null };
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'secp384r1') return { algorithm: new AlgorithmIdentifier({ algorithm: SIGNATURE_OIDS.ecdsaWithSha384 }), digest: 'sha384' };
    if (curve === 'secp521r1') return { algorithm: new AlgorithmIdentifier({ algorithm: SIGNATURE_OIDS.ecdsaWithSha512 }), digest: 'sha512' };
    return { algorithm: new AlgorithmIdentifier({ algorithm: SIGNATURE_OIDS.ecdsaWithSha256 }), digest: 'sha256' };
  }
  throw new Error(`cannot sign with a ${type ?? 'unknown'} key`);
}

/** Signs `toBeSigned` (exact DER) with `key`; the signature is what goes into the BIT STRING (DER ECDSA-Sig-Value for EC). */
export function signDer(toBeSigned: ArrayBuffer | Uint8Array, key: KeyObject, scheme = signatureSchemeFor(key)): ArrayBuffer {
  const bytes = toBeSigned instanceof Uint8Array ? toBeSigned : new Uint8Array(toBeSigned);
  const signature = sign(scheme.digest, bytes, key);
  return signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength) as ArrayBuffer;
}
