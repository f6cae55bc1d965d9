// Test support: self-signed certificates with arbitrary SANs and basicConstraints (made with the
// openssl CLI, so the certificates are not shaped by our own code), and a log line collector.
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';

export interface TestCertificateSpec {
  /** openssl `[alt]` lines, e.g. `URI.1 = spiffe://...`, `DNS.1 = web`. None: no SAN extension. */
  readonly sans?: readonly string[];
  readonly ca?: boolean;
}

/** A self-signed P-256 certificate as openssl makes it. */
export function opensslCertificate(spec: TestCertificateSpec): { cert: X509Certificate; pem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-identity-cert-'));
  try {
    const sans = spec.sans ?? [];
    const config = [
      '[req]',
      'distinguished_name = dn',
      'x509_extensions = ext',
      'prompt = no',
      '[dn]',
      'O = tsmesh-test',
      '[ext]',
      `basicConstraints = critical,CA:${spec.ca === true ? 'TRUE' : 'FALSE'}`,
      ...(sans.length > 0 ? ['subjectAltName = @alt', '[alt]', ...sans] : []),
      '',
    ].join('\n');
    writeFileSync(join(dir, 'openssl.cnf'), config);
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-config', join(dir, 'openssl.cnf')],
      { stdio: 'pipe' },
    );
    const pem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    return { cert: new X509Certificate(pem), pem };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A pino logger whose lines are kept as parsed objects. */
export function capturedLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}
