// The sidecar's own certificate: a key made in memory, a CSR for our SPIFFE ID, the certificate the
// CA issues for it, renewed at a fraction of its lifetime and kept while the CA cannot be reached.
import type { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { logger, ok, err, type Logger, type Result, type TsmeshError } from '@tsmesh/common';
// The client entry point only: the package root would load the CA server (fastify, client-node).
// Type-only: the CA client (and the X.509 code under it) is loaded at the first certificate
// request, so a sidecar without an identity never loads it (a few MiB of idle memory).
import type { requestCertificate } from '@tsmesh/ca/client';
import { RateLimitedLog } from '../telemetry/log-limit.js';
import { DEFAULT_BACKOFF, renewalAtMs, retryDelayMs, type BackoffOptions } from './backoff.js';
import { IDENTITY_ERRORS, IdentityError } from '../errors.js';
import { buildMaterial, describeCertificate, meshSecureContextOptions, splitPemCertificates, type CertificateDescription, type IdentityMaterial } from './material.js';
import { spiffeIdFor } from './spiffe.js';

export interface WorkloadIdentityOptions {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** `host:port` of the CA (TSMESH_CA_ADDR). */
  readonly caAddr: string;
  /** TSMESH_CA_TOKEN_FILE: re-read before every request (projected tokens rotate). */
  readonly tokenFile: string;
  /** TSMESH_TRUST_BUNDLE_FILE: re-read before every request; verifies the CA and (with the CA's bundle) peers. */
  readonly trustBundleFile: string;
  /** Lifetime to ask for; the CA may grant less. Default: the CA's default (24 h). */
  readonly ttlSeconds?: number;
  /** Renew after this fraction of the lifetime, in (0, 1). Default 0.5. */
  readonly renewFraction?: number;
  readonly backoff?: Partial<BackoffOptions>;
  /** Per-request timeout. Default 10 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Name verified on the CA's serving certificate instead of the host of caAddr. */
  readonly caServerName?: string;
  /** At most one failure line per interval; the failures after expiry have their own limit, so the first one is logged. Default 30 000 ms. */
  readonly failureLogIntervalMs?: number;
  readonly log?: Logger;
  /** Injected for tests: the clock (ms), the jitter source, the CA call. */
  readonly now?: () => number;
  readonly random?: () => number;
  readonly requestCertificate?: typeof requestCertificate;
}

/** What `/certs` shows: the identity and its certificates, never the key. */
export interface IdentityDescription {
  readonly spiffeId: string;
  /** pending: no certificate yet; valid; expired: the CA could not renew in time; stopped. */
  readonly state: 'pending' | 'valid' | 'expired' | 'stopped';
  readonly certificate: CertificateDescription | undefined;
  /** Leaf first, then intermediates. */
  readonly chain: readonly CertificateDescription[];
  readonly trustBundle: readonly CertificateDescription[];
  readonly renewAt: string | undefined;
  readonly consecutiveFailures: number;
  readonly lastError: { readonly code: string; readonly message: string } | undefined;
}

type Listener = (material: IdentityMaterial) => void;

interface TlsContexts {
  readonly server: SecureContext;
  readonly client: SecureContext;
  readonly options: SecureContextOptions;
}

interface Issued {
  readonly material: IdentityMaterial;
  readonly contexts: TlsContexts;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Obtains and renews the sidecar's workload certificate. The hot path reads `current()` /
 * `serverContext()` / `clientContext()` synchronously; they change only when a renewal succeeds.
 */
export class WorkloadIdentityManager {
  readonly spiffeId: string;
  private readonly options: WorkloadIdentityOptions;
  private readonly log: Logger;
  private readonly failureLog: RateLimitedLog;
  /** Its own limit: expiry is news, never swallowed by the warnings that came before it. */
  private readonly expiredLog: RateLimitedLog;
  private readonly backoff: BackoffOptions;
  private readonly renewFraction: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly request: typeof requestCertificate | undefined;
  private readonly listeners = new Set<Listener>();

  private material: IdentityMaterial | undefined;
  private contexts: TlsContexts | undefined;
  private failures = 0;
  private error: TsmeshError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextAttemptAt: number | undefined;
  private stopped = false;
  private started: Promise<Result<IdentityMaterial, TsmeshError>> | undefined;
  private readonly firstCertificate: Promise<IdentityMaterial>;
  private settleFirst: { resolve: (m: IdentityMaterial) => void; reject: (e: Error) => void } | undefined;

  /** Throws TypeError for an invalid trust domain, namespace, service account or renew fraction. */
  constructor(options: WorkloadIdentityOptions) {
    this.options = options;
    this.spiffeId = spiffeIdFor(options.trustDomain, options.namespace, options.serviceAccount);
    const fraction = options.renewFraction ?? 0.5;
    if (!(fraction > 0 && fraction < 1)) throw new TypeError(`renewFraction must be between 0 and 1, got ${fraction}`);
    this.renewFraction = fraction;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.request = options.requestCertificate;
    this.log = (options.log ?? logger('identity')).child({ spiffeId: this.spiffeId });
    this.failureLog = new RateLimitedLog(this.log, options.failureLogIntervalMs ?? 30_000, this.now);
    this.expiredLog = new RateLimitedLog(this.log, options.failureLogIntervalMs ?? 30_000, this.now);
    this.firstCertificate = new Promise<IdentityMaterial>((resolve, reject) => {
      this.settleFirst = { resolve, reject };
    });
    // ready() may be ignored by callers that only use start(); never report an unhandled rejection.
    this.firstCertificate.catch(() => undefined);
  }

  /**
   * Asks for the first certificate and resolves with the outcome of that first attempt. On failure
   * the manager keeps retrying with backoff in the background (ready() resolves when one succeeds).
   * Calling it again returns the same promise.
   */
  start(): Promise<Result<IdentityMaterial, TsmeshError>> {
    this.started ??= this.attempt().then(() =>
      this.material !== undefined ? ok(this.material) : err(this.error ?? stoppedError()),
    );
    return this.started;
  }

  /** Resolves with the first certificate; rejects (TSMESH_ERR_IDENTITY_STOPPED) if stop() comes first. */
  ready(): Promise<IdentityMaterial> {
    return this.firstCertificate;
  }

  /** The certificate in force (possibly expired when the CA stayed unreachable); undefined before the first. */
  current(): IdentityMaterial | undefined {
    return this.material;
  }

  /** TLS 1.3 context for the inbound (server) side; undefined before the first certificate. */
  serverContext(): SecureContext | undefined {
    return this.contexts?.server;
  }

  /** TLS 1.3 context for the outbound (client) side; undefined before the first certificate. */
  clientContext(): SecureContext | undefined {
    return this.contexts?.client;
  }

  /** The options both contexts were made from, for `tls.Server#setSecureContext`. */
  secureContextOptions(): SecureContextOptions | undefined {
    return this.contexts?.options;
  }

  /** Seconds until the current certificate expires (negative once expired); undefined before the first. For metrics. */
  secondsUntilExpiry(): number | undefined {
    return this.material === undefined ? undefined : (this.material.expiresAt.getTime() - this.now()) / 1000;
  }

  /** The last failure since the last success, if any. */
  lastError(): TsmeshError | undefined {
    return this.error;
  }

  /** Calls `listener` with every new certificate (the first included); returns the unsubscribe function. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops renewing. The current material stays readable; a request in flight is ignored when it ends. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.nextAttemptAt = undefined;
    this.settleFirst?.reject(stoppedError(this.error));
    this.settleFirst = undefined;
  }

  /** The identity, its chain and trust bundle and the renewal state, for the admin `/certs` endpoint. */
  describe(): IdentityDescription {
    const material = this.material;
    let state: IdentityDescription['state'] = 'pending';
    if (this.stopped) state = 'stopped';
    else if (material !== undefined) state = material.expiresAt.getTime() <= this.now() ? 'expired' : 'valid';
    const describePems = (pems: readonly string[]): CertificateDescription[] =>
      (splitPemCertificates(pems.join('\n')) ?? []).map(describeCertificate);
    return {
      spiffeId: this.spiffeId,
      state,
      certificate: material === undefined ? undefined : describeCertificate(material.leaf),
      chain: material === undefined ? [] : describePems(material.certChainPem),
      trustBundle: material === undefined ? [] : describePems(material.trustBundlePem),
      renewAt: this.nextAttemptAt === undefined ? undefined : new Date(this.nextAttemptAt).toISOString(),
      consecutiveFailures: this.failures,
      lastError: this.error === undefined ? undefined : { code: this.error.code, message: this.error.message },
    };
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    this.timer = undefined;
    this.nextAttemptAt = undefined;
    const issuedAt = this.now();
    let outcome: Result<Issued, TsmeshError>;
    try {
      outcome = await this.obtain(issuedAt);
    } catch (cause) {
      // Nothing below should throw; if it does, treat it as one more failure rather than stop renewing.
      outcome = err(new IdentityError(IDENTITY_ERRORS.IDENTITY_CERTIFICATE, `unexpected failure: ${String(cause)}`, { cause }));
    }
    if (this.stopped) return;
    if (outcome.ok) this.install(outcome.value);
    else this.fail(outcome.error);
  }

  private async obtain(issuedAt: number): Promise<Result<Issued, TsmeshError>> {
    const token = await readToken(this.options.tokenFile);
    if (!token.ok) return token;
    const fileRoots = await readTrustBundle(this.options.trustBundleFile);
    if (!fileRoots.ok) return fileRoots;
    // The CA's serving certificate chains to the file's roots; after a root rotation it may chain to
    // a root only the CA's last answer told us about (received over a verified connection).
    const caRoots = [...fileRoots.value.map((c) => c.toString()), ...(this.material?.trustBundlePem ?? [])];

    // A fresh key for every certificate: it never leaves this process and is never written anywhere.
    const client = await import('@tsmesh/ca/client');
    const { keyPem, csrPem } = client.generateWorkloadCsr(this.spiffeId);
    const answer = await (this.request ?? client.requestCertificate)({
      caAddr: this.options.caAddr,
      token: token.value,
      trustBundlePem: caRoots.join(''),
      csrPem,
      ...(this.options.ttlSeconds === undefined ? {} : { ttlSeconds: this.options.ttlSeconds }),
      ...(this.options.requestTimeoutMs === undefined ? {} : { timeoutMs: this.options.requestTimeoutMs }),
      ...(this.options.caServerName === undefined ? {} : { servername: this.options.caServerName }),
    });
    if (!answer.ok) return answer;
    const material = buildMaterial({
      spiffeId: this.spiffeId,
      trustDomain: this.options.trustDomain,
      keyPem,
      certChainPem: answer.value.certChain,
      answerBundlePem: answer.value.trustBundle,
      fileRoots: fileRoots.value,
      issuedAt: new Date(issuedAt),
      now: new Date(this.now()),
    });
    if (!material.ok) return material;
    const contexts = tlsContexts(material.value);
    if (!contexts.ok) return contexts;
    return ok({ material: material.value, contexts: contexts.value });
  }

  private install({ material, contexts }: Issued): void {
    const recovered = this.failures > 0;
    this.material = material;
    this.contexts = contexts;
    this.failures = 0;
    this.error = undefined;
    const renewAt = renewalAtMs(material.issuedAt.getTime(), material.expiresAt.getTime(), this.renewFraction);
    const now = this.now();
    this.schedule(renewAt - now, now);
    this.log.info(
      {
        serial: material.serialNumber,
        expiresAt: material.expiresAt.toISOString(),
        renewAt: new Date(renewAt).toISOString(),
        ...(recovered ? { recovered: true } : {}),
      },
      'workload certificate issued',
    );
    this.settleFirst?.resolve(material);
    this.settleFirst = undefined;
    for (const listener of this.listeners) {
      try {
        listener(material);
      } catch (error) {
        this.log.error({ err: error }, 'identity change listener failed');
      }
    }
  }

  private fail(error: TsmeshError): void {
    this.failures++;
    this.error = error;
    const now = this.now();
    const remaining = this.material === undefined ? undefined : this.material.expiresAt.getTime() - now;
    const delay = retryDelayMs(this.failures, this.backoff, this.random, remaining);
    this.schedule(delay, now);
    const fields = { err: error, code: error.code, failures: this.failures, retryInMs: delay };
    if (this.material === undefined) {
      this.failureLog.error(fields, 'cannot get a workload certificate; not ready for mTLS until the CA issues one');
    } else if (remaining !== undefined && remaining <= 0) {
      this.expiredLog.error(fields, 'cannot renew the workload certificate and it has expired; peers will refuse it');
    } else {
      this.failureLog.warn(
        { ...fields, expiresAt: this.material.expiresAt.toISOString() },
        'cannot renew the workload certificate; still serving the current one',
      );
    }
  }

  /** `now`: the clock reading `delayMs` was computed from (a second reading could be a tick later). */
  private schedule(delayMs: number, now: number): void {
    if (this.stopped) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(delayMs)));
    this.nextAttemptAt = now + delay;
    this.timer = setTimeout(() => void this.attempt(), delay);
    this.timer.unref();
  }
}

