// The CA's Prometheus metrics (GET /metrics on its HTTPS port): certificates issued and refused,
// how long signing took, refusals by reason (the stable error code), and the time left on the
// roots it hands out (read from the authority at each scrape).
import { componentRegistry, packageVersion, renderMetrics, type RenderedMetrics } from '@tsmesh/common/metrics';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CertificateAuthority } from '../authority/authority.js';

export const CA_METRIC_NAMES = {
  certificates: 'tsmesh_ca_certificates_total',
  signDuration: 'tsmesh_ca_sign_duration_seconds',
  csrRejections: 'tsmesh_ca_csr_rejections_total',
  rootExpiry: 'tsmesh_ca_root_expiry_seconds',
} as const;

/** Signing latency buckets in seconds: 0.5 ms (an EC key) to 5 s (a TokenReview that waited). */
export const SIGN_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);

export interface CaMetricsOptions {
  /** Collect the process's default metrics. Default true. */
  readonly defaultMetrics?: boolean;
  /** The clock the root expiry is measured against (tests). */
  readonly now?: () => number;
}

export class CaMetrics {
  readonly registry: Registry;
  private readonly certificates: Counter<'result'>;
  private readonly signDuration: Histogram;
  private readonly rejections: Counter<'reason'>;
  private authority: CertificateAuthority | undefined;

  constructor(options: CaMetricsOptions = {}) {
    const registry = componentRegistry({
      component: 'ca',
      version: packageVersion(new URL('../../package.json', import.meta.url)),
      ...(options.defaultMetrics === undefined ? {} : { defaultMetrics: options.defaultMetrics }),
    });
    this.registry = registry;
    const registers = [registry];
    this.certificates = new Counter({
      name: CA_METRIC_NAMES.certificates,
      help: 'Certificate requests answered (POST /v1/certificates), by result: issued or refused.',
      labelNames: ['result'],
      registers,
    });
    this.signDuration = new Histogram({
      name: CA_METRIC_NAMES.signDuration,
      help: 'Seconds from a certificate request arriving to its certificate signed (token check, CSR check and signing).',
      buckets: [...SIGN_BUCKETS],
      registers,
    });
    this.rejections = new Counter({
      name: CA_METRIC_NAMES.csrRejections,
      help: 'Certificate requests refused, by reason: the stable error code answered (TSMESH_ERR_CSR_IDENTITY, TSMESH_ERR_TOKEN_INVALID...).',
      labelNames: ['reason'],
      registers,
    });
    const now = options.now ?? Date.now;
    const read = (): CertificateAuthority | undefined => this.authority;
    new Gauge({
      name: CA_METRIC_NAMES.rootExpiry,
      help: 'Seconds until the CA root certificate expires (negative once it has), by root serial; the first is the CA\'s own root.',
      labelNames: ['serial'],
      registers,
      collect() {
        this.reset();
        for (const root of read()?.signingMaterial.roots ?? []) {
          this.set({ serial: root.cert.serialNumber }, Math.round((new Date(root.cert.validTo).getTime() - now()) / 1000));
        }
      },
    });
  }

  /** Reads the roots from `authority` at each scrape. */
  follow(authority: CertificateAuthority): void {
    this.authority = authority;
  }

  issued(seconds: number): void {
    this.certificates.inc({ result: 'issued' });
    this.signDuration.observe(seconds);
  }

  refused(code: string): void {
    this.certificates.inc({ result: 'refused' });
    this.rejections.inc({ reason: code });
  }

  render(): Promise<RenderedMetrics> {
    return renderMetrics(this.registry);
  }
}
