import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { generateWorkloadCsr, requestCertificate, type CertificateRequestOptions } from './client.js';
import { parseCaConfig } from './config.js';
import { startCa, type RunningCa } from './server/serve.js';
import { memoryMaterial, tempDir, WEB_ID } from './testing/fixtures.js';
import { verifyCsr } from './x509/csr.js';

const quiet = pino({ level: 'silent' });

describe('generateWorkloadCsr', () => {
  it('makes an EC P-256 key and a CSR naming only the SPIFFE ID', () => {
    const { keyPem, csrPem } = generateWorkloadCsr(WEB_ID);
    expect(createPrivateKey(keyPem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const csr = verifyCsr(csrPem);
    expect(csr.ok && csr.value.requestedNames).toEqual([{ type: 'uri', value: WEB_ID }]);
  });

  it('refuses something that is not a SPIFFE ID', () => {
    expect(() => generateWorkloadCsr('https://example.com/web')).toThrow(TypeError);
  });
});

describe('requestCertificate against the real HTTPS listener', () => {
  let dir: string;
  let cleanup: () => void;
  let ca: RunningCa;
  let base: Omit<CertificateRequestOptions, 'csrPem'>;

  beforeAll(async () => {
    ({ dir, cleanup } = tempDir());
    const tokens = join(dir, 'tokens.yaml');
    writeFileSync(tokens, '- {token: web-token, namespace: default, serviceAccount: web}\n');
    const config = parseCaConfig(['--state-dir', join(dir, 'state'), '--token-file', tokens, '--listen', '127.0.0.1:0'], {});
    ca = await startCa(config, { log: quiet, auditLog: quiet });
    base = {
      caAddr: `127.0.0.1:${ca.address.port}`,
      token: 'web-token',
      trustBundlePem: readFileSync(join(dir, 'state', 'root-cert.pem'), 'utf8'),
    };
  });
  afterAll(async () => {
    await ca.close();
    cleanup();
  });

  it('gets a certificate for its own key that chains to the trust bundle', async () => {
    const { keyPem, csrPem } = generateWorkloadCsr(WEB_ID);
    const result = await requestCertificate({ ...base, csrPem });
    if (!result.ok) throw result.error;
    const [leaf, intermediate] = result.value.certChain.map((pem) => new X509Certificate(pem));
    const root = new X509Certificate(result.value.trustBundle[0] as string);
    expect(leaf?.subjectAltName).toBe(`URI:${WEB_ID}`);
    expect(leaf?.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(leaf?.verify(intermediate!.publicKey)).toBe(true);
    expect(intermediate?.verify(root.publicKey)).toBe(true);
    expect(result.value.expiresAt.getTime()).toBe(new Date(leaf!.validTo).getTime());
  });

  it('passes the asked lifetime', async () => {
    const result = await requestCertificate({ ...base, csrPem: generateWorkloadCsr(WEB_ID).csrPem, ttlSeconds: 120 });
    expect(result.ok && Math.round((result.value.expiresAt.getTime() - Date.now()) / 1000)).toBeLessThanOrEqual(120);
  });

  it('reports a refusal with the status and the CA error code', async () => {
    const result = await requestCertificate({ ...base, csrPem: generateWorkloadCsr('spiffe://cluster.local/ns/default/sa/admin').csrPem });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('TSMESH_ERR_CA_REFUSED');
    expect(result.error.status).toBe(403);
    expect(result.error.serverCode).toBe('TSMESH_ERR_CSR_IDENTITY');
  });

  it('reports a bad token as a 401 refusal', async () => {
    const result = await requestCertificate({ ...base, token: 'nope', csrPem: generateWorkloadCsr(WEB_ID).csrPem });
    expect(!result.ok && [result.error.status, result.error.serverCode]).toEqual([401, 'TSMESH_ERR_TOKEN_INVALID']);
  });

  it('does not talk to a CA its trust bundle does not vouch for', async () => {
    const stranger = memoryMaterial().roots[0]!.pem;
    const result = await requestCertificate({ ...base, trustBundlePem: stranger, csrPem: generateWorkloadCsr(WEB_ID).csrPem });
    expect(!result.ok && result.error.code).toBe('TSMESH_ERR_CA_UNREACHABLE');
  });

  it('verifies the CA under its service name', async () => {
    const csrPem = generateWorkloadCsr(WEB_ID).csrPem;
    expect((await requestCertificate({ ...base, csrPem, servername: 'tsmesh-ca.tsmesh-system.svc' })).ok).toBe(true);
    const wrong = await requestCertificate({ ...base, csrPem, servername: 'other.example' });
    expect(!wrong.ok && wrong.error.message).toMatch(/other\.example/);
  });

  it('reports a CA that is not listening as unreachable', async () => {
    const result = await requestCertificate({ ...base, caAddr: '127.0.0.1:1', csrPem: generateWorkloadCsr(WEB_ID).csrPem });
    expect(!result.ok && result.error.code).toBe('TSMESH_ERR_CA_UNREACHABLE');
  });

  it('refuses an address that is not host:port', async () => {
    const result = await requestCertificate({ ...base, caAddr: 'tsmesh-ca', csrPem: 'x' });
    expect(!result.ok && result.error.message).toBe('CA address "tsmesh-ca" is not host:port');
  });
});