/** Both contexts of one certificate (meshSecureContextOptions). */
function tlsContexts(material: IdentityMaterial): Result<TlsContexts, IdentityError> {
  const options = meshSecureContextOptions(material);
  try {
    return ok({ server: createSecureContext(options), client: createSecureContext(options), options });
  } catch (cause) {
    return err(new IdentityError(IDENTITY_ERRORS.IDENTITY_CERTIFICATE, `cannot build a TLS context: ${String(cause)}`, { cause }));
  }
}

function stoppedError(cause?: unknown): IdentityError {
  return new IdentityError(
    IDENTITY_ERRORS.IDENTITY_STOPPED,
    'the workload identity was stopped before a certificate was issued',
    cause === undefined ? undefined : { cause },
  );
}

async function readToken(file: string): Promise<Result<string, IdentityError>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    return err(new IdentityError(IDENTITY_ERRORS.TOKEN_FILE, `cannot read the CA token file ${file}: ${(cause as Error).message}`, { cause }));
  }
  const token = text.trim();
  if (token === '') return err(new IdentityError(IDENTITY_ERRORS.TOKEN_FILE, `the CA token file ${file} is empty`));
  return ok(token);
}

async function readTrustBundle(file: string): Promise<Result<X509Certificate[], IdentityError>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    return err(
      new IdentityError(IDENTITY_ERRORS.TRUST_BUNDLE_FILE, `cannot read the trust bundle file ${file}: ${(cause as Error).message}`, { cause }),
    );
  }
  const roots = splitPemCertificates(text);
  if (roots === undefined) return err(new IdentityError(IDENTITY_ERRORS.TRUST_BUNDLE_FILE, `the trust bundle file ${file} holds a certificate that does not parse`));
  if (roots.length === 0) return err(new IdentityError(IDENTITY_ERRORS.TRUST_BUNDLE_FILE, `the trust bundle file ${file} holds no PEM certificate`));
  return ok(roots);
}

