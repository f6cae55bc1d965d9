import { createPrivateKey, X509Certificate } from 'node:crypto';
import { generateCa, issueServingCertificate, readCa, splitPem } from './certificates.js';
import * as der from './der.js';

const NOW = Date.parse('2026-11-22T00:00:00Z');
const DAY = 86_400_000;

describe('the DER encoder', () => {
  it('encodes object identifiers with multi-byte arcs', () => {
    expect(der.oid('1.2.840.10045.4.3.2').toString('hex')).toBe('06082a8648ce3d040302');
  });

  it('encodes long lengths in the long form', () => {
    expect(der.octetString(Buffer.alloc(300)).subarray(0, 4).toString('hex')).toBe('0482012c');
  });

  it('keeps integers positive and minimal', () => {
    expect(der.unsignedInteger(Buffer.from([0x00, 0x00, 0x80])).toString('hex')).toBe('02020080');
    expect(der.smallInteger(2).toString('hex')).toBe('020102');
  });

  it('encodes named bits without trailing zeros', () => {
    expect(der.flags([0]).toString('hex')).toBe('03020780');
    expect(der.flags([0, 5, 6]).toString('hex')).toBe('03020186');
  });

  it('writes UTCTime before 2050 and GeneralizedTime after', () => {
    expect(der.time(new Date('2026-11-22T01:02:03Z')).subarray(2).toString()).toBe('261122010203Z');
    expect(der.time(new Date('2051-01-01T00:00:00Z')).subarray(2).toString()).toBe('20510101000000Z');
  });
});

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
