import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { pino } from 'pino';
import { generateWorkloadCsr, requestCertificate } from '../client.js';
import { parseCaConfig } from '../config.js';
import { tempDir, WEB_ID } from '../testing/fixtures.js';
import { CA_METRIC_NAMES } from './metrics.js';
import { startCa, type RunningCa } from './serve.js';

const quiet = { log: pino({ level: 'silent' }), auditLog: pino({ level: 'silent' }) };

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

function scrape(ca: RunningCa): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: ca.address.port, path: '/metrics', ca: ca.trustBundlePem, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('the CA /metrics, scraped from a running CA', () => {
  let cleanup: () => void;
  let ca: RunningCa;

  beforeEach(async () => {
    let dir: string;
    ({ dir, cleanup } = tempDir());
    const tokens = join(dir, 'tokens.yaml');
    writeFileSync(tokens, '- {token: t, namespace: default, serviceAccount: web}\n');
    ca = await startCa(parseCaConfig(['--state-dir', join(dir, 'state'), '--token-file', tokens, '--listen', '127.0.0.1:0'], {}), quiet);
  });
  afterEach(async () => {
    await ca.close();
    cleanup();
  });

  const ask = (token: string, spiffeId = WEB_ID) =>
    requestCertificate({ caAddr: `127.0.0.1:${ca.address.port}`, token, trustBundlePem: ca.trustBundlePem, csrPem: generateWorkloadCsr(spiffeId).csrPem, servername: 'localhost' });

  it('counts a certificate signed, with its signing time, and reports the root expiry', async () => {
    const before = await scrape(ca);
    expect(before.status).toBe(200);
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(before.body, 'tsmesh_build_info', { component: 'ca' })).toBe(1);
    expect(sample(before.body, CA_METRIC_NAMES.certificates, { result: 'issued' })).toBeUndefined();

    expect((await ask('t')).ok).toBe(true);
    const after = (await scrape(ca)).body;
    expect(sample(after, CA_METRIC_NAMES.certificates, { result: 'issued' })).toBe(1);
    expect(sample(after, `${CA_METRIC_NAMES.signDuration}_count`)).toBe(1);
    const root = new X509Certificate(ca.trustBundlePem);
    const left = sample(after, CA_METRIC_NAMES.rootExpiry, { serial: root.serialNumber }) ?? 0;
    const expected = (new Date(root.validTo).getTime() - Date.now()) / 1000;
    expect(Math.abs(left - expected)).toBeLessThan(60);
  });

  it('counts refusals by reason: a bad token, a CSR for another identity', async () => {
    expect((await ask('nope')).ok).toBe(false);
    expect((await ask('t', 'spiffe://cluster.local/ns/default/sa/admin')).ok).toBe(false);
    const text = (await scrape(ca)).body;
    expect(sample(text, CA_METRIC_NAMES.certificates, { result: 'refused' })).toBe(2);
    expect(sample(text, CA_METRIC_NAMES.csrRejections, { reason: 'TSMESH_ERR_TOKEN_INVALID' })).toBe(1);
    expect(sample(text, CA_METRIC_NAMES.csrRejections, { reason: 'TSMESH_ERR_CSR_IDENTITY' })).toBe(1);
    expect(sample(text, CA_METRIC_NAMES.certificates, { result: 'issued' })).toBeUndefined();
  });
});
