// HTTP/1.1 forwarding: every request picks its own endpoint; upstream connections are pooled
// (keep-alive, mesh mTLS to meshed pods). Bodies stream both ways with backpressure; trailers,
// 100-continue, early hints and upgrades (WebSocket) pass through. A failing request is
// answered alone (and says so in x-tsmesh-proxy-error); the proxy stays up. An answer the route's
// retry policy retries, or a try past timeouts.backendRequest, is dropped before the client sees
// it and the request goes again after the backoff, its body replayed from a bounded buffer.
import type * as http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { logger, nodeHttp } from '@tsmesh/common';
import { forwardableRawHeaders } from './headers.js';
import {
  httpContextOf,
  PROXY_ERROR_HEADER,
  RESPONSE_FLAG_OF,
  routeRequest,
  type HttpConnectionContext,
  type HttpRequestInfo,
  type HttpRouteTarget,
  type ProxyErrorKind,
} from './context.js';
import { hostPort, pickContextFor } from '../upstream/selector.js';
import { metricsRecorder, plainCalls, type CallFactory, type UpstreamCall } from '../upstream/call.js';
import { backoffDelay, REPLAY_LIMIT, retriesStatus } from '../upstream/retry.js';
import { PROXY_ERRORS } from '../errors.js';
import { plainDialer, type Dialer } from '../upstream/dial.js';
import { CONNECTION_LIMIT, H1UpstreamPool } from '../upstream/h1-pool.js';
import type { UpstreamLease } from '../upstream/selector.js';
import { isConnectFailure } from '../upstream/connect-failure.js';
import { answerRedirect, responseRawHeaders, upstreamRawHeaders, withSessionRaw } from './filters.js';
import { h1MirrorSender, mirrorAuthority, mirrorHeadersH1, mirrorTee, teeIncoming, type MirrorCounter, type MirrorSender } from './mirror.js';
import { tunnelUpgrade } from './upgrade.js';
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
function reply(res: ServerResponse, record: RequestRecord, status: number, kind: ProxyErrorKind, message: string, upstream?: string, attempts?: number): void {
  const flag = RESPONSE_FLAG_OF[kind];
  if (res.headersSent) {
    res.destroy();
    record.end({ upstream, flags: flag ? [flag] : undefined, error: message, attempts });
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
  record.end({ bytesSent: Buffer.byteLength(body), upstream, flags: flag ? [flag] : undefined, error: message, attempts });
}

/** What the tries of one request share: the body kept for a retry, and the whole request's deadline. */
interface Tries {
  /** The request body so far while it is under REPLAY_LIMIT and the route retries; else undefined. */
  replay: Buffer[] | undefined;
  replayBytes: number;
  /** performance.now() at which timeouts.request passes, over every try and backoff. */
  readonly deadline: number | undefined;
}

/** One proxied request over all its tries: what every try, wait and backoff works on. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly ctx: HttpConnectionContext;
  readonly target: HttpRouteTarget;
  readonly record: RequestRecord;
  /** The client sent `Expect: 100-continue`: the upstream's 100 is passed on. */
  readonly expectContinue: boolean;
  readonly call: UpstreamCall;
  readonly tries: Tries;
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
export function sendBody(req: IncomingMessage, upstream: http.ClientRequest, counted: (bytes: number) => void, replayed?: readonly Buffer[]): void {
  // A retry: the body read so far goes first; what is still to come follows as usual.
  if (replayed) {
    for (const chunk of replayed) upstream.write(chunk);
    if (req.readableEnded) {
      upstream.end();
      return;
    }
  }
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
    this.server = nodeHttp.createServer({
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
    const info = requestInfo(req);
    const { record, routed } = routeRequest(this.telemetry, httpContextOf(req.socket), info, 'http1', req.headers, hostPort(req.socket.remoteAddress, req.socket.remotePort));
    if (!routed.ok) return reply(res, record, routed.status, routed.kind, routed.message);
    const { target, ctx } = routed;
    if (target.redirect) return answerRedirect(res, record, target);
    teeIncoming(req, mirrorTee(this.mirrors, this.countMirror, target, () => ({ method: info.method, path: target.path ?? info.url, authority: mirrorAuthority(target, info.authority), headers: mirrorHeadersH1(req.rawHeaders, target, ctx) })));
    const tries: Tries = { replay: undefined, replayBytes: 0, deadline: target.timeoutMs ? performance.now() + target.timeoutMs : undefined };
    if (target.retry && hasBody(req)) {
      tries.replay = [];
      req.on('data', (chunk: Buffer) => {
        if (!tries.replay) return;
        tries.replayBytes += chunk.length;
        if (tries.replayBytes > REPLAY_LIMIT) tries.replay = undefined;
        else tries.replay.push(chunk);
      });
    }
    const call = this.calls(target.selector, 'http1', pickContextFor(target.selector, info, req.socket.remoteAddress));
    this.attempt({ req, res, ctx, target, record, expectContinue, call, tries });
  }

  /** The cluster is at maxConnections: the try waits for a slot (within timeouts.request), unless maxPendingRequests already wait (503 UO). */
  private waitForConnection(x: Exchange, lease: UpstreamLease): void {
    const { res, target, record, call, tries } = x;
    const gate = call.gate;
    call.limited('max_connections');
    const wake = (): void => {
      res.off('close', gone);
      if (timer) clearTimeout(timer);
      this.attempt(x, lease);
    };
    const gone = (): void => {
      gate?.cancel(wake);
      if (timer) clearTimeout(timer);
      call.release();
      record.end({ upstream: lease.endpoint.key, flags: ['DC'], attempts: call.attempts });
    };
    if (!gate?.wait(wake)) {
      call.limited('max_pending');
      call.release();
      return reply(res, record, 503, 'overflow', `${call.cluster}: over the cluster's max pending requests limit (circuit breaker)`, undefined, call.attempts);
    }
    res.once('close', gone);
    const timer =
      tries.deadline === undefined
        ? undefined
        : setTimeout(() => {
            gate.cancel(wake);
            res.off('close', gone);
            call.failed('timeout');
            call.release();
            reply(res, record, 504, 'timeout', `upstream request timeout after ${target.timeoutMs} ms`, lease.endpoint.key, call.attempts);
          }, Math.max(0, tries.deadline - performance.now()));
  }

  /** Sends the request again after `ms` (the retry's backoff, cut short by the request's deadline). */
  private retryLater(x: Exchange, ms: number): void {
    const { res, target, record, call, tries } = x;
    // A backoff that ends past timeouts.request is not waited out for a try that could not finish.
    const expires = tries.deadline !== undefined && performance.now() + ms >= tries.deadline;
    const left = tries.deadline === undefined ? ms : Math.max(0, Math.min(ms, tries.deadline - performance.now()));
    const gone = (): void => {
      clearTimeout(timer);
      call.release();
      record.end({ upstream: call.lease?.endpoint.key, flags: ['DC'], attempts: call.attempts });
    };
    const timer = setTimeout(() => {
      res.off('close', gone);
      if (expires) {
        call.release();
        return reply(res, record, 504, 'timeout', `upstream request timeout after ${target.timeoutMs} ms`, call.lease?.endpoint.key, call.attempts);
      }
      this.attempt(x);
    }, left);
    res.once('close', gone);
  }

  /** One try; `leased`: the lease of a try that waited for a connection slot (no new pick). */
  private attempt(x: Exchange, leased?: UpstreamLease): void {
    const { req, res, ctx, target, record, expectContinue, call, tries } = x;
    const selected = leased ? { ok: true as const, value: leased } : call.next();
    if (!selected.ok) {
      call.release();
      if (selected.error.code === PROXY_ERRORS.OVERFLOW) return reply(res, record, 503, 'overflow', selected.error.message, undefined, call.attempts);
      return reply(res, record, 503, 'no-endpoints', `no healthy upstream: ${selected.error.message}`, undefined, call.attempts);
    }
    const { endpoint } = selected.value;
    const policy = target.retry;
    const method = req.method ?? 'GET';
    const replayable = (): boolean => !hasBody(req) || tries.replay !== undefined;
    const replayed = call.attempts > 1 && hasBody(req) ? tries.replay : undefined;
    let responded = false;
    let done = false;
    let bytesReceived = replayed ? tries.replayBytes : 0;
    let bytesSent = 0;
    /** This attempt is over; `last`: so is the call (its lease and limits are released). */
    const finish = (last = true): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      if (tryTimer) clearTimeout(tryTimer);
      if (last) call.release();
    };

    const requested = this.pool.request(
      endpoint,
      { method: req.method, path: target.path ?? req.url, headers: upstreamHeaders(req, ctx, target, record) as unknown as http.OutgoingHttpHeaders, setHost: false },
      call.gate,
    );
    if (!requested) return this.waitForConnection(x, selected.value);
    const upstream = requested;

    const timer =
      tries.deadline !== undefined
        ? setTimeout(() => {
            if (!responded) {
              call.failed('timeout');
              upstream.destroy();
              reply(res, record, 504, 'timeout', `upstream request timeout after ${target.timeoutMs} ms`, endpoint.key, call.attempts);
              finish();
            }
          }, Math.max(0, tries.deadline - performance.now()))
        : undefined;
    // timeouts.backendRequest: the try is cancelled, then sent again when the policy allows, else 504.
    const tryTimer = target.tryTimeoutMs
      ? setTimeout(() => {
          if (responded || done) return;
          call.failed('timeout');
          upstream.destroy();
          finish(false);
          if (policy && IDEMPOTENT.has(method) && replayable() && call.mayRetry('policy', policy.attempts)) {
            return this.retryLater(x, backoffDelay(policy, call.attempts));
          }
          call.release();
          reply(res, record, 504, 'timeout', `upstream request timeout after ${target.tryTimeoutMs} ms (timeouts.backendRequest)`, endpoint.key, call.attempts);
        }, target.tryTimeoutMs)
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
      const answered = ures.statusCode ?? 502;
      // An answer the policy retries, not forwarded yet: dropped with its connection; the request goes again.
      if (policy && !res.headersSent && !res.destroyed && retriesStatus(policy, method, answered) && replayable() && call.mayRetry('policy', policy.attempts)) {
        if (ures.headers[PROXY_ERROR_HEADER] === 'connect') call.failed('connect');
        else {
          call.responded(answered);
          call.failed('status');
        }
        ures.destroy();
        upstream.destroy();
        finish(false);
        return this.retryLater(x, backoffDelay(policy, call.attempts));
      }
      responded = true;
      tries.replay = undefined;
      // The peer sidecar could not reach its application: that endpoint is failing.
      if (ures.headers[PROXY_ERROR_HEADER] === 'connect') call.failed('connect');
      else call.responded(ures.statusCode ?? 502);
      if (res.destroyed) {
        ures.destroy();
        record.end({ upstream: endpoint.key, destination: endpoint.peer, mtls: ctx.direction === 'outbound' ? this.dial.mtlsFor(endpoint) : undefined, flags: ['DC'], attempts: call.attempts });
        return finish();
      }
      const status = ures.statusCode ?? 502;
      record.response(status);
      res.writeHead(status, ures.statusMessage, withSessionRaw(responseRawHeaders(forwardableRawHeaders(ures.rawHeaders), target), call.sessionHeader()) as unknown as http.OutgoingHttpHeaders);
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
        record.end({ bytesSent, bytesReceived, upstream: endpoint.key, destination: endpoint.peer, mtls: ctx.direction === 'outbound' ? this.dial.mtlsFor(endpoint) : undefined, attempts: call.attempts });
        finish();
      });
      ures.on('error', (error) => {
        res.destroy();
        record.end({ bytesSent, bytesReceived, upstream: endpoint.key, destination: endpoint.peer, mtls: ctx.direction === 'outbound' ? this.dial.mtlsFor(endpoint) : undefined, flags: ['UC'], error, attempts: call.attempts });
        finish();
      });
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (done) return;
      if (error.code === CONNECTION_LIMIT) {
        finish();
        return reply(res, record, 503, 'overflow', `${call.cluster}: over the cluster's max connections limit (circuit breaker)`, endpoint.key, call.attempts);
      }
      if (!responded && isConnectFailure(error)) {
        call.failed('connect');
        finish(false);
        log.warn({ upstream: endpoint.key, cluster: call.cluster, err: error.message }, 'upstream connect failed');
        // Nothing was sent yet: another endpoint may take a request without a body.
        if (!hasBody(req) && call.mayRetry()) return this.attempt(x);
        call.release();
        return reply(res, record, 503, 'connect', `upstream connect error: ${error.code ?? error.message}`, endpoint.key, call.attempts);
      }
      if (!responded && upstream.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && !hasBody(req) && IDEMPOTENT.has(req.method ?? '') && call.mayRetry('transparent')) {
        // A pooled keep-alive connection the endpoint closed just as it was reused: the endpoint
        // is fine (not held against it); an idempotent request goes again on a fresh connection.
        call.failed('refused');
        finish(false);
        log.debug({ upstream: endpoint.key, err: error.message }, 'pooled connection was closed by the endpoint; sending again');
        return this.attempt(x);
      }
      call.failed('reset');
      log.warn({ upstream: endpoint.key, err: error.message }, 'upstream reset');
      reply(res, record, 502, 'reset', `upstream reset: ${error.code ?? error.message}`, endpoint.key, call.attempts);
      finish();
    });
    res.on('close', () => {
      if (!res.writableFinished) {
        upstream.destroy();
        if (!done) record.end({ bytesSent, bytesReceived, upstream: endpoint.key, destination: endpoint.peer, mtls: ctx.direction === 'outbound' ? this.dial.mtlsFor(endpoint) : undefined, flags: ['DC'], attempts: call.attempts });
      }
      finish();
    });

    if (hasBody(req)) {
      sendBody(req, upstream, (n) => (bytesReceived += n), replayed);
    } else {
      upstream.end();
      req.resume();
    }
  }

  private onUpgrade(req: IncomingMessage, client: Duplex, head: Buffer): void {
    const request = { info: requestInfo(req), httpVersion: req.httpVersion, rawHeaders: req.rawHeaders, pending: () => (head.length > 0 ? [head] : []) };
    tunnelUpgrade(client, httpContextOf(req.socket), request, { calls: this.calls, dial: this.dial, connectTimeoutMs: this.options.connectTimeoutMs });
  }
}