/** The sidecar settings the identity needs (a subset of ProxyConfig). */
export interface IdentitySettings {
  readonly trustDomain: string;
  readonly podNamespace: string;
  readonly serviceAccount: string;
  readonly caAddr: string | undefined;
  readonly caTokenFile: string | undefined;
  readonly trustBundleFile: string | undefined;
}

/**
 * Manager options from the sidecar's configuration: undefined when TSMESH_CA_ADDR is unset (the
 * sidecar runs without identity); an error naming the missing variable when the CA is set but the
 * token or trust bundle file is not.
 */
export function identityOptionsFromConfig(
  config: IdentitySettings,
  extra: Partial<Omit<WorkloadIdentityOptions, keyof IdentitySettings>> = {},
): Result<WorkloadIdentityOptions | undefined, IdentityError> {
  if (config.caAddr === undefined) return ok(undefined);
  if (config.caTokenFile === undefined) {
    return err(new IdentityError(IDENTITY_ERRORS.TOKEN_FILE, 'TSMESH_CA_ADDR is set but TSMESH_CA_TOKEN_FILE is not'));
  }
  if (config.trustBundleFile === undefined) {
    return err(new IdentityError(IDENTITY_ERRORS.TRUST_BUNDLE_FILE, 'TSMESH_CA_ADDR is set but TSMESH_TRUST_BUNDLE_FILE is not'));
  }
  return ok({
    ...extra,
    trustDomain: config.trustDomain,
    namespace: config.podNamespace,
    serviceAccount: config.serviceAccount,
    caAddr: config.caAddr,
    tokenFile: config.caTokenFile,
    trustBundleFile: config.trustBundleFile,
  });
}
