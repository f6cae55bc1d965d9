// Inbound local rate limits: after authorization let a request through, one token from the
// buckets of the HTTPLocalRateLimitPolicies that apply; a refusal is answered by the sidecar itself
// with 429 and `retry-after` (gRPC: a trailers-only RESOURCE_EXHAUSTED) and flagged `RL`.
import { logger, ok, requestView, type Result, type RouteDecision, type TsmeshError } from '@tsmesh/common';
import type { HttpRequestInfo, HttpRouteTarget, LocalReply } from '../http/context.js';
import type { RateLimitVerdict, WorkloadRateLimits } from '../policy/rate-limit.js';

const log = logger('inbound.ratelimit');

export const GRPC_RESOURCE_EXHAUSTED = 8;
const MESSAGE = 'local rate limit exceeded';

/** The sidecar's answer to a refused request: 429 + retry-after, or for gRPC a trailers-only status 8 (with retry-after too). */
export function rateLimitReply(verdict: RateLimitVerdict, grpc: boolean): { readonly status: number; readonly reply: LocalReply } {
  const retryAfter = String(verdict.retryAfterSeconds);
  const message = `${MESSAGE} (${verdict.reason})`;
  if (grpc) {
    return {
      status: 200,
      reply: {
        headers: ['content-type', 'application/grpc', 'grpc-status', String(GRPC_RESOURCE_EXHAUSTED), 'grpc-message', encodeURIComponent(message), 'retry-after', retryAfter],
        flag: 'RL',
        grpcStatus: GRPC_RESOURCE_EXHAUSTED,
        message,
      },
    };
  }
  return { status: 429, reply: { headers: ['retry-after', retryAfter, 'content-length', '0', 'x-tsmesh-error', message], flag: 'RL', message } };
}

/**
 * Takes a token for `req` (already routed and authorized to `routed`) from the caller's buckets:
 * `routed` itself when admitted (nothing allocated), else a target the forwarders answer locally.
 * `identity` is the verified peer's SPIFFE ID, never a header; undefined for plaintext callers.
 */
export function limitRequest(
  limits: WorkloadRateLimits,
  port: number,
  identity: string | undefined,
  req: HttpRequestInfo,
  routed: Result<HttpRouteTarget, TsmeshError> & { readonly ok: true },
): Result<HttpRouteTarget, TsmeshError> {
  const verdict = limits.check(port, identity, limits.needsRoute ? routeOf(limits, port, identity, req) : undefined);
  if (verdict === undefined) return routed;
  const grpc = (req.header('content-type') ?? '').startsWith('application/grpc');
  const { status, reply } = rateLimitReply(verdict, grpc);
  log.debug({ port, identity, method: req.method, policy: verdict.policy, reason: verdict.reason, retryAfter: verdict.retryAfterSeconds }, 'request refused by a local rate limit');
  return ok({ ...routed.value, redirect: { status, location: '' }, localReply: reply });
}

/**
 * The route rule `req` matches, on the normalised view, as the caller's sidecar matched it (its
 * namespace picks consumer routes). Only asked when a policy limits a route.
 */
function routeOf(limits: WorkloadRateLimits, port: number, identity: string | undefined, req: HttpRequestInfo): RouteDecision | undefined {
  const namespace = identity === undefined ? undefined : /\/ns\/([^/]+)\/sa\//.exec(identity)?.[1];
  const view = requestView({ method: req.method, target: req.url, authority: req.authority, header: (n) => req.header(n) }, namespace);
  return view.ok ? limits.routeOf(port, view.request) : undefined;
}
