// One HTTP/2 connection, either side (RFC 9113): reads frames off a socket, runs the connection and
// stream state machines, flow control and every protection of limits.ts, and writes frames back.
// Hand-written instead of node:http2 because that library's per-stream objects cost the sidecar
// 7-15x HAProxy's CPU per request (issue 9); here a stream is one small object, DATA payloads stay
// views of the bytes read, and writes are batched once per read.
import type { Socket } from 'node:net';
import { logger } from '@tsmesh/common';
import { HpackDecoder, HpackEncoder } from './hpack/index.js';
import {
  CLIENT_PREFACE,
  DEFAULT_WINDOW,
  ErrorCode,
  errorName,
  Flag,
  FRAME_HEADER_LENGTH,
  frameHeader,
  FrameType,
  goawayFrame,
  headerFrames,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW,
  MIN_MAX_FRAME_SIZE,
  pingFrame,
  rstStreamFrame,
  Setting,
  SETTINGS_ACK,
  settingsFrame,
  windowUpdateFrame,
} from './frame.js';
import { NO_COUNTERS, TokenBucket, type H2Counters, type H2Limits, type H2ProtectionKind } from './limits.js';
import { H2Stream, type H2StreamHandler } from './stream.js';
import { StreamTable } from './stream-table.js';
import { validateRequest, validateResponse, validateTrailers, type RequestHead } from './validate.js';
import { clock, sweeper } from './sweeper.js';

const log = logger('h2.connection');

export type H2Role = 'server' | 'client';

/** What a connection tells whoever owns it (the relay for clients, the pool for upstreams). */
export interface H2ConnectionOwner {
  /** Server side: a new, valid request stream; set `stream.handler` before returning. */
  onStream?(stream: H2Stream, head: RequestHead, fields: string[], endStream: boolean): void;
  /** Server side: a request whose header list was over the limit; already answered 431. */
  onRejectedStream?(stream: H2Stream, reason: string): void;
  /** A stream left the connection (capacity for one more). */
  onStreamClosed?(conn: H2Connection): void;
  /** The peer's SETTINGS arrived (concurrency limit known). */
  onSettings?(conn: H2Connection): void;
  /** The peer sent GOAWAY: no new streams here. */
  onGoaway?(conn: H2Connection, lastStreamId: number, code: number): void;
  /** The connection is gone (socket closed). */
  onClose?(conn: H2Connection): void;
}

/** Octets queued in the socket beyond which stream DATA waits (socket-level backpressure). */
const SOCKET_HIGH_WATER = 256 * 1024;
/** Batches smaller than this are joined into one write. */
const JOIN_BELOW = 16 * 1024;
/** Streams id space (RFC 9113 §5.1.1). */
const MAX_STREAM_ID = MAX_WINDOW;
const EMPTY = Buffer.alloc(0);

/**
 * Connections with frames to write, flushed once per event-loop turn (after every socket read of
 * that turn), so answers from several upstream reads leave in one write per client connection.
 */
let dirty: Array<() => void> = [];
function flushDirty(): void {
  const flushes = dirty;
  dirty = [];
  for (const flush of flushes) flush();
}

class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly kind: H2ProtectionKind = 'protocol_error',
  ) {
    super(message);
  }
}

interface PendingBlock {
  streamId: number;
  endStream: boolean;
  fragments: Buffer[];
  size: number;
  continuations: number;
}

/** Peer-opened streams after which the Rapid Reset counts are halved. */
const RESET_WINDOW_STREAMS = 4096;

export class H2Connection {
  readonly streams = new StreamTable();
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (client side: how many streams we may open). */
  peerMaxStreams = 100;
  peerSettingsReceived = false;
  /** GOAWAY received (no new streams) or sent (closing). */
  goingAway = false;
  dead = false;
  /** Client side: the socket is connected and the preface sent. */
  ready = false;
  /** Why the connection ended, for logs. */
  closeReason: string | undefined;
  lastActive: number;
  userData: unknown;

  private readonly decoder: HpackDecoder;
  private readonly encoder = new HpackEncoder();
  private pending: Buffer | undefined;
  private prefaceLeft: number;
  private firstFrame = true;
  private block: PendingBlock | undefined;
  private lastPeerStreamId = 0;
  private nextStreamId = 1;
  private goawayLastId = MAX_STREAM_ID;
  private peerMaxFrameSize = MIN_MAX_FRAME_SIZE;
  private peerInitialWindow = DEFAULT_WINDOW;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow: number;
  private connUnacked = 0;
  private connBuffered = 0;
  private readonly connBufferLimit: number;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private readonly waiting = new Set<H2Stream>();
  private readonly resets: TokenBucket;
  /** Streams the peer opened, and those it reset before their answer (Rapid Reset; halved now and then). */
  private peerStreams = 0;
  private prematureResets = 0;
  private readonly control: TokenBucket;
  private peerEnded = false;
  private closeNotified = false;

