import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { readFileSync } from 'node:fs';
import { injectorConfig } from './config.js';
import { startInjector, type RunningInjector } from './server.js';
import { staticNamespaceLabels } from './namespaces.js';
import { loadReview } from './testdata/fixtures.js';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A self-signed certificate for 127.0.0.1 with the given common name. */
function makeCertificate(dir: string, commonName: string): void {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')],
    { stdio: 'ignore' },
  );
}

function port(address: string): number {
  return Number(new URL(address).port);
}

function post(at: number, ca: Buffer, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: at, path: '/inject', method: 'POST', ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function servedCommonName(at: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: at, rejectUnauthorized: false }, () => {
      const certificate: PeerCertificate = socket.getPeerCertificate();
      socket.end();
      resolve(String(certificate.subject.CN));
    });
    socket.on('error', reject);
  });
}

const maybe = hasOpenssl() ? describe : describe.skip;

maybe('startInjector', () => {
  let dir: string;
  let injector: RunningInjector | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-injector-'));
    makeCertificate(dir, 'first');
  });
  afterEach(async () => {
    await injector?.close();
    injector = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const config = () =>
    injectorConfig(
      ['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--listen', '127.0.0.1:0', '--native-sidecars', 'false', '--log-level', 'silent'],
      {},
    );

  it('answers AdmissionReviews over HTTPS', async () => {
    injector = await startInjector(config(), { namespaceLabels: staticNamespaceLabels({}, { 'tsmesh-injection': 'enabled' }) });
    const answer = await post(port(injector.address), readFileSync(join(dir, 'tls.crt')), JSON.stringify(loadReview('review-bare-pod')));
    expect(answer.status).toBe(200);
    const review = JSON.parse(answer.text) as { response: { allowed: boolean; patchType: string } };
    expect(review.response.allowed).toBe(true);
    expect(review.response.patchType).toBe('JSONPatch');
  });

  it('serves a rotated certificate without a restart', async () => {
    injector = await startInjector(config(), {
      namespaceLabels: staticNamespaceLabels({}, {}),
      tlsReloadIntervalMs: 20,
    });
    const at = port(injector.address);
    expect(await servedCommonName(at)).toBe('first');
    makeCertificate(dir, 'second');
    let served = 'first';
    for (let attempt = 0; attempt < 100 && served !== 'second'; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      served = await servedCommonName(at);
    }
    expect(served).toBe('second');
  });

  it('refuses to start without readable TLS files, naming them', async () => {
    rmSync(join(dir, 'tls.key'));
    await expect(startInjector(config(), { namespaceLabels: staticNamespaceLabels({}) })).rejects.toThrow(
      /^cannot read the webhook's TLS files \(.*tls\.crt, .*tls\.key\)/,
    );
  });
});
