// HTTP/1.1 forwarding as a lean relay (`--http1-engine relay`): per client connection one llhttp
// REQUEST parser (llhttp.ts says why Node's parser is driven directly), per request one Exchange
// that routes it, leases an endpoint, writes the re-serialised head (and the body at hand) in one
// write on a pooled upstream connection (pool.ts) and relays the response as it is parsed. Same
// behaviour and answers as H1Forwarder (http/h1.ts); requests of one connection are served in order.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { logger } from '@tsmesh/common';
import { forwardableRawHeaders, MESH_OWNED } from '../http/headers.js';
import {
  applyHeaderEditRaw,
  httpContextOf,
  PROXY_ERROR_HEADER,
  RESPONSE_FLAG_OF,
  routeFailure,
  type HttpConnectionContext,
  type HttpRequestInfo,
  type HttpRouteTarget,
  type ProxyErrorKind,
} from '../http/context.js';
import { isConnectFailure } from '../http/errors.js';
import type { H1Deps, H1Options } from '../http/h1.js';
import { hostPort, type UpstreamLease } from '../upstream/selector.js';
import { armConnectTimeout, plainDialer, type Dialer } from '../upstream/dial.js';
import { TRACE_HEADERS, type RequestRecord, type RequestTelemetry } from '../telemetry/index.js';
import { HTTPParser, isParseError, isWritableHeader, METHODS, newParser, type LlhttpParser } from './llhttp.js';
import { H1Pool, type ResponseSink, type UpstreamConnection } from './pool.js';

const log = logger('h1.relay');
const TRACE_HEADER_SET = new Set(TRACE_HEADERS);
/** Methods a proxy may send twice (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const UNAVAILABLE = 'HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';
const CRLF = '\r\n';
/** A request head must arrive whole within this (slow-header clients), as h1.ts's server `headersTimeout`. */
const HEADERS_TIMEOUT_MS = 30_000;
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';
const HEADERS_TOO_LARGE = 'HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';
const HEADERS_TIMED_OUT = 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';
/** How long a refused client gets to take its 400/431 before its connection is destroyed. */
const REFUSAL_LINGER_MS = 1_000;
const LAST_CHUNK = '0\r\n\r\n';

/** The value of header `name` (lowercase) in a raw list: repeats joined as Node joins them. */
function headerOf(raw: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as string;
    if (n.length !== name.length || n.toLowerCase() !== name) continue;
    const v = raw[i + 1] as string;
    if (found === undefined) found = v;
    else if (name === 'host') return found;
    else found = `${found}, ${v}`;
  }
  return found;
}

/** What the route and the connection add must not break the request's framing (CR/LF in a value). */
function writableEdits(target: HttpRouteTarget, ctx: HttpConnectionContext): boolean {
  const edit = target.requestHeaders;
  for (const list of [edit?.set, edit?.add, ctx.addHeaders]) {
    for (const [name, value] of list ?? []) if (!isWritableHeader(name, value)) return false;
  }
  return target.path === undefined || isRequestTarget(target.path);
}

