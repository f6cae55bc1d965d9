// HTTP/2 and gRPC forwarding: every stream picks its own endpoint, so one long-lived client
// connection spreads over all replicas. Streams are multiplexed onto pooled upstream sessions
// (mesh mTLS to meshed pods); headers, bodies and trailers (grpc-status) pass through with
// HTTP/2 flow control. The proxy's own answers carry x-tsmesh-proxy-error.
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { logger } from '@tsmesh/common';
import { forwardableH2Headers } from './headers.js';
import {
  httpContextOf,
  PROXY_ERROR_HEADER,
  RESPONSE_FLAG_OF,
  type HttpConnectionContext,
  type HttpRequestInfo,
  type HttpRouteTarget,
  type ProxyErrorKind,
} from './context.js';
import { H2SessionPool } from './h2-pool.js';
import { isConnectFailure } from './errors.js';
import { plainDialer, type Dialer } from '../upstream/dial.js';
import { hostPort } from '../upstream/selector.js';
import { TRACE_HEADERS, type RequestRecord, type RequestTelemetry, type ResponseFlag } from '../telemetry/index.js';

const log = logger('http.h2');
const NGHTTP2_FLAG_END_STREAM = 0x1; // HEADERS/DATA frame flag (RFC 9113 6.1)
const NGHTTP2_CANCEL = http2.constants.NGHTTP2_CANCEL;
const NGHTTP2_REFUSED_STREAM = http2.constants.NGHTTP2_REFUSED_STREAM;
/** Request body kept per stream until the answer starts, so a refused stream can be sent again. */
const REPLAY_LIMIT = 64 * 1024;
/** Attempts for a stream the endpoint refused unprocessed (its GOAWAY raced the stream). */
const MAX_REFUSED_ATTEMPTS = 3;

export interface H2Options {
  readonly connectTimeoutMs: number;
  readonly maxConcurrentStreams: number;
}

export interface H2Deps {
  readonly telemetry: RequestTelemetry;
  readonly dial?: Dialer;
}

type Headers = Record<string, string | string[]>;

// gRPC status codes the proxy itself produces (grpc/doc/statuscodes.md).
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_INTERNAL = 13;
const GRPC_UNAVAILABLE = 14;
const GRPC_UNIMPLEMENTED = 12;

function isGrpc(headers: IncomingHttpHeaders): boolean {
  return String(headers['content-type'] ?? '').startsWith('application/grpc');
}

function grpcStatusFor(httpStatus: number): number {
  if (httpStatus === 504) return GRPC_DEADLINE_EXCEEDED;
  if (httpStatus === 404) return GRPC_UNIMPLEMENTED;
  if (httpStatus === 500) return GRPC_INTERNAL;
  return GRPC_UNAVAILABLE;
}

/** Answers a stream the proxy cannot forward: gRPC callers get a trailers-only gRPC status. */
function replyError(stream: ServerHttp2Stream, reqHeaders: IncomingHttpHeaders, record: RequestRecord, status: number, kind: ProxyErrorKind, message: string, upstream?: string): void {
  const flag = RESPONSE_FLAG_OF[kind];
  const end = (): void => record.end({ upstream, flags: flag ? [flag] : undefined, error: message });
  if (stream.destroyed || stream.closed) return end();
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return end();
  }
  const safe = message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200);
  if (isGrpc(reqHeaders)) {
    const grpcStatus = grpcStatusFor(status);
    record.response(200, grpcStatus);
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': encodeURIComponent(safe), 'x-tsmesh-error': safe, [PROXY_ERROR_HEADER]: kind },
      { endStream: true },
    );
    return end();
  }
  record.response(status);
  stream.respond({ ':status': status, 'content-type': 'text/plain', 'x-tsmesh-error': safe, [PROXY_ERROR_HEADER]: kind });
  stream.end(`${safe}\n`);
  end();
}