  constructor(
    readonly socket: Socket,
    readonly role: H2Role,
    private readonly limits: H2Limits,
    private readonly owner: H2ConnectionOwner,
    private readonly counters: H2Counters = NO_COUNTERS,
  ) {
    this.decoder = new HpackDecoder({ maxTableSize: limits.headerTableSize, maxHeaderListSize: limits.maxHeaderListSize });
    this.prefaceLeft = role === 'server' ? CLIENT_PREFACE.length : 0;
    this.resets = new TokenBucket(limits.resetBurst, limits.resetRate);
    this.control = new TokenBucket(limits.controlBurst, limits.controlRate);
    // Upstream connections are shared by many clients' streams: their connection window is granted
    // back as bytes arrive (each stream's window bounds its memory), so one stalled stream never
    // stalls the others. A client's own connection is held back once it has too much buffered.
    this.connBufferLimit = role === 'server' ? limits.connectionBuffer : Number.POSITIVE_INFINITY;
    this.connRecvWindow = Math.max(DEFAULT_WINDOW, limits.connectionBuffer);
    this.lastActive = clock.now;
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('end', () => this.onPeerEnd());
    socket.on('close', () => this.onSocketClose());
    socket.on('error', (error: Error) => {
      this.closeReason ??= error.message;
    });
    socket.on('drain', () => this.flushStreams());
    sweeper.add(this);
  }

