import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { certificateExtensions } from '@tsmesh/ca/x509';
import { generateCa, issueServingCertificate, readCa, splitPem, type KeyedCertificate } from './certificates.js';

const NOW = Date.parse('2026-11-22T00:00:00Z');
const DAY = 86_400_000;

describe('the webhook certificates', () => {
  const ca = generateCa('test CA', 365 * DAY, NOW);

  it('makes a self-signed P-256 CA that node reads back', () => {
    const certificate = new X509Certificate(ca.certPem);
    expect(certificate.ca).toBe(true);
    expect(certificate.subject).toBe('CN=test CA');
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(new Date(certificate.validTo).getTime()).toBe(NOW + 365 * DAY);
    expect(certificate.keyUsage ?? []).toEqual([]); // keyUsage is not an extended key usage
    expect(readCa(ca.certPem, ca.keyPem).notAfter.getTime()).toBe(NOW + 365 * DAY);
  });

  it('issues a serving certificate for the Service names, signed by the CA', () => {
    const names = ['tsmesh-injector', 'tsmesh-injector.tsmesh-system', 'tsmesh-injector.tsmesh-system.svc'];
    const serving = issueServingCertificate(ca, names, 30 * DAY, NOW);
    const certificate = new X509Certificate(serving.certPem);
    const issuer = new X509Certificate(ca.certPem);
    expect(certificate.ca).toBe(false);
    expect(certificate.checkIssued(issuer)).toBe(true);
    expect(certificate.verify(issuer.publicKey)).toBe(true);
    expect(certificate.subjectAltName).toBe(names.map((n) => `DNS:${n}`).join(', '));
    expect(certificate.checkHost('tsmesh-injector.tsmesh-system.svc')).toBe('tsmesh-injector.tsmesh-system.svc');
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(certificate.checkPrivateKey(createPrivateKey(serving.keyPem))).toBe(true);
    expect(serving.notAfter.getTime()).toBe(NOW + 30 * DAY);
  });

  it('never issues past the CA', () => {
    const short = generateCa('short CA', DAY, NOW);
    expect(issueServingCertificate(short, ['a'], 30 * DAY, NOW).notAfter.getTime()).toBe(NOW + DAY);
  });

  it('refuses a CA whose key is not its own', () => {
    const other = generateCa('other', DAY, NOW);
    expect(() => readCa(ca.certPem, other.keyPem)).toThrow(/does not belong/);
  });

  it('splits a bundle into its certificates', () => {
    const other = generateCa('other', DAY, NOW);
    expect(splitPem(`junk\n${ca.certPem}${other.certPem}`)).toEqual([ca.certPem, other.certPem]);
  });
});

// Wire characterisation: testdata/ was written from the certificates of the injector's former
// hand-written DER encoder; the same extensions must come out of the shared X.509 stack.
const TESTDATA = fileURLToPath(new URL('./testdata/', import.meta.url));
const KEY_ID_LINE = /^( +)((?:[0-9A-F]{2}:){19}[0-9A-F]{2})$/gm;

function opensslText(pem: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-injector-cert-'));
  try {
    writeFileSync(join(dir, 'cert.pem'), pem);
    return execFileSync('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-noout', '-text', '-certopt', 'no_serial,no_validity,no_pubkey,no_sigdump'], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const keyIdsIn = (text: string): string[] => [...text.matchAll(KEY_ID_LINE)].map((m) => (m[2] ?? '').replace(/:/g, '').toLowerCase());

/** The subjectPublicKey bits of an EC key without any ASN.1 code: the uncompressed point. */
function ecPointOf(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
}

/** A CA made by openssl with `keyArgs` (another implementation, as an operator would bring). */
function opensslCa(keyArgs: string[]): KeyedCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-injector-ca-'));
  try {
    execFileSync('openssl', ['genpkey', ...keyArgs, '-out', join(dir, 'key.pem')]);
    execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'key.pem'), '-subj', '/CN=operator CA', '-days', '30', '-out', join(dir, 'ca.pem'),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    return readCa(readFileSync(join(dir, 'ca.pem'), 'utf8'), readFileSync(join(dir, 'key.pem'), 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the webhook certificates on the wire', () => {
  const ca = generateCa('tsmesh-injector CA', 365 * DAY, Date.now());
  const serving = issueServingCertificate(ca, ['tsmesh-injector', 'tsmesh-injector.tsmesh-system', 'tsmesh-injector.tsmesh-system.svc'], 30 * DAY, Date.now());
  const made: Record<string, string> = { 'injector-ca': ca.certPem, 'injector-serving': serving.certPem };
  const masked = (text: string): string => text.replace(KEY_ID_LINE, '$1<20-byte key identifier>');

  it.each(Object.keys(made))('%s reads as before in openssl x509 -text', (name) => {
    expect(masked(opensslText(made[name] ?? ''))).toBe(readFileSync(join(TESTDATA, `${name}.txt`), 'utf8'));
  });

  it.each(Object.keys(made))('%s has the same extensions as before, byte for byte', (name) => {
    const golden = JSON.parse(readFileSync(join(TESTDATA, 'extensions.json'), 'utf8')) as Record<string, unknown>;
    const entries = certificateExtensions(new X509Certificate(made[name] ?? '').raw).map((e) => {
      let hex = e.value.toString('hex');
      if (e.id === '2.5.29.14') hex = hex.replace(/^0414[0-9a-f]{40}$/, '0414<20 bytes>');
      if (e.id === '2.5.29.35') hex = hex.replace(/^30168014[0-9a-f]{40}$/, '30168014<20 bytes>');
      return [e.id, e.critical, hex];
    });
    expect(entries).toEqual(golden[name]);
  });

  it('names the CA key by the SHA-1 of its key bits and the serving certificate\'s authority by the same (RFC 5280 4.2.1.1, 4.2.1.2)', () => {
    const [caKeyId] = keyIdsIn(opensslText(ca.certPem));
    expect(caKeyId).toBe(createHash('sha1').update(ecPointOf(new X509Certificate(ca.certPem).publicKey)).digest('hex'));
    expect(keyIdsIn(opensslText(serving.certPem))).toEqual([caKeyId]);
  });

  it('points the authority key identifier at a P-384 CA\'s own subject key identifier', () => {
    const p384 = opensslCa(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']);
    const [caKeyId] = keyIdsIn(opensslText(p384.certPem));
    const issued = issueServingCertificate(p384, ['tsmesh-injector'], DAY, Date.now());
    expect(keyIdsIn(opensslText(issued.certPem))).toEqual([caKeyId]);
    const certificate = new X509Certificate(issued.certPem);
    expect(certificate.verify(new X509Certificate(p384.certPem).publicKey)).toBe(true);
  });

  it('signs with an RSA CA under an RSA signature algorithm', () => {
    const rsa = opensslCa(['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']);
    const issued = issueServingCertificate(rsa, ['tsmesh-injector'], DAY, Date.now());
    expect(opensslText(issued.certPem)).toContain('Signature Algorithm: sha256WithRSAEncryption');
    expect(new X509Certificate(issued.certPem).verify(new X509Certificate(rsa.certPem).publicKey)).toBe(true);
  });
});
