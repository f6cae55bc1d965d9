// One test per attack a caller of the CA can try with its CSR. Each asserts the refusal (or that
// the attack gains nothing), so it fails on an implementation that lets the attack through.
import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { GeneralName, GeneralNames, id_ce_subjectAltName, Name } from '@peculiar/asn1-x509';
import { captureLog, ecKey, TableAuthenticator, tempDir, testAuthority, WEB, WEB_ID } from '../testing/fixtures.js';
import { craftCsr, tlv } from '../testing/csr-craft.js';
import { buildApp, type CaApp } from '../server/app.js';
import { encodeExtension, subjectAltNameExtension } from './names.js';
import { verifyCsr } from './csr.js';
import { toPem } from './pem.js';

const ADMIN_ID = 'spiffe://cluster.local/ns/default/sa/admin';
const sanFor = (value: string): Buffer => subjectAltNameExtension([{ type: 'uri', value }]);

function refusal(pem: string): { code: string; message: string } {
  const result = verifyCsr(pem);
  if (result.ok) throw new Error('expected the CSR to be refused');
  return { code: result.error.code, message: result.error.message };
}

describe('a CSR asking for an identity the token does not give', () => {
  let app: CaApp;
  beforeEach(() => {
    app = buildApp({ authority: testAuthority(), authenticator: new TableAuthenticator({ 'web-token': WEB }), log: captureLog().log });
  });
  afterEach(() => app.close());
  const post = (csr: string) => app.inject({ method: 'POST', url: '/v1/certificates', headers: { authorization: 'Bearer web-token' }, payload: { csr } });

  it('is refused when the other identity hides in a second extensionRequest attribute', async () => {
    const response = await post(craftCsr({ key: ecKey(), extensionRequests: [[sanFor(WEB_ID)], [sanFor(ADMIN_ID)]] }));
    expect(response.statusCode).toBe(403);
    expect(response.json<{ error: { code: string; message: string } }>().error).toEqual({
      code: 'TSMESH_ERR_CSR_IDENTITY',
      message: expect.stringContaining(ADMIN_ID) as unknown as string,
    });
  });

  it('is refused when it asks for a name kind the CA never issues (otherName, directoryName)', async () => {
    const names = new GeneralNames([
      new GeneralName({ uniformResourceIdentifier: WEB_ID }),
      new GeneralName({ directoryName: AsnConvert.parse(AsnConvert.serialize(new Name()), Name) }),
    ]);
    const response = await post(craftCsr({ key: ecKey(), extensionRequests: [[encodeExtension(id_ce_subjectAltName, false, AsnConvert.serialize(names))]] }));
    expect(response.statusCode).toBe(403);
    expect(response.json<{ error: { code: string } }>().error.code).toBe('TSMESH_ERR_CSR_IDENTITY');
  });

  it('gains nothing by writing the identity into the subject: the certificate names only the token identity', async () => {
    const response = await post(craftCsr({ key: ecKey(), subject: [{ type: 'CN', value: ADMIN_ID }, { type: 'O', value: 'system:masters' }] }));
    expect(response.statusCode).toBe(200);
    const leaf = new X509Certificate(response.json<{ certChain: string[] }>().certChain[0] ?? '');
    expect(leaf.subject).toBe('O=tsmesh');
    expect(leaf.subjectAltName).toBe(`URI:${WEB_ID}`);
  });
});

