// verifyCsr against RFC 2986 (PKCS #10 v1.7) section by section, the PEM encapsulation of RFC 7468,
// and the certificate fields of RFC 5280 the CA writes from a CSR. Each test fails on an
// implementation that skips the rule it names.
import { execFileSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { craftCsr, craftCsrDer, longFormOuterLength } from '../testing/csr-craft.js';
import { ecKey, namesOf, tempDir, WEB, WEB_ID } from '../testing/fixtures.js';
import { CertificateAuthority } from '../authority/authority.js';
import { parseCertificates, parsePrivateKey, pairKey } from '../authority/material.js';
import { encodeName, keyIdentifier, randomSerial, signCertificate, subjectAltNameExtension } from './certificate.js';
import { verifyCsr } from './csr.js';
import { toPem } from './pem.js';

const sanFor = (value: string): Buffer => subjectAltNameExtension([{ type: 'uri', value }]);

function refused(pem: string): { code: string; message: string } {
  const result = verifyCsr(pem);
  if (result.ok) throw new Error('expected the CSR to be refused');
  return { code: result.error.code, message: result.error.message };
}

describe('RFC 2986 4.1 CertificationRequestInfo', () => {
  it('accepts version 0 (v1), the only version defined', () => {
    expect(verifyCsr(craftCsr({ key: ecKey() })).ok).toBe(true);
  });

  it('refuses any other version, even when correctly signed', () => {
    const { code, message } = refused(craftCsr({ key: ecKey(), version: 1 }));
    expect(code).toBe('TSMESH_ERR_CSR_MALFORMED');
    expect(message).toMatch(/version is 2, not 1/);
  });

  it('reads the extensionRequest attribute (RFC 2985 5.4.2) of the [0] attributes', () => {
    const result = verifyCsr(craftCsr({ key: ecKey(), extensionRequests: [[sanFor(WEB_ID)]] }));
    expect(result.ok && result.value.requestedNames).toEqual([{ type: 'uri', value: WEB_ID }]);
  });

  it('reads every extensionRequest attribute, not only the first', () => {
    const result = verifyCsr(craftCsr({ key: ecKey(), extensionRequests: [[sanFor(WEB_ID)], [sanFor('spiffe://cluster.local/ns/default/sa/admin')]] }));
    expect(result.ok && result.value.requestedNames.map((n) => n.value)).toEqual([WEB_ID, 'spiffe://cluster.local/ns/default/sa/admin']);
  });

  it('ignores the subject: an identity written there is never read', () => {
    const result = verifyCsr(craftCsr({ key: ecKey(), subject: [{ type: 'CN', value: 'spiffe://cluster.local/ns/default/sa/admin' }] }));
    expect(result.ok && result.value.requestedNames).toEqual([]);
  });
});

describe('RFC 2986 4.2 signature over the DER of CertificationRequestInfo', () => {
  it('verifies the signature over the request info bytes exactly as received', () => {
    // A BER long-form length is still the same value; the signer signed these very bytes.
    const pem = craftCsr({ key: ecKey(), rewriteInfo: longFormOuterLength });
    expect(verifyCsr(pem).ok).toBe(true);
  });

  it('does not verify over a re-encoding of what was received', () => {
    // Signed over the canonical DER, sent with a long-form length: a verifier that re-encodes would accept it.
    const pem = craftCsr({ key: ecKey(), rewriteInfo: longFormOuterLength, signOver: (_sent, canonical) => canonical });
    expect(refused(pem).code).toBe('TSMESH_ERR_CSR_SIGNATURE');
  });

  it('refuses a signature algorithm it does not know', () => {
    const { code, message } = refused(craftCsr({ key: ecKey(), algorithmOid: '1.2.840.10045.4.1' })); // ecdsa-with-SHA1
    expect(code).toBe('TSMESH_ERR_CSR_SIGNATURE');
    expect(message).toContain('unsupported algorithm (1.2.840.10045.4.1)');
  });

  it('refuses bytes after the CertificationRequest', () => {
    const der = Buffer.concat([craftCsrDer({ key: ecKey() }), Buffer.from([0, 0])]);
    const { code, message } = refused(toPem(der, 'CERTIFICATE REQUEST'));
    expect(code).toBe('TSMESH_ERR_CSR_MALFORMED');
    expect(message).toMatch(/2 bytes after the CertificationRequest/);
  });
});

describe('RFC 7468 PEM encapsulation', () => {
  const der = craftCsrDer({ key: ecKey() });

  it('accepts the CERTIFICATE REQUEST label and the legacy NEW CERTIFICATE REQUEST (section 7)', () => {
    expect(verifyCsr(toPem(der, 'CERTIFICATE REQUEST')).ok).toBe(true);
    expect(verifyCsr(toPem(der, 'NEW CERTIFICATE REQUEST')).ok).toBe(true);
  });

  it('refuses RFC 1421 headers (section 2: parsers must not accept them as PKCS#10), e.g. an encrypted block', () => {
    const body = toPem(der, 'CERTIFICATE REQUEST').split('\n');
    const pem = [body[0], 'Proc-Type: 4,ENCRYPTED', 'DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF', '', ...body.slice(1)].join('\n');
    const { code, message } = refused(pem);
    expect(code).toBe('TSMESH_ERR_CSR_MALFORMED');
    expect(message).toMatch(/PEM headers \(Proc-Type, DEK-Info\)/);
  });
});

describe('RFC 5280 fields the CA writes', () => {
  it('4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, whole seconds without a fraction', () => {
    const key = ecKey();
    const spkiDer = createPublicKey(key).export({ format: 'der', type: 'spki' });
    const subject = encodeName([{ type: 'CN', value: 'time' }]);
    const der = signCertificate(
      { serial: randomSerial(), subject, spkiDer, notBefore: new Date('2049-12-31T23:59:59.999Z'), notAfter: new Date('2050-01-01T00:00:00.500Z'), extensions: [] },
      { subjectDer: subject, keyId: keyIdentifier(spkiDer), privateKey: key },
    );
    const { validity } = AsnConvert.parse(der, Certificate).tbsCertificate;
    expect(validity.notBefore.utcTime?.toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(validity.notAfter.generalTime?.toISOString()).toBe('2050-01-01T00:00:00.000Z');
    // GeneralizedTime "20500101000000Z": 15 characters, no fraction of a second.
    expect(der.includes(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from('20500101000000Z')]))).toBe(true);
  });

  it("4.1.2.4: the issuer is the signing certificate's subject byte for byte, also for an operator intermediate with PrintableString names", () => {
    const { dir, cleanup } = tempDir();
    try {
      const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
      openssl('req', '-x509', ...ec, '-keyout', 'root.key', '-out', 'root.pem', '-days', '30', '-subj', '/C=US/O=Operator/CN=Operator Root',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
      openssl('req', '-new', ...ec, '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/C=US/O=Operator/CN=Operator Intermediate');
      writeFileSync(join(dir, 'ext.cnf'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
      openssl('x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'int.pem', '-days', '20', '-extfile', 'ext.cnf');
      const [intermediate] = parseCertificates(readFileSync(join(dir, 'int.pem'), 'utf8'), 'intermediate');
      const [root] = parseCertificates(readFileSync(join(dir, 'root.pem'), 'utf8'), 'root');
      if (intermediate === undefined || root === undefined) throw new Error('openssl made no certificates');
      const signer = pairKey(intermediate, parsePrivateKey(readFileSync(join(dir, 'int.key'), 'utf8'), 'key'), 'intermediate');
      const authority = new CertificateAuthority({ signer, chain: [intermediate], roots: [root] }, { trustDomain: 'cluster.local', defaultTtlSeconds: 3600, maxTtlSeconds: 3600 });
      const csr = verifyCsr(craftCsr({ key: ecKey() }));
      if (!csr.ok) throw csr.error;
      const issued = authority.issueWorkload(WEB, csr.value);
      if (!issued.ok) throw issued.error;
      const leaf = new X509Certificate(issued.value.certChain[0] ?? '');
      expect(namesOf(leaf).issuer.toString('hex')).toBe(namesOf(intermediate.cert).subject.toString('hex'));
      expect(namesOf(leaf).issuer.includes(Buffer.from('13025553', 'hex'))).toBe(true); // PrintableString "US"
      writeFileSync(join(dir, 'leaf.pem'), issued.value.certChain[0] ?? '');
      expect(execFileSync('openssl', ['verify', '-CAfile', 'root.pem', '-untrusted', 'int.pem', 'leaf.pem'], { cwd: dir, encoding: 'utf8' }).trim()).toBe('leaf.pem: OK');
    } finally {
      cleanup();
    }
  });
});
