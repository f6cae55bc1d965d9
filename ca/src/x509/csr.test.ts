import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toPem } from './pem.js';
import { basicConstraintsExtension, KEY_USAGE, keyUsageExtension } from './certificate.js';
import { buildCsr, verifyCsr } from './csr.js';
import { ecKey, rsaKey, tempDir, WEB_ID } from '../testing/fixtures.js';

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}

function derToPem(der: Buffer): string {
  return toPem(der, 'CERTIFICATE REQUEST');
}

function refusal(pem: string): { code: string; message: string } {
  const result = verifyCsr(pem);
  if (result.ok) throw new Error('expected the CSR to be refused');
  return { code: result.error.code, message: result.error.message };
}

describe('verifyCsr', () => {
  it('accepts an EC P-256 CSR and reads its requested SPIFFE ID', () => {
    const result = verifyCsr(buildCsr(ecKey(), { names: [{ type: 'uri', value: WEB_ID }] }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.keyDescription).toBe('EC P-256');
    expect(result.value.requestedNames).toEqual([{ type: 'uri', value: WEB_ID }]);
    expect(result.value.requestsCa).toBe(false);
  });

  it('accepts an EC P-384 CSR', () => {
    const result = verifyCsr(buildCsr(ecKey('secp384r1')));
    expect(result.ok && result.value.keyDescription).toBe('EC P-384');
  });

  it('accepts an RSA 2048 CSR made by another implementation (openssl req)', () => {
    const { dir, cleanup } = tempDir();
    let pem: string;
    try {
      writeFileSync(join(dir, 'key.pem'), rsaKey(2048).export({ format: 'pem', type: 'pkcs8' }));
      pem = execFileSync('openssl', ['req', '-new', '-key', join(dir, 'key.pem'), '-subj', '/CN=web', '-addext', `subjectAltName=URI:${WEB_ID}`], { encoding: 'utf8' });
    } finally {
      cleanup();
    }
    const result = verifyCsr(pem);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.keyDescription).toBe('RSA 2048');
    expect(result.value.requestedNames).toEqual([{ type: 'uri', value: WEB_ID }]);
  });

  it('refuses an RSA key under 2048 bits', () => {
    const { code, message } = refusal(buildCsr(rsaKey(1024)));
    expect(code).toBe('TSMESH_ERR_CSR_KEY');
    expect(message).toMatch(/1024 bits is too weak/);
  });

  it.each([['secp256k1'], ['secp521r1']])('refuses the EC curve %s', (curve) => {
    const { code, message } = refusal(buildCsr(ecKey(curve)));
    expect(code).toBe('TSMESH_ERR_CSR_KEY');
    expect(message).toContain(curve);
  });

  it('refuses an Ed25519 key', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    expect(refusal(buildCsr(privateKey)).code).toBe('TSMESH_ERR_CSR_KEY');
  });

  it('refuses a CSR whose content was changed after signing', () => {
    const der = pemToDer(buildCsr(ecKey(), { names: [{ type: 'uri', value: WEB_ID }] }));
    const at = der.indexOf(Buffer.from('/sa/web'));
    der[at + 6] = 'x'.charCodeAt(0);
    const { code, message } = refusal(derToPem(der));
    expect(code).toBe('TSMESH_ERR_CSR_SIGNATURE');
    expect(message).toMatch(/does not verify/);
  });

  it('refuses a CSR whose signature algorithm was swapped', () => {
    const der = pemToDer(buildCsr(ecKey()));
    const sha256 = Buffer.from('06082a8648ce3d040302', 'hex');
    const at = der.lastIndexOf(sha256);
    der[at + sha256.length - 1] = 0x03; // ecdsa-with-SHA384
    expect(refusal(derToPem(der)).code).toBe('TSMESH_ERR_CSR_SIGNATURE');
  });

  it('refuses a signature algorithm that does not fit the key', () => {
    const der = pemToDer(buildCsr(ecKey()));
    const ecdsa = Buffer.from('06082a8648ce3d040302', 'hex');
    const rsa = Buffer.from('06092a864886f70d01010b', 'hex');
    const at = der.lastIndexOf(ecdsa);
    // The AlgorithmIdentifier SEQUENCE grows by one byte: patch its length and the outer length.
    const patched = Buffer.concat([der.subarray(0, at - 2), Buffer.from([0x30, rsa.length]), rsa, der.subarray(at + ecdsa.length)]);
    patched[2] = (patched[2] ?? 0) + 1;
    const { code, message } = refusal(derToPem(patched));
    expect(code).toBe('TSMESH_ERR_CSR_SIGNATURE');
    expect(message).toMatch(/does not match/);
  });

  it.each([
    ['plain text', 'hello, CA'],
    ['an empty string', ''],
    ['a PEM block of garbage', '-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n'],
    ['a truncated CSR', derToPem(pemToDer(buildCsr(ecKey())).subarray(0, 60))],
  ])('refuses %s as malformed', (_what, pem) => {
    expect(refusal(pem).code).toBe('TSMESH_ERR_CSR_MALFORMED');
  });

  it('refuses a PEM block that is not a certificate request', () => {
    const pem = toPem(pemToDer(buildCsr(ecKey())), 'CERTIFICATE');
    const { code, message } = refusal(pem);
    expect(code).toBe('TSMESH_ERR_CSR_MALFORMED');
    expect(message).toContain('found CERTIFICATE');
  });

  it('refuses two CSRs in one PEM text', () => {
    const one = buildCsr(ecKey());
    expect(refusal(one + one).message).toMatch(/exactly one PEM block, found 2/);
  });

  it('reads every kind of requested subject alternative name', () => {
    const result = verifyCsr(
      buildCsr(ecKey(), {
        names: [
          { type: 'uri', value: WEB_ID },
          { type: 'dns', value: 'web.default.svc' },
          { type: 'ip', value: '10.0.0.7' },
          { type: 'ip', value: 'fd00::1' },
          { type: 'email', value: 'web@example.com' },
        ],
      }),
    );
    expect(result.ok && result.value.requestedNames).toEqual([
      { type: 'uri', value: WEB_ID },
      { type: 'dns', value: 'web.default.svc' },
      { type: 'ip', value: '10.0.0.7' },
      { type: 'ip', value: 'fd00::1' },
      { type: 'email', value: 'web@example.com' },
    ]);
  });

  it('notices a request for basicConstraints cA:true', () => {
    const result = verifyCsr(buildCsr(ecKey(), { extensions: [basicConstraintsExtension(true)] }));
    expect(result.ok && result.value.requestsCa).toBe(true);
  });

  it('notices a request for the keyCertSign key usage', () => {
    const result = verifyCsr(buildCsr(ecKey(), { extensions: [keyUsageExtension([KEY_USAGE.keyCertSign])] }));
    expect(result.ok && result.value.requestsCa).toBe(true);
  });

  it('does not treat basicConstraints cA:false as a CA request', () => {
    const result = verifyCsr(buildCsr(ecKey(), { extensions: [basicConstraintsExtension(false)] }));
    expect(result.ok && result.value.requestsCa).toBe(false);
  });
});