describe('a CSR whose signature is not its key\'s', () => {
  it('is refused when it carries another party\'s public key (key substitution)', () => {
    const victim = createPublicKey(ecKey()).export({ format: 'der', type: 'spki' });
    const { code, message } = refusal(craftCsr({ key: ecKey(), spkiDer: victim }));
    expect(code).toBe('TSMESH_ERR_CSR_SIGNATURE');
    expect(message).toMatch(/does not verify with its own public key/);
  });

  it('is refused when the signature is random bytes of the right shape', () => {
    const der = Buffer.from(craftCsr({ key: ecKey() }).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    // The last 64+ bytes are the ECDSA-Sig-Value's integers: scramble them, keep the DER shape.
    const scrambled = Buffer.concat([der.subarray(0, der.length - 20), randomBytes(20)]);
    expect(refusal(toPem(scrambled, 'CERTIFICATE REQUEST')).code).toBe('TSMESH_ERR_CSR_SIGNATURE');
  });
});

describe('a CSR with a key the mesh does not certify', () => {
  it('is refused for a DSA key', () => {
    const { publicKey } = generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 224 });
    const { code, message } = refusal(craftCsr({ key: ecKey(), spkiDer: publicKey.export({ format: 'der', type: 'spki' }) }));
    expect(code).toBe('TSMESH_ERR_CSR_KEY');
    expect(message).toMatch(/dsa keys are not accepted/);
  });

  it('is refused for an X25519 key (not a signing key)', () => {
    const { publicKey } = generateKeyPairSync('x25519');
    expect(refusal(craftCsr({ key: ecKey(), spkiDer: publicKey.export({ format: 'der', type: 'spki' }) })).code).toBe('TSMESH_ERR_CSR_KEY');
  });

  it('is refused for a P-256 key given with explicit curve parameters (RFC 5480 2.1.1)', () => {
    const { dir, cleanup } = tempDir();
    try {
      execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout', '-out', join(dir, 'key.pem')]);
      execFileSync('openssl', ['pkey', '-in', join(dir, 'key.pem'), '-pubout', '-outform', 'DER', '-out', join(dir, 'spki.der')]);
      const { code, message } = refusal(craftCsr({ key: ecKey(), spkiDer: readFileSync(join(dir, 'spki.der')) }));
      expect(code).toBe('TSMESH_ERR_CSR_KEY');
      expect(message).toMatch(/explicit parameters/);
    } finally {
      cleanup();
    }
  });

  it('is refused for an RSA modulus larger than 8192 bits (verification cost)', () => {
    const modulus = randomBytes(2048);
    modulus[0] = (modulus[0] ?? 0) | 0x80;
    modulus[modulus.length - 1] = (modulus[modulus.length - 1] ?? 0) | 1;
    const huge = createPublicKey({ key: { kty: 'RSA', n: modulus.toString('base64url'), e: 'AQAB' }, format: 'jwk' });
    const { code, message } = refusal(craftCsr({ key: ecKey(), spkiDer: huge.export({ format: 'der', type: 'spki' }) }));
    expect(code).toBe('TSMESH_ERR_CSR_KEY');
    expect(message).toMatch(/16384 bits is larger than the 8192 accepted/);
  });
});

describe('a CSR built to exhaust the parser', () => {
  it('is refused when nested thousands of levels deep, without exhausting the stack', () => {
    let nested: Buffer = Buffer.from([0x05, 0x00]);
    for (let i = 0; i < 3000; i++) nested = tlv(0x30, nested);
    const { code } = refusal(toPem(nested, 'CERTIFICATE REQUEST'));
    expect(code).toBe('TSMESH_ERR_CSR_MALFORMED');
  });

  it('is refused when a length claims gigabytes the input does not have', () => {
    const der = Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xf0, 0x02, 0x01, 0x00]);
    expect(refusal(toPem(der, 'CERTIFICATE REQUEST')).code).toBe('TSMESH_ERR_CSR_MALFORMED');
  });

  it('is refused when it carries thousands of requested extensions', () => {
    const many = Array.from({ length: 2000 }, (_, i) => encodeExtension(`1.3.6.1.4.1.99999.${i}`, false, AsnConvert.serialize(new OctetString(new Uint8Array(1)))));
    expect(refusal(craftCsr({ key: ecKey(), extensionRequests: [many] })).code).toBe('TSMESH_ERR_CSR_MALFORMED');
  });
});
