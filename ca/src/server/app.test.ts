import { X509Certificate } from 'node:crypto';
import { basicConstraintsExtension, type SubjectAltName } from '../x509/certificate.js';
import { buildCsr } from '../x509/csr.js';
import { generateWorkloadCsr } from '../client.js';
import { CaError } from '../errors.js';
import { captureLog, ecKey, rsaKey, TableAuthenticator, testAuthority, WEB, WEB_ID } from '../testing/fixtures.js';
import { buildApp, type CaApp } from './app.js';

const AUTH = { authorization: 'Bearer web-token' };

function setup(): { app: CaApp; lines: Record<string, unknown>[] } {
  const { log, lines } = captureLog();
  const authenticator = new TableAuthenticator({
    'web-token': WEB,
    'wrong-audience': new CaError('TOKEN_AUDIENCE', 'token is not meant for audience "tsmesh-ca"'),
    'node-token': new CaError('TOKEN_IDENTITY', 'token belongs to "system:node:w1", not to a service account'),
    'expired-token': new CaError('TOKEN_INVALID', 'token expired at 2020-01-01T00:00:00.000Z'),
  });
  const app = buildApp({ authority: testAuthority({ defaultTtlSeconds: 3600, maxTtlSeconds: 7200 }), authenticator, log });
  return { app, lines };
}

function csrWith(names: SubjectAltName[], extensions: Buffer[] = []): string {
  return buildCsr(ecKey(), { names, extensions });
}

