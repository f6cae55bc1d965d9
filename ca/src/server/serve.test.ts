import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { pino } from 'pino';
import { parseCaConfig } from '../config.js';
import { tempDir } from '../testing/fixtures.js';
import { startCa } from './serve.js';

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
