// One HTTP/1.1 request of the relay and its response: route, lease an endpoint, write the
// re-serialised head (and the body at hand) in one write on a pooled upstream connection, relay the
// response as llhttp parses it, and answer failures as http/h1.ts's reply() does. An answer the
// route's retry policy retries, or a try past its timeout, is dropped before the client sees it and
// the request goes again (its body replayed from a bounded buffer) after the backoff.
import type { Socket } from 'node:net';
import { logger, nodeHttp } from '@tsmesh/common';
import { forwardableRawHeaders } from '../http/headers.js';
import {
  PROXY_ERROR_HEADER,
  RESPONSE_FLAG_OF,
  routeRequest,
  type HttpConnectionContext,
  type HttpRequestInfo,
  type HttpRouteTarget,
  type ProxyErrorKind,
} from '../http/context.js';
import { isConnectFailure } from '../upstream/connect-failure.js';
import { redirectRawHeaders, responseRawHeaders, upstreamRawHeaders, withSessionRaw } from '../http/filters.js';
import { mirrorAuthority, mirrorHeadersH1, mirrorTee, type MirrorTee } from '../http/mirror.js';
import { hostPort, pickContextFor, type UpstreamLease } from '../upstream/selector.js';
import type { UpstreamCall } from '../upstream/call.js';
import { backoffDelay, REPLAY_LIMIT, RequestTimers, retriesStatus } from '../upstream/retry.js';
import { PROXY_ERRORS } from '../errors.js';
import type { RequestRecord } from '../telemetry/index.js';
import type { ClientConnection } from './connection.js';
import type { ResponseSink, UpstreamConnection } from './pool.js';
import type { H1Relay } from './relay.js';
import { appendHeaders, CONTINUE, CRLF, headerOf, IDEMPOTENT, LAST_CHUNK, TRACE_HEADER_SET, writableEdits, writeBodyChunk } from './wire.js';

const log = logger('h1.exchange');

/** One request and its response. */
export class Exchange implements ResponseSink {
  record: RequestRecord | undefined;
  target: HttpRouteTarget | undefined;
  /** The upstream call: every attempt, its outcome and the cluster's limits. */
  call: UpstreamCall | undefined;
  /** The lease of the attempt in progress (kept after the call ends, for the record). */
  lease: UpstreamLease | undefined;
  upstream: UpstreamConnection | undefined;
  /** Body bytes parsed before the exchange had an upstream connection to take them. */
  private held: Buffer[] | undefined;
  /** The request body so far, kept for a retry while the route retries and it is under REPLAY_LIMIT. */
  private replay: Buffer[] | undefined = [];
  private replayBytes = 0;
  requestEnded = false;
  private requestTrailers: string[] | undefined;
  /** An upgrade's bytes after its head, for the tunnel. */
  upgradeHead: Buffer[] = [];
  private responded = false;
  /** Whether the client got this exchange's response head (an answer can no longer replace it). */
  headSent = false;
  private done = false;
  private chunkedOut = false;
  private bodyless = false;
  private upstreamKeepAlive = false;
  keepAlive: boolean;
  private bytesSent = 0;
  private bytesReceived = 0;
  private readonly timers = new RequestTimers();
  /** Waiting for a connection slot of the cluster (maxConnections): called when one frees. */
  private wake: (() => void) | undefined;
  /** RequestMirror: the copies of this request, fed as its body passes. */
  private tee: MirrorTee | undefined;

  constructor(
    readonly conn: ClientConnection,
    readonly method: string,
    readonly url: string,
    readonly raw: string[],
    readonly versionMinor: number,
    shouldKeepAlive: boolean,
    readonly upgrade: boolean,
    readonly chunkedIn: boolean,
    readonly hasBody: boolean,
  ) {
    this.keepAlive = shouldKeepAlive;
  }

  get downstream(): Socket {
    return this.conn.socket;
  }

  get expectContinue(): boolean {
    return headerOf(this.raw, 'expect')?.toLowerCase() === '100-continue';
  }

  /** Request body bytes (de-chunked by the parser); framed again on the way out. */
  body(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    this.tee?.data(chunk);
    if (this.done) return;
    this.keep(chunk);
    const up = this.upstream;
    if (!up) {
      (this.held ??= []).push(chunk);
      return;
    }
    this.writeBody(up, chunk);
  }

