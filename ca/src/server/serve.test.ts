import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { pino } from 'pino';
import { parseCaConfig } from '../config.js';
import { loadSigningMaterial } from '../authority/load.js';
import { generateWorkloadCsr } from '../client.js';
import { generateRoot, privateKeyPem, type CaKeyPair } from '../authority/material.js';
import { captureLog, testAuthority, tempDir, WEB } from '../testing/fixtures.js';
import { verifyCsr } from '../x509/csr.js';
import { authenticatorFor, refreshMaterial, startCa } from './serve.js';

const quiet = { log: pino({ level: 'silent' }), auditLog: pino({ level: 'silent' }) };

describe('startCa', () => {
  let dir: string;
  let cleanup: () => void;
  let tokens: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    tokens = join(dir, 'tokens.yaml');
    writeFileSync(tokens, '- {token: t, namespace: default, serviceAccount: web}\n');
  });
  afterEach(() => cleanup());

  const config = (...extra: string[]) =>
    parseCaConfig(['--state-dir', join(dir, 'state'), '--token-file', tokens, '--listen', '127.0.0.1:0', ...extra], {});

  it('keeps the same root across a restart', async () => {
    const first = await startCa(config(), quiet);
    const bundle = first.trustBundlePem;
    await first.close();
    const second = await startCa(config(), quiet);
    try {
      expect(second.trustBundlePem).toBe(bundle);
      expect(readFileSync(join(dir, 'state', 'root-cert.pem'), 'utf8')).toBe(bundle);
    } finally {
      await second.close();
    }
  });

  it('serves HTTPS with a certificate for its service names, chained to the trust bundle', async () => {
    const ca = await startCa(config('--serving-san', 'ca.mesh.example'), quiet);
    try {
      const socket = tls.connect({ host: '127.0.0.1', port: ca.address.port, ca: ca.trustBundlePem, servername: 'tsmesh-ca.tsmesh-system.svc' });
      await once(socket, 'secureConnect');
      const peer = socket.getPeerX509Certificate() as X509Certificate;
      socket.destroy();
      expect(peer.subjectAltName).toBe(
        'DNS:tsmesh-ca, DNS:tsmesh-ca.tsmesh-system.svc, DNS:localhost, IP Address:127.0.0.1, DNS:ca.mesh.example',
      );
      expect(peer.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
      const health = await fetchHealth(ca.address.port, ca.trustBundlePem);
      expect(health).toBe('{"status":"ok"}');
    } finally {
      await ca.close();
    }
  });

  it('fails on a bad token file before writing anything to the state directory', async () => {
    writeFileSync(tokens, 'not: [a list');
    await expect(startCa(config(), quiet)).rejects.toThrow(/token file/);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });
});