  /** Sends our preface and SETTINGS (client side: once the socket is ready). */
  start(): void {
    this.ready = true;
    const settings: Array<[number, number]> = [
      [Setting.MAX_CONCURRENT_STREAMS, this.role === 'server' ? this.limits.maxConcurrentStreams : 1000],
      [Setting.INITIAL_WINDOW_SIZE, this.limits.streamWindow],
      [Setting.MAX_FRAME_SIZE, this.limits.maxFrameSize],
      [Setting.MAX_HEADER_LIST_SIZE, this.limits.maxHeaderListSize],
    ];
    if (this.role === 'client') settings.unshift([Setting.ENABLE_PUSH, 0]);
    if (this.limits.headerTableSize !== 4096) settings.push([Setting.HEADER_TABLE_SIZE, this.limits.headerTableSize]);
    if (this.role === 'client') this.push(CLIENT_PREFACE);
    this.push(settingsFrame(settings));
    if (this.connRecvWindow > DEFAULT_WINDOW) this.push(windowUpdateFrame(0, this.connRecvWindow - DEFAULT_WINDOW));
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  /** Client side: whether one more stream may be opened now. */
  get canOpen(): boolean {
    return this.ready && !this.goingAway && !this.dead && this.streams.size < this.peerMaxStreams && this.nextStreamId <= MAX_STREAM_ID;
  }

  /** Client side: opens a stream and sends its request headers at once (ids go out in order). */
  request(fields: readonly string[], endStream: boolean, handler: H2StreamHandler): H2Stream {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new H2Stream(id, this, this.peerInitialWindow, this.limits.streamWindow, clock.now);
    stream.handler = handler;
    this.streams.add(stream);
    this.writeHeaders(stream, fields, endStream);
    return stream;
  }

  /** Sends response headers (server side) or trailers-less headers; `endStream` ends our side. */
  sendHeaders(stream: H2Stream, fields: readonly string[], endStream: boolean): void {
    if (stream.closed || stream.localEnded) return;
    this.writeHeaders(stream, fields, endStream);
  }

  /** Sends trailers after every queued DATA frame; ends our side. */
  sendTrailers(stream: H2Stream, fields: string[]): void {
    if (stream.closed || stream.localEnded) return;
    if (stream.queued > 0 || stream.queuedEnd) {
      stream.queuedTrailers = fields;
      stream.queuedEnd = true;
      return;
    }
    if (fields.length === 0) this.sendData(stream, EMPTY, true);
    else this.writeHeaders(stream, fields, true);
  }

  /**
   * Sends body bytes within both flow-control windows and the socket's buffer; the rest is queued
   * and sent as the peer grants window. Bytes reaching the socket are granted back to
   * `stream.source` (the stream they came from).
   */
  sendData(stream: H2Stream, data: Buffer, endStream: boolean): void {
    if (stream.closed || stream.localEnded || stream.queuedEnd) return;
    if (stream.queued === 0 && !this.congested()) {
      const sent = this.writeData(stream, data, endStream);
      if (sent === data.length && (sent > 0 || endStream)) return;
      data = data.subarray(sent);
    }
    if (data.length > 0) {
      (stream.queue ??= []).push(data);
      stream.queued += data.length;
    }
    if (endStream) stream.queuedEnd = true;
    this.waiting.add(stream);
    if (this.stalledForever(stream)) this.failStream(stream, ErrorCode.CANCEL, false);
  }

  /** The handler forwarded `n` received bytes: grant them back to the peer (stream, then connection). */
  consumed(stream: H2Stream, n: number): void {
    // Never more than was received: a resent body must not grant its window twice.
    if (n > stream.buffered) n = stream.buffered;
    if (n <= 0) return;
    stream.buffered -= n;
    this.connBuffered -= n;
    if (this.connBufferLimit !== Number.POSITIVE_INFINITY) this.grantConnection(0);
    if (stream.closed || stream.remoteEnded) return;
    stream.unacked += n;
    if (stream.unacked >= this.limits.streamWindow >>> 2) {
      stream.recvWindow += stream.unacked;
      this.push(windowUpdateFrame(stream.id, stream.unacked));
      stream.unacked = 0;
    }
  }

  /** RST_STREAM `code` once everything queued on the stream, its end included, is sent. */
  resetWhenFlushed(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    if (stream.localEnded) this.resetStream(stream, code);
    else stream.resetAfterEnd = code;
  }

  /** RST_STREAM from our side; the handler is not told. */
  resetStream(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    // Both sides already ended (its last frame is being handled right now): the stream is done,
    // and a RST_STREAM would only cross the peer's close (a peer may count those as abuse).
    if (stream.localEnded && stream.remoteEnded && stream.queued === 0 && !stream.queuedEnd) return this.closeStream(stream);
    this.push(rstStreamFrame(stream.id, code));
    this.closeStream(stream);
  }

  /** GOAWAY: graceful (NO_ERROR: in-flight streams finish, then the socket closes) or not. */
  goaway(code: number, debug?: string): void {
    if (this.dead) return;
    const last = this.role === 'server' ? this.lastPeerStreamId : 0;
    if (!this.goingAway || code !== ErrorCode.NO_ERROR) this.push(goawayFrame(last, code, debug));
    this.goingAway = true;
    if (code !== ErrorCode.NO_ERROR) {
      this.closeReason ??= `GOAWAY ${errorName(code)}${debug ? `: ${debug}` : ''}`;
      this.flushOut();
      this.socket.end();
      this.terminate(code);
      // A peer that never reads would keep the socket; it has had its GOAWAY.
      setTimeout(() => this.socket.destroy(), 1000).unref();
      return;
    }
    this.closeIfDone();
  }

  /** Closes now: every stream is reset towards its handler. */
  destroy(reason = 'closed'): void {
    this.closeReason ??= reason;
    this.terminate(ErrorCode.CANCEL);
    this.socket.destroy();
  }

  /** Called by the sweeper about every quarter of the smallest timeout. */
  sweep(now: number): void {
    const { idleTimeoutMs, streamIdleTimeoutMs, prefaceTimeoutMs } = this.limits;
    if (this.dead) return;
    if (this.role === 'server' && this.firstFrame && prefaceTimeoutMs > 0 && now - this.lastActive > prefaceTimeoutMs) {
      this.destroy('no HTTP/2 preface in time');
      return;
    }
    if (streamIdleTimeoutMs > 0) {
      for (const stream of this.streams.values()) {
        if (now - stream.lastActive <= streamIdleTimeoutMs) continue;
        this.counters.protection('stream_idle_timeout');
        this.failStream(stream, ErrorCode.CANCEL, false);
      }
    }
    if (idleTimeoutMs > 0 && this.streams.size === 0 && now - this.lastActive > idleTimeoutMs) {
      this.counters.protection('idle_timeout');
      this.goaway(ErrorCode.NO_ERROR);
      this.closeIfDone(true);
    }
  }

  // ---- reading ----

  private onBytes(chunk: Buffer): void {
    if (this.dead) return;
    this.lastActive = clock.now;
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let off = 0;
    try {
      if (this.prefaceLeft > 0) {
        const start = CLIENT_PREFACE.length - this.prefaceLeft;
        const n = Math.min(this.prefaceLeft, buf.length);
        if (CLIENT_PREFACE.compare(buf, 0, n, start, start + n) !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'not an HTTP/2 client preface');
        this.prefaceLeft -= n;
        off = n;
      }
      while (buf.length - off >= FRAME_HEADER_LENGTH) {
        const length = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
        if (length > this.limits.maxFrameSize) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} octets over SETTINGS_MAX_FRAME_SIZE ${this.limits.maxFrameSize}`);
        const end = off + FRAME_HEADER_LENGTH + length;
        if (end > buf.length) break;
        const type = buf[off + 3]!;
        const flags = buf[off + 4]!;
        const id = buf.readUInt32BE(off + 5) & MAX_STREAM_ID;
        const payload = buf.subarray(off + FRAME_HEADER_LENGTH, end);
        off = end;
        this.onFrame(type, flags, id, payload);
        if (this.dead) return;
      }
    } catch (error) {
      if (error instanceof ConnectionError) {
        this.counters.protection(error.kind);
        this.goaway(error.code, error.message);
        return;
      }
      // A bug here must cost this connection, never the sidecar.
      log.error({ err: (error as Error).message, stack: (error as Error).stack }, 'HTTP/2 connection failed unexpectedly');
      this.counters.protection('internal_error');
      this.goaway(ErrorCode.INTERNAL_ERROR, 'internal error');
      return;
    }
    if (off < buf.length) this.pending = off === 0 ? buf : buf.subarray(off);
    this.scheduleFlush();
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.firstFrame) {
      // RFC 9113 §3.4: the preface's first frame is SETTINGS, from either side.
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'first frame is not SETTINGS');
      this.firstFrame = false;
    }
    if (this.block && type !== FrameType.CONTINUATION) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'header block interrupted by another frame (RFC 9113 6.10)');
    switch (type) {
      case FrameType.DATA:
        return this.onData(flags, id, payload);
      case FrameType.HEADERS:
        return this.onHeadersFrame(flags, id, payload);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, id, payload);
      case FrameType.RST_STREAM:
        return this.onRstStream(id, payload);
      case FrameType.SETTINGS:
        return this.onSettings(flags, id, payload);
      case FrameType.PING:
        return this.onPing(flags, id, payload);
      case FrameType.GOAWAY:
        return this.onGoaway(id, payload);
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
      case FrameType.PRIORITY:
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) return this.streamError(id, ErrorCode.FRAME_SIZE_ERROR);
        return this.spendControl();
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE with push disabled');
      default:
        // Unknown types are ignored (RFC 9113 §4.1), but not for free.
        return this.spendControl();
    }
  }

  /**
   * Rapid Reset (CVE-2023-44487): open-and-cancel faster than any real client does. Only a
   * premature reset (of a stream not answered yet) counts, and only while such resets are most of
   * the streams the peer opened lately: a connection from another sidecar multiplexes many
   * clients, whose cancellations (deadlines, hedging) are legitimate and must not cut the streams
   * of everyone else on it. A reset of a stream already closed is free: it crosses our own END_STREAM
   * or RST_STREAM all the time on a busy connection (RFC 9113 §5.1, §6.4), and costs nothing but its parse.
   */
  private chargeReset(stream: H2Stream | undefined): void {
    if (stream === undefined) return;
    if (stream.answered) return;
    this.prematureResets++;
    if (this.peerStreams >= RESET_WINDOW_STREAMS) {
      // A sliding window of sorts: what happened long ago weighs half as much at each turn.
      this.peerStreams >>>= 1;
      this.prematureResets >>>= 1;
    }
    if (this.prematureResets * 2 > this.peerStreams && !this.resets.take()) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'stream resets over the rate limit', 'rapid_reset');
    }
  }

  private spendControl(): void {
    if (!this.control.take()) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many control frames', 'control_flood');
  }

  /** Strips padding (RFC 9113 §6.1, §6.2); a pad length beyond the payload is PROTOCOL_ERROR. */
  private unpad(flags: number, payload: Buffer, extra: number): Buffer {
    if ((flags & Flag.PADDED) === 0) {
      if (payload.length < extra) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'frame shorter than its priority fields');
      return extra ? payload.subarray(extra) : payload;
    }
    if (payload.length < 1 + extra) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padded frame without a pad length');
    const pad = payload[0]!;
    if (pad + 1 + extra > payload.length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding longer than the frame');
    return payload.subarray(1 + extra, payload.length - pad);
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const flowLength = payload.length;
    // Connection flow control counts the whole frame, padding included (§6.9.1).
    this.connRecvWindow -= flowLength;
    if (this.connRecvWindow < 0) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window', 'flow_control_error');
    const stream = this.streams.get(id);
    const data = this.unpad(flags, payload, 0);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (!stream) {
      if (this.isIdle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      // A stream we closed: its bytes still count against the connection, then go (§5.1).
      this.grantConnection(flowLength);
      return;
    }
    stream.lastActive = clock.now;
    if (stream.remoteEnded) {
      this.grantConnection(flowLength);
      return this.failStream(stream, ErrorCode.STREAM_CLOSED, false);
    }
    if (this.role === 'client' && !stream.responded) {
      this.grantConnection(flowLength);
      return this.failStream(stream, ErrorCode.PROTOCOL_ERROR, false);
    }
    stream.recvWindow -= flowLength;
    if (stream.recvWindow < 0) {
      this.grantConnection(flowLength);
      this.counters.protection('flow_control_error');
      return this.failStream(stream, ErrorCode.FLOW_CONTROL_ERROR, false);
    }
    if (data.length === 0 && !endStream) this.spendControl();
    // Padding is consumed here; the data itself when the handler has passed it on.
    const padding = flowLength - data.length;
    if (padding > 0) {
      this.grantConnection(padding);
      stream.unacked += padding;
    }
    stream.received += data.length;
    if (stream.expectLength >= 0 && (stream.received > stream.expectLength || (endStream && stream.received !== stream.expectLength))) {
      this.grantConnection(data.length);
      this.counters.protection('malformed_headers');
      return this.failStream(stream, ErrorCode.PROTOCOL_ERROR, false);
    }
    stream.buffered += data.length;
    this.connBuffered += data.length;
    this.grantConnection(data.length);
    if (endStream) stream.remoteEnded = true;
    stream.handler?.onData(stream, data, endStream);
    if (endStream) this.maybeClose(stream);
  }

  /** Grants `n` octets of connection window back (held back while a client has too much buffered). */
  private grantConnection(n: number): void {
    this.connUnacked += n;
    if (this.connBuffered > this.connBufferLimit) return;
    if (this.connUnacked >= this.connRecvWindow || this.connUnacked >= this.limits.connectionBuffer >>> 2 || this.connUnacked >= 1 << 20) {
      this.connRecvWindow += this.connUnacked;
      this.push(windowUpdateFrame(0, this.connUnacked));
      this.connUnacked = 0;
    }
  }

  private isIdle(id: number): boolean {
    const peerInitiated = (id & 1) === (this.role === 'server' ? 1 : 0);
    return peerInitiated ? id > this.lastPeerStreamId : id >= this.nextStreamId;
  }

  private onHeadersFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    const priority = (flags & Flag.PRIORITY) !== 0;
    const fragment = this.unpad(flags, payload, priority ? 5 : 0);
    if (priority) {
      const offset = (flags & Flag.PADDED) !== 0 ? 1 : 0;
      if ((payload.readUInt32BE(offset) & MAX_STREAM_ID) === id) return this.streamError(id, ErrorCode.PROTOCOL_ERROR);
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if ((flags & Flag.END_HEADERS) !== 0) return this.onHeaderBlock(id, fragment, endStream);
    if (fragment.length > this.limits.maxHeaderBlock) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large', 'header_block_too_large');
    // Copied: the fragment's buffer is the read chunk, which must not be held for long.
    this.block = { streamId: id, endStream, fragments: [Buffer.from(fragment)], size: fragment.length, continuations: 0 };
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const block = this.block;
    if (!block || block.streamId !== id) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block in progress (RFC 9113 6.10)');
    block.continuations++;
    block.size += payload.length;
    if (block.continuations > this.limits.maxContinuations) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `more than ${this.limits.maxContinuations} CONTINUATION frames in one header block`, 'continuation_flood');
    if (block.size > this.limits.maxHeaderBlock) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block over ${this.limits.maxHeaderBlock} octets`, 'header_block_too_large');
    if (payload.length === 0 && (flags & Flag.END_HEADERS) === 0) this.spendControl();
    block.fragments.push(Buffer.from(payload));
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.block = undefined;
    this.onHeaderBlock(id, block.fragments.length === 1 ? block.fragments[0]! : Buffer.concat(block.fragments, block.size), block.endStream);
  }

  private onHeaderBlock(id: number, block: Buffer, endStream: boolean): void {
    // Decoded first, whatever becomes of the stream: the HPACK table must stay in step (§4.3).
    const decoded = this.decoder.decode(block);
    if (!decoded.ok) throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, decoded.message, 'compression_error');
    const stream = this.streams.get(id);
    if (this.role === 'server') {
      if (!stream) return this.onRequestHeaders(id, decoded.headers, decoded.tooLarge, endStream);
    } else if (!stream) {
      if (this.isIdle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on idle stream ${id}`);
      return; // a stream we reset
    }
    stream.lastActive = clock.now;
    if (stream.remoteEnded) return this.failStream(stream, ErrorCode.STREAM_CLOSED, false);
    if (decoded.tooLarge) {
      this.counters.protection('header_list_too_large');
      return this.failStream(stream, ErrorCode.PROTOCOL_ERROR, false);
    }
    const fields = decoded.headers;
    if (this.role === 'client' && !stream.responded) {
      const head = validateResponse(fields);
      if (!head.ok || (head.value.informational && endStream) || head.value.status === 101) {
        this.counters.protection('malformed_headers');
        return this.failStream(stream, ErrorCode.PROTOCOL_ERROR, false);
      }
      if (!head.value.informational) {
        stream.responded = true;
        const status = head.value.status;
        if (head.value.contentLength !== undefined && !stream.isHead && status !== 204 && status !== 304) stream.expectLength = head.value.contentLength;
      }
      if (endStream) {
        stream.remoteEnded = true;
        if (stream.expectLength > 0) return this.failStream(stream, ErrorCode.PROTOCOL_ERROR, false);
      }
      stream.handler?.onHeaders(stream, fields, head.value.status, endStream);
      if (endStream) this.maybeClose(stream);
      return;
    }
    // Trailers: they end the stream (§8.1) and carry no pseudo-headers.
    if (!endStream || !validateTrailers(fields).ok || (stream.expectLength >= 0 && stream.received !== stream.expectLength)) {
      this.counters.protection('malformed_headers');
      return this.failStream(stream, ErrorCode.PROTOCOL_ERROR, false);
    }
    stream.remoteEnded = true;
    stream.handler?.onTrailers(stream, fields);
    this.maybeClose(stream);
  }

  private onRequestHeaders(id: number, fields: string[], tooLarge: boolean, endStream: boolean): void {
    if ((id & 1) === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `client stream id ${id} is even`);
    if (id <= this.lastPeerStreamId) return; // a closed stream's late trailers: ignored (§5.1)
    this.lastPeerStreamId = id;
    this.peerStreams++;
    if (this.goingAway) return; // above our GOAWAY: never processed (§6.8)
    if (this.streams.size >= this.limits.maxConcurrentStreams) {
      this.counters.protection('refused_stream');
      this.push(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    const stream = new H2Stream(id, this, this.peerInitialWindow, this.limits.streamWindow, clock.now);
    stream.remoteEnded = endStream;
    this.streams.add(stream);
    if (tooLarge) {
      // 431 for this stream alone (RFC 6585 §5); the connection and its other streams go on.
      this.counters.protection('header_list_too_large');
      this.owner.onRejectedStream?.(stream, 'request header list too large');
      this.writeHeaders(stream, [':status', '431', 'content-length', '0'], true);
      if (!stream.closed && !endStream) this.resetStream(stream, ErrorCode.NO_ERROR);
      return;
    }
    const head = validateRequest(fields);
    if (!head.ok) {
      this.counters.protection('malformed_headers');
      this.owner.onRejectedStream?.(stream, head.reason);
      this.resetStream(stream, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    stream.isHead = head.value.method === 'HEAD';
    if (head.value.contentLength !== undefined) {
      stream.expectLength = head.value.contentLength;
      if (endStream && head.value.contentLength !== 0) {
        this.counters.protection('malformed_headers');
        this.resetStream(stream, ErrorCode.PROTOCOL_ERROR);
        return;
      }
    }
    this.owner.onStream?.(stream, head.value, fields, endStream);
    if (!stream.handler && !stream.closed) this.resetStream(stream, ErrorCode.REFUSED_STREAM);
    else if (endStream) this.maybeClose(stream);
  }

  private onRstStream(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM length is not 4');
    if (this.isIdle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
    const stream = this.streams.get(id);
    if (this.role === 'server') this.chargeReset(stream);
    if (!stream) return;
    const code = payload.readUInt32BE(0);
    this.closeStream(stream);
    stream.handler?.onReset(stream, code, code === ErrorCode.REFUSED_STREAM && !stream.responded);
    stream.handler?.onClose(stream);
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
    if (this.peerSettingsReceived) this.spendControl();
    for (let i = 0; i < payload.length; i += 6) {
      const key = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      switch (key) {
        case Setting.HEADER_TABLE_SIZE:
          this.encoder.setPeerMaxTableSize(value);
          break;
        case Setting.ENABLE_PUSH:
          if (value > 1 || (this.role === 'client' && value !== 0)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.peerMaxStreams = value;
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`, 'flow_control_error');
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const stream of this.streams.values()) {
            stream.sendWindow += delta;
            if (stream.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window over 2^31-1', 'flow_control_error');
            if (delta > 0 && stream.queued > 0) this.waiting.add(stream);
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
          this.peerMaxFrameSize = value;
          break;
        default:
          break; // MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored (§6.5.2)
      }
    }
    this.pushControl(SETTINGS_ACK);
    const first = !this.peerSettingsReceived;
    this.peerSettingsReceived = true;
    if (first) this.owner.onSettings?.(this);
    this.flushStreams();
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING length is not 8');
    if ((flags & Flag.ACK) !== 0) return;
    this.spendControl();
    this.pushControl(pingFrame(payload, true));
  }

