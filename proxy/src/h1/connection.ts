// One client connection of the HTTP/1.1 relay: its llhttp REQUEST parser and its exchanges,
// answered in order (pipelined ones wait, with reading paused), half-close, idle and slow-head
// timeouts, refusals (400/408/431) and the Upgrade tunnel.
import type { Socket } from 'node:net';
import { logger } from '@tsmesh/common';
import { httpContextOf, type HttpConnectionContext, type HttpRequestInfo } from '../http/context.js';
import { tunnelUpgrade } from '../http/upgrade.js';
import { Exchange } from './exchange.js';
import { HTTPParser, isParseError, METHODS, newParser, type LlhttpParser } from './llhttp.js';
import type { H1Relay } from './relay.js';
import { BAD_REQUEST, HEADERS_TIMED_OUT, HEADERS_TIMEOUT_MS, HEADERS_TOO_LARGE, headerOf, REFUSAL_LINGER_MS } from './wire.js';

const log = logger('h1.connection');

/** One client connection: its parser and its exchanges, answered in order. */
export class ClientConnection {
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

  /** Upgrade (WebSocket): a plain tunnel to one endpoint after the head (http/upgrade.ts). */
  private tunnel(ex: Exchange): void {
    const client = this.socket;
    client.removeListener('data', this.onData);
    client.setTimeout(0);
    const info: HttpRequestInfo = { method: ex.method, url: ex.url, authority: headerOf(ex.raw, 'host') ?? '', header: (n) => headerOf(ex.raw, n.toLowerCase()) };
    const pending = (): Buffer[] => {
      const chunks = ex.upgradeHead;
      ex.upgradeHead = [];
      return chunks;
    };
    const relay = this.relay;
    tunnelUpgrade(client, this.ctx, { info, httpVersion: `1.${ex.versionMinor}`, rawHeaders: ex.raw, pending }, { calls: relay.calls, dial: relay.dial, connectTimeoutMs: relay.options.connectTimeoutMs }, () => client.resume());
  }
}