/** No control character, space or DEL (which would end or split the request line). */
function isRequestTarget(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

function appendHeaders(head: string, raw: readonly string[]): string {
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return head;
}

/** One request and its response. */
class Exchange implements ResponseSink {
  record: RequestRecord | undefined;
  target: HttpRouteTarget | undefined;
  lease: UpstreamLease | undefined;
  upstream: UpstreamConnection | undefined;
  attempt = 0;
  /** Body bytes parsed before the exchange had an upstream connection to take them. */
  private held: Buffer[] | undefined;
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
  private timer: NodeJS.Timeout | undefined;

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
    if (this.done) return;
    const up = this.upstream;
    if (!up) {
      (this.held ??= []).push(chunk);
      return;
    }
    this.writeBody(up, chunk);
  }

  private writeBody(up: UpstreamConnection, chunk: Buffer): void {
    const socket = up.socket;
    let ok: boolean;
    if (this.chunkedIn) {
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write(CRLF, 'latin1');
    } else ok = socket.write(chunk);
    if (!ok) this.conn.blockReading(true);
  }

  requestComplete(trailers: string[] | undefined): void {
    this.requestEnded = true;
    if (this.done) return;
    this.requestTrailers = trailers;
    const up = this.upstream;
    if (up) this.endBody(up);
  }

  private endBody(up: UpstreamConnection): void {
    if (!this.chunkedIn) return;
    if (this.requestTrailers) up.socket.write(appendHeaders('0\r\n', this.requestTrailers) + CRLF, 'latin1');
    else up.socket.write(LAST_CHUNK, 'latin1');
  }

  // ---- the request's way out ----

  start(relay: H1Relay): void {
    const conn = this.conn;
    const ctx = conn.ctx;
    const socket = conn.socket;
    const info: HttpRequestInfo = {
      method: this.method,
      url: this.url,
      authority: headerOf(this.raw, 'host') ?? '',
      header: (name) => headerOf(this.raw, name.toLowerCase()),
    };
    const record = relay.telemetry.startRequest({
      reporter: ctx?.direction === 'inbound' ? 'destination' : 'source',
      direction: ctx?.direction,
      method: info.method,
      authority: info.authority,
      path: info.url,
      protocol: 'http1',
      headers: info.header,
      source: ctx?.source ?? {},
      destination: ctx?.destination ?? {},
      mtls: ctx?.mtls ?? false,
      downstream: hostPort(socket.remoteAddress, socket.remotePort),
    });
    this.record = record;
    if (!ctx) return this.reply(500, 'internal', 'no connection context');
    const routed = ctx.route(info);
    if (!routed.ok) {
      const failure = routeFailure(routed.error);
      return this.reply(failure.status, failure.kind, routed.error.message);
    }
    const target = routed.value;
    this.target = target;
    if (target.directStatus !== undefined) return this.reply(target.directStatus, 'route-backend', `route ${target.routeName ?? ''} has no usable backend`);
    if ((target.requestHeaders || ctx.addHeaders || target.path !== undefined) && !writableEdits(target, ctx)) {
      return this.reply(500, 'internal', `route ${target.routeName ?? ''} sets a header or path that cannot be sent`);
    }
    this.send(relay);
  }

  private send(relay: H1Relay): void {
    const target = this.target as HttpRouteTarget;
    this.attempt++;
    const selected = target.selector.select();
    if (!selected.ok) return this.reply(503, 'no-endpoints', `no healthy upstream: ${selected.error.message}`);
    const lease = selected.value;
    this.lease = lease;
    this.responded = false;
    const up = relay.pool.acquire(lease.endpoint, this);
    this.upstream = up;
    if (target.timeoutMs) this.timer = setTimeout(() => this.onTimeout(), target.timeoutMs);
    // The head, and the body at hand, in one write.
    const socket = up.socket;
    socket.cork();
    socket.write(this.upstreamHead(), 'latin1');
    const held = this.held;
    if (held) {
      this.held = undefined;
      for (const chunk of held) this.writeBody(up, chunk);
    }
    if (this.requestEnded) this.endBody(up);
    socket.uncork();
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
    const headers = applyHeaderEditRaw(kept, target.requestHeaders, ctx.addHeaders);
    // Transfer-Encoding is hop-by-hop, but a chunked body stays framed as chunked (re-chunked here).
    if (this.chunkedIn) headers.push('transfer-encoding', 'chunked');
    // As node:http's keep-alive agent says it (HTTP/1.1's default, but explicit for older servers).
    headers.push('connection', 'keep-alive');
    return appendHeaders(`${this.method} ${target.path ?? this.url} HTTP/1.1\r\n`, headers) + CRLF;
  }

  private onTimeout(): void {
    this.timer = undefined;
    if (this.responded || this.done) return;
    const target = this.target as HttpRouteTarget;
    this.lease?.failed('timeout');
    this.dropUpstream();
    this.reply(504, 'timeout', `upstream request timeout after ${target.timeoutMs} ms`, this.lease?.endpoint.key);
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
        const lease = this.lease as UpstreamLease;
        lease.failed('reset');
        this.reply(502, 'reset', 'upstream switched protocols unasked', lease.endpoint.key);
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
    this.responded = true;
    this.clearTimer();
    const lease = this.lease as UpstreamLease;
    // The peer sidecar could not reach its application: that endpoint is failing.
    if (headerOf(rawHeaders, PROXY_ERROR_HEADER) === 'connect') lease.failed('connect');
    else lease.succeeded();
    this.upstreamKeepAlive = keepAlive;
    const record = this.record as RequestRecord;
    record.response(status);
    this.bodyless = this.method === 'HEAD' || status === 204 || status === 304;
    const out = forwardableRawHeaders(rawHeaders);
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
    const socket = this.conn.socket;
    let ok: boolean;
    if (this.chunkedOut) {
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write(CRLF, 'latin1');
    } else ok = socket.write(chunk);
    if (!ok) {
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
    this.clearTimer();
    const lease = this.lease as UpstreamLease;
    const target = this.target as HttpRouteTarget;
    const endpoint = lease.endpoint;
    const relay = this.conn.relay;
    if (!this.responded && !up?.ready && !up?.reused && isConnectFailure(error)) {
      lease.failed('connect');
      lease.release();
      relay.telemetry.metrics.upstreamConnectFailure(target.selector.name);
      log.warn({ upstream: endpoint.key, cluster: target.selector.name, err: error.message }, 'upstream connect failed');
      // Nothing was sent yet: another endpoint may take a request without a body.
      if (!this.hasBody && this.attempt < Math.min(3, target.selector.size)) return this.send(relay);
      return this.reply(503, 'connect', `upstream connect error: ${error.code ?? error.message}`, endpoint.key, true);
    }
    if (!this.responded && up?.reused && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && !this.hasBody && IDEMPOTENT.has(this.method) && this.attempt < 3) {
      // A pooled keep-alive connection the endpoint closed just as it was reused: the endpoint
      // is fine (no failure reported); an idempotent request goes again on a fresh connection.
      lease.release();
      log.debug({ upstream: endpoint.key, err: error.message }, 'pooled connection was closed by the endpoint; sending again');
      return this.send(relay);
    }
    lease.failed('reset');
    log.warn({ upstream: endpoint.key, err: error.message }, 'upstream reset');
    this.reply(502, 'reset', `upstream reset: ${error.code ?? error.message}`, endpoint.key);
  }

  // ---- endings ----

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private dropUpstream(): void {
    const up = this.upstream;
    this.upstream = undefined;
    up?.destroy();
  }

  /** Answers a request the proxy cannot forward (as h1.ts's reply()), or cuts a response already started. */
  reply(status: number, kind: ProxyErrorKind, message: string, upstream?: string, released = false): void {
    const flag = RESPONSE_FLAG_OF[kind];
    const record = this.record as RequestRecord;
    this.dropUpstream();
    if (this.headSent) {
      this.done = true;
      this.release(released);
      record.end({ upstream, flags: flag ? [flag] : undefined, error: message });
      this.conn.socket.destroy();
      return;
    }
    const body = `${message}\n`;
    const length = Buffer.byteLength(body);
    record.response(status);
    if (!this.requestEnded || this.conn.relay.draining || this.conn.peerEnded) this.keepAlive = false;
    this.headSent = true;
    const head =
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain\r\ncontent-length: ${length}\r\n` +
      `x-tsmesh-error: ${message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 120)}\r\n${PROXY_ERROR_HEADER}: ${kind}\r\n` +
      (this.keepAlive ? (this.versionMinor === 0 ? 'connection: keep-alive\r\n' : '') : 'connection: close\r\n') +
      CRLF;
    this.conn.socket.write(this.method === 'HEAD' ? head : head + body, 'latin1');
    this.done = true;
    this.release(released);
    record.end({ bytesSent: length, upstream, flags: flag ? [flag] : undefined, error: message });
    this.conn.exchangeDone(this);
  }

  private release(released: boolean): void {
    this.clearTimer();
    if (!released) this.lease?.release();
  }

  private finish(extra: { flags?: ['DC'] }): void {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
    this.lease?.release();
    const endpoint = this.lease?.endpoint;
    const ctx = this.conn.ctx;
    this.record?.end({
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      upstream: endpoint?.key,
      destination: endpoint?.peer,
      mtls: endpoint && ctx?.direction === 'outbound' ? this.conn.relay.dial.mtlsFor(endpoint) : undefined,
      flags: extra.flags,
    });
    if (!extra.flags) this.conn.exchangeDone(this);
  }

  /** The client went away: the upstream request is cancelled, without blaming the endpoint. */
  abandon(): void {
    if (this.done) return;
    this.dropUpstream();
    if (this.record) this.finish({ flags: ['DC'] });
    else this.done = true;
  }
}

/** One client connection: its parser and its exchanges, answered in order. */
class ClientConnection {
  readonly ctx: HttpConnectionContext | undefined;
  private readonly parser: LlhttpParser;
  private headers: string[] = [];
  private url = '';
  private current: Exchange | undefined;
  /** Pipelined requests parsed while `current` is answered. */
  private readonly queue: Exchange[] = [];
  /** The exchange whose body is being parsed (the last one queued). */
  private parsing: Exchange | undefined;
  private upgraded: Exchange | undefined;
  /** An answer to send once the exchanges before it are done (a request the parser refused). */
  private refusal: string | undefined;
  private closing = false;
  peerEnded = false;
  continued = false;
  waitingDrain: Exchange | undefined;
  private blockedByUpstream = false;
  /** Set when a read completed a head; a read that leaves a head partial arms `headTimer`. */
  private headCompleted = false;
  private headTimer: NodeJS.Timeout | undefined;
  private readonly onData = (chunk: Buffer): void => this.read(chunk);

  constructor(
    readonly relay: H1Relay,
    readonly socket: Socket,
  ) {
    this.ctx = httpContextOf(socket);
    this.parser = newParser(HTTPParser.REQUEST, relay.options.maxHeaderBytes, {
      onHeaders: (raw, url) => {
        for (const h of raw) this.headers.push(h);
        if (!this.parsing) this.url += url;
      },
      onHeadersComplete: (_maj, minor, raw, method, url, _s, _m, upgrade, keepAlive) => {
        const rawHeaders = raw ?? this.headers;
        this.headers = [];
        this.headCompleted = true;
        // A refused request ends the connection: nothing after it in the same read is served.
        if (this.refusal !== undefined || this.closing) return 0;
        if (this.headTimer) {
          clearTimeout(this.headTimer);
          this.headTimer = undefined;
        }
        const target = url ?? this.url;
        this.url = '';
        if (minor >= 1 && headerOf(rawHeaders, 'host') === undefined) {
          // RFC 9112 3.2: an HTTP/1.1 request without Host is refused (node:http's requireHostHeader).
          this.refuse(BAD_REQUEST);
          return 0;
        }
        const name = METHODS[method ?? -1];
        if (name === undefined) {
          // llhttp accepted a method node:http does not serve (an RTSP one): refused like a bad request.
          this.refuse(BAD_REQUEST);
          return 0;
        }
        const te = headerOf(rawHeaders, 'transfer-encoding') !== undefined;
        const length = headerOf(rawHeaders, 'content-length');
        const hasBody = te || (length !== undefined && length !== '0');
        const ex = new Exchange(this, name, target, rawHeaders, minor, keepAlive, upgrade, te, hasBody);
        this.parsing = ex;
        if (upgrade) this.upgraded = ex;
        this.enqueue(ex);
        return 0;
      },
      onBody: (chunk) => this.parsing?.body(chunk),
      onMessageComplete: () => {
        const ex = this.parsing;
        this.parsing = undefined;
        const trailers = this.headers.length > 0 ? this.headers : undefined;
        this.headers = [];
        ex?.requestComplete(trailers);
      },
    });
    socket.on('data', this.onData);
    socket.on('end', () => this.onEnd());
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClose());
    socket.on('drain', () => {
      const ex = this.waitingDrain;
      this.waitingDrain = undefined;
      ex?.clientDrained();
    });
    socket.on('timeout', () => {
      if (!this.current) socket.destroySoon();
    });
    socket.setTimeout(relay.options.keepAliveTimeoutMs);
  }

  private read(chunk: Buffer): void {
    if (this.upgraded) {
      this.upgraded.upgradeHead.push(chunk);
      return;
    }
    if (this.refusal !== undefined || this.closing) return;
    const up = this.current?.upstream?.socket;
    up?.cork();
    this.headCompleted = false;
    const result = this.parser.execute(chunk);
    up?.uncork();
    // Bytes went to no message, so a head is partial: it gets HEADERS_TIMEOUT_MS to complete.
    // (Only armed then: a head read whole, the common case, costs no timer.)
    if (!this.headCompleted && !this.parsing && !this.current && !this.headTimer && !isParseError(result)) {
      this.headTimer = setTimeout(() => {
        this.headTimer = undefined;
        if (!this.closing && this.refusal === undefined) this.refuse(HEADERS_TIMED_OUT);
      }, HEADERS_TIMEOUT_MS);
      this.headTimer.unref();
    }
    if (isParseError(result)) {
      log.debug({ code: result.code }, 'client error');
      this.refuse(result.code === 'HPE_HEADER_OVERFLOW' ? HEADERS_TOO_LARGE : BAD_REQUEST);
      return;
    }
    // Set by the parse just done (an upgrade head ends the parse; what follows is the tunnel's).
    const upgrade = this.upgraded as Exchange | undefined;
    if (upgrade && result < chunk.length) upgrade.upgradeHead.push(chunk.subarray(result));
  }

  private refuse(answer: string): void {
    this.refusal = answer;
    // What the parser took of the refused request is not forwarded.
    const bad = this.parsing;
    if (bad) {
      const i = this.queue.indexOf(bad);
      if (i >= 0) this.queue.splice(i, 1);
      if (bad === this.current) {
        this.current = undefined;
        bad.abandon();
        if (bad.headSent) {
          this.closing = true;
          this.socket.destroy();
          return;
        }
      }
      this.parsing = undefined;
    }
    this.socket.pause();
    if (!this.current) this.sendRefusal();
  }

  private sendRefusal(): void {
    const answer = this.refusal as string;
    this.closing = true;
    // What the client still sends is read and dropped, so that the close is a clean FIN, not a
    // reset that eats the answer; a client that never closes its side is cut after a while.
    const socket = this.socket;
    socket.resume();
    if (socket.writable) socket.end(answer);
    else socket.destroy();
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
  }

  private enqueue(ex: Exchange): void {
    if (this.current) {
      this.queue.push(ex);
      this.updateReading();
      return;
    }
    this.begin(ex);
  }

  private begin(ex: Exchange): void {
    this.current = ex;
    this.continued = false;
    if (ex.upgrade) return this.tunnel(ex);
    ex.start(this.relay);
  }

  /** Called by the current exchange when its answer is fully written. */
  exchangeDone(ex: Exchange): void {
    if (ex !== this.current) return;
    this.current = undefined;
    this.waitingDrain = undefined;
    this.blockedByUpstream = false;
    if (!ex.keepAlive || (this.relay.draining && this.queue.length === 0)) {
      this.closing = true;
      this.queue.length = 0;
      this.socket.end();
      return;
    }
    const next = this.queue.shift();
    if (next) this.begin(next);
    else if (this.refusal !== undefined) this.sendRefusal();
    else if (this.peerEnded) {
      this.closing = true;
      this.socket.end();
    }
    this.updateReading();
  }

  blockReading(blocked: boolean): void {
    this.blockedByUpstream = blocked;
    this.updateReading();
  }

  private updateReading(): void {
    if (this.closing || this.upgraded) return;
    if (this.blockedByUpstream || this.queue.length > 0 || this.refusal !== undefined) this.socket.pause();
    else this.socket.resume();
  }

  private onEnd(): void {
    // Half-close after a request (RFC 9112 9.6): what was asked is still answered, then the connection closes.
    this.peerEnded = true;
    if (this.upgraded) return;
    if (!this.current && this.refusal === undefined) {
      this.closing = true;
      this.socket.end();
    }
  }

  private onClose(): void {
    this.closing = true;
    if (this.headTimer) clearTimeout(this.headTimer);
    this.relay.connections.delete(this);
    this.current?.abandon();
    for (const ex of this.queue) ex.abandon();
    this.queue.length = 0;
    this.current = undefined;
  }

  /** Graceful drain: an idle connection closes now; a busy one after its current answer. */
  drain(): void {
    if (!this.current && !this.upgraded) {
      this.closing = true;
      this.socket.end();
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Upgrade (WebSocket): a plain tunnel to one endpoint after the head, as h1.ts's onUpgrade. */
  private tunnel(ex: Exchange): void {
    const client = this.socket;
    client.removeListener('data', this.onData);
    client.setTimeout(0);
    const ctx = this.ctx;
    const info: HttpRequestInfo = { method: ex.method, url: ex.url, authority: headerOf(ex.raw, 'host') ?? '', header: (n) => headerOf(ex.raw, n.toLowerCase()) };
    const routed = ctx?.route(info);
    if (!ctx || !routed?.ok || ex.method === 'CONNECT') {
      client.end(UNAVAILABLE);
      return;
    }
    const selected = routed.value.selector.select();
    if (!selected.ok) {
      client.end(UNAVAILABLE);
      return;
    }
    const lease = selected.value;
    const dialed = this.relay.dial(lease.endpoint, 'tcp');
    armConnectTimeout(dialed, this.relay.options.connectTimeoutMs);
    const upstream = dialed.socket;
    let connected = false;
    upstream.once(dialed.readyEvent, () => {
      connected = true;
      lease.succeeded();
      // Upgrade requests keep their Connection/Upgrade headers: they are the point of the request.
      // Mesh-owned headers (and those the sidecar adds) are still dropped, as on any request.
      const lines = [`${ex.method} ${routed.value.path ?? ex.url} HTTP/1.${ex.versionMinor}`];
      const added = new Set((ctx.addHeaders ?? []).map(([n]) => n.toLowerCase()));
      for (let i = 0; i < ex.raw.length; i += 2) {
        const name = ex.raw[i] ?? '';
        if (MESH_OWNED.has(name.toLowerCase()) || added.has(name.toLowerCase())) continue;
        lines.push(`${name}: ${ex.raw[i + 1]}`);
      }
      for (const [n, v] of ctx.addHeaders ?? []) lines.push(`${n}: ${v}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
      for (const chunk of ex.upgradeHead) upstream.write(chunk);
      ex.upgradeHead = [];
      upstream.pipe(client);
      client.pipe(upstream);
      client.resume();
    });
    const close = (): void => {
      lease.release();
      upstream.destroy();
      // Not connected (refused, timed out): nothing went upstream, so the client gets an answer.
      if (connected || client.destroyed) client.destroy();
      else if (!client.writableEnded) client.end(UNAVAILABLE);
    };
    upstream.on('error', (error) => {
      if (isConnectFailure(error)) lease.failed('connect');
      close();
    });
    client.on('error', close);
    upstream.on('close', close);
    client.on('close', close);
  }
}

export class H1Relay {
  readonly telemetry: RequestTelemetry;
  readonly dial: Dialer;
  readonly pool: H1Pool;
  readonly connections = new Set<ClientConnection>();
  draining = false;

  constructor(
    readonly options: H1Options,
    deps: H1Deps,
  ) {
    this.telemetry = deps.telemetry;
    this.dial = deps.dial ?? plainDialer;
    this.pool = new H1Pool(this.dial, options.connectTimeoutMs, options.keepAliveTimeoutMs, options.maxHeaderBytes);
  }

  /** Takes a detected HTTP/1 connection (with its context attached) and serves it. */
  accept(socket: Socket): void {
    const conn = new ClientConnection(this, socket);
    this.connections.add(conn);
    socket.resume();
  }

  /**
   * Graceful drain: idle keep-alive connections close now; a request in flight or arriving on an
   * open connection is answered with `Connection: close`, so its connection ends after it.
   */
  drain(): void {
    this.draining = true;
    for (const conn of this.connections) conn.drain();
  }

  close(): void {
    for (const conn of [...this.connections]) conn.destroy();
    this.pool.close();
  }
}