function requestInfo(headers: IncomingHttpHeaders): HttpRequestInfo {
  return {
    method: String(headers[':method'] ?? 'GET'),
    url: String(headers[':path'] ?? '/'),
    authority: String(headers[':authority'] ?? headers.host ?? ''),
    header: (name) => {
      const v = headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(',') : v;
    },
  };
}

export class H2Forwarder {
  readonly server: http2.Http2Server;
  readonly pool: H2SessionPool;
  private readonly telemetry: RequestTelemetry;
  private readonly dial: Dialer;

  constructor(options: H2Options, deps: H2Deps) {
    this.telemetry = deps.telemetry;
    this.dial = deps.dial ?? plainDialer;
    this.pool = new H2SessionPool(options.connectTimeoutMs, this.dial);
    this.server = http2.createServer({
      settings: { maxConcurrentStreams: options.maxConcurrentStreams, initialWindowSize: 1 << 20, enablePush: false },
      maxSessionMemory: 64,
      maxHeaderListPairs: 256,
    });
    this.server.on('stream', (stream, headers, flags) => this.onStream(stream, headers, flags));
    this.server.on('session', (session) => {
      session.on('error', (error) => log.debug({ err: error.message }, 'client session error'));
    });
    // No 'request' listener on purpose: adding one switches on Node's compatibility layer, which
    // answers trailers itself; this forwarder works on raw streams.
  }

  accept(socket: Socket): void {
    this.server.emit('connection', socket);
    socket.resume();
  }

  close(): void {
    this.pool.close();
    this.server.close();
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
    stream.on('error', (error) => log.debug({ err: error.message }, 'client stream error'));
    const socket = stream.session?.socket;
    const ctx = httpContextOf(socket);
    const info = requestInfo(headers);
    const record = this.telemetry.startRequest({
      reporter: ctx?.direction === 'inbound' ? 'destination' : 'source',
      direction: ctx?.direction,
      method: info.method,
      authority: info.authority,
      path: info.url,
      protocol: isGrpc(headers) ? 'grpc' : 'http2',
      headers,
      source: ctx?.source ?? {},
      destination: ctx?.destination ?? {},
      mtls: ctx?.mtls ?? false,
      downstream: socket ? hostPort(socket.remoteAddress, socket.remotePort) : undefined,
    });
    if (!ctx) return replyError(stream, headers, record, 500, 'internal', 'no connection context');
    const routed = ctx.route(info);
    if (!routed.ok) {
      const noRoute = routed.error.code === 'TSMESH_ERR_NO_ROUTE';
      return replyError(stream, headers, record, noRoute ? 404 : 503, noRoute ? 'no-route' : 'no-endpoints', routed.error.message);
    }
    const target = routed.value;
    if (target.directStatus !== undefined) return replyError(stream, headers, record, target.directStatus, 'route-backend', `route ${target.routeName ?? ''} has no usable backend`);
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    this.attempt(stream, headers, endStream, ctx, target, record, 1);
  }

  private attempt(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    endStream: boolean,
    ctx: HttpConnectionContext,
    target: HttpRouteTarget,
    record: RequestRecord,
    attempt: number,
    replay: readonly Buffer[] = [],
  ): void {
    const selected = target.selector.select();
    if (!selected.ok) return replyError(stream, headers, record, 503, 'no-endpoints', `no healthy upstream: ${selected.error.message}`);
    const lease = selected.value;
    const { endpoint } = lease;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      if (timer) clearTimeout(timer);
      lease.release();
    };
    let responded = false;
    let recorded = false;
    let bytesSent = 0;
    let bytesReceived = 0;
    const endRecord = (flags?: ResponseFlag[], error?: unknown): void => {
      if (recorded) return;
      recorded = true;
      record.end({ bytesSent, bytesReceived, upstream: endpoint.key, destination: endpoint.peer, mtls: ctx.direction === 'outbound' ? this.dial.mtlsFor(endpoint) : undefined, flags, error });
    };
    const fail = (status: number, kind: ProxyErrorKind, message: string): void => {
      recorded = true;
      replyError(stream, headers, record, status, kind, message, endpoint.key);
    };
    let sentUpstream: http2.ClientHttp2Stream | undefined;
    const timer = target.timeoutMs
      ? setTimeout(() => {
          if (responded) return;
          lease.failed('timeout');
          fail(504, 'timeout', `upstream request timeout after ${target.timeoutMs} ms`);
          // The answer is given: the endpoint's stream must go too, or its late answer finds it.
          if (sentUpstream && !sentUpstream.closed) sentUpstream.close(NGHTTP2_CANCEL);
          release();
        }, target.timeoutMs)
      : undefined;

