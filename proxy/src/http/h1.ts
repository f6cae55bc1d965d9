// HTTP/1.1 forwarding: every request picks its own endpoint; upstream connections are pooled
// (keep-alive). Bodies stream both ways with backpressure; trailers, 100-continue and
// upgrades (WebSocket) pass through. A failing request is answered alone; the proxy stays up.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { logger } from '@tsmesh/common';
import { forwardableRawHeaders, MESH_OWNED } from './headers.js';
import { applyHeaderEditRaw, httpContextOf, type HttpConnectionContext, type HttpRequestInfo, type HttpRouteTarget } from './context.js';
import type { UpstreamLease } from '../upstream/selector.js';
import { isConnectFailure } from './errors.js';

const log = logger('http.h1');

export interface H1Options {
  readonly connectTimeoutMs: number;
  readonly maxHeaderBytes: number;
  /** Idle keep-alive time for client connections. */
  readonly keepAliveTimeoutMs: number;
}

/** Keep-alive agent whose new connections fail fast when the endpoint does not answer. */
class MeshAgent extends http.Agent {
  constructor(private readonly connectTimeoutMs: number) {
    super({ keepAlive: true, scheduling: 'lifo', maxFreeSockets: 256, keepAliveMsecs: 30_000 });
  }

  override createConnection(options: net.NetConnectOpts): Duplex {
    const socket = net.connect(options);
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      const error = Object.assign(new Error(`connect timeout after ${this.connectTimeoutMs} ms`), { code: 'ECONNECTTIMEOUT' });
      socket.destroy(error);
    }, this.connectTimeoutMs);
    socket.once('connect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return socket;
  }
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

function reply(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-tsmesh-error': message.slice(0, 120) });
  res.end(body);
}

export class H1Forwarder {
  readonly server: http.Server;
  private readonly agent: MeshAgent;

  constructor(private readonly options: H1Options) {
    this.agent = new MeshAgent(options.connectTimeoutMs);
    this.server = http.createServer({
      maxHeaderSize: options.maxHeaderBytes,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      headersTimeout: 30_000,
      requestTimeout: 0, // long-lived streaming requests are legitimate
      noDelay: true,
    });
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

  close(): void {
    this.agent.destroy();
    this.server.close();
    this.server.closeAllConnections();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    const ctx = httpContextOf(req.socket);
    if (!ctx) return reply(res, 500, 'no connection context');
    const routed = ctx.route(requestInfo(req));
    if (!routed.ok) return reply(res, routed.error.code === 'TSMESH_ERR_NO_ROUTE' ? 404 : 503, routed.error.message);
    const target = routed.value;
    if (target.directStatus !== undefined) return reply(res, target.directStatus, `route ${target.routeName ?? ''} has no usable backend`);
    this.attempt(req, res, ctx, target, expectContinue, 1);
  }

  private attempt(req: IncomingMessage, res: ServerResponse, ctx: HttpConnectionContext, target: HttpRouteTarget, expectContinue: boolean, attempt: number): void {
    const selected = target.selector.select();
    if (!selected.ok) return reply(res, 503, `no healthy upstream: ${selected.error.message}`);
    const lease: UpstreamLease = selected.value;
    const { endpoint } = lease;
    let responded = false;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      lease.release();
    };

    const headers = applyHeaderEditRaw(forwardableRawHeaders(req.rawHeaders), target.requestHeaders, ctx.addHeaders);
    // Transfer-Encoding is hop-by-hop, but a chunked body must stay framed: Node chunks only
    // POST/PUT/PATCH by default, and an unframed GET/DELETE body reads upstream as a next request.
    if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] === undefined) headers.push('transfer-encoding', 'chunked');
    const upstream = http.request({
      host: endpoint.address,
      port: endpoint.port,
      localAddress: endpoint.localAddress,
      method: req.method,
      path: req.url,
      headers: headers as unknown as http.OutgoingHttpHeaders,
      agent: this.agent,
      setHost: false,
    });

    const timer = target.timeoutMs
      ? setTimeout(() => {
          if (!responded) {
            lease.failed('timeout');
            upstream.destroy();
            reply(res, 504, `upstream request timeout after ${target.timeoutMs} ms`);
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
      lease.succeeded();
      if (res.destroyed) {
        ures.destroy();
        return finish();
      }
      res.writeHead(ures.statusCode ?? 502, ures.statusMessage, forwardableRawHeaders(ures.rawHeaders) as unknown as http.OutgoingHttpHeaders);
      ures.pipe(res, { end: false });
      ures.on('end', () => {
        if (ures.rawTrailers.length > 0) {
          const trailers: [string, string][] = [];
          for (let i = 0; i < ures.rawTrailers.length; i += 2) trailers.push([ures.rawTrailers[i] ?? '', ures.rawTrailers[i + 1] ?? '']);
          res.addTrailers(trailers);
        }
        res.end();
        finish();
      });
      ures.on('error', () => {
        res.destroy();
        finish();
      });
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (done) return;
      if (!responded && isConnectFailure(error)) {
        lease.failed('connect');
        finish();
        log.warn({ upstream: endpoint.key, cluster: target.selector.name, err: error.message }, 'upstream connect failed');
        // Nothing was sent yet: another endpoint may take a request without a body.
        if (!hasBody(req) && attempt < Math.min(3, target.selector.size)) {
          return this.attempt(req, res, ctx, target, expectContinue, attempt + 1);
        }
        return reply(res, 503, `upstream connect error: ${error.code ?? error.message}`);
      }
      lease.failed('reset');
      log.warn({ upstream: endpoint.key, err: error.message }, 'upstream reset');
      reply(res, 502, `upstream reset: ${error.code ?? error.message}`);
      finish();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
      finish();
    });

    if (hasBody(req)) {
      req.pipe(upstream);
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
    const selected = routed.value.selector.select();
    if (!selected.ok) {
      client.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const lease = selected.value;
    const upstream = net.connect({ host: lease.endpoint.address, port: lease.endpoint.port, localAddress: lease.endpoint.localAddress });
    upstream.once('connect', () => {
      lease.succeeded();
      // Upgrade requests keep their Connection/Upgrade headers: they are the point of the request.
      // Mesh-owned headers (and those the sidecar adds) are still dropped, as on any request.
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
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
      lease.release();
      upstream.destroy();
      client.destroy();
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
