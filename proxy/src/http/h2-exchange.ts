// One client stream relayed to one upstream stream: route, pick, open on a pooled connection, move
// headers, DATA and trailers both ways, and end the record once. Sends a stream again (body
// replayed from a bounded buffer) when the endpoint refused it unprocessed or could not be reached,
// when its answer is one the retry policy retries (a status; for gRPC a trailers-only grpc-status)
// and has not reached the client yet, or when a try passed timeouts.backendRequest.
import { logger } from '@tsmesh/common';
import type { H2Connection } from '../h2/connection.js';
import { markNeverIndexed, type FieldList } from '../h2/hpack/index.js';
import { ErrorCode } from '../h2/frame.js';
import { CONNECTION_LIMIT } from '../h2/pool.js';
import type { H2Stream, H2StreamHandler } from '../h2/stream.js';
import type { RequestHead } from '../h2/validate.js';
import { pickContextFor, type UpstreamLease, type UpstreamSelector } from '../upstream/selector.js';
import type { UpstreamCall } from '../upstream/call.js';
import { backoffDelay, IDEMPOTENT, REPLAY_LIMIT, RequestTimers, retriesGrpc, retriesStatus } from '../upstream/retry.js';
import type { PickContext } from '../balance/balancer.js';
import { PROXY_ERRORS } from '../errors.js';
import { TRACE_HEADERS, type RequestRecord, type ResponseFlag } from '../telemetry/index.js';
import { PROXY_ERROR_HEADER, RESPONSE_FLAG_OF, routeRequest, type HttpConnectionContext, type HttpRequestInfo, type HttpRouteTarget, type ProxyErrorKind } from './context.js';
import { isConnectFailure } from '../upstream/connect-failure.js';
import { MESH_OWNED } from './headers.js';
import { redirectRawHeaders, responseFields, withSessionFields } from './filters.js';
import { mirrorHeadH2, mirrorTee, type MirrorTee } from './mirror.js';
import type { H2Forwarder } from './h2.js';

const log = logger('http.h2');

// gRPC status codes the proxy itself produces (grpc/doc/statuscodes.md).
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_INTERNAL = 13;
const GRPC_UNAVAILABLE = 14;
const GRPC_UNIMPLEMENTED = 12;
const GRPC_PERMISSION_DENIED = 7;

function grpcStatusFor(httpStatus: number): number {
  if (httpStatus === 504) return GRPC_DEADLINE_EXCEEDED;
  if (httpStatus === 404) return GRPC_UNIMPLEMENTED;
  if (httpStatus === 403) return GRPC_PERMISSION_DENIED;
  if (httpStatus === 500 || httpStatus === 400) return GRPC_INTERNAL;
  return GRPC_UNAVAILABLE;
}

/** The value of `name` (lowercase) in a flat field list; repeats joined with ', '. */
export function fieldValue(fields: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] !== name) continue;
    value = value === undefined ? fields[i + 1] : `${value}, ${fields[i + 1]}`;
  }
  return value;
}

const DROPPED = new Set<string>([...MESH_OWNED, ...TRACE_HEADERS]);

export class H2Exchange implements H2StreamHandler {
  private readonly conn: H2Connection;
  private record!: RequestRecord;
  private target: HttpRouteTarget | undefined;
  /** The upstream call: every attempt, its outcome and the cluster's limits. */
  private call: UpstreamCall | undefined;
  /** The lease of the attempt in progress; undefined once the upstream side is over. */
  private lease: UpstreamLease | undefined;
  /** The last endpoint picked (the lease may be released before the record ends). */
  private endpoint: UpstreamLease['endpoint'] | undefined;
  private up: H2Stream | undefined;
  private readonly grpc: boolean;
  /** Request body received before an upstream stream existed (not yet granted back). */
  private unsent: Buffer[] | undefined;
  private unsentEnd = false;
  /** The client's request trailers, for a resend. */
  private keptTrailers: string[] | undefined;
  /** Request body already forwarded, kept until the response starts (for a resend). */
  private replay: Buffer[] | undefined = [];
  private replayBytes = 0;
  private requestEnded: boolean;
  private responded = false;
  private answered = false;
  /** The answer the proxy gave itself (reply): its flag, reason and endpoint, for the record. */
  private answer: { flags: ResponseFlag[] | undefined; message: string; upstream: string | undefined } | undefined;
  private recorded = false;
  private bytesSent = 0;
  private bytesReceived = 0;
  private readonly timers = new RequestTimers();
  /** Waiting for a connection slot of the cluster (maxConnections): called when one frees. */
  private wake: (() => void) | undefined;
  /** RequestMirror: the copies of this request, fed as its body passes. */
  private tee: MirrorTee | undefined;

