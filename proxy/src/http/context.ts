// What the connection-level stages (capture, detect, route) hand to the HTTP forwarders: a
// per-request router, attached to the accepted socket before it is given to an HTTP server.
import type { Socket } from 'node:net';
import type { Result, TsmeshError } from '@tsmesh/common';
import { PROXY_ERRORS } from '../errors.js';
import type { RetryPolicy } from '../upstream/retry.js';
import type { UpstreamSelector } from '../upstream/selector.js';
import type { HeaderSource, HttpProtocol, PeerInfo, RequestRecord, RequestTelemetry, ResponseFlag } from '../telemetry/index.js';

/** The request facts routing may match on (method, path, query, headers). */
export interface HttpRequestInfo {
  readonly method: string;
  /** Path and query as sent (`/a/b?x=1`). */
  readonly url: string;
  readonly authority: string;
  header(name: string): string | undefined;
}

/** Where one request goes and under which limits. */
export interface HttpRouteTarget {
  readonly selector: UpstreamSelector;
  /** Whole-request deadline, retries included; 504 when it passes before the response starts. */
  readonly timeoutMs?: number | undefined;
  /** Per-try deadline (`timeouts.backendRequest`): the try is cancelled, then retried or answered 504. */
  readonly tryTimeoutMs?: number | undefined;
  /** What is retried and how (the route rule's `retry`, else the backend Service's default); undefined: no retry on answers. */
  readonly retry?: RetryPolicy | undefined;
  /** Headers to set/add/remove on the forwarded request. */
  readonly requestHeaders?: HeaderEdit | undefined;
  /** A status to answer directly (e.g. 500 for a route whose backends all weigh 0). */
  readonly directStatus?: number | undefined;
  /** Name of the route rule used, for logs. */
  readonly routeName?: string | undefined;
  /**
   * The request target to forward (path and query) when routing normalised it: the endpoint gets
   * the path the route matched. Absent: forward the target as received.
   */
  readonly path?: string | undefined;
  /** URLRewrite hostname: the `:authority` (Host) the endpoint receives instead of the client's. */
  readonly authority?: string | undefined;
  /** ResponseHeaderModifier: applied to the endpoint's response head (not to the sidecar's own error answers). */
  readonly responseHeaders?: HeaderEdit | undefined;
  /** RequestRedirect: the sidecar answers this itself and forwards nothing. */
  readonly redirect?: { readonly status: number; readonly location: string } | undefined;
  /**
   * An answer of the sidecar's own other than a redirect (a local rate limit's 429), given through
   * the forwarders' redirect path (`redirect.status`): these headers instead of Location, an empty
   * body, `flag` in the access log, and for gRPC a trailers-only `grpc-status`.
   */
  readonly localReply?: LocalReply | undefined;
  /** RequestMirror: where copies of this request go (already sampled). */
  readonly mirrors?: readonly MirrorTarget[] | undefined;
}

/** A head-only answer the sidecar gives itself (see HttpRouteTarget.localReply). */
export interface LocalReply {
  /** Lower-case names and values, after `:status` (`content-length: 0` among them for HTTP; none for a gRPC trailers-only answer). */
  readonly headers: readonly string[];
  readonly flag: ResponseFlag;
  /** gRPC: the `grpc-status` the headers carry (trailers-only), recorded in metrics. */
  readonly grpcStatus?: number | undefined;
  /** Why, for the access log and the span. */
  readonly message: string;
}

/** One RequestMirror destination: a Service port's cluster. */
export interface MirrorTarget {
  readonly selector: UpstreamSelector;
  /** `namespace/name:port`, for logs and metrics. */
  readonly cluster: string;
}

export interface HeaderEdit {
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly add: ReadonlyArray<readonly [string, string]>;
  readonly remove: readonly string[];
}

export interface HttpConnectionContext {
  readonly direction: 'outbound' | 'inbound';
  /** Decides the target of one request; fails as a value (answered 404/503 by the forwarder). */
  route(req: HttpRequestInfo): Result<HttpRouteTarget, TsmeshError>;
  /** Headers the sidecar adds to every forwarded request (e.g. x-forwarded-client-cert inbound). */
  readonly addHeaders?: ReadonlyArray<readonly [string, string]> | undefined;
  /** The calling workload (outbound: this pod; inbound: the verified peer, or unknown). */
  readonly source: PeerInfo;
  /** The called side as known before a pick (outbound: the Service; inbound: this pod). */
  readonly destination: PeerInfo;
  /** Inbound: whether the connection arrived over mesh mTLS (outbound decides per endpoint). */
  readonly mtls: boolean;
}

/**
 * Set on responses the sidecar itself produces; `connect` tells the calling sidecar that this
 * endpoint could not reach its application, so it counts as an endpoint failure there.
 */
export const PROXY_ERROR_HEADER = 'x-tsmesh-proxy-error';

export type ProxyErrorKind = 'connect' | 'no-endpoints' | 'overflow' | 'no-route' | 'bad-request' | 'timeout' | 'reset' | 'route-backend' | 'internal' | 'rbac';

