// The CA's HTTP API (SPEC: Certificate authority API): POST /v1/certificates, GET /v1/trust-bundle,
// GET /healthz, GET /metrics. Built by a factory and tested with inject(); only serve.ts listens.
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { err, logger, ok, type Logger, type Result } from '@tsmesh/common';
import type { Authenticator } from '../auth/authenticator.js';
import type { CertificateAuthority } from '../authority/authority.js';
import { CaError, errorBody, type CaErrorKind } from '../errors.js';
import { spiffeIdOf } from '../identity.js';
import { verifyCsr } from '../x509/csr.js';
import { CaMetrics } from './metrics.js';

export type CaApp = FastifyInstance<HttpServer | HttpsServer>;

export interface AppOptions {
  readonly authority: CertificateAuthority;
  readonly authenticator: Authenticator;
  /** Audit log: one line per issuance or refusal. Defaults to the `ca.issue` component logger. */
  readonly log?: Logger;
  /** Largest accepted request body; default 16 KiB. */
  readonly bodyLimitBytes?: number;
  /** TLS settings; given only by the entry point that listens. */
  readonly https?: HttpsServerOptions;
  /** What GET /metrics serves (default: a new CaMetrics following `authority`). */
  readonly metrics?: CaMetrics;
}

/** Body of a successful POST /v1/certificates. */
export interface CertificateResponse {
  certChain: string[];
  trustBundle: string[];
  /** RFC 3339, UTC, whole seconds. */
  expiresAt: string;
}

interface CertificateRequestBody {
  csr: string;
  ttlSeconds: number | undefined;
}

export const DEFAULT_BODY_LIMIT = 16 * 1024;
const MAX_REQUESTED_TTL = 10 * 365 * 24 * 3600;
const ISSUE_PATH = '/v1/certificates';

export function buildApp(options: AppOptions): CaApp {
  const audit = options.log ?? logger('ca.issue');
  const common = { bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT, logger: false, return503OnClosing: true };
  const app: CaApp = options.https ? fastify({ ...common, https: options.https }) : fastify(common);
  const metrics = options.metrics ?? new CaMetrics();
  metrics.follow(options.authority);

  const refuse = (request: FastifyRequest, reply: FastifyReply, error: CaError, fields: object = {}): FastifyReply => {
    metrics.refused(error.code);
    audit.warn(
      { event: 'refused', code: error.code, status: error.status, reason: error.message, remote: request.ip, ...fields },
      'certificate refused',
    );
    return reply.code(error.status).send(errorBody(error));
  };

  app.post(ISSUE_PATH, async (request, reply) => {
    const started = performance.now();
    const token = bearerToken(request.headers.authorization);
    if (!token.ok) return refuse(request, reply, token.error);
    const identity = await options.authenticator.authenticate(token.value);
    if (!identity.ok) return refuse(request, reply, identity.error);
    const spiffeId = spiffeIdOf(options.authority.trustDomain, identity.value);

    const body = readBody(request.body);
    if (!body.ok) return refuse(request, reply, body.error, { spiffeId });
    const csr = verifyCsr(body.value.csr);
    if (!csr.ok) return refuse(request, reply, csr.error, { spiffeId });
    const issued = options.authority.issueWorkload(identity.value, csr.value, body.value.ttlSeconds);
    if (!issued.ok) return refuse(request, reply, issued.error, { spiffeId });

    const { value } = issued;
    metrics.issued((performance.now() - started) / 1000);
    const expiresAt = rfc3339(value.expiresAt);
    audit.info(
      {
        event: 'issued',
        spiffeId: value.spiffeId,
        serial: value.serial,
        expiresAt,
        requestedTtlSeconds: body.value.ttlSeconds,
        key: csr.value.keyDescription,
        remote: request.ip,
      },
      'certificate issued',
    );
    const response: CertificateResponse = { certChain: [...value.certChain], trustBundle: [...value.trustBundle], expiresAt };
    return reply.code(200).send(response);
  });

  app.get('/v1/trust-bundle', async () => ({ trustBundle: options.authority.trustBundle() }));
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new CaError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(error.status).send(errorBody(error));
  });

  // Framework-level failures (size limit, media type, unparsable JSON) answer in the CA's own shape.
  app.setErrorHandler((failure: FastifyError, request, reply) => {
    const status = failure.statusCode ?? 500;
    const kind: CaErrorKind =
      status === 413 ? 'BODY_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL';
    const message = kind === 'INTERNAL' ? 'internal error while handling the request' : failure.message;
    const error = new CaError(kind, message, { cause: failure });
    if (kind === 'INTERNAL') audit.error({ err: failure, url: request.url }, 'request failed');
    if (request.url.split('?')[0] === ISSUE_PATH) return refuse(request, reply, error);
    return reply.code(error.status).send(errorBody(error));
  });

  return app;
}

function bearerToken(header: string | undefined): Result<string, CaError> {
  if (header === undefined || header.trim() === '') {
    return err(new CaError('TOKEN_MISSING', 'missing "Authorization: Bearer <token>" header'));
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match?.[1] === undefined) return err(new CaError('TOKEN_MISSING', 'Authorization header is not "Bearer <token>"'));
  return ok(match[1]);
}

function readBody(body: unknown): Result<CertificateRequestBody, CaError> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return err(new CaError('BAD_REQUEST', 'body must be a JSON object {"csr": "<PEM>", "ttlSeconds": <optional>}'));
  }
  const { csr, ttlSeconds } = body as Record<string, unknown>;
  if (typeof csr !== 'string' || csr.trim() === '') return err(new CaError('BAD_REQUEST', '"csr" must be a PEM string'));
  if (ttlSeconds === undefined || ttlSeconds === null) return ok({ csr, ttlSeconds: undefined });
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > MAX_REQUESTED_TTL) {
    return err(new CaError('BAD_REQUEST', '"ttlSeconds" must be a positive whole number of seconds'));
  }
  return ok({ csr, ttlSeconds });
}

/** `2025-01-02T03:04:05Z`. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
