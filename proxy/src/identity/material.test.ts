import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { generateWorkloadCsr, parseCaConfig, startCa, verifyCsr, type RunningCa } from '@tsmesh/ca';
import { IDENTITY_ERRORS } from '../errors.js';
import { buildMaterial, splitPemCertificates, unionRoots, type MaterialInput } from './material.js';
import { opensslCertificate } from './testing/certs.js';

const WEB_ID = 'spiffe://cluster.local/ns/shop/sa/web';
const quiet = pino({ level: 'silent' });

let dir: string;
let ca: RunningCa;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsmesh-identity-material-'));
  writeFileSync(join(dir, 'tokens.yaml'), '- {token: t, namespace: shop, serviceAccount: web}\n');
  const config = parseCaConfig(['--state-dir', join(dir, 'state'), '--token-file', join(dir, 'tokens.yaml'), '--listen', '127.0.0.1:0'], {});
  ca = await startCa(config, { log: quiet, auditLog: quiet });
});
afterAll(async () => {
  await ca.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the real CA issues for `serviceAccount`, as buildMaterial's input for WEB_ID with `keyPem` (default: the CSR's key). */
function issued(options: { serviceAccount?: string; keyPem?: string } = {}): MaterialInput {
  const csr = generateWorkloadCsr(`spiffe://cluster.local/ns/shop/sa/${options.serviceAccount ?? 'web'}`);
  const verified = verifyCsr(csr.csrPem);
  if (!verified.ok) throw verified.error;
  const cert = ca.authority.issueWorkload({ namespace: 'shop', serviceAccount: options.serviceAccount ?? 'web' }, verified.value, 3600);
  if (!cert.ok) throw cert.error;
  return {
    spiffeId: WEB_ID,
    trustDomain: 'cluster.local',
    keyPem: options.keyPem ?? csr.keyPem,
    certChainPem: cert.value.certChain,
    answerBundlePem: cert.value.trustBundle,
    fileRoots: splitPemCertificates(ca.trustBundlePem) ?? [],
    issuedAt: new Date(),
    now: new Date(),
  };
}

describe('buildMaterial', () => {
  it('accepts a chain for our identity and key that leads to a trusted root', () => {
    const input = issued();
    const result = buildMaterial(input);
    if (!result.ok) throw result.error;
    expect(result.value.spiffeId).toBe(WEB_ID);
    expect(result.value.certChainPem).toHaveLength(input.certChainPem.length);
    expect(result.value.trustBundlePem).toHaveLength(1);
    expect(result.value.expiresAt.getTime()).toBe(new Date(result.value.leaf.validTo).getTime());
  });

  it.each([
    ['a certificate for another identity', () => issued({ serviceAccount: 'api' }), /names spiffe:\/\/cluster.local\/ns\/shop\/sa\/api/],
    ['a certificate for another key', () => issued({ keyPem: generateWorkloadCsr(WEB_ID).keyPem }), /key/],
    ['an expired certificate', () => ({ ...issued(), now: new Date(Date.now() + 2 * 3600_000) }), /expired/],
    [
      'a chain to a root in neither bundle',
      () => ({ ...issued(), answerBundlePem: [opensslCertificate({ ca: true }).pem], fileRoots: [] }),
      /does not lead to a root/,
    ],
    [
      'a chain with a missing link',
      () => {
        const input = issued();
        return { ...input, certChainPem: [input.certChainPem[0]!, opensslCertificate({ ca: true }).pem] };
      },
      /not signed/,
    ],
    ['an empty chain', () => ({ ...issued(), certChainPem: [] }), /empty/],
  ])('refuses %s', (_what, make, reason) => {
    const result = buildMaterial(make());
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(IDENTITY_ERRORS.IDENTITY_CERTIFICATE);
    expect(result.error.message).toMatch(reason);
  });

  it('anchors on a root that only the trust bundle file has', () => {
    const input = issued();
    const result = buildMaterial({ ...input, answerBundlePem: [opensslCertificate({ ca: true }).pem] });
    expect(result.ok && result.value.trustBundlePem).toHaveLength(2);
  });
});

describe('unionRoots', () => {
  it('keeps the first of each certificate, by fingerprint', () => {
    const a = opensslCertificate({ ca: true }).cert;
    const b = opensslCertificate({ ca: true }).cert;
    const union = unionRoots([a, b], [new X509Certificate(a.raw), b]);
    expect(union.map((c) => c.fingerprint256)).toEqual([a.fingerprint256, b.fingerprint256]);
  });
});

describe('splitPemCertificates', () => {
  it('reads every block and ignores text around them', () => {
    const a = opensslCertificate({}).pem;
    const b = opensslCertificate({}).pem;
    expect(splitPemCertificates(`# roots\n${a}\nnoise\n${b}`)).toHaveLength(2);
    expect(splitPemCertificates('nothing')).toEqual([]);
  });

  it('gives up on a block that does not parse', () => {
    expect(splitPemCertificates('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')).toBeUndefined();
  });
});
