import { createPublicKey, X509Certificate } from 'node:crypto';
import {
  certificateFacts,
  encodeName,
  keyIdentifier,
  randomSerial,
  serialHex,
  signCertificate,
  subjectAltNameExtension,
  subjectKeyIdExtension,
} from './certificate.js';
import { ecKey, rsaKey } from '../testing/fixtures.js';

function selfSigned(extensions: Buffer[], key = ecKey()): X509Certificate {
  const spkiDer = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const subject = encodeName([{ type: 'CN', value: 'test' }]);
  const der = signCertificate(
    { serial: randomSerial(), subject, spkiDer, notBefore: new Date(), notAfter: new Date(Date.now() + 3600_000), extensions },
    { subjectDer: subject, keyId: keyIdentifier(spkiDer), privateKey: key },
  );
  return new X509Certificate(der);
}

describe('randomSerial', () => {
  it('is a positive integer of at most 128 bits in minimal DER form', () => {
    for (let i = 0; i < 500; i++) {
      const serial = randomSerial();
      expect(serial.length).toBeLessThanOrEqual(17);
      expect((serial[0] ?? 0) & 0x80).toBe(0);
      if (serial.length === 17) expect(serial[0]).toBe(0);
      if (serial.length > 1 && serial[0] === 0) expect((serial[1] ?? 0) & 0x80).toBe(0x80);
    }
  });

  it('differs between calls', () => {
    const seen = new Set(Array.from({ length: 100 }, () => serialHex(randomSerial())));
    expect(seen.size).toBe(100);
  });
});

describe('signCertificate', () => {
  it('makes a certificate Node can read and verify with an EC key', () => {
    const key = ecKey();
    const cert = selfSigned([], key);
    expect(cert.verify(createPublicKey(key))).toBe(true);
    expect(cert.subject).toBe('CN=test');
  });

  it('signs with an RSA key too', () => {
    const key = rsaKey(2048);
    expect(selfSigned([], key).verify(createPublicKey(key))).toBe(true);
  });

  it('writes IPv4, IPv6 and DNS subject alternative names', () => {
    const cert = selfSigned([
      subjectAltNameExtension([
        { type: 'dns', value: 'tsmesh-ca' },
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '::1' },
        { type: 'ip', value: 'fd00:1::ffff:10.1.2.3' },
        { type: 'uri', value: 'spiffe://cluster.local/ns/a/sa/b' },
      ]),
    ]);
    expect(cert.subjectAltName).toBe(
      'DNS:tsmesh-ca, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:1:0:0:0:FFFF:A01:203, URI:spiffe://cluster.local/ns/a/sa/b',
    );
  });
});

describe('certificateFacts', () => {
  it('reads the subject key identifier extension when present', () => {
    const cert = selfSigned([subjectKeyIdExtension(Buffer.alloc(20, 7))]);
    expect(certificateFacts(cert.raw).keyId).toEqual(Buffer.alloc(20, 7));
  });

  it('computes the key identifier from the key when the extension is absent', () => {
    const key = ecKey();
    const facts = certificateFacts(selfSigned([], key).raw);
    expect(facts.keyId).toEqual(keyIdentifier(createPublicKey(key).export({ format: 'der', type: 'spki' })));
    expect(facts.subjectDer).toEqual(encodeName([{ type: 'CN', value: 'test' }]));
  });
});
