// Properties of CSR handling on hostile input: whatever bytes arrive, verifyCsr and the
// POST /v1/certificates handler answer with a clear refusal (or, for an intact request, a
// certificate for the signer's own key), never with an exception or a 500.
import fc from 'fast-check';
import { ecKey, TableAuthenticator, testAuthority, WEB, WEB_ID } from '../testing/fixtures.js';
import { craftCsrDer } from '../testing/csr-craft.js';
import { buildApp } from '../server/app.js';
import { subjectAltNameExtension } from './names.js';
import { verifyCsr } from './csr.js';
import { toPem } from './pem.js';

const CSR_CODES = ['TSMESH_ERR_CSR_MALFORMED', 'TSMESH_ERR_CSR_KEY', 'TSMESH_ERR_CSR_SIGNATURE'];
const key = ecKey();
const valid = craftCsrDer({ key, extensionRequests: [[subjectAltNameExtension([{ type: 'uri', value: WEB_ID }])]] });
const validSpki = verifyCsr(toPem(valid, 'CERTIFICATE REQUEST'));
if (!validSpki.ok) throw validSpki.error;

/** A CSR's DER changed by one of: overwritten bytes, a cut, inserted bytes, a removed run. */
const mutatedDer = fc.oneof(
  fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((edits) => {
    const copy = Buffer.from(valid);
    for (const [at, byte] of edits) copy[at] = byte;
    return copy;
  }),
  fc.nat(valid.length - 1).map((end) => valid.subarray(0, end)),
  fc.tuple(fc.nat(valid.length), fc.uint8Array({ minLength: 1, maxLength: 40 })).map(([at, bytes]) =>
    Buffer.concat([valid.subarray(0, at), Buffer.from(bytes), valid.subarray(at)]),
  ),
  fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 30 })).map(([at, count]) => Buffer.concat([valid.subarray(0, at), valid.subarray(at + count)])),
);

describe('verifyCsr on mutated DER', () => {
  it('never throws, and refuses with a CSR error code and a message, or certifies only the signer\'s key', () => {
    fc.assert(
      fc.property(mutatedDer, (der) => {
        const result = verifyCsr(toPem(der, 'CERTIFICATE REQUEST'));
        if (result.ok) {
          expect(result.value.spkiDer).toEqual(validSpki.value.spkiDer);
          return;
        }
        expect(CSR_CODES).toContain(result.error.code);
        expect(result.error.message.length).toBeGreaterThan(10);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on arbitrary bytes or arbitrary text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }).map((b) => toPem(b, 'CERTIFICATE REQUEST')), fc.string({ maxLength: 600 })), (pem) => {
        const result = verifyCsr(pem);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(CSR_CODES).toContain(result.error.code);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('POST /v1/certificates with mutated CSRs', () => {
  const app = buildApp({
    authority: testAuthority(),
    authenticator: new TableAuthenticator({ 'web-token': WEB }),
    log: { info: () => undefined, warn: () => undefined, error: () => undefined } as never,
  });
  afterAll(() => app.close());

  it('answers 200 or a 4xx with a JSON error naming a CSR code, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedDer, async (der) => {
        const response = await app.inject({
          method: 'POST',
          url: '/v1/certificates',
          headers: { authorization: 'Bearer web-token' },
          payload: { csr: toPem(der, 'CERTIFICATE REQUEST') },
        });
        if (response.statusCode === 200) return;
        expect(response.statusCode).toBeGreaterThanOrEqual(400);
        expect(response.statusCode).toBeLessThan(500);
        const body = response.json<{ error: { code: string; message: string } }>();
        expect([...CSR_CODES, 'TSMESH_ERR_CSR_IDENTITY', 'TSMESH_ERR_CSR_CA']).toContain(body.error.code);
        expect(body.error.message.length).toBeGreaterThan(10);
      }),
      { numRuns: 300 },
    );
  });
});
