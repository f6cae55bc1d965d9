// HTTP/1.1 forwarding: every request picks its own endpoint; upstream connections are pooled
// (keep-alive, mesh mTLS to meshed pods). Bodies stream both ways with backpressure; trailers,
// 100-continue, early hints and upgrades (WebSocket) pass through. A failing request is
// answered alone (and says so in x-tsmesh-proxy-error); the proxy stays up.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { logger } from '@tsmesh/common';
import { forwardableRawHeaders, MESH_OWNED } from './headers.js';
import {
  httpContextOf,
  PROXY_ERROR_HEADER,
  RESPONSE_FLAG_OF,
  routeFailure,
  type HttpConnectionContext,
  type HttpRequestInfo,
  type HttpRouteTarget,
  type ProxyErrorKind,
} from './context.js';
import { hostPort } from '../upstream/selector.js';
import { metricsRecorder, plainCalls, type CallFactory, type UpstreamCall } from '../upstream/call.js';
import { PROXY_ERRORS } from '../errors.js';
import { pickContextOf } from '../balance/hash-key.js';
import { armConnectTimeout, plainDialer, type Dialer } from '../upstream/dial.js';
import { H1UpstreamPool } from '../upstream/h1-pool.js';
import { isConnectFailure } from './errors.js';
import { answerRedirect, responseRawHeaders, upstreamRawHeaders } from './filters.js';
import { h1MirrorSender, mirrorAuthority, mirrorHeadersH1, mirrorTee, teeIncoming, type MirrorCounter, type MirrorSender } from './mirror.js';
import { TRACE_HEADERS, type RequestRecord, type RequestTelemetry } from '../telemetry/index.js';

const log = logger('http.h1');
const TRACE_HEADER_SET = new Set(TRACE_HEADERS);

export interface H1Options {
  readonly connectTimeoutMs: number;
  readonly maxHeaderBytes: number;
  /** Idle keep-alive time for client connections and for pooled upstream connections. */
  readonly keepAliveTimeoutMs: number;
}

export interface H1Deps {
  readonly telemetry: RequestTelemetry;
  readonly dial?: Dialer;
  /** Makes each request's upstream call (the upstream layer's, with its cluster limits); default: plain calls counted in the metrics. */
  readonly calls?: CallFactory;
}

function requestInfo(req: IncomingMessage): HttpRequestInfo {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    authority: req.headers.host ?? '',
    header: (name) => {
      const v = req.headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(',') : v;
    },
  };
}

/** Methods a proxy may send twice (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Relays a 103 Early Hints response (its end-to-end headers); Node sends one only when it carries a Link. */
function writeEarlyHints(res: ServerResponse, rawHeaders: readonly string[]): void {
  const hints: Record<string, string | string[]> = {};
  const raw = forwardableRawHeaders(rawHeaders);
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    const prev = hints[name];
    hints[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  try {
    res.writeEarlyHints(hints);
  } catch (error) {
    log.debug({ err: (error as Error).message }, 'early hints not relayed');
  }
}

/** Answers a request the proxy cannot forward, records it, and marks it as the proxy's own answer. */
function reply(res: ServerResponse, record: RequestRecord, status: number, kind: ProxyErrorKind, message: string, upstream?: string): void {
  const flag = RESPONSE_FLAG_OF[kind];
  if (res.headersSent) {
    res.destroy();
    record.end({ upstream, flags: flag ? [flag] : undefined, error: message });
    return;
  }
  const body = `${message}\n`;
  record.response(status);
  res.writeHead(status, {
    'content-type': 'text/plain',
    'content-length': Buffer.byteLength(body),
    'x-tsmesh-error': message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 120),
    [PROXY_ERROR_HEADER]: kind,
  });
  res.end(body);
  record.end({ bytesSent: Buffer.byteLength(body), upstream, flags: flag ? [flag] : undefined, error: message });
}

function upstreamHeaders(req: IncomingMessage, ctx: HttpConnectionContext, target: HttpRouteTarget, record: RequestRecord): string[] {
  // The incoming trace headers are replaced by the ones of this hop's span.
  const pairs: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? '';
    if (TRACE_HEADER_SET.has(name.toLowerCase())) continue;
    pairs.push(name, req.rawHeaders[i + 1] ?? '');
  }
  const kept = forwardableRawHeaders(pairs);
  for (const [name, value] of Object.entries(record.upstreamHeaders())) kept.push(name, value);
  const headers = upstreamRawHeaders(kept, target, ctx);
  // Transfer-Encoding is hop-by-hop, but a chunked body must stay framed: Node chunks only
  // POST/PUT/PATCH by default, and an unframed GET/DELETE body reads upstream as a next request.
  if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] === undefined) headers.push('transfer-encoding', 'chunked');
  return headers;
}