/** The access-log/span response flag of each kind of answer the proxy gives itself. */
export const RESPONSE_FLAG_OF: Readonly<Record<ProxyErrorKind, ResponseFlag | undefined>> = {
  connect: 'UF',
  'no-endpoints': 'UH',
  overflow: 'UO',
  'no-route': 'NR',
  'bad-request': undefined,
  timeout: 'UT',
  reset: 'UR',
  'route-backend': undefined,
  internal: undefined,
  rbac: 'RBAC',
};

/** How the forwarders answer a request the router refused: no rule matched 404, a request routing cannot read 400, refused by an AuthorizationPolicy 403, else 503. */
export function routeFailure(error: TsmeshError): { readonly status: number; readonly kind: ProxyErrorKind } {
  if (error.code === PROXY_ERRORS.AUTHZ_DENIED) return { status: 403, kind: 'rbac' };
  if (error.code === PROXY_ERRORS.NO_ROUTE) return { status: 404, kind: 'no-route' };
  if (error.code === PROXY_ERRORS.BAD_REQUEST) return { status: 400, kind: 'bad-request' };
  return { status: 503, kind: 'no-endpoints' };
}

/** An answer the proxy gives itself instead of forwarding. */
export interface ProxyAnswer {
  readonly status: number;
  readonly kind: ProxyErrorKind;
  readonly message: string;
}

/** A request's telemetry record, and either where it goes or the answer it gets at once. */
export interface RoutedRequest {
  readonly record: RequestRecord;
  readonly routed: { readonly ok: true; readonly target: HttpRouteTarget; readonly ctx: HttpConnectionContext } | ({ readonly ok: false } & ProxyAnswer);
}

/**
 * The first step of every HTTP forwarder: open the request's telemetry record (with what the
 * connection knows of both peers), then route it. Refusals come back as the answer to give: no
 * connection context 500, a router failure as routeFailure says, a rule without a usable backend
 * its status.
 */
export function routeRequest(
  telemetry: RequestTelemetry,
  ctx: HttpConnectionContext | undefined,
  info: HttpRequestInfo,
  protocol: HttpProtocol,
  headers: HeaderSource,
  downstream: string | undefined,
): RoutedRequest {
  const record = telemetry.startRequest({
    reporter: ctx?.direction === 'inbound' ? 'destination' : 'source',
    direction: ctx?.direction,
    method: info.method,
    authority: info.authority,
    path: info.url,
    protocol,
    headers,
    source: ctx?.source ?? {},
    destination: ctx?.destination ?? {},
    mtls: ctx?.mtls ?? false,
    downstream,
  });
  if (!ctx) return { record, routed: { ok: false, status: 500, kind: 'internal', message: 'no connection context' } };
  const result = ctx.route(info);
  if (!result.ok) return { record, routed: { ok: false, ...routeFailure(result.error), message: result.error.message } };
  const target = result.value;
  record.route(target.selector.name, target.routeName);
  if (target.directStatus !== undefined) {
    return { record, routed: { ok: false, status: target.directStatus, kind: 'route-backend', message: `route ${target.routeName ?? ''} has no usable backend` } };
  }
  if (target.localReply !== undefined) return { record: locallyAnswered(record, target.localReply), routed: { ok: true, target, ctx } };
  return { record, routed: { ok: true, target, ctx } };
}

/**
 * The record of a request answered with a LocalReply: the forwarders' redirect path records the
 * status only, so the reply's flag, message and gRPC status are added here.
 */
function locallyAnswered(record: RequestRecord, reply: LocalReply): RequestRecord {
  return {
    get traceId() {
      return record.traceId;
    },
    upstreamHeaders: () => record.upstreamHeaders(),
    response: (status, grpcStatus) => record.response(status, grpcStatus ?? reply.grpcStatus),
    route: (cluster, routeName) => record.route(cluster, routeName),
    end: (result) => record.end({ ...result, flags: [...(result?.flags ?? []), reply.flag], error: result?.error ?? reply.message }),
  };
}

const CONTEXT = Symbol('tsmesh.httpContext');

export function attachHttpContext(socket: Socket, ctx: HttpConnectionContext): void {
  (socket as unknown as Record<symbol, HttpConnectionContext>)[CONTEXT] = ctx;
}

/** Works for a raw socket and for the proxy object an Http2Session exposes as `session.socket`. */
export function httpContextOf(socket: object | undefined | null): HttpConnectionContext | undefined {
  if (!socket) return undefined;
  return (socket as Record<symbol, HttpConnectionContext | undefined>)[CONTEXT];
}

/** Applies a header edit to an HTTP/1 raw header list (case-insensitive names). */
export function applyHeaderEditRaw(raw: string[], edit: HeaderEdit | undefined, extra?: ReadonlyArray<readonly [string, string]>): string[] {
  if (!edit && !extra) return raw;
  const drop = new Set<string>([...(edit?.remove ?? []), ...(edit?.set ?? []).map(([n]) => n)].map((n) => n.toLowerCase()));
  for (const [n] of extra ?? []) drop.add(n.toLowerCase());
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!drop.has((raw[i] ?? '').toLowerCase())) out.push(raw[i] ?? '', raw[i + 1] ?? '');
  }
  for (const [n, v] of edit?.set ?? []) out.push(n, v);
  for (const [n, v] of edit?.add ?? []) out.push(n, v);
  for (const [n, v] of extra ?? []) out.push(n, v);
  return out;
}