describe('POST /v1/certificates', () => {
  let app: CaApp;
  let lines: Record<string, unknown>[];
  beforeEach(() => ({ app, lines } = setup()));
  afterEach(() => app.close());

  const post = (body: unknown, headers: Record<string, string> = AUTH) =>
    app.inject({ method: 'POST', url: '/v1/certificates', headers, payload: body as object });

  const expectRefusal = async (response: Awaited<ReturnType<typeof post>>, status: number, code: string): Promise<string> => {
    expect(response.statusCode).toBe(status);
    const body = response.json<{ error: { code: string; message: string } }>();
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(0);
    return body.error.message;
  };

  it('issues a certificate chain for the token identity', async () => {
    const { csrPem } = generateWorkloadCsr(WEB_ID);
    const response = await post({ csr: csrPem });
    expect(response.statusCode).toBe(200);
    const body = response.json<{ certChain: string[]; trustBundle: string[]; expiresAt: string }>();
    expect(body.certChain).toHaveLength(2);
    expect(body.trustBundle).toHaveLength(1);
    expect(body.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const leaf = new X509Certificate(body.certChain[0] as string);
    expect(leaf.subjectAltName).toBe(`URI:${WEB_ID}`);
    expect(new Date(leaf.validTo).toISOString().replace('.000', '')).toBe(body.expiresAt);
  });

  it('issues for an RSA 2048 CSR', async () => {
    const response = await post({ csr: buildCsr(rsaKey(2048), { names: [{ type: 'uri', value: WEB_ID }] }) });
    expect(response.statusCode).toBe(200);
  });

  it('grants the asked lifetime up to the maximum', async () => {
    const lifetime = async (ttlSeconds: number): Promise<number> => {
      const body = (await post({ csr: generateWorkloadCsr(WEB_ID).csrPem, ttlSeconds })).json<{ expiresAt: string }>();
      return Math.round((Date.parse(body.expiresAt) - Date.now()) / 1000);
    };
    expect(await lifetime(600)).toBeGreaterThanOrEqual(598);
    expect(await lifetime(600)).toBeLessThanOrEqual(600);
    expect(await lifetime(99_999)).toBeLessThanOrEqual(7200);
    expect(await lifetime(99_999)).toBeGreaterThanOrEqual(7198);
  });

  it('logs one audit line per issuance with the SPIFFE ID, serial and expiry', async () => {
    const response = await post({ csr: generateWorkloadCsr(WEB_ID).csrPem });
    const leaf = new X509Certificate(response.json<{ certChain: string[] }>().certChain[0] as string);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      event: 'issued',
      spiffeId: WEB_ID,
      serial: leaf.serialNumber,
      expiresAt: response.json<{ expiresAt: string }>().expiresAt,
      key: 'EC P-256',
    });
  });

  it('logs one audit line per refusal with its code', async () => {
    await post({ csr: csrWith([{ type: 'dns', value: 'evil.example' }]) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ event: 'refused', code: 'TSMESH_ERR_CSR_IDENTITY', status: 403, spiffeId: WEB_ID });
  });

  it('refuses a request without a token with 401', async () => {
    await expectRefusal(await post({ csr: generateWorkloadCsr(WEB_ID).csrPem }, {}), 401, 'TSMESH_ERR_TOKEN_MISSING');
  });

  it('refuses an Authorization header that is not Bearer with 401', async () => {
    const response = await post({ csr: generateWorkloadCsr(WEB_ID).csrPem }, { authorization: 'Basic d2ViOnB3' });
    await expectRefusal(response, 401, 'TSMESH_ERR_TOKEN_MISSING');
  });

  it.each([
    ['an unknown token', 'guess', 'TSMESH_ERR_TOKEN_INVALID'],
    ['an expired token', 'expired-token', 'TSMESH_ERR_TOKEN_INVALID'],
    ['a token for another audience', 'wrong-audience', 'TSMESH_ERR_TOKEN_AUDIENCE'],
    ['a token that is not a service account', 'node-token', 'TSMESH_ERR_TOKEN_IDENTITY'],
  ])('refuses %s with 401', async (_what, token, code) => {
    await expectRefusal(await post({ csr: generateWorkloadCsr(WEB_ID).csrPem }, { authorization: `Bearer ${token}` }), 401, code);
  });

  it('checks the token before looking at the body', async () => {
    await expectRefusal(await post({ csr: 'junk' }, { authorization: 'Bearer guess' }), 401, 'TSMESH_ERR_TOKEN_INVALID');
  });

  it('refuses a CSR for another identity with 403 and a reason', async () => {
    const response = await post({ csr: generateWorkloadCsr('spiffe://cluster.local/ns/kube-system/sa/admin').csrPem });
    const message = await expectRefusal(response, 403, 'TSMESH_ERR_CSR_IDENTITY');
    expect(message).toContain('spiffe://cluster.local/ns/kube-system/sa/admin');
  });

  it.each<[string, SubjectAltName]>([
    ['DNS name', { type: 'dns', value: 'web.default.svc' }],
    ['IP address', { type: 'ip', value: '10.1.2.3' }],
    ['email address', { type: 'email', value: 'a@b.c' }],
  ])('refuses a CSR with an extra %s with 403', async (_what, extra) => {
    await expectRefusal(await post({ csr: csrWith([{ type: 'uri', value: WEB_ID }, extra]) }), 403, 'TSMESH_ERR_CSR_IDENTITY');
  });

  it('refuses a CSR asking for CA rights with 403', async () => {
    const csr = csrWith([{ type: 'uri', value: WEB_ID }], [basicConstraintsExtension(true)]);
    await expectRefusal(await post({ csr }), 403, 'TSMESH_ERR_CSR_CA');
  });

  it('refuses a CSR whose signature does not verify with 400', async () => {
    const pem = generateWorkloadCsr(WEB_ID).csrPem;
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await expectRefusal(await post({ csr: tampered }), 400, 'TSMESH_ERR_CSR_SIGNATURE');
  });

  it('refuses a weak RSA key with 400', async () => {
    await expectRefusal(await post({ csr: buildCsr(rsaKey(1024)) }), 400, 'TSMESH_ERR_CSR_KEY');
  });

  it('refuses an EC curve other than P-256/P-384 with 400', async () => {
    await expectRefusal(await post({ csr: buildCsr(ecKey('secp521r1')) }), 400, 'TSMESH_ERR_CSR_KEY');
  });

  it('refuses junk instead of PEM with 400', async () => {
    await expectRefusal(await post({ csr: 'definitely not a CSR' }), 400, 'TSMESH_ERR_CSR_MALFORMED');
  });

  it.each([
    ['a body without csr', { ttlSeconds: 60 }],
    ['a csr that is not a string', { csr: 42 }],
    ['a negative ttlSeconds', { csr: 'x', ttlSeconds: -1 }],
    ['a fractional ttlSeconds', { csr: 'x', ttlSeconds: 1.5 }],
    ['a ttlSeconds given as text', { csr: 'x', ttlSeconds: '60' }],
    ['a JSON array', ['csr']],
  ])('refuses %s with 400', async (_what, body) => {
    await expectRefusal(await post(body), 400, 'TSMESH_ERR_BAD_REQUEST');
  });

  it('refuses a body that is not JSON with 400', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/certificates',
      headers: { ...AUTH, 'content-type': 'application/json' },
      payload: '{"csr": ',
    });
    await expectRefusal(response, 400, 'TSMESH_ERR_BAD_REQUEST');
    expect(lines).toHaveLength(1);
  });

  it('refuses a body over 16 KiB with 413', async () => {
    const response = await post({ csr: 'A'.repeat(17 * 1024) });
    await expectRefusal(response, 413, 'TSMESH_ERR_BODY_TOO_LARGE');
    expect(lines[0]).toMatchObject({ event: 'refused', code: 'TSMESH_ERR_BODY_TOO_LARGE' });
  });

  it('refuses a body that is not JSON by media type with 415', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/certificates',
      headers: { ...AUTH, 'content-type': 'application/x-pem-file' },
      payload: generateWorkloadCsr(WEB_ID).csrPem,
    });
    await expectRefusal(response, 415, 'TSMESH_ERR_UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('the other routes', () => {
  let app: CaApp;
  beforeEach(() => ({ app } = setup()));
  afterEach(() => app.close());

  it('serves the trust bundle without a token', async () => {
    const response = await app.inject({ method: 'GET', url: '/v1/trust-bundle' });
    expect(response.statusCode).toBe(200);
    const { trustBundle } = response.json<{ trustBundle: string[] }>();
    expect(new X509Certificate(trustBundle[0] as string).ca).toBe(true);
  });

  it('answers the health check', async () => {
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect([response.statusCode, response.json()]).toEqual([200, { status: 'ok' }]);
  });

  it('answers an unknown route with a JSON 404', async () => {
    const response = await app.inject({ method: 'GET', url: '/v1/secrets?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ error: { code: 'TSMESH_ERR_NOT_FOUND', message: 'no route GET /v1/secrets' } });
  });
});