    this.pool.get(endpoint).then(
      (session) => {
        if (stream.destroyed || stream.closed || released) {
          endRecord(['DC']);
          return release();
        }
        const upHeaders: Headers = forwardableH2Headers(headers);
        for (const name of TRACE_HEADERS) delete upHeaders[name];
        Object.assign(upHeaders, record.upstreamHeaders());
        editHeaders(upHeaders, target, ctx);
        upHeaders[':method'] = String(headers[':method'] ?? 'GET');
        upHeaders[':path'] = String(headers[':path'] ?? '/');
        upHeaders[':scheme'] = String(headers[':scheme'] ?? 'http');
        upHeaders[':authority'] = String(headers[':authority'] ?? headers.host ?? endpoint.key);
        let upstream: http2.ClientHttp2Stream;
        try {
          upstream = session.request(upHeaders, { endStream });
        } catch (error) {
          // A session closing (GOAWAY) between pool.get() and here: nothing was sent, the
          // endpoint is not at fault, and a fresh session or another endpoint may take it.
          release();
          if (attempt < MAX_REFUSED_ATTEMPTS && !stream.destroyed) return this.attempt(stream, headers, endStream, ctx, target, record, attempt + 1, replay);
          return fail(503, 'reset', `upstream session unusable: ${(error as Error).message}`);
        }
        sentUpstream = upstream;
        // REFUSED_STREAM before any answer: the endpoint did not process the stream (RFC 9113
        // 8.7), e.g. it raced the endpoint's graceful GOAWAY. Send it again rather than fail it.
        const refused = (): boolean => !responded && upstream.rstCode === NGHTTP2_REFUSED_STREAM;
        const sent: Buffer[] = [];
        let sentBytes = replay.reduce((n, chunk) => n + chunk.length, 0);
        let overflow = false;
        let trailers: Headers | undefined;
        upstream.on('response', (resHeaders, resFlags) => {
          responded = true;
          if (resHeaders[PROXY_ERROR_HEADER] === 'connect') lease.failed('connect');
          else lease.succeeded();
          // Already answered by the proxy (timeout): respond() again would throw.
          if (stream.destroyed || stream.closed || stream.headersSent) return;
          const out: Headers = forwardableH2Headers(resHeaders);
          const status = Number(resHeaders[':status'] ?? 502);
          out[':status'] = String(status);
          record.response(status, resHeaders['grpc-status'] as string | undefined);
          if ((resFlags & NGHTTP2_FLAG_END_STREAM) !== 0) {
            // Trailers-only (e.g. a gRPC error): one HEADERS frame with END_STREAM.
            stream.respond(out, { endStream: true });
            endRecord();
            return;
          }
          stream.respond(out, { waitForTrailers: true });
          upstream.on('data', (chunk: Buffer) => (bytesSent += chunk.length));
          upstream.pipe(stream);
        });
        upstream.on('trailers', (t) => {
          trailers = forwardableH2Headers(t);
          if (t['grpc-status'] !== undefined) record.response(undefined, String(t['grpc-status']));
        });
        const onWantTrailers = (): void => {
          if (trailers && Object.keys(trailers).length > 0) stream.sendTrailers(trailers);
          else stream.sendTrailers({}); // Node then ends the stream with an empty END_STREAM DATA frame
          endRecord();
        };
        stream.on('wantTrailers', onWantTrailers);
        upstream.on('error', (error) => {
          if (refused()) return; // 'close' sends it again
          if (!responded) {
            lease.failed('reset');
            fail(502, 'reset', `upstream reset: ${error.message}`);
          } else {
            if (!stream.closed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
            endRecord(['UR'], error);
          }
          release();
        });
        upstream.on('close', () => {
          if (refused() && !stream.closed && !stream.headersSent) {
            stream.unpipe(upstream);
            stream.off('data', onData);
            stream.off('wantTrailers', onWantTrailers);
            stream.off('close', onClientClose);
            release(); // not a failure of the endpoint: it is going away in good order
            if (!overflow && attempt < MAX_REFUSED_ATTEMPTS) {
              log.debug({ upstream: endpoint.key }, 'stream refused by the endpoint; sending it again');
              return this.attempt(stream, headers, endStream, ctx, target, record, attempt + 1, [...replay, ...sent]);
            }
            return fail(503, 'reset', 'upstream refused the stream');
          }
          if (!responded && !stream.closed && !stream.headersSent) {
            fail(502, 'reset', `upstream closed the stream (code ${upstream.rstCode ?? 0})`);
          } else if (upstream.rstCode && upstream.rstCode !== 0 && !stream.closed) {
            stream.close(upstream.rstCode);
            endRecord(['UR']);
          } else if (responded && !stream.closed && !endStream && !stream.readableEnded) {
            // The endpoint answered in full and stopped reading the request (RST_STREAM NO_ERROR,
            // RFC 9113 8.1): tell the client the same once the answer is out, or it uploads forever.
            stream.unpipe(upstream);
            const stop = (): void => {
              if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
            };
            if (stream.writableEnded) stop();
            else stream.once('finish', stop);
          }
          release();
        });
        const onClientClose = (): void => {
          if (!upstream.closed) upstream.close(NGHTTP2_CANCEL);
          endRecord(stream.rstCode ? ['DC'] : undefined);
          release();
        };
        stream.on('close', onClientClose);
        const onData = (chunk: Buffer): void => {
          bytesReceived += chunk.length;
          if (responded || overflow) return;
          sentBytes += chunk.length;
          if (sentBytes > REPLAY_LIMIT) overflow = true;
          else sent.push(chunk);
        };
        if (!endStream) {
          for (const chunk of replay) upstream.write(chunk);
          stream.on('data', onData);
          if (stream.readableEnded) upstream.end();
          else stream.pipe(upstream);
        }
      },
      (error: NodeJS.ErrnoException) => {
        lease.failed(isConnectFailure(error) ? 'connect' : 'reset');
        this.telemetry.metrics.upstreamConnectFailure(target.selector.name);
        release();
        log.warn({ upstream: endpoint.key, cluster: target.selector.name, err: error.message }, 'upstream connect failed');
        // No byte of this stream was sent: any endpoint may take it, body or not.
        if (attempt < Math.min(3, target.selector.size) && !stream.destroyed) {
          return this.attempt(stream, headers, endStream, ctx, target, record, attempt + 1);
        }
        fail(503, 'connect', `upstream connect error: ${error.code ?? error.message}`);
      },
    );
  }
}

function editHeaders(headers: Headers, target: HttpRouteTarget, ctx: HttpConnectionContext): void {
  const edit = target.requestHeaders;
  for (const name of edit?.remove ?? []) delete headers[name.toLowerCase()];
  for (const [n, v] of edit?.set ?? []) headers[n.toLowerCase()] = v;
  for (const [n, v] of edit?.add ?? []) {
    const key = n.toLowerCase();
    const prev = headers[key];
    headers[key] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
  }
  for (const [n, v] of ctx.addHeaders ?? []) headers[n.toLowerCase()] = v;
}
