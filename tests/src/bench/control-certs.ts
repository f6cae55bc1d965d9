// Certificates for the control-plane benchmark from a real tsmesh CA (in this process, local mode with
// a token file): the control plane's serving certificate (a workload certificate for its SPIFFE ID)
// and one workload certificate per benchmark sidecar, each asked for with its own token and CSR as a
// sidecar asks.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateWorkloadCsr, parseCaConfig, requestCertificate, startCa, type RunningCa } from '@tsmesh/ca';
import { logger, type Logger } from '@tsmesh/common';

export const CONTROL_IDENTITY = 'spiffe://cluster.local/ns/tsmesh-system/sa/tsmesh-control';

export interface Identity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface IssuedCert {
  readonly spiffeId: string;
  readonly keyPem: string;
  /** Leaf then intermediate. */
  readonly certPem: string;
}

export interface BenchCerts {
  readonly trustBundlePem: string;
  /** Files for `--tls-cert`, `--tls-key`, `--trust-bundle`. */
  readonly controlFiles: { readonly cert: string; readonly key: string; readonly trustBundle: string };
  readonly sidecars: readonly IssuedCert[];
}

export const quiet: Logger = logger('bench.control').child({});
quiet.level = 'silent';

/** Starts a CA in `dir`, issues every certificate, stops the CA (the certificates live 24 h). */
export async function issueBenchCerts(dir: string, sidecars: readonly Identity[]): Promise<BenchCerts> {
  const control: Identity = { namespace: 'tsmesh-system', serviceAccount: 'tsmesh-control' };
  const all = [control, ...sidecars];
  const tokenOf = (i: number): string => `bench-token-${i}`;
  const tokenFile = join(dir, 'ca-tokens.yaml');
  writeFileSync(tokenFile, all.map((id, i) => `- {token: ${tokenOf(i)}, namespace: ${id.namespace}, serviceAccount: ${id.serviceAccount}}`).join('\n'), { mode: 0o600 });
  const ca: RunningCa = await startCa(parseCaConfig(['--state-dir', join(dir, 'ca'), '--token-file', tokenFile, '--listen', '127.0.0.1:0'], {}), { log: quiet, auditLog: quiet });
  try {
    const issue = async (id: Identity, i: number): Promise<IssuedCert> => {
      const spiffeId = `spiffe://cluster.local/ns/${id.namespace}/sa/${id.serviceAccount}`;
      const { keyPem, csrPem } = generateWorkloadCsr(spiffeId);
      const answer = await requestCertificate({ caAddr: `127.0.0.1:${ca.address.port}`, token: tokenOf(i), trustBundlePem: ca.trustBundlePem, csrPem });
      if (!answer.ok) throw answer.error;
      return { spiffeId, keyPem, certPem: answer.value.certChain.join('') };
    };
    const issued: IssuedCert[] = [];
    // A few at a time: the CA signs one by one anyway.
    for (let i = 0; i < all.length; i += 10) issued.push(...(await Promise.all(all.slice(i, i + 10).map((id, j) => issue(id, i + j)))));
    const [controlCert, ...sidecarCerts] = issued as [IssuedCert, ...IssuedCert[]];
    const controlFiles = { cert: join(dir, 'control-cert.pem'), key: join(dir, 'control-key.pem'), trustBundle: join(dir, 'trust-bundle.pem') };
    writeFileSync(controlFiles.cert, controlCert.certPem);
    writeFileSync(controlFiles.key, controlCert.keyPem, { mode: 0o600 });
    writeFileSync(controlFiles.trustBundle, ca.trustBundlePem);
    return { trustBundlePem: ca.trustBundlePem, controlFiles, sidecars: sidecarCerts };
  } finally {
    await ca.close();
  }
}