  /** Queues an ACK unless the peer has left too much of our output unread (PING/SETTINGS flood). */
  private pushControl(frame: Buffer): void {
    if (this.socket.writableLength + this.outBytes > this.limits.maxOutboundBuffer) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'peer does not read its ACKs', 'outbound_buffer');
    }
    this.push(frame);
  }

  private onGoaway(id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8');
    const last = payload.readUInt32BE(0) & MAX_STREAM_ID;
    const code = payload.readUInt32BE(4);
    this.goingAway = true;
    this.goawayLastId = Math.min(this.goawayLastId, last);
    this.closeReason ??= `peer GOAWAY ${errorName(code)}`;
    this.owner.onGoaway?.(this, last, code);
    if (this.role === 'client') {
      // Streams above last-stream-id were never processed: their owners may send them again (§6.8).
      for (const stream of this.streams.values()) {
        if (stream.id > this.goawayLastId) this.failStream(stream, ErrorCode.REFUSED_STREAM, true);
      }
    }
    this.closeIfDone();
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length is not 4');
    const increment = payload.readUInt32BE(0) & MAX_WINDOW;
    if (id === 0) {
      if (increment === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
      this.connSendWindow += increment;
      if (this.connSendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window over 2^31-1', 'flow_control_error');
      this.flushStreams();
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) {
      if (this.isIdle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      return;
    }
    if (increment === 0) return this.failStream(stream, ErrorCode.PROTOCOL_ERROR, false);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.failStream(stream, ErrorCode.FLOW_CONTROL_ERROR, false);
    stream.lastActive = clock.now;
    if (stream.queued > 0 || stream.queuedEnd) {
      this.waiting.add(stream);
      this.flushStreams();
    }
  }

  // ---- streams ----

  /** A stream error (RFC 9113 §5.4.2) on a stream we may not know. */
  private streamError(id: number, code: number): void {
    const stream = this.streams.get(id);
    if (stream) this.failStream(stream, code, false);
    else this.push(rstStreamFrame(id, code));
  }

  /** Resets a stream from our side and tells its handler. */
  private failStream(stream: H2Stream, code: number, refused: boolean): void {
    if (stream.closed) return;
    if (!refused) this.push(rstStreamFrame(stream.id, code));
    this.closeStream(stream);
    stream.handler?.onReset(stream, code, refused);
    stream.handler?.onClose(stream);
  }

  private maybeClose(stream: H2Stream): void {
    if (stream.closed || !stream.localEnded) return;
    if (!stream.remoteEnded) {
      if (stream.resetAfterEnd !== undefined) this.resetStream(stream, stream.resetAfterEnd);
      return;
    }
    this.closeStream(stream);
    stream.handler?.onClose(stream);
  }

  private closeStream(stream: H2Stream): void {
    if (stream.closed) return;
    stream.closed = true;
    this.streams.delete(stream.id);
    this.waiting.delete(stream);
    if (stream.queue) {
      // Queued bytes will never be sent: their source may send more (it is going away too).
      stream.queue = undefined;
      stream.queued = 0;
    }
    // What the handler had not consumed is given back to the connection.
    if (stream.buffered > 0) {
      this.connBuffered -= stream.buffered;
      stream.buffered = 0;
      this.grantConnection(0);
    }
    this.lastActive = clock.now;
    this.owner.onStreamClosed?.(this);
    this.closeIfDone();
  }

  private closeIfDone(force = false): void {
    if (this.dead || this.streams.size > 0) return;
    if (this.goingAway || this.peerEnded || force) {
      this.flushOut();
      this.socket.end();
      this.dead = true;
      sweeper.delete(this);
    }
  }

  // ---- writing ----

  private writeHeaders(stream: H2Stream, fields: readonly string[], endStream: boolean): void {
    const block = this.encoder.encode(fields);
    stream.answered = true;
    for (const b of headerFrames(stream.id, block, endStream, this.peerMaxFrameSize)) this.push(b);
    stream.lastActive = clock.now;
    if (endStream) {
      stream.localEnded = true;
      this.maybeClose(stream);
    }
  }

  /** Sends as much of `data` as the windows allow now; returns the bytes sent. */
  private writeData(stream: H2Stream, data: Buffer, endStream: boolean): number {
    let sent = 0;
    const total = data.length;
    while (sent < total) {
      const room = Math.min(this.connSendWindow, stream.sendWindow, this.peerMaxFrameSize, total - sent);
      if (room <= 0) break;
      const last = sent + room === total;
      const flags = last && endStream ? Flag.END_STREAM : 0;
      this.push(frameHeader(room, FrameType.DATA, flags, stream.id));
      this.push(sent === 0 && last ? data : data.subarray(sent, sent + room));
      this.connSendWindow -= room;
      stream.sendWindow -= room;
      sent += room;
    }
    if (total === 0 && endStream) this.push(frameHeader(0, FrameType.DATA, Flag.END_STREAM, stream.id));
    if (sent > 0) {
      stream.lastActive = clock.now;
      const source = stream.source;
      if (source && !source.closed) source.conn.consumed(source, sent);
    }
    if (sent === total && endStream) {
      stream.localEnded = true;
      this.maybeClose(stream);
    }
    return sent;
  }

  /** Sends queued DATA (round-robin over waiting streams) while windows and the socket allow. */
  private flushStreams(): void {
    while (this.waiting.size > 0 && this.connSendWindow > 0 && !this.congested()) {
      let progressed = false;
      for (const stream of this.waiting) {
        if (this.congested()) break;
        if (stream.closed) {
          this.waiting.delete(stream);
          continue;
        }
        const queue = stream.queue;
        const head = queue?.[0];
        if (head) {
          const sent = this.writeData(stream, head, false);
          if (sent > 0) progressed = true;
          stream.queued -= sent;
          if (sent === head.length) queue.shift();
          else queue[0] = head.subarray(sent);
        }
        if (stream.queued === 0 && !stream.closed) {
          this.waiting.delete(stream);
          stream.queue = undefined;
          if (stream.queuedEnd) {
            const trailers = stream.queuedTrailers;
            stream.queuedEnd = false;
            stream.queuedTrailers = undefined;
            progressed = true;
            if (trailers && trailers.length > 0) this.writeHeaders(stream, trailers, true);
            else this.writeData(stream, EMPTY, true);
          }
        } else if (stream.sendWindow <= 0) {
          this.waiting.delete(stream); // back on WINDOW_UPDATE
          if (this.stalledForever(stream)) this.failStream(stream, ErrorCode.CANCEL, false);
        }
      }
      if (!progressed) break;
    }
    this.scheduleFlush();
  }

  private congested(): boolean {
    return this.socket.writableLength + this.outBytes >= SOCKET_HIGH_WATER;
  }

  private push(buf: Buffer): void {
    if (this.dead) return;
    this.out.push(buf);
    this.outBytes += buf.length;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.out.length === 0) return;
    this.flushScheduled = true;
    dirty.push(this.flushOut);
    if (dirty.length === 1) setImmediate(flushDirty);
  }

  /** Writes what this event-loop turn produced in one go. */
  private readonly flushOut = (): void => {
    this.flushScheduled = false;
    const out = this.out;
    if (out.length === 0 || this.socket.destroyed) {
      this.out = [];
      this.outBytes = 0;
      return;
    }
    this.out = [];
    const bytes = this.outBytes;
    this.outBytes = 0;
    if (out.length === 1) this.socket.write(out[0]!);
    else if (bytes <= JOIN_BELOW) this.socket.write(Buffer.concat(out, bytes));
    else {
      this.socket.cork();
      for (const b of out) this.socket.write(b);
      this.socket.uncork();
    }
  };

  // ---- the socket's end ----

  private onPeerEnd(): void {
    // Half-close: streams that can still finish do, then we close; never left in CLOSE_WAIT.
    this.peerEnded = true;
    this.goingAway = true;
    if (this.block || this.pending) return this.destroy('peer closed mid-frame');
    for (const stream of this.streams.values()) if (this.stalledForever(stream)) this.failStream(stream, ErrorCode.CANCEL, false);
    this.closeIfDone();
  }

  /**
   * After the peer's FIN nothing more comes from it: no rest of a body, no WINDOW_UPDATE. A stream
   * waiting on either can never finish and would hold its buffers until the idle timeout.
   */
  private stalledForever(stream: H2Stream): boolean {
    if (!this.peerEnded) return false;
    if (!stream.remoteEnded) return true;
    return (stream.queued > 0 || stream.queuedEnd) && (stream.sendWindow <= 0 || this.connSendWindow <= 0);
  }

  private onSocketClose(): void {
    this.closeReason ??= 'socket closed';
    this.terminate(ErrorCode.CANCEL);
  }

  /** Every stream is over: their handlers hear of it once. */
  private terminate(code: number): void {
    this.dead = true;
    sweeper.delete(this);
    this.out = [];
    this.outBytes = 0;
    const streams = this.streams.values();
    this.streams.clear();
    this.waiting.clear();
    for (const stream of streams) {
      if (stream.closed) continue;
      stream.closed = true;
      // A client stream above a GOAWAY's last id was never processed.
      const refused = this.role === 'client' && stream.id > this.goawayLastId;
      stream.handler?.onReset(stream, code, refused);
      stream.handler?.onClose(stream);
    }
    if (!this.closeNotified) {
      this.closeNotified = true;
      this.owner.onClose?.(this);
    }
  }
}
