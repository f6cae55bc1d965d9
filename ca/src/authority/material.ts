// The CA's signing material: the key it signs with, the chain sent after each leaf and the trust
// bundle. Loaded from PEM, generated, and checked for consistency before the CA serves.
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { TsmeshError } from '@tsmesh/common';
import { CA_SETUP_ERRORS } from '../errors.js';
import {
  authorityKeyIdExtension,
  basicConstraintsExtension,
  certificateFacts,
  certificatePem,
  encodeName,
  KEY_USAGE,
  keyIdentifier,
  keyUsageExtension,
  randomSerial,
  signCertificate,
  subjectKeyIdExtension,
  type CertificateFacts,
  type Issuer,
} from '../x509/certificate.js';

/** A CA certificate with the facts needed to issue under it. */
export interface CaCertificate {
  readonly cert: X509Certificate;
  readonly pem: string;
  readonly facts: CertificateFacts;
}

/** A CA certificate together with its private key. */
export interface CaKeyPair extends CaCertificate {
  readonly key: KeyObject;
}

/** What the CA signs with and hands out. */
export interface SigningMaterial {
  /** The certificate and key that sign workload certificates (normally the intermediate). */
  readonly signer: CaKeyPair;
  /** Sent after the leaf: the signer first, then any further intermediates; never a root. */
  readonly chain: readonly CaCertificate[];
  /** The trust bundle: the CA's own root first, then extra roots (e.g. during a rotation). */
  readonly roots: readonly CaCertificate[];
}

/** Clock skew allowance: certificates start this long before they are made. */
export const BACKDATE_MS = 5 * 60 * 1000;
export const ROOT_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;
export const INTERMEDIATE_LIFETIME_MS = 365 * 24 * 3600 * 1000;

function materialError(message: string, cause?: unknown): TsmeshError {
  return new TsmeshError(CA_SETUP_ERRORS.CA_MATERIAL, message, cause === undefined ? undefined : { cause });
}

/** Splits PEM text into its certificates; `what` names the source in errors. */
export function parseCertificates(pem: string, what: string): CaCertificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw materialError(`${what}: no PEM certificate found`);
  return blocks.map((block, i) => {
    try {
      const cert = new X509Certificate(block);
      return { cert, pem: certificatePem(cert.raw), facts: certificateFacts(cert.raw) };
    } catch (cause) {
      throw materialError(`${what}: certificate ${i + 1} cannot be read: ${(cause as Error).message}`, cause);
    }
  });
}

/** A CaCertificate from DER the CA just made. */
export function fromDer(der: Buffer): CaCertificate {
  return { cert: new X509Certificate(der), pem: certificatePem(der), facts: certificateFacts(der) };
}

export function parsePrivateKey(pem: string, what: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (cause) {
    throw materialError(`${what}: private key cannot be read: ${(cause as Error).message}`, cause);
  }
}

function sameKey(key: KeyObject, cert: X509Certificate): boolean {
  const mine = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return mine.equals(cert.publicKey.export({ format: 'der', type: 'spki' }));
}

/** Pairs a certificate with its key, refusing a key that does not belong to it. */
export function pairKey(cert: CaCertificate, key: KeyObject, what: string): CaKeyPair {
  if (!sameKey(key, cert.cert)) throw materialError(`${what}: the private key does not match the certificate`);
  return { ...cert, key };
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/**
 * Checks that the material hangs together: CA certificates, the signer's key matches, every
 * chain link is signed by the next, and the chain ends under the first root. Throws with the reason.
 */
export function checkMaterial(material: SigningMaterial, now: Date): void {
  const [first, ...rest] = material.chain;
  const ownRoot = material.roots[0];
  if (first === undefined || ownRoot === undefined) throw materialError('signing material needs a chain and a root');
  if (first.cert.fingerprint256 !== material.signer.cert.fingerprint256) throw materialError('chain must start with the signing certificate');
  pairKey(material.signer, material.signer.key, 'signing certificate');
  for (const [i, link] of [...material.chain, ...material.roots].entries()) {
    const name = i < material.chain.length ? `intermediate ${i + 1}` : `root ${i - material.chain.length + 1}`;
    if (!link.cert.ca) throw materialError(`${name} (${link.cert.subject.replace(/\n/g, ', ')}) is not a CA certificate`);
    if (new Date(link.cert.validTo).getTime() <= now.getTime()) throw materialError(`${name} expired at ${link.cert.validTo}`);
  }
  let child = first;
  for (const parent of rest) {
    if (!issuedBy(child.cert, parent.cert)) throw materialError('intermediate chain is out of order: a certificate is not signed by the next one');
    child = parent;
  }
  if (!issuedBy(child.cert, ownRoot.cert)) throw materialError('the intermediate chain does not lead to the root certificate');
}

/** A new EC P-256 key pair, as used for every CA-made key. */
export function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
}

/** A new self-signed root CA (EC P-256, ten years). */
export function generateRoot(now: Date): CaKeyPair {
  const key = newKey();
  const spkiDer = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const subject = encodeName([
    { type: 'O', value: 'tsmesh' },
    { type: 'CN', value: 'tsmesh root CA' },
  ]);
  const keyId = keyIdentifier(spkiDer);
  const der = signCertificate(
    {
      serial: randomSerial(),
      subject,
      spkiDer,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + ROOT_LIFETIME_MS),
      extensions: [
        basicConstraintsExtension(true),
        keyUsageExtension([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]),
        subjectKeyIdExtension(keyId),
      ],
    },
    { subjectDer: subject, keyId, privateKey: key },
  );
  return { ...fromDer(der), key };
}

/** A new intermediate CA (EC P-256, path length 0) signed by `root`, never outliving it. */
export function issueIntermediate(root: CaKeyPair, now: Date): CaKeyPair {
  const key = newKey();
  const spkiDer = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const notAfter = Math.min(now.getTime() + INTERMEDIATE_LIFETIME_MS, new Date(root.cert.validTo).getTime());
  const der = signCertificate(
    {
      serial: randomSerial(),
      subject: encodeName([
        { type: 'O', value: 'tsmesh' },
        { type: 'CN', value: 'tsmesh intermediate CA' },
      ]),
      spkiDer,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(notAfter),
      extensions: [
        basicConstraintsExtension(true, 0),
        keyUsageExtension([KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]),
        subjectKeyIdExtension(keyIdentifier(spkiDer)),
        authorityKeyIdExtension(root.facts.keyId),
      ],
    },
    issuerOf(root),
  );
  return { ...fromDer(der), key };
}

/** The issuer fields for signing under a CA key pair. */
export function issuerOf(pair: CaKeyPair): Issuer {
  return { subjectDer: pair.facts.subjectDer, keyId: pair.facts.keyId, privateKey: pair.key };
}

/** PEM text of a private key (PKCS#8). */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}
