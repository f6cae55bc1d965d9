// The webhook's certificates: a small self-signed CA (EC P-256) and the serving certificate it issues
// for the webhook Service's DNS names. Built with node:crypto keys and the DER encoder beside it.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import * as der from './der.js';

const ECDSA_WITH_SHA256 = der.sequence(der.oid('1.2.840.10045.4.3.2'));
const COMMON_NAME = '2.5.4.3';
const EXT = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
} as const;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
/** Certificates start this long before they are made, for API servers whose clock is a little behind. */
const BACKDATE_MS = 60_000;

/** Whole seconds, as the certificate holds them. */
const second = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

/** A certificate with its key, both PEM, and the times it is valid between. */
export interface KeyedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

function name(commonName: string): der.Der {
  return der.sequence(der.set(der.sequence(der.oid(COMMON_NAME), der.utf8String(commonName))));
}

function extension(id: string, critical: boolean, value: der.Der): der.Der {
  return der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: Buffer): Buffer {
  // The SPKI of a P-256 key ends with its 65-byte uncompressed point.
  return createHash('sha1').update(spki.subarray(spki.length - 65)).digest();
}

interface Template {
  readonly subject: string;
  readonly issuer: string;
  readonly publicKey: KeyObject;
  readonly issuerPublicKey: KeyObject;
  readonly signingKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly dnsNames: readonly string[];
}

function build(template: Template): string {
  const spki = template.publicKey.export({ type: 'spki', format: 'der' });
  const issuerSpki = template.issuerPublicKey.export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f | 0x01;
  const extensions = template.isCa
    ? [
        extension(EXT.basicConstraints, true, der.sequence(der.boolean(true), der.smallInteger(0))),
        extension(EXT.keyUsage, true, der.flags([0, 5, 6])), // digitalSignature, keyCertSign, cRLSign
        extension(EXT.subjectKeyIdentifier, false, der.octetString(keyIdentifier(spki))),
      ]
    : [
        extension(EXT.basicConstraints, true, der.sequence()),
        extension(EXT.keyUsage, true, der.flags([0])), // digitalSignature
        extension(EXT.extKeyUsage, false, der.sequence(der.oid(SERVER_AUTH))),
        extension(EXT.subjectAltName, false, der.sequence(...template.dnsNames.map((n) => der.implicit(2, Buffer.from(n, 'ascii'))))),
        extension(EXT.authorityKeyIdentifier, false, der.sequence(der.implicit(0, keyIdentifier(issuerSpki)))),
      ];
  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)),
    der.unsignedInteger(serial),
    ECDSA_WITH_SHA256,
    name(template.issuer),
    der.sequence(der.time(template.notBefore), der.time(template.notAfter)),
    name(template.subject),
    spki,
    der.explicit(3, der.sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, template.signingKey); // DER ECDSA-Sig-Value
  const certificate = der.sequence(tbs, ECDSA_WITH_SHA256, der.bitString(signature));
  const base64 = certificate.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`;
}

function newKey(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** A self-signed CA valid for `ttlMs` from `now`. */
export function generateCa(commonName: string, ttlMs: number, now: number): KeyedCertificate {
  const { publicKey, privateKey } = newKey();
  const notBefore = second(now - BACKDATE_MS);
  const notAfter = second(now + ttlMs);
  const certPem = build({
    subject: commonName, issuer: commonName, publicKey, issuerPublicKey: publicKey, signingKey: privateKey,
    notBefore, notAfter, isCa: true, dnsNames: [],
  });
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), notBefore, notAfter };
}

/** A serving certificate for `dnsNames` (the first is also its common name), issued by `ca`, valid `ttlMs` but never past the CA. */
export function issueServingCertificate(ca: KeyedCertificate, dnsNames: readonly string[], ttlMs: number, now: number): KeyedCertificate {
  const caCert = new X509Certificate(ca.certPem);
  const caKey = createPrivateKey(ca.keyPem);
  const { publicKey, privateKey } = newKey();
  const notBefore = second(now - BACKDATE_MS);
  const notAfter = second(Math.min(now + ttlMs, ca.notAfter.getTime()));
  const certPem = build({
    subject: dnsNames[0] ?? 'tsmesh-injector', issuer: commonNameOf(caCert), publicKey, issuerPublicKey: caCert.publicKey,
    signingKey: caKey, notBefore, notAfter, isCa: false, dnsNames,
  });
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), notBefore, notAfter };
}

function commonNameOf(certificate: X509Certificate): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(certificate.subject)?.[1] ?? '';
}

/** The CA from its PEM certificate and key; throws when they do not parse or do not belong together. */
export function readCa(certPem: string, keyPem: string): KeyedCertificate {
  const certificate = new X509Certificate(certPem);
  const key = createPrivateKey(keyPem);
  if (!certificate.ca) throw new Error('the certificate is not a CA');
  if (!certificate.checkPrivateKey(key)) throw new Error('the key does not belong to the certificate');
  return { certPem, keyPem, notBefore: new Date(certificate.validFrom), notAfter: new Date(certificate.validTo) };
}

/** The PEM certificates in a bundle, each ending with a newline; anything else is dropped. */
export function splitPem(bundle: string): string[] {
  return [...bundle.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => `${m[0]}\n`);
}

/** The SHA-256 fingerprint of a PEM certificate, or undefined when it does not parse. */
export function fingerprint(certPem: string): string | undefined {
  try {
    return new X509Certificate(certPem).fingerprint256;
  } catch {
    return undefined;
  }
}