/**
 * Streams a request body upstream with backpressure. The chunks one read of the client's
 * connection produced go out together once it is parsed; when that completed the request they go
 * with `end()`, so a body the client sent at once leaves in one write with its head (and, chunked,
 * with its last-chunk marker).
 * @internal exported for its tests
 */
export function sendBody(req: IncomingMessage, upstream: http.ClientRequest, counted: (bytes: number) => void): void {
  let pending: Buffer[] = [];
  let scheduled = false;
  const resume = (): void => {
    req.resume();
  };
  const send = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const chunks = pending;
    pending = [];
    if (upstream.destroyed || upstream.writableEnded) return;
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) upstream.write(chunks[i]);
    // The parser has seen the whole message and nothing is left to read: this is the end.
    if (req.complete && req.readableLength === 0) {
      upstream.end(chunks[last]);
      return;
    }
    if (!upstream.write(chunks[last])) {
      req.pause();
      upstream.once('drain', resume);
    }
  };
  req.on('data', (chunk: Buffer) => {
    counted(chunk.length);
    // Upstream gone (timeout, reset) or already answered and closed: the rest is read and dropped.
    if (upstream.destroyed || upstream.writableEnded) return;
    pending.push(chunk);
    if (!scheduled) {
      scheduled = true;
      // Not nextTick: the parser's callbacks for one read run apart, and the tick queue drains
      // between the last body chunk and the message's end. By the check phase the read is parsed.
      setImmediate(send);
    }
  });
  req.on('end', () => {
    send();
    if (!upstream.writableEnded && !upstream.destroyed) upstream.end();
  });
  upstream.once('close', resume);
}

export class H1Forwarder {
  readonly server: http.Server;
  /** Upstream keep-alive connections (per endpoint and expected identity); pruned when the mesh changes. */
  readonly pool: H1UpstreamPool;
  private readonly telemetry: RequestTelemetry;
  private readonly dial: Dialer;
  private readonly calls: CallFactory;
  /** RequestMirror copies, on this engine's upstream pool. */
  private readonly mirrors: MirrorSender;
  private readonly countMirror: MirrorCounter;
  private draining = false;
  /** Responses not finished yet: a drain turns their keep-alive off before their head goes out. */
  private readonly inFlight = new Set<ServerResponse>();

  constructor(
    private readonly options: H1Options,
    deps: H1Deps,
  ) {
    this.telemetry = deps.telemetry;
    this.dial = deps.dial ?? plainDialer;
    this.calls = deps.calls ?? plainCalls(metricsRecorder(deps.telemetry.metrics));
    this.pool = new H1UpstreamPool({ connectTimeoutMs: options.connectTimeoutMs, idleTimeoutMs: options.keepAliveTimeoutMs }, this.dial);
    this.countMirror = (cluster, result) => deps.telemetry.metrics.routeMirror(cluster, result);
    this.mirrors = h1MirrorSender(() => this.pool, this.calls, this.countMirror);
    this.server = http.createServer({
      maxHeaderSize: options.maxHeaderBytes,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      headersTimeout: 30_000,
      requestTimeout: 0, // long-lived streaming requests are legitimate
      noDelay: true,
    });
    // A client may half-close after its request (RFC 9112 9.6: `printf ... | nc`, HTTP/1.0 tools):
    // the answer in flight is still sent, then the connection closes. Without this, Node aborts
    // the request on the client's FIN.
    (this.server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.server.on('request', (req, res) => this.onRequest(req, res, false));
    this.server.on('checkContinue', (req, res) => this.onRequest(req, res, true));
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      log.debug({ err: error.message, code: error.code }, 'client error');
      if ((socket as Socket).writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      else socket.destroy();
    });
  }

  /** Hands a detected HTTP/1 connection (with its context attached) to the server. */
  accept(socket: Socket): void {
    this.server.emit('connection', socket);
    socket.resume();
  }