  /** Keeps a body chunk for a retry; past REPLAY_LIMIT the request can no longer be sent again. */
  private keep(chunk: Buffer): void {
    const replay = this.replay;
    if (!replay) return;
    this.replayBytes += chunk.length;
    if (this.replayBytes > REPLAY_LIMIT) this.replay = undefined;
    else replay.push(chunk);
  }

  /** Whether the request can go again as a whole: no body, or all of its body so far is kept. */
  private replayable(): boolean {
    return !this.upgrade && (!this.hasBody || this.replay !== undefined);
  }

  private writeBody(up: UpstreamConnection, chunk: Buffer): void {
    if (!writeBodyChunk(up.socket, chunk, this.chunkedIn)) this.conn.blockReading(true);
  }

  requestComplete(trailers: string[] | undefined): void {
    this.requestEnded = true;
    this.tee?.end();
    if (this.done) return;
    this.requestTrailers = trailers;
    const up = this.upstream;
    if (up) this.endBody(up);
  }

  private endBody(up: UpstreamConnection): void {
    if (!this.chunkedIn) return;
    // Request trailers go on with the same hygiene as headers (node:http's engine drops them).
    if (this.requestTrailers) up.socket.write(appendHeaders('0\r\n', forwardableRawHeaders(this.requestTrailers)) + CRLF, 'latin1');
    else up.socket.write(LAST_CHUNK, 'latin1');
  }

  // ---- the request's way out ----

  start(relay: H1Relay): void {
    const socket = this.conn.socket;
    const info: HttpRequestInfo = {
      method: this.method,
      url: this.url,
      authority: headerOf(this.raw, 'host') ?? '',
      header: (name) => headerOf(this.raw, name.toLowerCase()),
    };
    const { record, routed } = routeRequest(relay.telemetry, this.conn.ctx, info, 'http1', info.header, hostPort(socket.remoteAddress, socket.remotePort));
    this.record = record;
    if (!routed.ok) return this.reply(routed.status, routed.kind, routed.message);
    const { target, ctx } = routed;
    this.target = target;
    if (!target.retry) this.replay = undefined;
    if (target.redirect) return this.answerRedirect(target);
    this.startMirror(relay, target, info);
    if ((target.requestHeaders || ctx.addHeaders || target.path !== undefined) && !writableEdits(target, ctx)) {
      return this.reply(500, 'internal', `route ${target.routeName ?? ''} sets a header or path that cannot be sent`);
    }
    this.call = relay.calls(target.selector, 'http1', pickContextFor(target.selector, info, this.conn.socket.remoteAddress));
    // The whole request's deadline, retries and their backoff included.
    this.timers.startRequest(target.timeoutMs, () => this.onTimeout());
    // After the rest of this read is parsed: a request whose body is malformed in the same read
    // (a smuggling attempt) is refused and abandoned before a byte of it reaches an upstream.
    queueMicrotask(() => {
      if (this.done) return this.call?.release();
      this.send(relay);
    });
  }

  private send(relay: H1Relay): void {
    const call = this.call as UpstreamCall;
    const selected = call.next();
    if (!selected.ok) {
      if (selected.error.code === PROXY_ERRORS.OVERFLOW) return this.reply(503, 'overflow', selected.error.message);
      return this.reply(503, 'no-endpoints', `no healthy upstream: ${selected.error.message}`);
    }
    this.lease = selected.value;
    this.responded = false;
    this.connect(relay);
  }

  /** Writes the request on a connection to the lease's endpoint, once the cluster has a connection for it. */
  private connect(relay: H1Relay): void {
    const call = this.call as UpstreamCall;
    const target = this.target as HttpRouteTarget;
    const up = relay.pool.acquire((this.lease as UpstreamLease).endpoint, this, call.gate);
    if (!up) return this.waitForConnection(relay);
    this.upstream = up;
    this.timers.startTry(target.tryTimeoutMs, () => this.onTryTimeout());
    // The head, and the body at hand, in one write; a retry sends the whole body kept so far.
    const socket = up.socket;
    socket.cork();
    socket.write(this.upstreamHead(), 'latin1');
    const held = call.attempts > 1 && this.replay ? this.replay : this.held;
    this.held = undefined;
    if (held) for (const chunk of held) this.writeBody(up, chunk);
    if (this.requestEnded) this.endBody(up);
    socket.uncork();
  }

