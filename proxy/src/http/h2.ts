// HTTP/2 and gRPC forwarding: every stream picks its own endpoint, so one long-lived client
// connection spreads over all replicas. Streams are multiplexed onto pooled upstream sessions;
// headers, bodies and trailers (grpc-status) pass through with HTTP/2 flow control.
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { logger } from '@tsmesh/common';
import { forwardableH2Headers } from './headers.js';
import { httpContextOf, type HttpConnectionContext, type HttpRequestInfo, type HttpRouteTarget } from './context.js';
import { H2SessionPool } from './h2-pool.js';
import { isConnectFailure } from './errors.js';

const log = logger('http.h2');
const NGHTTP2_FLAG_END_STREAM = 0x1; // HEADERS/DATA frame flag (RFC 9113 6.1)
const NGHTTP2_CANCEL = http2.constants.NGHTTP2_CANCEL;

export interface H2Options {
  readonly connectTimeoutMs: number;
  readonly maxConcurrentStreams: number;
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
function replyError(stream: ServerHttp2Stream, reqHeaders: IncomingHttpHeaders, status: number, message: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const safe = message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200);
  if (isGrpc(reqHeaders)) {
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatusFor(status)), 'grpc-message': encodeURIComponent(safe), 'x-tsmesh-error': safe },
      { endStream: true },
    );
    return;
  }
  stream.respond({ ':status': status, 'content-type': 'text/plain', 'x-tsmesh-error': safe });
  stream.end(`${safe}\n`);
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

  constructor(options: H2Options) {
    this.pool = new H2SessionPool(options.connectTimeoutMs);
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
    const ctx = httpContextOf(stream.session?.socket);
    if (!ctx) return replyError(stream, headers, 500, 'no connection context');
    const routed = ctx.route(requestInfo(headers));
    if (!routed.ok) return replyError(stream, headers, routed.error.code === 'TSMESH_ERR_NO_ROUTE' ? 404 : 503, routed.error.message);
    const target = routed.value;
    if (target.directStatus !== undefined) return replyError(stream, headers, target.directStatus, `route ${target.routeName ?? ''} has no usable backend`);
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    this.attempt(stream, headers, endStream, ctx, target, 1);
  }

  private attempt(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, endStream: boolean, ctx: HttpConnectionContext, target: HttpRouteTarget, attempt: number): void {
    const selected = target.selector.select();
    if (!selected.ok) return replyError(stream, headers, 503, `no healthy upstream: ${selected.error.message}`);
    const lease = selected.value;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      if (timer) clearTimeout(timer);
      lease.release();
    };
    let responded = false;
    const timer = target.timeoutMs
      ? setTimeout(() => {
          if (responded) return;
          lease.failed('timeout');
          replyError(stream, headers, 504, `upstream request timeout after ${target.timeoutMs} ms`);
          release();
        }, target.timeoutMs)
      : undefined;

    this.pool.get(lease.endpoint).then(
      (session) => {
        if (stream.destroyed || stream.closed || released) return release();
        const upHeaders: Headers = forwardableH2Headers(headers);
        editHeaders(upHeaders, target, ctx);
        upHeaders[':method'] = String(headers[':method'] ?? 'GET');
        upHeaders[':path'] = String(headers[':path'] ?? '/');
        upHeaders[':scheme'] = String(headers[':scheme'] ?? 'http');
        upHeaders[':authority'] = String(headers[':authority'] ?? headers.host ?? lease.endpoint.key);
        let upstream: http2.ClientHttp2Stream;
        try {
          upstream = session.request(upHeaders, { endStream });
        } catch (error) {
          lease.failed('reset');
          release();
          return replyError(stream, headers, 503, `upstream session unusable: ${(error as Error).message}`);
        }
        let trailers: Headers | undefined;
        upstream.on('response', (resHeaders, resFlags) => {
          responded = true;
          lease.succeeded();
          if (stream.destroyed || stream.closed) return;
          const out: Headers = forwardableH2Headers(resHeaders);
          out[':status'] = String(resHeaders[':status'] ?? 502);
          if ((resFlags & NGHTTP2_FLAG_END_STREAM) !== 0) {
            // Trailers-only (e.g. a gRPC error): one HEADERS frame with END_STREAM.
            stream.respond(out, { endStream: true });
            return;
          }
          stream.respond(out, { waitForTrailers: true });
          upstream.pipe(stream);
        });
        upstream.on('trailers', (t) => {
          trailers = forwardableH2Headers(t);
        });
        stream.on('wantTrailers', () => {
          if (trailers && Object.keys(trailers).length > 0) stream.sendTrailers(trailers);
          else stream.sendTrailers({}); // Node then ends the stream with an empty END_STREAM DATA frame
        });
        upstream.on('error', (error) => {
          if (!responded) {
            lease.failed('reset');
            replyError(stream, headers, 502, `upstream reset: ${error.message}`);
          } else if (!stream.closed) {
            stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          }
          release();
        });
        upstream.on('close', () => {
          if (!responded && !stream.closed && !stream.headersSent) {
            replyError(stream, headers, 502, `upstream closed the stream (code ${upstream.rstCode ?? 0})`);
          } else if (upstream.rstCode && upstream.rstCode !== 0 && !stream.closed) {
            stream.close(upstream.rstCode);
          }
          release();
        });
        stream.on('close', () => {
          if (!upstream.closed) upstream.close(NGHTTP2_CANCEL);
          release();
        });
        if (!endStream) stream.pipe(upstream);
      },
      (error: NodeJS.ErrnoException) => {
        lease.failed(isConnectFailure(error) ? 'connect' : 'reset');
        release();
        log.warn({ upstream: lease.endpoint.key, cluster: target.selector.name, err: error.message }, 'upstream connect failed');
        // No byte of this stream was sent: any endpoint may take it, body or not.
        if (attempt < Math.min(3, target.selector.size) && !stream.destroyed) {
          return this.attempt(stream, headers, endStream, ctx, target, attempt + 1);
        }
        replyError(stream, headers, 503, `upstream connect error: ${error.code ?? error.message}`);
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
