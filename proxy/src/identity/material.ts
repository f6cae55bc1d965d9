// The sidecar's identity material: its in-memory key, the chain the CA issued for it and the roots
// that verify peers. Checked before use (our identity, our key, a chain to a trusted root) and
// described for the admin endpoint without the key.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import { err, ok, type Result } from '@tsmesh/common';
import { IDENTITY_ERRORS, IdentityError } from '../errors.js';
import { peerIdentityFromCertificate } from './spiffe.js';

/** What the data path needs to speak mTLS as this workload. Immutable; replaced on renewal. */
export interface IdentityMaterial {
  readonly spiffeId: string;
  /** PKCS#8 PEM of the private key: lives in memory only, never written anywhere. */
  readonly keyPem: string;
  /** Leaf PEM first, then the intermediates (what the sidecar presents). */
  readonly certChainPem: readonly string[];
  /** Roots that verify peers: the CA answer's bundle, then TSMESH_TRUST_BUNDLE_FILE's, deduplicated. */
  readonly trustBundlePem: readonly string[];
  readonly leaf: X509Certificate;
  /** Hex serial number of the leaf, as Node prints it. */
  readonly serialNumber: string;
  /** SHA-256 fingerprint of the leaf (colon-separated hex). */
  readonly fingerprint256: string;
  readonly notBefore: Date;
  readonly expiresAt: Date;
  /** When the certificate was asked for (renewal is timed from here, not from the backdated notBefore). */
  readonly issuedAt: Date;
}

/** A certificate as the admin `/certs` endpoint shows it. */
export interface CertificateDescription {
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  readonly fingerprint256: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly subjectAltName: string | undefined;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Every certificate of a PEM text, re-encoded canonically. Undefined when a block does not parse;
 * an empty list when there is no block at all.
 */
export function splitPemCertificates(text: string): X509Certificate[] | undefined {
  const certs: X509Certificate[] = [];
  for (const [block] of text.matchAll(PEM_BLOCK)) {
    try {
      certs.push(new X509Certificate(block));
    } catch {
      return undefined;
    }
  }
  return certs;
}

/** The union of root lists, first occurrence kept, compared by SHA-256 fingerprint. */
export function unionRoots(...lists: ReadonlyArray<readonly X509Certificate[]>): X509Certificate[] {
  const seen = new Set<string>();
  const roots: X509Certificate[] = [];
  for (const cert of lists.flat()) {
    if (seen.has(cert.fingerprint256)) continue;
    seen.add(cert.fingerprint256);
    roots.push(cert);
  }
  return roots;
}

export interface MaterialInput {
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly keyPem: string;
  readonly certChainPem: readonly string[];
  /** The CA answer's trust bundle. */
  readonly answerBundlePem: readonly string[];
  /** The roots of TSMESH_TRUST_BUNDLE_FILE. */
  readonly fileRoots: readonly X509Certificate[];
  readonly issuedAt: Date;
  readonly now: Date;
}

/**
 * Checks what the CA issued before the sidecar uses it: the leaf names exactly our SPIFFE ID (and is
 * not a CA), matches our key, is valid now, and the chain leads to a root of the union bundle.
 * Fails with TSMESH_ERR_IDENTITY_CERTIFICATE naming what is wrong.
 */
export function buildMaterial(input: MaterialInput): Result<IdentityMaterial, IdentityError> {
  const refuse = (reason: string, cause?: unknown): Result<never, IdentityError> =>
    err(
      new IdentityError(
        IDENTITY_ERRORS.IDENTITY_CERTIFICATE,
        `the CA issued a certificate this sidecar must not use: ${reason}`,
        cause === undefined ? undefined : { cause },
      ),
    );
  const chain = splitPemCertificates(input.certChainPem.join('\n'));
  const answerRoots = splitPemCertificates(input.answerBundlePem.join('\n'));
  if (chain === undefined || answerRoots === undefined) return refuse('a certificate of the answer does not parse');
  const [leaf] = chain;
  if (leaf === undefined) return refuse('the chain is empty');

  const identity = peerIdentityFromCertificate(leaf, input.trustDomain);
  if (!identity.ok) return refuse(identity.error.message, identity.error);
  if (identity.value.spiffeId !== input.spiffeId) return refuse(`it names ${identity.value.spiffeId}, not ${input.spiffeId}`);
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(input.keyPem))) return refuse('it is not for this sidecar\'s key');
  } catch (cause) {
    return refuse('its key cannot be compared with this sidecar\'s key', cause);
  }
  const notBefore = new Date(leaf.validFrom);
  const expiresAt = new Date(leaf.validTo);
  if (input.now.getTime() >= expiresAt.getTime()) return refuse(`it expired at ${expiresAt.toISOString()}`);
  if (input.now.getTime() < notBefore.getTime()) return refuse(`it is not valid before ${notBefore.toISOString()}`);

  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i] as X509Certificate;
    const parent = chain[i + 1] as X509Certificate;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      return refuse(`chain certificate ${i} (${child.subject || 'no subject'}) is not signed by the next one`);
    }
  }
  const roots = unionRoots(answerRoots, input.fileRoots);
  const top = chain[chain.length - 1] as X509Certificate;
  const anchored = roots.some(
    (root) => root.fingerprint256 === top.fingerprint256 || (top.checkIssued(root) && top.verify(root.publicKey)),
  );
  if (!anchored) return refuse('its chain does not lead to a root of the trust bundle');

  return ok(
    Object.freeze({
      spiffeId: input.spiffeId,
      keyPem: input.keyPem,
      certChainPem: Object.freeze(chain.map((cert) => cert.toString())),
      trustBundlePem: Object.freeze(roots.map((cert) => cert.toString())),
      leaf,
      serialNumber: leaf.serialNumber,
      fingerprint256: leaf.fingerprint256,
      notBefore,
      expiresAt,
      issuedAt: input.issuedAt,
    }),
  );
}

/** A certificate's public facts; never anything secret. */
export function describeCertificate(cert: X509Certificate): CertificateDescription {
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    subjectAltName: cert.subjectAltName,
  };
}

/** TLS 1.3 only, our chain and key, the union bundle as the roots peers must chain to. */
export function meshSecureContextOptions(material: Pick<IdentityMaterial, 'keyPem' | 'certChainPem' | 'trustBundlePem'>): SecureContextOptions {
  return Object.freeze({
    key: material.keyPem,
    cert: material.certChainPem.join(''),
    ca: material.trustBundlePem.join(''),
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  });
}
