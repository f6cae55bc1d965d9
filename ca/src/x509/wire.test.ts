// Wire characterisation: the certificates the CA makes carry exactly the extensions the CA made
// before it moved to @peculiar/x509 (testdata/ was written from node-forge-built certificates of
// each kind), as `openssl x509 -text` shows them and byte for byte per extension; key identifiers
// follow RFC 5280 4.2.1.2 method (1) for every key type, and `openssl verify` accepts each chain.
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { buildCsr, verifyCsr } from './csr.js';
import { ecKey, memoryMaterial, rsaKey, tempDir, testAuthority, WEB, WEB_ID } from '../testing/fixtures.js';

const TESTDATA = fileURLToPath(new URL('./testdata/', import.meta.url));
const KEY_ID_LINE = /^( +)((?:[0-9A-F]{2}:){19}[0-9A-F]{2})$/gm;

/** openssl's text without what differs per certificate: serial, validity, key, signature and key identifier bytes. */
function opensslText(pem: string, dir: string): string {
  const file = join(dir, 'cert.pem');
  writeFileSync(file, pem);
  return execFileSync('openssl', ['x509', '-in', file, '-noout', '-text', '-certopt', 'no_serial,no_validity,no_pubkey,no_sigdump'], { encoding: 'utf8' });
}

const masked = (text: string): string => text.replace(KEY_ID_LINE, '$1<20-byte key identifier>');

/** [OID, critical, value hex] per extension, key identifier bytes masked. */
function extensionBytes(pem: string): [string, boolean, string][] {
  const cert = AsnConvert.parse(new X509Certificate(pem).raw, Certificate);
  return (cert.tbsCertificate.extensions ?? []).map((e) => {
    let hex = Buffer.from(e.extnValue.buffer).toString('hex');
    if (e.extnID === '2.5.29.14') hex = hex.replace(/^0414[0-9a-f]{40}$/, '0414<20 bytes>');
    if (e.extnID === '2.5.29.35') hex = hex.replace(/^30168014[0-9a-f]{40}$/, '30168014<20 bytes>');
    return [e.extnID, e.critical, hex];
  });
}

/** The subjectPublicKey bits of a key, derived without any ASN.1 code: EC point or PKCS#1 RSAPublicKey. */
function publicKeyBits(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'rsa') return key.export({ format: 'der', type: 'pkcs1' });
  const jwk = key.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
}

/** The key identifiers openssl prints, in order (SKI first when both are present). */
const keyIdsIn = (text: string): string[] => [...text.matchAll(KEY_ID_LINE)].map((m) => (m[2] ?? '').replace(/:/g, '').toLowerCase());

describe('certificates on the wire, as before the move to @peculiar/x509', () => {
  const material = memoryMaterial();
  const authority = testAuthority({}, material);
  const leafFor = (key: KeyObject): readonly string[] => {
    const csr = verifyCsr(buildCsr(key, { names: [{ type: 'uri', value: WEB_ID }] }));
    if (!csr.ok) throw csr.error;
    const issued = authority.issueWorkload(WEB, csr.value);
    if (!issued.ok) throw issued.error;
    return issued.value.certChain;
  };
  const chain = leafFor(ecKey());
  const serving = authority.issueServing([{ type: 'dns', value: 'tsmesh-ca' }, { type: 'ip', value: '127.0.0.1' }, { type: 'ip', value: '::1' }], 3600);
  const made: Record<string, string> = {
    'ca-root': material.roots[0]?.pem ?? '',
    'ca-intermediate': chain[1] ?? '',
    'ca-workload-p256': chain[0] ?? '',
    'ca-workload-p384': leafFor(ecKey('secp384r1'))[0] ?? '',
    'ca-workload-rsa': leafFor(rsaKey(2048))[0] ?? '',
    'ca-serving': serving.certChainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? '',
  };
  const golden = JSON.parse(readFileSync(join(TESTDATA, 'extensions.json'), 'utf8')) as Record<string, unknown>;
  let dir: string;
  let cleanup: () => void;
  beforeAll(() => ({ dir, cleanup } = tempDir()));
  afterAll(() => cleanup());

  it.each(Object.keys(made))('%s reads the same in openssl x509 -text', (name) => {
    expect(masked(opensslText(made[name] ?? '', dir))).toBe(readFileSync(join(TESTDATA, `${name}.txt`), 'utf8'));
  });

  it.each(Object.keys(made))('%s has the same extensions, byte for byte', (name) => {
    expect(extensionBytes(made[name] ?? '')).toEqual(golden[name]);
  });

  it.each(Object.keys(made))('%s has a subject key identifier that is the SHA-1 of its key bits (RFC 5280 4.2.1.2)', (name) => {
    const pem = made[name] ?? '';
    const [subjectKeyId] = keyIdsIn(opensslText(pem, dir));
    expect(subjectKeyId).toBe(createHash('sha1').update(publicKeyBits(new X509Certificate(pem).publicKey)).digest('hex'));
  });

  it('links every authority key identifier to the subject key identifier of the issuer', () => {
    const [rootKeyId] = keyIdsIn(opensslText(made['ca-root'] ?? '', dir));
    const [intermediateKeyId, intermediateAuthority] = keyIdsIn(opensslText(made['ca-intermediate'] ?? '', dir));
    expect(intermediateAuthority).toBe(rootKeyId);
    for (const leaf of ['ca-workload-p256', 'ca-workload-p384', 'ca-workload-rsa', 'ca-serving']) {
      expect(keyIdsIn(opensslText(made[leaf] ?? '', dir))[1]).toBe(intermediateKeyId);
    }
  });

  it('issues workload chains that openssl verify accepts for TLS clients and servers', () => {
    writeFileSync(join(dir, 'root.pem'), made['ca-root'] ?? '');
    writeFileSync(join(dir, 'intermediate.pem'), made['ca-intermediate'] ?? '');
    for (const leaf of ['ca-workload-p256', 'ca-workload-p384', 'ca-workload-rsa']) {
      writeFileSync(join(dir, 'leaf.pem'), made[leaf] ?? '');
      for (const purpose of ['sslclient', 'sslserver']) {
        const out = execFileSync('openssl', ['verify', '-purpose', purpose, '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'intermediate.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
        expect(out.trim()).toBe(`${join(dir, 'leaf.pem')}: OK`);
      }
    }
    expect(createPublicKey(made['ca-root'] ?? '').asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });
});
