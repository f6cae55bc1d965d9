// Test certificates: a self-signed EC P-256 certificate for DNS names, made with the openssl binary.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A self-signed certificate whose subjectAltNames are `names` (DNS), and its key, as PEM. */
export function selfSignedPem(...names: readonly string[]): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-cert-'));
  try {
    const san = names.map((n) => `DNS:${n}`).join(',');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', `/CN=${names[0] ?? 'test'}`, '-addext', `subjectAltName=${san}`], { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
