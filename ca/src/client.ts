// What a workload (the sidecar) needs to get its certificate: an EC P-256 key with a CSR naming
// its SPIFFE ID, and the HTTPS call to POST /v1/certificates.
import { generateKeyPairSync } from 'node:crypto';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { err, ok, parseSpiffeId, type Result } from '@tsmesh/common';
import { CA_SETUP_ERRORS, CaRequestError } from './errors.js';
import { buildCsr } from './x509/csr-build.js';

/** A private key that never left memory and the CSR to send for it. */
export interface WorkloadCsr {
  /** PKCS#8 PEM of the EC P-256 private key. */
  readonly keyPem: string;
  /** PKCS#10 PEM, empty subject, the SPIFFE ID as its only URI SAN. */
  readonly csrPem: string;
}

/** Makes an EC P-256 key in memory and a CSR for `spiffeId`. Throws TypeError for anything but a tsmesh SPIFFE ID. */
export function generateWorkloadCsr(spiffeId: string): WorkloadCsr {
  const parsed = parseSpiffeId(spiffeId);
  if (!parsed.ok) throw new TypeError(parsed.error);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const csrPem = buildCsr(privateKey, { names: [{ type: 'uri', value: spiffeId }] });
  return { keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), csrPem };
}

export interface CertificateRequestOptions {
  /** `host:port` of the CA (TSMESH_CA_ADDR); `[v6]:port` for IPv6. */
  readonly caAddr: string;
  /** Bearer token (contents of TSMESH_CA_TOKEN_FILE). */
  readonly token: string;
  /** PEM roots that verify the CA's serving certificate (TSMESH_TRUST_BUNDLE_FILE). */
  readonly trustBundlePem: string;
  readonly csrPem: string;
  /** Asked lifetime; the CA may grant less. */
  readonly ttlSeconds?: number;
  /** Gives up after this long; default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Name sent as SNI and verified on the CA's certificate instead of the host of caAddr. */
  readonly servername?: string;
}

/** A certificate the CA issued. */
export interface CertificateAnswer {
  /** Leaf PEM first, then the intermediates. */
  readonly certChain: readonly string[];
  /** Roots to verify peers with. */
  readonly trustBundle: readonly string[];
  readonly expiresAt: Date;
}

const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * POSTs the CSR to the CA over HTTPS (verifying the CA against trustBundlePem) and returns the
 * issued chain. Never rejects: failures are CaRequestError values — TSMESH_ERR_CA_UNREACHABLE
 * (network, TLS, timeout), TSMESH_ERR_CA_REFUSED (an error answer; `status` and `serverCode`
 * say why) or TSMESH_ERR_CA_BAD_ANSWER (a 200 that is not a certificate answer).
 */
export function requestCertificate(options: CertificateRequestOptions): Promise<Result<CertificateAnswer, CaRequestError>> {
  const target = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(options.caAddr);
  const host = target?.[1] ?? target?.[2];
  if (target === null || host === undefined) {
    return Promise.resolve(err(new CaRequestError(CA_SETUP_ERRORS.CA_UNREACHABLE, `CA address "${options.caAddr}" is not host:port`)));
  }
  const payload = JSON.stringify({ csr: options.csrPem, ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }) });
  const servername = options.servername ?? (isIP(host) === 0 ? host : undefined);

  return new Promise((resolve) => {
    const req = request(
      {
        host,
        port: Number(target[3]),
        method: 'POST',
        path: '/v1/certificates',
        ca: options.trustBundlePem,
        ...(servername === undefined ? {} : { servername }),
        headers: {
          authorization: `Bearer ${options.token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
        timeout: options.timeoutMs ?? 10_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error('answer too large'));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve(interpret(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
        res.on('error', (cause) => resolve(unreachable(options.caAddr, cause)));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms`)));
    req.on('error', (cause) => resolve(unreachable(options.caAddr, cause)));
    req.end(payload);
  });
}

function unreachable(caAddr: string, cause: unknown): Result<never, CaRequestError> {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return err(new CaRequestError(CA_SETUP_ERRORS.CA_UNREACHABLE, `cannot reach the CA at ${caAddr}: ${reason}`, { cause }));
}

function interpret(status: number, text: string): Result<CertificateAnswer, CaRequestError> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    return err(new CaRequestError(CA_SETUP_ERRORS.CA_BAD_ANSWER, `CA answered ${status} with a body that is not JSON`, { cause, status }));
  }
  if (status !== 200) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const serverCode = typeof error?.code === 'string' ? error.code : undefined;
    const reason = typeof error?.message === 'string' ? error.message : `HTTP ${status}`;
    return err(
      new CaRequestError(CA_SETUP_ERRORS.CA_REFUSED, `CA refused the certificate (${serverCode ?? status}): ${reason}`, {
        status,
        ...(serverCode === undefined ? {} : { serverCode }),
      }),
    );
  }
  const { certChain, trustBundle, expiresAt } = (body ?? {}) as Record<string, unknown>;
  const pems = (value: unknown): value is string[] =>
    Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' && v.includes('-----BEGIN CERTIFICATE-----'));
  const expiry = typeof expiresAt === 'string' ? new Date(expiresAt) : undefined;
  if (!pems(certChain) || !pems(trustBundle) || expiry === undefined || Number.isNaN(expiry.getTime())) {
    return err(new CaRequestError(CA_SETUP_ERRORS.CA_BAD_ANSWER, 'CA answer lacks certChain, trustBundle or expiresAt', { status }));
  }
  return ok({ certChain, trustBundle, expiresAt: expiry });
}