  /** The cluster is at maxConnections: wait for a slot, unless maxPendingRequests already wait (503 UO). */
  private waitForConnection(relay: H1Relay): void {
    const call = this.call as UpstreamCall;
    const gate = call.gate;
    const wake = (): void => {
      this.wake = undefined;
      if (!this.done) this.connect(relay);
    };
    call.limited('max_connections');
    if (gate?.wait(wake)) {
      this.wake = wake;
      return;
    }
    call.limited('max_pending');
    this.reply(503, 'overflow', `${call.cluster}: over the cluster's max pending requests limit (circuit breaker)`);
  }

  /** Mirrors `upstreamHeaders()` of http/h1.ts: the same headers leave either engine. */
  private upstreamHead(): string {
    const ctx = this.conn.ctx as HttpConnectionContext;
    const target = this.target as HttpRouteTarget;
    const record = this.record as RequestRecord;
    const pairs: string[] = [];
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      if (TRACE_HEADER_SET.has(name.toLowerCase())) continue;
      pairs.push(name, raw[i + 1] as string);
    }
    const kept = forwardableRawHeaders(pairs);
    for (const [name, value] of Object.entries(record.upstreamHeaders())) kept.push(name, value);
    const headers = upstreamRawHeaders(kept, target, ctx);
    // Transfer-Encoding is hop-by-hop, but a chunked body stays framed as chunked (re-chunked here).
    if (this.chunkedIn) headers.push('transfer-encoding', 'chunked');
    // As node:http's keep-alive agent says it (HTTP/1.1's default, but explicit for older servers).
    headers.push('connection', 'keep-alive');
    return appendHeaders(`${this.method} ${target.path ?? this.url} HTTP/1.1\r\n`, headers) + CRLF;
  }

  private onTimeout(): void {
    if (this.responded || this.done) return;
    const target = this.target as HttpRouteTarget;
    this.call?.failed('timeout');
    this.dropUpstream();
    this.reply(504, 'timeout', `upstream request timeout after ${target.timeoutMs} ms`, this.lease?.endpoint.key);
  }

  /** The try passed timeouts.backendRequest: its connection is closed; another try may follow. */
  private onTryTimeout(): void {
    if (this.responded || this.done) return;
    const target = this.target as HttpRouteTarget;
    const call = this.call as UpstreamCall;
    const policy = target.retry;
    call.failed('timeout');
    this.dropUpstream();
    if (policy && IDEMPOTENT.has(this.method) && this.replayable() && call.mayRetry('policy', policy.attempts)) return this.retryAfter(backoffDelay(policy, call.attempts));
    this.reply(504, 'timeout', `upstream request timeout after ${target.tryTimeoutMs} ms (timeouts.backendRequest)`, this.lease?.endpoint.key);
  }

  /**
   * A final answer the retry policy retries, not forwarded yet: the policy and the call allow
   * another try, so the answer is dropped with its connection and the request goes again later.
   */
  private retryAnswer(status: number, rawHeaders: string[]): boolean {
    const policy = this.target?.retry;
    const call = this.call;
    if (!policy || !call || this.headSent || !retriesStatus(policy, this.method, status) || !this.replayable()) return false;
    if (!call.mayRetry('policy', policy.attempts)) return false;
    if (headerOf(rawHeaders, PROXY_ERROR_HEADER) === 'connect') call.failed('connect');
    else {
      call.responded(status);
      call.failed('status');
    }
    this.dropUpstream();
    this.retryAfter(backoffDelay(policy, call.attempts));
    return true;
  }

  /** Sends the request again after `ms`; not when that is past timeouts.request, whose timer answers 504 then. */
  private retryAfter(ms: number): void {
    this.timers.retryAfter(ms, () => {
      if (!this.done) this.send(this.conn.relay);
    });
  }

  // ---- ResponseSink: the upstream connection's side ----

  onReady(): void {}

  onDrain(): void {
    this.conn.blockReading(false);
  }

  onHead(status: number, statusMessage: string, rawHeaders: string[], keepAlive: boolean): number {
    if (this.done) return 1;
    const socket = this.conn.socket;
    if (status < 200) {
      if (status === 101) {
        // Never asked for on a pooled connection (upgrades take their own tunnel): the endpoint is broken.
        this.call?.failed('reset');
        this.reply(502, 'reset', 'upstream switched protocols unasked', this.lease?.endpoint.key);
        return 1;
      }
      if (this.versionMinor === 0 || this.headSent) return 1;
      if (status === 100) {
        if (this.expectContinue && !this.conn.continued) {
          this.conn.continued = true;
          socket.write(CONTINUE, 'latin1');
        }
      } else socket.write(appendHeaders(`HTTP/1.1 ${status} ${statusMessage}\r\n`, forwardableRawHeaders(rawHeaders)) + CRLF, 'latin1');
      return 1;
    }
    if (this.retryAnswer(status, rawHeaders)) return 1;
    this.responded = true;
    this.replay = undefined;
    this.clearTimer();
    // The peer sidecar could not reach its application: that endpoint is failing.
    if (headerOf(rawHeaders, PROXY_ERROR_HEADER) === 'connect') this.call?.failed('connect');
    else this.call?.responded(status);
    this.upstreamKeepAlive = keepAlive;
    const record = this.record as RequestRecord;
    record.response(status);
    this.bodyless = this.method === 'HEAD' || status === 204 || status === 304;
    const out = withSessionRaw(responseRawHeaders(forwardableRawHeaders(rawHeaders), this.target), this.call?.sessionHeader());
    let framing = '';
    if (!this.bodyless && headerOf(rawHeaders, 'content-length') === undefined) {
      // Chunked or close-delimited upstream: chunked to an HTTP/1.1 client, close-delimited to 1.0.
      if (this.versionMinor >= 1) {
        this.chunkedOut = true;
        framing = 'transfer-encoding: chunked\r\n';
      } else this.keepAlive = false;
    }
    if (!this.requestEnded || this.conn.relay.draining || this.conn.peerEnded) this.keepAlive = false;
    const connection = this.keepAlive ? (this.versionMinor === 0 ? 'connection: keep-alive\r\n' : '') : 'connection: close\r\n';
    this.headSent = true;
    socket.write(appendHeaders(`HTTP/1.1 ${status} ${statusMessage}\r\n`, out) + framing + connection + CRLF, 'latin1');
    return this.bodyless ? 1 : 0;
  }

  onBody(chunk: Buffer): void {
    if (this.done) return;
    this.bytesSent += chunk.length;
    if (!writeBodyChunk(this.conn.socket, chunk, this.chunkedOut)) {
      this.upstream?.socket.pause();
      this.conn.waitingDrain = this;
    }
  }

  /** The client took what was written: the endpoint may send more. */
  clientDrained(): void {
    this.upstream?.socket.resume();
  }

  onComplete(trailers: string[] | undefined): void {
    if (this.done) return;
    const socket = this.conn.socket;
    if (this.chunkedOut) {
      if (trailers) socket.write(appendHeaders('0\r\n', forwardableRawHeaders(trailers)) + CRLF, 'latin1');
      else socket.write(LAST_CHUNK, 'latin1');
    }
    const up = this.upstream as UpstreamConnection;
    this.upstream = undefined;
    // Reused only when both sides of the exchange are complete; else what is left would be read as the next exchange.
    if (this.upstreamKeepAlive && this.requestEnded) {
      up.reused = true;
      this.conn.relay.pool.release(up);
    } else up.destroy();
    this.finish({});
  }

  onBroken(error: NodeJS.ErrnoException): void {
    if (this.done) return;
    const up = this.upstream;
    this.upstream = undefined;
    this.timers.stopTry();
    const call = this.call as UpstreamCall;
    const endpoint = (this.lease as UpstreamLease).endpoint;
    const relay = this.conn.relay;
    if (!this.responded && !up?.ready && !up?.reused && isConnectFailure(error)) {
      call.failed('connect');
      log.warn({ upstream: endpoint.key, cluster: call.cluster, err: error.message }, 'upstream connect failed');
      // Nothing was sent yet: another endpoint may take a request without a body.
      if (!this.hasBody && call.mayRetry()) return this.send(relay);
      return this.reply(503, 'connect', `upstream connect error: ${error.code ?? error.message}`, endpoint.key);
    }
    if (!this.responded && up?.reused && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && !this.hasBody && IDEMPOTENT.has(this.method) && call.mayRetry('transparent')) {
      // A pooled keep-alive connection the endpoint closed just as it was reused: the endpoint
      // is fine (not held against it); an idempotent request goes again on a fresh connection.
      call.failed('refused');
      log.debug({ upstream: endpoint.key, err: error.message }, 'pooled connection was closed by the endpoint; sending again');
      return this.send(relay);
    }
    call.failed('reset');
    log.warn({ upstream: endpoint.key, err: error.message }, 'upstream reset');
    this.reply(502, 'reset', `upstream reset: ${error.code ?? error.message}`, endpoint.key);
  }

  // ---- endings ----

  /** Clears the request's deadline, the try's, a pending retry and a wait for a connection. */
  private clearTimer(): void {
    if (this.wake) this.call?.gate?.cancel(this.wake);
    this.wake = undefined;
    this.timers.clear();
  }

  private dropUpstream(): void {
    const up = this.upstream;
    this.upstream = undefined;
    up?.destroy();
  }

  /** Answers a request the proxy cannot forward (as h1.ts's reply()), or cuts a response already started. */
  reply(status: number, kind: ProxyErrorKind, message: string, upstream?: string): void {
    const flag = RESPONSE_FLAG_OF[kind];
    const record = this.record as RequestRecord;
    this.dropUpstream();
    if (this.headSent) {
      this.done = true;
      this.release();
      record.end({ upstream, flags: flag ? [flag] : undefined, error: message, attempts: this.call?.attempts });
      this.conn.socket.destroy();
      return;
    }
    const body = `${message}\n`;
    const length = Buffer.byteLength(body);
    record.response(status);
    if (!this.requestEnded || this.conn.relay.draining || this.conn.peerEnded) this.keepAlive = false;
    this.headSent = true;
    const head =
      `HTTP/1.1 ${status} ${nodeHttp.STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain\r\ncontent-length: ${length}\r\n` +
      `x-tsmesh-error: ${message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 120)}\r\n${PROXY_ERROR_HEADER}: ${kind}\r\n` +
      (this.keepAlive ? (this.versionMinor === 0 ? 'connection: keep-alive\r\n' : '') : 'connection: close\r\n') +
      CRLF;
    this.conn.socket.write(this.method === 'HEAD' ? head : head + body, 'latin1');
    this.done = true;
    this.release();
    record.end({ bytesSent: length, upstream, flags: flag ? [flag] : undefined, error: message, attempts: this.call?.attempts });
    this.conn.exchangeDone(this);
  }

  /** The copies of this request (RequestMirror), with the body bytes parsed before it started. */
  private startMirror(relay: H1Relay, target: HttpRouteTarget, info: HttpRequestInfo): void {
    const ctx = this.conn.ctx as HttpConnectionContext;
    const tee = mirrorTee(relay.mirrors, relay.countMirror, target, () => ({ method: this.method, path: target.path ?? this.url, authority: mirrorAuthority(target, info.authority), headers: mirrorHeadersH1(this.raw, target, ctx) }));
    if (!tee) return;
    this.tee = tee;
    for (const chunk of this.held ?? []) tee.data(chunk);
    if (this.requestEnded) tee.end();
  }

  /** Answers the route's RequestRedirect itself; nothing goes upstream (the request body is read and dropped). */
  private answerRedirect(target: HttpRouteTarget): void {
    const status = target.redirect?.status ?? 302;
    const record = this.record as RequestRecord;
    record.response(status);
    if (!this.requestEnded || this.conn.relay.draining || this.conn.peerEnded) this.keepAlive = false;
    this.headSent = true;
    const connection = this.keepAlive ? (this.versionMinor === 0 ? 'connection: keep-alive\r\n' : '') : 'connection: close\r\n';
    this.conn.socket.write(appendHeaders(`HTTP/1.1 ${status} ${nodeHttp.STATUS_CODES[status] ?? ''}\r\n`, redirectRawHeaders(target)) + connection + CRLF, 'latin1');
    this.done = true;
    this.release();
    record.end({ bytesSent: 0 });
    this.conn.exchangeDone(this);
  }

  /** The call is over: its lease and its place in the cluster's limits go back (idempotent). */
  private release(): void {
    this.clearTimer();
    this.call?.release();
  }

  private finish(extra: { flags?: ['DC'] }): void {
    if (this.done) return;
    this.done = true;
    this.release();
    const endpoint = this.lease?.endpoint;
    const ctx = this.conn.ctx;
    this.record?.end({
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      upstream: endpoint?.key,
      destination: endpoint?.peer,
      mtls: endpoint && ctx?.direction === 'outbound' ? this.conn.relay.dial.mtlsFor(endpoint) : undefined,
      flags: extra.flags,
      attempts: this.call?.attempts,
    });
    if (!extra.flags) this.conn.exchangeDone(this);
  }

  /** The client went away: the upstream request is cancelled, without blaming the endpoint. */
  abandon(): void {
    this.tee?.abandon();
    if (this.done) return;
    this.dropUpstream();
    if (this.record) this.finish({ flags: ['DC'] });
    else this.done = true;
  }
}