  constructor(
    private readonly fwd: H2Forwarder,
    private readonly client: H2Stream,
    private readonly head: RequestHead,
    private readonly fields: string[],
    endStream: boolean,
    private readonly ctx: HttpConnectionContext | undefined,
    private readonly downstream: string,
  ) {
    this.conn = client.conn;
    this.requestEnded = endStream;
    this.grpc = (fieldValue(fields, 'content-type') ?? '').startsWith('application/grpc');
    client.handler = this;
  }

  start(): void {
    const ctx = this.ctx;
    const fields = this.fields;
    const info: HttpRequestInfo = {
      method: this.head.method,
      url: this.head.path ?? '/',
      authority: this.head.authority ?? fieldValue(fields, 'host') ?? '',
      header: (name) => fieldValue(fields, name.toLowerCase()),
    };
    const { record, routed } = routeRequest(this.fwd.telemetry, ctx, info, this.grpc ? 'grpc' : 'http2', (name: string) => fieldValue(fields, name), this.downstream);
    this.record = record;
    if (!routed.ok) return this.reply(routed.status, routed.kind, routed.message);
    const target = routed.target;
    this.target = target;
    if (target.redirect) return this.answerRedirect(target);
    this.tee = mirrorTee(this.fwd.mirrors, this.fwd.countMirror, target, () => mirrorHeadH2(this.upstreamFields()));
    if (this.requestEnded) this.tee?.end();
    this.timers.startRequest(target.timeoutMs, () => this.onTimeout());
    // After the rest of this read: a stream the client resets in the same burst (Rapid Reset)
    // never reaches an upstream.
    queueMicrotask(() => this.send());
  }

  // ---- upstream side ----

  private send(): void {
    const target = this.target;
    if (!target || this.client.closed || this.answered) return this.endRecord(['DC']);
    const call = (this.call ??= this.fwd.calls(target.selector, 'http2', (target.selector.hash || target.selector.session) && this.pickContext(target.selector)));
    const selected = call.next();
    if (!selected.ok) {
      if (selected.error.code === PROXY_ERRORS.OVERFLOW) return this.reply(503, 'overflow', selected.error.message);
      return this.reply(503, 'no-endpoints', `no healthy upstream: ${selected.error.message}`);
    }
    this.lease = selected.value;
    const lease = this.lease;
    this.endpoint = lease.endpoint;
    this.timers.startTry(target.tryTimeoutMs, () => this.onTryTimeout());
    this.acquire(lease);
  }

  /** A connection to the lease's endpoint with room for the stream, once the cluster has one for it. */
  private acquire(lease: UpstreamLease): void {
    const call = this.call!;
    this.fwd.pool.acquire(lease.endpoint, (error, conn) => {
      if (this.lease !== lease) return;
      if (error?.code === CONNECTION_LIMIT) return this.waitForConnection(lease);
      if (error || !conn) return this.onConnectFailed(lease, error);
      if (this.client.closed || this.answered) {
        this.releaseLease();
        return this.endRecord(['DC']);
      }
      this.open(conn);
    }, call.gate);
  }

