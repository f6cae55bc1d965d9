// The admission webhook as a fastify app: POST /inject takes an AdmissionReview and answers with the
// decision and, for an injected pod, its JSONPatch; GET /metrics, GET /healthz/*. Built here, listened on only by server.ts.
import { fastify, type FastifyError, type FastifyInstance } from 'fastify';
import { logger, type Logger, type Result } from '@tsmesh/common';
import { allow, allowWithPatch, deny, readAdmissionReview, type AdmissionRequest, type AdmissionReviewResponse } from './admission.js';
import { INJECTOR_ERRORS, isUserError } from './errors.js';
import { injectPod } from './inject.js';
import type { Labels, NamespaceLabels } from './namespaces.js';
import { readPod } from './pod.js';
import { injectOverride, neverInjectReason } from './policy.js';
import type { InjectionSettings } from './settings.js';
import { admissionResult, InjectorMetrics } from './metrics.js';

export const WEBHOOK_PATH = '/inject';
export const DEFAULT_BODY_LIMIT = 2 * 1024 * 1024;

export interface AppOptions {
  readonly settings: InjectionSettings;
  readonly namespaceLabels: NamespaceLabels;
  /** Largest request body accepted, in bytes; larger ones get 413. Default 2 MiB. */
  readonly bodyLimit?: number;
  /** Serve HTTPS with this certificate and key (PEM). Only the entry point sets it. */
  readonly https?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  readonly logger?: Logger;
  /** What GET /metrics serves (default: a new InjectorMetrics). */
  readonly metrics?: InjectorMetrics;
}

/** Decides one admission request; never throws (a failure is a denial with a status code). */
export async function review(request: AdmissionRequest, options: AppOptions, log: Logger): Promise<AdmissionReviewResponse> {
  const { uid } = request;
  const object = request.object as { kind?: unknown; metadata?: { namespace?: unknown } } | undefined;
  const kind = request.kind?.kind ?? object?.kind;
  if (kind !== 'Pod' || (request.operation !== undefined && request.operation !== 'CREATE') || request.subResource) {
    log.debug({ uid, kind, operation: request.operation }, 'not a pod creation: allowed unchanged');
    return allow(uid);
  }
  const read = readPod(request.object);
  if (!read.ok) return deny(uid, 400, read.error.message);
  const pod = read.value;
  const namespace = request.namespace || pod.metadata?.namespace;
  if (!namespace) return deny(uid, 400, 'the admission request names no namespace for the pod');
  const name = pod.metadata?.name || pod.metadata?.generateName || '';

  // The namespace's labels matter only when the pod neither must be skipped nor says for itself.
  const override = injectOverride(pod);
  const needLabels = neverInjectReason(pod, namespace, options.settings) === undefined && override.ok && override.value === undefined;
  let labels: Result<Labels> = { ok: true, value: {} };
  if (needLabels) labels = await options.namespaceLabels.labels(namespace);
  if (!labels.ok) {
    log.error({ uid, namespace, pod: name, err: labels.error }, 'namespace labels unavailable: pod denied');
    return deny(uid, 500, `tsmesh injector: ${labels.error.message}`);
  }

  const result = injectPod(pod, { name: namespace, labels: labels.value }, options.settings);
  if (!result.ok) {
    const code = isUserError(result.error) ? 400 : 500;
    log.warn({ uid, namespace, pod: name, code: result.error.code, reason: result.error.message }, 'pod denied');
    return deny(uid, code, result.error.message);
  }
  const { injected, reason, patch, warnings } = result.value;
  log.info({ uid, namespace, pod: name, injected, reason, dryRun: request.dryRun === true }, injected ? 'pod injected' : 'pod not injected');
  return injected ? allowWithPatch(uid, patch, warnings) : allow(uid);
}

/** Makes the webhook app; the caller listens (entry point) or calls `inject()` (tests). */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const log = options.logger ?? logger('injector.webhook');
  // fastify's own logger stays off: every review is logged once, below, with its decision.
  const app = fastify({
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(options.https ? { https: { cert: options.https.cert, key: options.https.key } } : {}),
  }) as unknown as FastifyInstance;

  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) log.error({ err: error }, 'webhook request failed');
    const message =
      error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? `request body is larger than the limit of ${options.bodyLimit ?? DEFAULT_BODY_LIMIT} bytes`
        : error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError
          ? 'request body is not valid JSON'
          : status === 500
            ? 'internal error in the tsmesh injector'
            : error.message;
    void reply.code(status).send({ code: error.code ?? INJECTOR_ERRORS.REQUEST, message });
  });

  const metrics = options.metrics ?? new InjectorMetrics();
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
  app.get('/healthz/ready', async () => 'ok\n');
  app.get('/healthz/live', async () => 'ok\n');
  app.post(WEBHOOK_PATH, async (request, reply) => {
    const started = performance.now();
    const parsed = readAdmissionReview(request.body);
    if (!parsed.ok) {
      metrics.answered('invalid', (performance.now() - started) / 1000);
      return reply.code(400).send({ code: parsed.error.code, message: parsed.error.message });
    }
    const answer = await review(parsed.value, options, log);
    metrics.answered(admissionResult(answer), (performance.now() - started) / 1000, answer);
    return answer;
  });
  return app;
}