  /**
   * Graceful drain: idle keep-alive connections close now; a request in flight or arriving on an
   * open connection is answered with `Connection: close`, so its connection ends after it.
   */
  drain(): void {
    this.draining = true;
    for (const res of this.inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
    this.server.closeIdleConnections();
  }

  close(): void {
    this.pool.close();
    this.server.close();
    this.server.closeAllConnections();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    if (this.draining) res.shouldKeepAlive = false;
    else {
      this.inFlight.add(res);
      res.once('close', () => this.inFlight.delete(res));
    }
    const ctx = httpContextOf(req.socket);
    const info = requestInfo(req);
    const record = this.telemetry.startRequest({
      reporter: ctx?.direction === 'inbound' ? 'destination' : 'source',
      direction: ctx?.direction,
      method: info.method,
      authority: info.authority,
      path: info.url,
      protocol: 'http1',
      headers: req.headers,
      source: ctx?.source ?? {},
      destination: ctx?.destination ?? {},
      mtls: ctx?.mtls ?? false,
      downstream: hostPort(req.socket.remoteAddress, req.socket.remotePort),
    });
    if (!ctx) return reply(res, record, 500, 'internal', 'no connection context');
    const routed = ctx.route(info);
    if (!routed.ok) {
      const failure = routeFailure(routed.error);
      return reply(res, record, failure.status, failure.kind, routed.error.message);
    }
    const target = routed.value;
    if (target.directStatus !== undefined) return reply(res, record, target.directStatus, 'route-backend', `route ${target.routeName ?? ''} has no usable backend`);
    if (target.redirect) return answerRedirect(res, record, target);
    teeIncoming(req, mirrorTee(this.mirrors, this.countMirror, target, () => ({ method: info.method, path: target.path ?? info.url, authority: mirrorAuthority(target, info.authority), headers: mirrorHeadersH1(req.rawHeaders, target, ctx) })));
    const hash = target.selector.hash;
    this.attempt(req, res, ctx, target, record, expectContinue, this.calls(target.selector, 'http1', hash && pickContextOf(hash, info, req.socket.remoteAddress)));
  }

  private attempt(
    req: IncomingMessage,
    res: ServerResponse,
    ctx: HttpConnectionContext,
    target: HttpRouteTarget,
    record: RequestRecord,
    expectContinue: boolean,
    call: UpstreamCall,
  ): void {
    const selected = call.next();
    if (!selected.ok) {
      call.release();
      if (selected.error.code === PROXY_ERRORS.OVERFLOW) return reply(res, record, 503, 'overflow', selected.error.message);
      return reply(res, record, 503, 'no-endpoints', `no healthy upstream: ${selected.error.message}`);
    }
    const { endpoint } = selected.value;
    let responded = false;
    let done = false;
    let bytesReceived = 0;
    let bytesSent = 0;
    /** This attempt is over; `last`: so is the call (its lease and limits are released). */
    const finish = (last = true): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      if (last) call.release();
    };

    const upstream = this.pool.request(endpoint, {
      method: req.method,
      path: target.path ?? req.url,
      headers: upstreamHeaders(req, ctx, target, record) as unknown as http.OutgoingHttpHeaders,
      setHost: false,
    });

    const timer = target.timeoutMs
      ? setTimeout(() => {
          if (!responded) {
            call.failed('timeout');
            upstream.destroy();
            reply(res, record, 504, 'timeout', `upstream request timeout after ${target.timeoutMs} ms`, endpoint.key);
            finish();
          }
        }, target.timeoutMs)
      : undefined;

    upstream.on('continue', () => {
      if (expectContinue && !res.headersSent) res.writeContinue();
    });
    upstream.on('information', (info) => {
      if (res.headersSent) return;
      if (info.statusCode === 102) res.writeProcessing();
      else if (info.statusCode === 103) writeEarlyHints(res, info.rawHeaders);
    });
    upstream.on('response', (ures) => {
      responded = true;
      // The peer sidecar could not reach its application: that endpoint is failing.
      if (ures.headers[PROXY_ERROR_HEADER] === 'connect') call.failed('connect');
      else call.responded(ures.statusCode ?? 502);
      if (res.destroyed) {
        ures.destroy();
        record.end({ upstream: endpoint.key, destination: endpoint.peer, mtls: ctx.direction === 'outbound' ? this.dial.mtlsFor(endpoint) : undefined, flags: ['DC'] });
        return finish();
      }
      const status = ures.statusCode ?? 502;
      record.response(status);
      res.writeHead(status, ures.statusMessage, responseRawHeaders(forwardableRawHeaders(ures.rawHeaders), target) as unknown as http.OutgoingHttpHeaders);
      // By hand rather than pipe(): one listener instead of pipe's seven set up and torn down per response.
      ures.on('data', (chunk: Buffer) => {
        bytesSent += chunk.length;
        if (!res.write(chunk)) {
          ures.pause();
          res.once('drain', () => ures.resume());
        }
      });
      ures.on('end', () => {
        if (ures.rawTrailers.length > 0) {
          const trailers: [string, string][] = [];
          for (let i = 0; i < ures.rawTrailers.length; i += 2) trailers.push([ures.rawTrailers[i] ?? '', ures.rawTrailers[i + 1] ?? '']);
          res.addTrailers(trailers);
        }
        res.end();
        record.end({ bytesSent, bytesReceived, upstream: endpoint.key, destination: endpoint.peer, mtls: ctx.direction === 'outbound' ? this.dial.mtlsFor(endpoint) : undefined });
        finish();
      });
      ures.on('error', (error) => {
        res.destroy();
        record.end({ bytesSent, bytesReceived, upstream: endpoint.key, destination: endpoint.peer, mtls: ctx.direction === 'outbound' ? this.dial.mtlsFor(endpoint) : undefined, flags: ['UC'], error });
        finish();
      });
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (done) return;
      if (!responded && isConnectFailure(error)) {
        call.failed('connect');
        finish(false);
        log.warn({ upstream: endpoint.key, cluster: call.cluster, err: error.message }, 'upstream connect failed');
        // Nothing was sent yet: another endpoint may take a request without a body.
        if (!hasBody(req) && call.mayRetry()) return this.attempt(req, res, ctx, target, record, expectContinue, call);
        call.release();
        return reply(res, record, 503, 'connect', `upstream connect error: ${error.code ?? error.message}`, endpoint.key);
      }
      if (!responded && upstream.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && !hasBody(req) && IDEMPOTENT.has(req.method ?? '') && call.mayRetry('transparent')) {
        // A pooled keep-alive connection the endpoint closed just as it was reused: the endpoint
        // is fine (not held against it); an idempotent request goes again on a fresh connection.
        call.failed('refused');
        finish(false);
        log.debug({ upstream: endpoint.key, err: error.message }, 'pooled connection was closed by the endpoint; sending again');
        return this.attempt(req, res, ctx, target, record, expectContinue, call);
      }
      call.failed('reset');
      log.warn({ upstream: endpoint.key, err: error.message }, 'upstream reset');
      reply(res, record, 502, 'reset', `upstream reset: ${error.code ?? error.message}`, endpoint.key);
      finish();
    });
    res.on('close', () => {
      if (!res.writableFinished) {
        upstream.destroy();
        if (!done) record.end({ bytesSent, bytesReceived, upstream: endpoint.key, destination: endpoint.peer, mtls: ctx.direction === 'outbound' ? this.dial.mtlsFor(endpoint) : undefined, flags: ['DC'] });
      }
      finish();
    });

    if (hasBody(req)) {
      sendBody(req, upstream, (n) => (bytesReceived += n));
    } else {
      upstream.end();
      req.resume();
    }
  }