  /** The cluster is at maxConnections: wait for a slot, unless maxPendingRequests already wait (503 UO, gRPC UNAVAILABLE). */
  private waitForConnection(lease: UpstreamLease): void {
    const call = this.call!;
    const wake = (): void => {
      this.wake = undefined;
      if (this.lease !== lease || this.client.closed || this.answered) return;
      // The try's deadline counts from when it has a connection slot, as on HTTP/1.1.
      this.timers.startTry(this.target?.tryTimeoutMs, () => this.onTryTimeout());
      this.acquire(lease);
    };
    call.limited('max_connections');
    if (call.gate?.wait(wake)) {
      this.timers.stopTry();
      this.wake = wake;
      return;
    }
    call.limited('max_pending');
    this.lease = undefined;
    this.reply(503, 'overflow', `${call.cluster}: over the cluster's max pending requests limit (circuit breaker)`);
  }

  /** The consistent-hash key of this request (a ring-hash TrafficPolicy) and the endpoint its session is bound to. */
  private pickContext(selector: UpstreamSelector): PickContext | undefined {
    const fields = this.fields;
    const info: HttpRequestInfo = { method: this.head.method, url: this.head.path ?? '/', authority: this.head.authority ?? '', header: (name) => fieldValue(fields, name) };
    return pickContextFor(selector, info, this.client.conn.socket.remoteAddress);
  }

  private onConnectFailed(lease: UpstreamLease, error: NodeJS.ErrnoException | undefined): void {
    const call = this.call!;
    call.failed(isConnectFailure(error) ? 'connect' : 'reset');
    this.lease = undefined;
    log.warn({ upstream: lease.endpoint.key, cluster: call.cluster, err: error?.message }, 'upstream connect failed');
    // No byte of this stream was sent: any endpoint may take it, body or not.
    if (!this.client.closed && call.mayRetry()) return this.send();
    this.releaseLease();
    this.reply(503, 'connect', `upstream connect error: ${error?.code ?? error?.message ?? 'unknown'}`);
  }

  private open(conn: H2Connection): void {
    const unsent = this.unsent;
    const trailers = this.keptTrailers;
    const bodyLeft = !this.requestEnded || (this.replay?.length ?? 0) > 0 || (unsent?.length ?? 0) > 0 || trailers !== undefined;
    const up = conn.request(this.upstreamFields(), !bodyLeft, this);
    up.isHead = this.head.method === 'HEAD';
    up.source = this.client;
    this.client.source = up;
    this.up = up;
    for (const chunk of this.replay ?? []) up.write(chunk);
    this.unsent = undefined;
    for (let i = 0; i < (unsent?.length ?? 0); i++) {
      const chunk = unsent![i]!;
      this.keep(chunk);
      up.write(chunk, this.unsentEnd && trailers === undefined && i === unsent!.length - 1);
    }
    if (trailers) conn.sendTrailers(up, trailers);
    else if (this.requestEnded && bodyLeft && !up.localEnded) up.write(Buffer.alloc(0), true);
  }

