// The webhook's certificates: a small self-signed CA (EC P-256) and the serving certificate it issues
// for the webhook Service's DNS names, made with the mesh's one X.509 stack (@tsmesh/ca/x509).
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import {
  authorityKeyIdExtension,
  basicConstraintsExtension,
  certificateFacts,
  certificatePem,
  encodeName,
  EXTENDED_KEY_USAGE,
  extKeyUsageExtension,
  KEY_USAGE,
  keyIdentifier,
  keyUsageExtension,
  randomSerial,
  signCertificate,
  subjectAltNameExtension,
  subjectKeyIdExtension,
} from '@tsmesh/ca/x509';

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

function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

const pkcs8 = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }).toString();
const spkiOf = (key: KeyObject): Buffer => createPublicKey(key).export({ type: 'spki', format: 'der' });

/** A self-signed CA valid for `ttlMs` from `now`. */
export function generateCa(commonName: string, ttlMs: number, now: number): KeyedCertificate {
  const key = newKey();
  const spkiDer = spkiOf(key);
  const subject = encodeName([{ type: 'CN', value: commonName }]);
  const keyId = keyIdentifier(spkiDer);
  const notBefore = second(now - BACKDATE_MS);
  const notAfter = second(now + ttlMs);
  const der = signCertificate(
    {
      serial: randomSerial(),
      subject,
      spkiDer,
      notBefore,
      notAfter,
      extensions: [
        basicConstraintsExtension(true, 0),
        keyUsageExtension([KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]),
        subjectKeyIdExtension(keyId),
      ],
    },
    { subjectDer: subject, keyId, privateKey: key },
  );
  return { certPem: certificatePem(der), keyPem: pkcs8(key), notBefore, notAfter };
}

/**
 * A serving certificate for `dnsNames` (the first is also its common name), issued by `ca`, valid
 * `ttlMs` but never past the CA. Its authority key identifier is the CA's own subject key
 * identifier (or, for a CA without one, the RFC 5280 method (1) identifier of its key, of any type).
 */
export function issueServingCertificate(ca: KeyedCertificate, dnsNames: readonly string[], ttlMs: number, now: number): KeyedCertificate {
  const issuer = certificateFacts(new X509Certificate(ca.certPem).raw);
  const key = newKey();
  const notBefore = second(now - BACKDATE_MS);
  const notAfter = second(Math.min(now + ttlMs, ca.notAfter.getTime()));
  const der = signCertificate(
    {
      serial: randomSerial(),
      subject: encodeName([{ type: 'CN', value: dnsNames[0] ?? 'tsmesh-injector' }]),
      spkiDer: spkiOf(key),
      notBefore,
      notAfter,
      extensions: [
        basicConstraintsExtension(false),
        keyUsageExtension([KEY_USAGE.digitalSignature]),
        extKeyUsageExtension([EXTENDED_KEY_USAGE.serverAuth]),
        subjectAltNameExtension(dnsNames.map((value) => ({ type: 'dns', value }))),
        authorityKeyIdExtension(issuer.keyId),
      ],
    },
    { subjectDer: issuer.subjectDer, keyId: issuer.keyId, privateKey: createPrivateKey(ca.keyPem) },
  );
  return { certPem: certificatePem(der), keyPem: pkcs8(key), notBefore, notAfter };
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
