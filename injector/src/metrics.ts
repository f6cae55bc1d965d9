// The injector's Prometheus metrics (GET /metrics on its HTTPS port): admission requests by result,
// how long each decision took, and the size of the JSONPatch it answered with.
import { componentRegistry, packageVersion, renderMetrics, type RenderedMetrics } from '@tsmesh/common/metrics';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { AdmissionReviewResponse } from './admission.js';

export const INJECTOR_METRIC_NAMES = {
  admissions: 'tsmesh_injector_admission_requests_total',
  admissionDuration: 'tsmesh_injector_admission_duration_seconds',
  patchSize: 'tsmesh_injector_patch_bytes',
} as const;

/**
 * The `result` label: `injected` allowed with a patch; `skipped` allowed unchanged (not a pod
 * creation, injection off, an excluded namespace); `denied` refused (a bad annotation, a failure);
 * `invalid` the body was not an AdmissionReview.
 */
export type AdmissionResult = 'injected' | 'skipped' | 'denied' | 'invalid';

export const ADMISSION_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
/** Patch sizes in bytes (of the JSONPatch before base64): 256 B to 64 KiB. */
export const PATCH_BUCKETS: readonly number[] = Object.freeze([256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]);

export function admissionResult(review: AdmissionReviewResponse): AdmissionResult {
  const { response } = review;
  if (!response.allowed) return 'denied';
  return response.patch === undefined ? 'skipped' : 'injected';
}

export interface InjectorMetricsOptions {
  /** Collect the process's default metrics. Default true. */
  readonly defaultMetrics?: boolean;
}

export class InjectorMetrics {
  readonly registry: Registry;
  private readonly admissions: Counter<'result'>;
  private readonly duration: Histogram<'result'>;
  private readonly patchSize: Histogram;

  constructor(options: InjectorMetricsOptions = {}) {
    const registry = componentRegistry({
      component: 'injector',
      version: packageVersion(new URL('../package.json', import.meta.url)),
      ...(options.defaultMetrics === undefined ? {} : { defaultMetrics: options.defaultMetrics }),
    });
    this.registry = registry;
    const registers = [registry];
    this.admissions = new Counter({
      name: INJECTOR_METRIC_NAMES.admissions,
      help: 'AdmissionReviews answered, by result: injected, skipped (allowed unchanged), denied, invalid (not an AdmissionReview).',
      labelNames: ['result'],
      registers,
    });
    this.duration = new Histogram({
      name: INJECTOR_METRIC_NAMES.admissionDuration,
      help: 'Seconds from an AdmissionReview read to its answer (namespace lookup included), by result.',
      labelNames: ['result'],
      buckets: [...ADMISSION_BUCKETS],
      registers,
    });
    this.patchSize = new Histogram({
      name: INJECTOR_METRIC_NAMES.patchSize,
      help: 'Bytes of the JSONPatch answered for an injected pod (before base64).',
      buckets: [...PATCH_BUCKETS],
      registers,
    });
  }

  /** One AdmissionReview answered in `seconds`. */
  answered(result: AdmissionResult, seconds: number, review?: AdmissionReviewResponse): void {
    this.admissions.inc({ result });
    this.duration.observe({ result }, seconds);
    const patch = review?.response.patch;
    if (patch !== undefined) this.patchSize.observe(Buffer.byteLength(patch, 'base64'));
  }

  render(): Promise<RenderedMetrics> {
    return renderMetrics(this.registry);
  }
}