  private onUpgrade(req: IncomingMessage, client: Duplex, head: Buffer): void {
    const ctx = httpContextOf(req.socket);
    const routed = ctx?.route(requestInfo(req));
    if (!ctx || !routed?.ok) {
      client.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const call = this.calls(routed.value.selector, 'http1');
    const selected = call.next();
    if (!selected.ok) {
      client.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const lease = selected.value;
    const dialed = this.dial(lease.endpoint, 'tcp');
    armConnectTimeout(dialed, this.options.connectTimeoutMs);
    const upstream = dialed.socket;
    let connected = false;
    upstream.once(dialed.readyEvent, () => {
      connected = true;
      call.succeeded();
      // Upgrade requests keep their Connection/Upgrade headers: they are the point of the request.
      // Mesh-owned headers (and those the sidecar adds) are still dropped, as on any request.
      const lines = [`${req.method} ${routed.value.path ?? req.url} HTTP/${req.httpVersion}`];
      const added = new Set((ctx.addHeaders ?? []).map(([n]) => n.toLowerCase()));
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i] ?? '';
        if (MESH_OWNED.has(name.toLowerCase()) || added.has(name.toLowerCase())) continue;
        lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
      }
      for (const [n, v] of ctx.addHeaders ?? []) lines.push(`${n}: ${v}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const close = (): void => {
      call.release();
      upstream.destroy();
      // Not connected (refused, timed out): nothing went upstream, so the client gets an answer.
      if (connected || client.destroyed) client.destroy();
      else if (!client.writableEnded) client.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    };
    upstream.on('error', (error) => {
      if (isConnectFailure(error)) call.failed('connect');
      close();
    });
    client.on('error', close);
    upstream.on('close', close);
    client.on('close', close);
  }
}
