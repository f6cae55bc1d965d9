// The self-managed webhook certificate: one CA shared by every replica through a Secret, a serving
// certificate per replica issued from it, and the webhook configuration's caBundle kept equal to the
// CA (plus the previous one during a rollover). Renews before expiry; API failures are retried with
// backoff while the webhook keeps serving on its current certificate.
import { X509Certificate } from 'node:crypto';
import { backoffDelayMs, logger } from '@tsmesh/common';
import { fingerprint, generateCa, issueServingCertificate, readCa, splitPem, type KeyedCertificate } from './certificates.js';
import type { StoredSecret, WebhookCertApi } from './webhook-api.js';

const log = logger('injector.tls.manager');

/** Keys of the CA Secret. */
export const CA_SECRET_KEYS = { cert: 'ca.crt', key: 'ca.key', previous: 'previous-ca.crt' } as const;

const DAY_MS = 86_400_000;
export const DEFAULT_CA_TTL_MS = 365 * DAY_MS;
export const DEFAULT_SERVING_TTL_MS = 30 * DAY_MS;
export const DEFAULT_RESYNC_MS = 5 * 60_000;
/** Certificates are renewed (and the CA rotated) at this fraction of their life. */
const RENEW_AT = 2 / 3;

export interface WebhookCertOptions {
  readonly api: WebhookCertApi;
  /** The MutatingWebhookConfiguration whose every entry gets the caBundle. */
  readonly webhookConfiguration: string;
  /** Where the shared CA is kept. */
  readonly secretNamespace: string;
  readonly secretName: string;
  /** Names on the serving certificate: <svc>, <svc>.<ns>, <svc>.<ns>.svc. */
  readonly dnsNames: readonly string[];
  /** Called with every new serving certificate, the first one included (swap the server's context). */
  readonly onCertificate: (certificate: KeyedCertificate) => void;
  readonly caTtlMs?: number;
  readonly servingTtlMs?: number;
  /** How often the Secret and the caBundle are checked again (jittered ±10 %). */
  readonly resyncMs?: number;
  /** First and longest wait between retries after a failure. */
  readonly retryMs?: { readonly initial: number; readonly max: number };
  readonly now?: () => number;
  readonly random?: () => number;
}

/** The CA as read from the Secret: the one that issues, and the one before it while still valid. */
interface SharedCa {
  readonly current: KeyedCertificate;
  readonly previousPem?: string;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string | undefined) => Buffer.from(text ?? '', 'base64').toString('utf8');

