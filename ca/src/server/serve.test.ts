import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { pino } from 'pino';
import { parseCaConfig } from '../config.js';
import { loadSigningMaterial } from '../authority/load.js';
import { generateWorkloadCsr } from '../client.js';
import { testAuthority, tempDir, WEB } from '../testing/fixtures.js';
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
