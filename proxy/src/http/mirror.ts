// RequestMirror: a copy of a request goes to one endpoint of each mirror cluster, fire and forget.
// The copy never delays or fails the request itself: its body is teed into a bounded buffer as
// the request's body passes (a body over the bound abandons the copy), it leaves once the request
// has ended, its answer is read and dropped, and its outcome is only counted
// (tsmesh_route_mirror_total{result}) and logged. Endpoints are picked through the upstream layer
// (the mirror cluster's balancer and limits); the copy goes out on the forwarder's own protocol.
import type { IncomingMessage } from 'node:http';
import { logger } from '@tsmesh/common';
import type { H2Connection } from '../h2/connection.js';
import { ErrorCode } from '../h2/frame.js';
import type { H2UpstreamPool } from '../h2/pool.js';
import type { H2Stream, H2StreamHandler } from '../h2/stream.js';
import type { CallFactory, UpstreamCall } from '../upstream/call.js';
import type { H1UpstreamPool } from '../upstream/h1-pool.js';
import { TRACE_HEADERS } from '../telemetry/index.js';
import type { HttpConnectionContext, HttpRouteTarget, MirrorTarget } from './context.js';
import { isConnectFailure } from '../upstream/connect-failure.js';
import { upstreamRawHeaders } from './filters.js';
import { forwardableRawHeaders } from './headers.js';

const log = logger('http.mirror');

/** The most request body a copy carries; a longer body abandons the copy (the request is unaffected). */
export const MIRROR_BODY_LIMIT = 64 * 1024;
/** A copy not answered by then is cancelled: a stalled mirror must not hold its connection and limits forever. */
export const MIRROR_TIMEOUT_MS = 10_000;

/** `sent`: the mirror answered (any status); `failed`: no endpoint, refused, reset or timed out; `abandoned`: body over the bound, or the request never ended. */
export type MirrorResult = 'sent' | 'failed' | 'abandoned';

/** Counts one copy's outcome (tsmesh_route_mirror_total). */
export type MirrorCounter = (cluster: string, result: MirrorResult) => void;

/** The head a copy carries: the method, target and headers the endpoint of the request itself gets. */
export interface MirrorHead {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  readonly authority: string;
  /** Lower-case or raw-case header pairs (flat list), without pseudo-headers, framing or hop-by-hop headers. */
  readonly headers: readonly string[];
}

/** Sends one finished copy on some protocol. */
export interface MirrorSender {
  send(target: MirrorTarget, head: MirrorHead, body: Buffer, trailers: string[] | undefined): void;
}

/**
 * The copies of one request: body bytes are copied in as they pass (the caller's buffers are never
 * kept), the copies leave on `end()`. Every method is cheap and never throws.
 */
export class MirrorTee {
  private chunks: Buffer[] | undefined = [];
  private bytes = 0;

  constructor(
    private readonly sender: MirrorSender,
    private readonly count: MirrorCounter,
    private readonly targets: readonly MirrorTarget[],
    private readonly head: MirrorHead,
  ) {}

  /** Request body bytes, as forwarded. */
  data(chunk: Buffer): void {
    if (this.chunks === undefined) return;
    this.bytes += chunk.length;
    if (this.bytes > MIRROR_BODY_LIMIT) return this.abandon(`request body over ${MIRROR_BODY_LIMIT} bytes`);
    this.chunks.push(Buffer.from(chunk));
  }

  /** The request ended: the copies leave now. */
  end(trailers?: string[]): void {
    const chunks = this.chunks;
    if (chunks === undefined) return;
    this.chunks = undefined;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    for (const target of this.targets) {
      try {
        this.sender.send(target, this.head, body, trailers);
      } catch (error) {
        log.warn({ mirror: target.cluster, err: (error as Error).message }, 'mirror not sent');
        this.count(target.cluster, 'failed');
      }
    }
  }

  /** No copy will be sent (body over the bound, or the request never ended). Idempotent; no-op after `end()`. */
  abandon(why = 'the request did not end'): void {
    if (this.chunks === undefined) return;
    this.chunks = undefined;
    for (const target of this.targets) {
      log.debug({ mirror: target.cluster, why }, 'mirror abandoned');
      this.count(target.cluster, 'abandoned');
    }
  }
}

/** Starts the copies of a request whose route mirrors it; undefined when it does not. */
export function mirrorTee(sender: MirrorSender, count: MirrorCounter, target: HttpRouteTarget, head: () => MirrorHead): MirrorTee | undefined {
  const targets = target.mirrors;
  if (targets === undefined || targets.length === 0) return undefined;
  return new MirrorTee(sender, count, targets, head());
}

const FRAMING = new Set(['content-length', 'transfer-encoding', 'host']);
const TRACE_HEADER_SET = new Set<string>(TRACE_HEADERS);

/** An HTTP/1 request's headers as a copy carries them: what the endpoint of the request gets, re-framed by the sender. */
export function mirrorHeadersH1(raw: readonly string[], target: HttpRouteTarget, ctx: HttpConnectionContext): string[] {
  const pairs: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (!TRACE_HEADER_SET.has(name.toLowerCase())) pairs.push(name, raw[i + 1] ?? '');
  }
  const edited = upstreamRawHeaders(forwardableRawHeaders(pairs), target, ctx);
  const out: string[] = [];
  for (let i = 0; i < edited.length; i += 2) if (!FRAMING.has((edited[i] ?? '').toLowerCase())) out.push(edited[i]!, edited[i + 1]!);
  return out;
}

/** The Host a copy names: URLRewrite's, else the request's. */
export function mirrorAuthority(target: HttpRouteTarget, requestAuthority: string): string {
  return target.authority ?? requestAuthority;
}