export class WebhookCertManager {
  private readonly options: WebhookCertOptions;
  private readonly now: () => number;
  private readonly random: () => number;
  private serving: { certificate: KeyedCertificate; caFingerprint: string; renewAt: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(options: WebhookCertOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** The serving certificate in use, once `start` resolved. */
  get certificate(): KeyedCertificate | undefined {
    return this.serving?.certificate;
  }

  /**
   * Loads (or creates) the shared CA, issues the first serving certificate and publishes the caBundle,
   * retrying with backoff until there is a certificate to serve; then keeps all three up to date until
   * `stop`. A failure to publish the caBundle does not hold the start up: it is retried in the background.
   */
  async start(): Promise<KeyedCertificate> {
    for (;;) {
      await this.runOnce();
      if (this.serving !== undefined || this.stopped) break;
      await new Promise((resolve) => setTimeout(resolve, this.retryDelay()));
    }
    this.schedule();
    if (this.serving === undefined) throw new Error('stopped before a webhook certificate was made');
    return this.serving.certificate;
  }

  /** Stops renewing; the last certificate stays in use. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass now (tests, or after a change is known to have happened). */
  async sync(): Promise<void> {
    await this.runOnce();
  }

  private runOnce(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    try {
      const ca = await this.loadCa();
      const caFingerprint = fingerprint(ca.current.certPem) ?? '';
      const caChanged = this.serving !== undefined && this.serving.caFingerprint !== caFingerprint;
      let bundleError: unknown;
      try {
        await this.ensureBundle(ca);
      } catch (error) {
        bundleError = error;
      }
      // A certificate from a new CA is served only once the caBundle has it, unless there is no other.
      const due = this.serving === undefined || caChanged || this.now() >= this.serving.renewAt;
      const blocked = caChanged && bundleError !== undefined;
      if (due && !blocked) this.issue(ca, caFingerprint);
      if (bundleError !== undefined) throw bundleError;
      this.failures = 0;
    } catch (error) {
      this.failures++;
      log.warn({ err: error, failures: this.failures }, 'webhook certificate upkeep failed: retrying, still serving the current certificate');
    }
  }

  private issue(ca: SharedCa, caFingerprint: string): void {
    const ttl = this.options.servingTtlMs ?? DEFAULT_SERVING_TTL_MS;
    const issuedAt = this.now();
    const certificate = issueServingCertificate(ca.current, this.options.dnsNames, ttl, issuedAt);
    const life = certificate.notAfter.getTime() - issuedAt;
    // Jittered so that replicas started together do not all renew at once.
    const renewAt = issuedAt + life * RENEW_AT * (1 - 0.1 * this.random());
    this.serving = { certificate, caFingerprint, renewAt };
    this.options.onCertificate(certificate);
    log.info({ notAfter: certificate.notAfter.toISOString(), dnsNames: this.options.dnsNames }, 'webhook serving certificate issued');
  }

  /** The CA from the Secret: created when absent, replaced when unreadable, rotated at 2/3 of its life. */
  private async loadCa(): Promise<SharedCa> {
    const { api, secretNamespace: namespace, secretName: name } = this.options;
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = await api.readSecret(namespace, name);
      if (stored === undefined) {
        const fresh = this.newCa();
        if (await api.createSecret(namespace, name, { [CA_SECRET_KEYS.cert]: b64(fresh.certPem), [CA_SECRET_KEYS.key]: b64(fresh.keyPem) })) {
          log.info({ secret: `${namespace}/${name}` }, 'webhook CA created');
          return { current: fresh };
        }
        continue; // another replica created it first: use theirs
      }
      const found = this.parse(stored);
      if (found !== undefined && !this.rotationDue(found.current)) return found;
      const fresh = this.newCa();
      const data: Record<string, string> = { [CA_SECRET_KEYS.cert]: b64(fresh.certPem), [CA_SECRET_KEYS.key]: b64(fresh.keyPem) };
      if (found !== undefined) data[CA_SECRET_KEYS.previous] = b64(found.current.certPem);
      if (await api.updateSecret(namespace, name, data, stored.resourceVersion)) {
        log.info({ secret: `${namespace}/${name}`, rotated: found !== undefined }, found === undefined ? 'webhook CA Secret was unreadable: replaced' : 'webhook CA rotated');
        return { current: fresh, ...(found === undefined ? {} : { previousPem: found.current.certPem }) };
      }
      // Conflict: another replica changed it meanwhile; read again.
    }
    throw new Error(`the webhook CA Secret ${namespace}/${name} keeps changing under us`);
  }

  private parse(stored: StoredSecret): SharedCa | undefined {
    try {
      const current = readCa(unb64(stored.data[CA_SECRET_KEYS.cert]), unb64(stored.data[CA_SECRET_KEYS.key]));
      const previousPem = splitPem(unb64(stored.data[CA_SECRET_KEYS.previous]))[0];
      const keepPrevious = previousPem !== undefined && this.unexpired(previousPem);
      return { current, ...(keepPrevious ? { previousPem } : {}) };
    } catch (error) {
      log.error({ err: error }, 'the webhook CA Secret does not hold a usable CA');
      return undefined;
    }
  }

  private rotationDue(ca: KeyedCertificate): boolean {
    const from = ca.notBefore.getTime();
    return this.now() >= from + (ca.notAfter.getTime() - from) * RENEW_AT;
  }

  private newCa(): KeyedCertificate {
    return generateCa('tsmesh sidecar injector CA', this.options.caTtlMs ?? DEFAULT_CA_TTL_MS, this.now());
  }

  private unexpired(pem: string): boolean {
    try {
      return new Date(new X509Certificate(pem).validTo).getTime() > this.now();
    } catch {
      return false;
    }
  }

  /**
   * Every entry's caBundle must hold the current CA and the previous one (while valid), and nothing
   * expired or unreadable; otherwise it is set to exactly those. Other valid CAs someone added are left.
   */
  private async ensureBundle(ca: SharedCa): Promise<void> {
    const { api, webhookConfiguration: name } = this.options;
    const wanted = [ca.current.certPem, ...(ca.previousPem === undefined ? [] : [ca.previousPem])];
    const needed = wanted.map((pem) => fingerprint(pem));
    for (let attempt = 0; attempt < 5; attempt++) {
      const found = await api.readWebhookBundles(name);
      const good = found.caBundles.every((bundle) => {
        const text = unb64(bundle);
        const pems = splitPem(text);
        const prints = pems.map((pem) => fingerprint(pem));
        return needed.every((n) => prints.includes(n)) && pems.every((pem) => this.unexpired(pem)) && text.replace(/\s+/g, '') === pems.join('').replace(/\s+/g, '');
      });
      if (good) return;
      if (await api.patchWebhookBundles(name, found, b64(wanted.join('')))) {
        log.info({ webhookConfiguration: name, entries: found.caBundles.length, cas: wanted.length }, 'webhook caBundle set');
        return;
      }
    }
    throw new Error(`the webhook configuration ${name} keeps changing under us`);
  }

  private retryDelay(): number {
    const { initial, max } = this.options.retryMs ?? { initial: 1_000, max: 60_000 };
    return backoffDelayMs(this.failures, { initialMs: initial, maxMs: max }, this.random);
  }

  private schedule(): void {
    if (this.stopped) return;
    const resync = (this.options.resyncMs ?? DEFAULT_RESYNC_MS) * (0.9 + 0.2 * this.random());
    let delay = this.failures > 0 ? Math.min(this.retryDelay(), resync) : resync;
    if (this.serving !== undefined) delay = Math.min(delay, Math.max(0, this.serving.renewAt - this.now()));
    this.timer = setTimeout(() => {
      void this.runOnce().then(() => this.schedule());
    }, delay);
    this.timer.unref();
  }
}