  /** The request's fields as the endpoint gets them: pseudo-headers first, mesh-owned and trace headers replaced. */
  private upstreamFields(): string[] {
    const head = this.head;
    const target = this.target;
    const edit = target?.requestHeaders;
    const extra = this.ctx?.addHeaders;
    const out: string[] = [':method', head.method];
    if (head.method !== 'CONNECT' || head.protocol !== undefined) out.push(':scheme', head.scheme ?? 'http', ':path', target?.path ?? head.path ?? '/');
    const authority = target?.authority ?? head.authority ?? fieldValue(this.fields, 'host');
    if (authority !== undefined) out.push(':authority', authority);
    if (head.protocol !== undefined) out.push(':protocol', head.protocol);
    let drop: Set<string> | undefined;
    if (edit || extra) {
      drop = new Set(DROPPED);
      for (const name of edit?.remove ?? []) drop.add(name.toLowerCase());
      for (const [name] of edit?.set ?? []) drop.add(name.toLowerCase());
      for (const [name] of extra ?? []) drop.add(name.toLowerCase());
    }
    const skip = drop ?? DROPPED;
    const fields = this.fields;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!;
      if (name.charCodeAt(0) === 58 /* : */ || name === 'host' || skip.has(name)) continue;
      out.push(name, fields[i + 1]!);
    }
    const trace = this.record.upstreamHeaders();
    for (const name in trace) out.push(name, trace[name]!);
    for (const [n, v] of edit?.set ?? []) out.push(n.toLowerCase(), v);
    for (const [n, v] of edit?.add ?? []) out.push(n.toLowerCase(), v);
    for (const [n, v] of extra ?? []) out.push(n.toLowerCase(), v);
    // Fields the client sent "never indexed" (credentials) are forwarded the same way (RFC 7541 §6.2.3).
    const never = (fields as FieldList).neverIndexed;
    if (never) for (const value of never) markNeverIndexed(out, value);
    return out;
  }

  /** Keeps forwarded request bytes for a resend, until the response starts or the limit passes. */
  private keep(chunk: Buffer): void {
    if (!this.replay) return;
    this.replayBytes += chunk.length;
    if (this.replayBytes > REPLAY_LIMIT) this.replay = undefined;
    else this.replay.push(chunk);
  }

  // ---- stream events (client stream and upstream stream) ----

  onHeaders(stream: H2Stream, fields: string[], status: number, endStream: boolean): void {
    if (stream !== this.up) return;
    if (status < 200) {
      if (!this.answered) this.conn.sendHeaders(this.client, fields, false);
      return;
    }
    if (!this.answered && !this.client.closed && this.retryAnswer(stream, fields, status, endStream)) return;
    this.responded = true;
    this.replay = undefined;
    this.timers.stopTry();
    // The peer sidecar could not reach its application: that endpoint is failing.
    if (fieldValue(fields, PROXY_ERROR_HEADER) === 'connect') this.call?.failed('connect');
    else this.call?.responded(status);
    // Already answered by the proxy (timeout): the late answer goes nowhere.
    if (this.answered || this.client.closed) return;
    this.record.response(status, fieldValue(fields, 'grpc-status'));
    this.conn.sendHeaders(this.client, withSessionFields(responseFields(fields, this.target), this.call?.sessionHeader()), endStream);
    if (endStream) this.finish();
  }

  onData(stream: H2Stream, data: Buffer, endStream: boolean): void {
    if (stream === this.client) {
      this.bytesReceived += data.length;
      this.tee?.data(data);
      if (endStream) {
        this.requestEnded = true;
        this.tee?.end();
      }
      const up = this.up;
      if (up && !up.closed) {
        this.keep(data);
        up.write(data, endStream);
      } else if (!up && !this.answered) {
        (this.unsent ??= []).push(data);
        this.unsentEnd = endStream;
      } else {
        // Nobody to take it (answered, or the upstream stream is gone): let the client go on.
        this.conn.consumed(this.client, data.length);
      }
      return;
    }
    if (stream !== this.up || this.answered || this.client.closed) {
      // A dropped try's or a late answer's bytes: the connection's window is given back.
      stream.conn.consumed(stream, data.length);
      return;
    }
    this.bytesSent += data.length;
    this.client.write(data, endStream);
    if (endStream) this.finish();
  }

  onTrailers(stream: H2Stream, fields: string[]): void {
    if (stream === this.client) {
      this.requestEnded = true;
      this.keptTrailers = fields;
      this.tee?.end(fields);
      const up = this.up;
      if (up && !up.closed) up.conn.sendTrailers(up, fields);
      return;
    }
    if (stream !== this.up || this.answered || this.client.closed) return;
    const grpcStatus = fieldValue(fields, 'grpc-status');
    if (grpcStatus !== undefined) this.record.response(undefined, grpcStatus);
    this.conn.sendTrailers(this.client, fields);
    this.finish();
  }

  onReset(stream: H2Stream, code: number, refused: boolean): void {
    if (stream === this.client) {
      this.tee?.abandon();
      // The client cancelled or went away: so does the upstream stream.
      const up = this.up;
      if (up && !up.closed) up.reset(ErrorCode.CANCEL);
      this.endRecord(code === ErrorCode.NO_ERROR && this.responded ? undefined : ['DC']);
      return;
    }
    if (stream !== this.up) return;
    if (this.answered || this.client.closed) return;
    if (!this.responded) {
      if (refused) this.call?.failed('refused');
      if (refused && this.replay && this.requestReplayable() && this.call?.mayRetry('transparent')) {
        // REFUSED_STREAM or above GOAWAY's last stream id: the endpoint did not process it (RFC
        // 9113 8.7). Not the endpoint's fault either; send it again (the next attempt releases this lease).
        log.debug({ upstream: this.lease?.endpoint.key }, 'stream refused by the endpoint; sending it again');
        this.lease = undefined;
        this.up = undefined;
        this.client.source = undefined;
        return this.send();
      }
      if (refused) return this.reply(503, 'reset', 'upstream refused the stream');
      this.call?.failed('reset');
      return this.reply(502, 'reset', `upstream reset the stream (${codeName(code)})`);
    }
    if (code === ErrorCode.NO_ERROR && stream.remoteEnded) {
      // The endpoint answered in full and stopped reading the request (RFC 9113 8.1): the client
      // hears the same once the answer is out, or it uploads forever.
      this.client.conn.resetWhenFlushed(this.client, ErrorCode.NO_ERROR);
      return;
    }
    this.client.reset(code === ErrorCode.NO_ERROR ? ErrorCode.INTERNAL_ERROR : code);
    this.endRecord(['UR'], new Error(`upstream reset (${codeName(code)})`));
  }

  onClose(stream: H2Stream): void {
    if (stream === this.up) {
      this.releaseLease();
      return;
    }
    if (stream !== this.client) return;
    this.tee?.abandon();
    this.timers.stopRequest();
    const up = this.up;
    if (up && !up.closed) up.reset(ErrorCode.CANCEL);
    this.releaseLease();
    const answer = this.answer;
    if (answer) return this.endRecord(answer.flags, answer.message, answer.upstream);
    this.endRecord(this.responded || this.answered ? undefined : ['DC']);
  }

  private requestReplayable(): boolean {
    return this.replay !== undefined;
  }

  // ---- retries ----

  /**
   * A final answer the retry policy retries, not forwarded yet: an HTTP status of `codes`
   * (idempotent methods; gRPC calls whatever their method), or a gRPC trailers-only answer whose
   * grpc-status is in `grpcCodes`. When the body is replayable and the call has a retry left, the
   * try's stream is dropped and the stream goes again after the backoff.
   */
  private retryAnswer(stream: H2Stream, fields: string[], status: number, endStream: boolean): boolean {
    const policy = this.target?.retry;
    const call = this.call;
    if (!policy || !call || !this.requestReplayable()) return false;
    const retried = this.grpc
      ? (endStream && retriesGrpc(policy, fieldValue(fields, 'grpc-status'))) || policy.codes.has(status)
      : retriesStatus(policy, this.head.method, status);
    if (!retried || !call.mayRetry('policy', policy.attempts)) return false;
    if (fieldValue(fields, PROXY_ERROR_HEADER) === 'connect') call.failed('connect');
    else {
      call.responded(status);
      call.failed('status');
    }
    this.dropTry(stream);
    this.retryAfter(backoffDelay(policy, call.attempts));
    return true;
  }

  /** The try's stream is abandoned (reset unless both sides ended); its late events are ignored. */
  private dropTry(stream: H2Stream | undefined): void {
    if (this.wake) this.call?.gate?.cancel(this.wake);
    this.wake = undefined;
    this.up = undefined;
    this.lease = undefined;
    this.client.source = undefined;
    if (stream && !stream.closed) stream.reset(ErrorCode.CANCEL);
  }

  /** Sends the request again after `ms`; not when that is past timeouts.request, whose timer answers 504 then. */
  private retryAfter(ms: number): void {
    this.timers.retryAfter(ms, () => this.send());
  }

  /** The try passed timeouts.backendRequest: its stream is reset; another try may follow, else 504 (gRPC DEADLINE_EXCEEDED). */
  private onTryTimeout(): void {
    if (this.responded || this.answered || this.client.closed) return;
    const call = this.call;
    const policy = this.target?.retry;
    call?.failed('timeout');
    this.dropTry(this.up);
    if (policy && call && this.requestReplayable() && (this.grpc || IDEMPOTENT.has(this.head.method)) && call.mayRetry('policy', policy.attempts)) {
      return this.retryAfter(backoffDelay(policy, call.attempts));
    }
    this.reply(504, 'timeout', `upstream request timeout after ${this.target?.tryTimeoutMs} ms (timeouts.backendRequest)`);
    this.releaseLease();
  }

  // ---- endings ----

  private onTimeout(): void {
    if (this.responded || this.answered || this.client.closed) return;
    this.call?.failed('timeout');
    const up = this.up;
    this.reply(504, 'timeout', `upstream request timeout after ${this.target?.timeoutMs} ms`);
    // The answer is given: the endpoint's stream must go too, or its late answer finds it.
    if (up && !up.closed) up.reset(ErrorCode.CANCEL);
    this.releaseLease();
  }

  /** The response's end was handed to the client. */
  private finish(): void {
    this.endRecord();
  }

  /** Answers the route's RequestRedirect itself; nothing goes upstream. */
  private answerRedirect(target: HttpRouteTarget): void {
    const status = target.redirect?.status ?? 302;
    const client = this.client;
    this.answered = true;
    this.timers.stopRequest();
    this.record.response(status);
    if (!client.closed) {
      this.conn.sendHeaders(client, [':status', String(status), ...redirectRawHeaders(target)], true);
      // The client may still be sending: it is told to stop once the answer is out.
      if (!client.remoteEnded) this.conn.resetWhenFlushed(client, ErrorCode.NO_ERROR);
    }
    this.endRecord();
  }

  /** Answers the stream itself: gRPC callers get a trailers-only gRPC status. */
  private reply(status: number, kind: ProxyErrorKind, message: string): void {
    const flag = RESPONSE_FLAG_OF[kind];
    const upstream = this.endpoint?.key;
    const client = this.client;
    this.answered = true;
    // Writing the answer may close the client stream at once (its side had ended): onClose then
    // ends the record, and must say why as this call would.
    this.answer = { flags: flag ? [flag] : undefined, message, upstream };
    if (client.closed) return this.endRecord(flag ? [flag] : undefined, message, upstream);
    if (this.responded) {
      client.reset(ErrorCode.INTERNAL_ERROR);
      return this.endRecord(flag ? [flag] : undefined, message, upstream);
    }
    const safe = message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200).trim();
    if (this.grpc) {
      const grpcStatus = grpcStatusFor(status);
      this.record.response(200, grpcStatus);
      this.conn.sendHeaders(
        client,
        [':status', '200', 'content-type', 'application/grpc', 'grpc-status', String(grpcStatus), 'grpc-message', encodeURIComponent(safe), 'x-tsmesh-error', safe, PROXY_ERROR_HEADER, kind],
        true,
      );
    } else {
      this.record.response(status);
      const body = Buffer.from(`${safe}\n`, 'latin1');
      this.conn.sendHeaders(client, [':status', String(status), 'content-type', 'text/plain', 'content-length', String(body.length), 'x-tsmesh-error', safe, PROXY_ERROR_HEADER, kind], false);
      client.write(body, true);
    }
    // The client may still be sending: it is told to stop once the answer is out.
    if (!client.closed && !client.remoteEnded) this.conn.resetWhenFlushed(client, ErrorCode.NO_ERROR);
    this.endRecord(flag ? [flag] : undefined, message, upstream);
  }

  /** The upstream side is over: the call releases its lease and its place in the cluster's limits. */
  private releaseLease(): void {
    this.lease = undefined;
    this.call?.release();
  }

  private endRecord(flags?: ResponseFlag[], error?: unknown, upstream?: string): void {
    if (this.recorded || !this.record) return;
    this.recorded = true;
    this.timers.clear();
    if (this.wake) this.call?.gate?.cancel(this.wake);
    this.wake = undefined;
    const endpoint = this.endpoint;
    this.record.end({
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      upstream: upstream ?? endpoint?.key,
      destination: endpoint?.peer,
      mtls: this.ctx?.direction === 'outbound' && endpoint ? this.fwd.dial.mtlsFor(endpoint) : undefined,
      flags,
      error,
      attempts: this.call?.attempts,
    });
  }
}

function codeName(code: number): string {
  for (const [name, value] of Object.entries(ErrorCode)) if (value === code) return name;
  return `code ${code}`;
}
