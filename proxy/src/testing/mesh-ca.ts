// Test fixture: a throwaway mesh CA (openssl CLI) issuing workload certificates whose only URI SAN
// is a SPIFFE ID, and a MeshTlsSource built on one of them: what a sidecar holds once the real CA
// has answered, without running one. Test-only material, made per run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { peerIdentityFromCertificate } from '../identity/index.js';
import type { MeshTlsSource } from '../tls/mesh-tls.js';

export const TEST_TRUST_DOMAIN = 'cluster.local';

export interface WorkloadCert {
  readonly spiffeId: string;
  readonly key: string;
  readonly cert: string;
}

export interface TestMeshCa {
  readonly rootPem: string;
  /** A leaf for `spiffe://cluster.local/ns/<namespace>/sa/<account>`. */
  issue(namespace: string, account: string): WorkloadCert;
  /** The MeshTlsSource of a sidecar holding `workload`. */
  source(workload: WorkloadCert): MeshTlsSource;
  remove(): void;
}

export function testMeshCa(): TestMeshCa {
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-test-ca-'));
  const openssl = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-days', '1', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/O=tsmesh-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  const rootPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
  let serial = 0;
  return {
    rootPem,
    issue(namespace, account) {
      const name = `leaf${++serial}`;
      const spiffeId = `spiffe://${TEST_TRUST_DOMAIN}/ns/${namespace}/sa/${account}`;
      writeFileSync(join(dir, `${name}.ext`), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:${spiffeId}\n`);
      openssl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/O=tsmesh-test']);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial), '-days', '1', '-out', `${name}.pem`, '-extfile', `${name}.ext`]);
      return { spiffeId, key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.pem`), 'utf8') };
    },
    source(workload) {
      const context = tls.createSecureContext({ key: workload.key, cert: workload.cert, ca: rootPem, minVersion: 'TLSv1.3' });
      return {
        trustDomain: TEST_TRUST_DOMAIN,
        identity: () => workload.spiffeId,
        clientContext: () => context,
        serverContext: () => context,
        peerIdentity: (cert) => {
          const peer = peerIdentityFromCertificate(cert, TEST_TRUST_DOMAIN);
          return peer.ok ? { ok: true, value: peer.value.spiffeId } : { ok: false, error: peer.error };
        },
      };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