/** Tees a node:http request's body into `tee` (listeners only: the forwarder's own reading is unchanged). */
export function teeIncoming(req: IncomingMessage, tee: MirrorTee | undefined): void {
  if (tee === undefined) return;
  req.on('data', (chunk: Buffer) => tee.data(chunk));
  req.on('end', () => tee.end());
  req.on('close', () => tee.abandon());
}

/** One copy's upstream call, settled once. */
class CopyCall {
  private settled = false;
  constructor(
    readonly call: UpstreamCall,
    private readonly target: MirrorTarget,
    private readonly count: MirrorCounter,
  ) {}

  settle(result: MirrorResult, why?: string): void {
    if (this.settled) return;
    this.settled = true;
    this.call.release();
    if (result !== 'sent') log.debug({ mirror: this.target.cluster, why }, 'mirror failed');
    this.count(this.target.cluster, result);
  }
}

/** Picks the copy's endpoint in the mirror cluster; undefined (counted as failed) when none can take it. */
function pick(calls: CallFactory, protocol: 'http1' | 'http2', target: MirrorTarget, count: MirrorCounter): { copy: CopyCall; endpoint: Parameters<H1UpstreamPool['request']>[0] } | undefined {
  const call = calls(target.selector, protocol);
  const selected = call.next();
  const copy = new CopyCall(call, target, count);
  if (!selected.ok) {
    copy.settle('failed', selected.error.message);
    return undefined;
  }
  return { copy, endpoint: selected.value.endpoint };
}

const BODYLESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);

/** Copies over HTTP/1.1 on a node:http pool (the node engine's own, or one the relay keeps for its copies). */
export function h1MirrorSender(pool: () => H1UpstreamPool, calls: CallFactory, count: MirrorCounter): MirrorSender {
  return {
    send(target, head, body) {
      const picked = pick(calls, 'http1', target, count);
      if (picked === undefined) return;
      const { copy, endpoint } = picked;
      const headers = ['host', head.authority, ...head.headers];
      if (body.length > 0 || !BODYLESS.has(head.method)) headers.push('content-length', String(body.length));
      const req = pool().request(endpoint, { method: head.method, path: head.path, headers: headers as unknown as Record<string, string>, setHost: false });
      req.setTimeout(MIRROR_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('mirror timed out'), { code: 'ETIMEDOUT_MIRROR' })));
      req.on('response', (res) => {
        copy.call.responded(res.statusCode ?? 0);
        res.on('error', () => copy.settle('failed', 'response cut'));
        res.on('end', () => copy.settle('sent'));
        res.resume();
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        copy.call.failed(isConnectFailure(error) ? 'connect' : 'reset');
        copy.settle('failed', error.message);
      });
      req.end(body);
    },
  };
}

/** Copies over HTTP/2 on the forwarder's upstream pool; the answer's bytes are granted back as they arrive. */
export function h2MirrorSender(pool: H2UpstreamPool, calls: CallFactory, count: MirrorCounter): MirrorSender {
  return {
    send(target, head, body, trailers) {
      const picked = pick(calls, 'http2', target, count);
      if (picked === undefined) return;
      const { copy, endpoint } = picked;
      pool.acquire(endpoint, (error, conn) => {
        if (error || !conn) {
          copy.call.failed(isConnectFailure(error) ? 'connect' : 'reset');
          return copy.settle('failed', error?.message ?? 'no connection');
        }
        sendH2Copy(conn, copy, head, body, trailers);
      });
    },
  };
}

function sendH2Copy(conn: H2Connection, copy: CopyCall, head: MirrorHead, body: Buffer, trailers: string[] | undefined): void {
  let answered = false;
  const timer = setTimeout(() => {
    if (!stream.closed) stream.reset(ErrorCode.CANCEL);
    copy.settle('failed', 'timed out');
  }, MIRROR_TIMEOUT_MS);
  timer.unref();
  const done = (result: MirrorResult, why?: string): void => {
    clearTimeout(timer);
    copy.settle(result, why);
  };
  const handler: H2StreamHandler = {
    onHeaders: (_s, _fields, status, endStream) => {
      if (status < 200) return;
      answered = true;
      copy.call.responded(status);
      if (endStream) done('sent');
    },
    onData: (s: H2Stream, data, endStream) => {
      s.conn.consumed(s, data.length);
      if (endStream) done('sent');
    },
    onTrailers: () => done('sent'),
    onReset: () => {
      if (!answered) copy.call.failed('reset');
      done(answered ? 'sent' : 'failed', 'stream reset');
    },
    onClose: () => done(answered ? 'sent' : 'failed', 'stream closed'),
  };
  const fields = [':method', head.method, ':scheme', 'http', ':path', head.path, ':authority', head.authority];
  for (let i = 0; i < head.headers.length; i += 2) {
    const name = head.headers[i]!.toLowerCase();
    if (!FRAMING.has(name)) fields.push(name, head.headers[i + 1]!);
  }
  if (body.length > 0) fields.push('content-length', String(body.length));
  const bodyless = body.length === 0 && trailers === undefined;
  const stream = conn.request(fields, bodyless, handler);
  if (body.length > 0) stream.write(body, trailers === undefined);
  if (trailers !== undefined) conn.sendTrailers(stream, trailers);
}

/** An HTTP/2 request's fields as the endpoint gets them (pseudo-headers first) → the head of its copy. */
export function mirrorHeadH2(fields: readonly string[]): MirrorHead {
  let method = 'GET';
  let path = '/';
  let authority = '';
  const headers: string[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name === ':method') method = value;
    else if (name === ':path') path = value;
    else if (name === ':authority') authority = value;
    else if (name.charCodeAt(0) !== 58 /* : */) headers.push(name, value);
  }
  return { method, path, authority, headers };
}