describe('startCa with an operator root, rotated in its files while it runs', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  /** The TLS handshake with the CA's serving certificate, trusting only `roots`. */
  async function handshake(port: number, roots: string): Promise<'ok' | string> {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: roots, servername: 'tsmesh-ca' });
    socket.on('error', () => undefined);
    try {
      await Promise.race([once(socket, 'secureConnect'), once(socket, 'error').then(([e]) => Promise.reject(e as Error))]);
      return 'ok';
    } catch (error) {
      return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    } finally {
      socket.destroy();
    }
  }

  it('takes each step of A → A+B → B from the files without a restart: bundle, signer and serving certificate', async () => {
    const now = new Date();
    const a = generateRoot(now);
    const b = generateRoot(now);
    const rootFile = join(dir, 'root-cert.pem');
    const keyFile = join(dir, 'root-key.pem');
    const tokens = join(dir, 'tokens.yaml');
    writeFileSync(tokens, '- {token: t, namespace: default, serviceAccount: web}\n');
    writeFileSync(rootFile, a.pem);
    writeFileSync(keyFile, privateKeyPem(a.key));
    const { log, lines } = captureLog();
    const config = parseCaConfig(['--root-cert', rootFile, '--root-key', keyFile, '--state-dir', join(dir, 'state'), '--token-file', tokens, '--listen', '127.0.0.1:0'], {});
    const ca = await startCa(config, { ...quiet, log, materialPollMs: 20 });
    const signedBy = (root: CaKeyPair): boolean => new X509Certificate(ca.authority.signingMaterial.signer.pem).checkIssued(new X509Certificate(root.pem));
    try {
      expect(ca.trustBundlePem).toBe(a.pem);
      expect(await handshake(ca.address.port, b.pem)).not.toBe('ok');

      // 1: B joins the bundle; A still signs.
      writeFileSync(rootFile, a.pem + b.pem);
      await eventually(() => ca.trustBundlePem === a.pem + b.pem);
      expect(ca.authority.trustBundle()).toEqual([a.pem, b.pem]);
      expect(signedBy(a)).toBe(true);

      // 2: B signs, A stays trusted. The certificate is rewritten before its key: that state is
      // refused (logged, A kept) until the key follows.
      writeFileSync(rootFile, b.pem + a.pem);
      await eventually(() => lines.some((l) => String(l['msg']).startsWith('the signing material files changed but cannot be used')));
      expect(signedBy(a)).toBe(true);
      writeFileSync(keyFile, privateKeyPem(b.key));
      await eventually(() => signedBy(b));
      expect(ca.trustBundlePem).toBe(b.pem + a.pem);
      expect(await handshake(ca.address.port, b.pem)).toBe('ok');
      const csr = verifyCsr(generateWorkloadCsr('spiffe://cluster.local/ns/default/sa/web').csrPem);
      if (!csr.ok) throw csr.error;
      const issued = ca.authority.issueWorkload(WEB, csr.value);
      if (!issued.ok) throw issued.error;
      expect(new X509Certificate(issued.value.certChain[1] as string).checkIssued(new X509Certificate(b.pem))).toBe(true);

      // 3: A leaves the bundle.
      writeFileSync(rootFile, b.pem);
      await eventually(() => ca.trustBundlePem === b.pem);
      expect(readFileSync(join(dir, 'state', 'root-cert.pem'), 'utf8')).toBe(b.pem);
      expect(await handshake(ca.address.port, a.pem)).not.toBe('ok');
    } finally {
      await ca.close();
    }
  });
});

describe('refreshMaterial', () => {
  it('keeps a healthy intermediate and renews one that is due, under the same root', () => {
    const { dir, cleanup } = tempDir();
    try {
      const start = new Date();
      const sources = { stateDir: dir };
      const authority = testAuthority({}, loadSigningMaterial(sources, start));
      const before = authority.signingMaterial;
      expect(refreshMaterial(authority, sources, start, quiet.log)).toBe(false);
      expect(refreshMaterial(authority, sources, new Date(start.getTime() + 300 * 86400_000), quiet.log)).toBe(true);
      const after = authority.signingMaterial;
      expect(after.signer.cert.fingerprint256).not.toBe(before.signer.cert.fingerprint256);
      expect(after.roots[0]?.pem).toBe(before.roots[0]?.pem);
      const csr = verifyCsr(generateWorkloadCsr('spiffe://cluster.local/ns/default/sa/web').csrPem);
      if (!csr.ok) throw csr.error;
      const issued = authority.issueWorkload(WEB, csr.value);
      expect(issued.ok && issued.value.certChain[1]).toBe(after.signer.pem);
    } finally {
      cleanup();
    }
  });
});

describe('authenticatorFor', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());
  const base = (...extra: string[]) => parseCaConfig(['--state-dir', dir, ...extra], {});

  it('uses TokenReview with the given kubeconfig', () => {
    const file = join(dir, 'kubeconfig');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    expect(authenticatorFor(base('--kubeconfig', file), quiet.log).kind).toBe('token-review');
  });

  it('names a kubeconfig file that cannot be read', () => {
    expect(() => authenticatorFor(base('--kubeconfig', join(dir, 'missing')), quiet.log)).toThrow(/^kubeconfig .*missing: /);
  });

  it('fails fast when there is no Kubernetes configuration at all', () => {
    if (process.env.KUBERNETES_SERVICE_HOST !== undefined) return;
    const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME };
    delete process.env.KUBECONFIG;
    process.env.HOME = dir;
    try {
      expect(() => authenticatorFor(base(), quiet.log)).toThrow(/no Kubernetes configuration found/);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});

async function eventually(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the CA to take the change');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function fetchHealth(port: number, ca: string): Promise<string> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/healthz', ca, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve(text));
    })
      .on('error', reject)
      .end();
  });
}
