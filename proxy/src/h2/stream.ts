// One HTTP/2 stream of an H2Connection (RFC 9113 §5.1): its two half-closed flags, both flow-control
// windows, the DATA queued behind a closed window, and the handler the relay attached.
import type { H2Connection } from './connection.js';

/**
 * What a stream tells its owner. Every method is called from the connection's read or write path
 * and must not throw. After `onClose` nothing else is called.
 */
export interface H2StreamHandler {
  /** A client connection's response headers (1xx informational included), validated. */
  onHeaders(stream: H2Stream, fields: string[], status: number, endStream: boolean): void;
  /** Body bytes (a view of the bytes read; keep it only while forwarding it). */
  onData(stream: H2Stream, data: Buffer, endStream: boolean): void;
  /** Trailers, validated; the stream's remote side is ended. */
  onTrailers(stream: H2Stream, fields: string[]): void;
  /**
   * The stream ended abnormally, not by the handler's own `reset`: RST_STREAM from the peer, a
   * stream error found here, or the connection's end. `refused`: the peer never processed it
   * (REFUSED_STREAM, or above a GOAWAY's last stream id), so it may be sent again.
   */
  onReset(stream: H2Stream, code: number, refused: boolean): void;
  /** The stream left its connection (after onReset, or after both sides ended). */
  onClose(stream: H2Stream): void;
}

export class H2Stream {
  handler: H2StreamHandler | undefined;
  /**
   * The stream whose received bytes are being sent here: when queued bytes reach the socket, that
   * stream's window is granted back (backpressure from this peer to that one).
   */
  source: H2Stream | undefined;
  localEnded = false;
  remoteEnded = false;
  closed = false;
  /** A client connection's stream has had its final (non-1xx) response headers. */
  responded = false;
  /** Our HEADERS went out on it (for a server stream: it has been answered; Rapid Reset counts the rest). */
  answered = false;
  /** The request is HEAD (its response's content-length describes no body). */
  isHead = false;
  sendWindow: number;
  recvWindow: number;
  /** Bytes handed on (consumed) and not yet granted back with WINDOW_UPDATE. */
  unacked = 0;
  /** Bytes received and not yet consumed. */
  buffered = 0;
  queue: Buffer[] | undefined;
  queued = 0;
  queuedEnd = false;
  queuedTrailers: string[] | undefined;
  /** RST_STREAM code to send once our side has ended (resetWhenFlushed). */
  resetAfterEnd: number | undefined;
  /** content-length of the body arriving, or -1. */
  expectLength = -1;
  received = 0;
  lastActive: number;

  constructor(
    readonly id: number,
    readonly conn: H2Connection,
    sendWindow: number,
    recvWindow: number,
    now: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
    this.lastActive = now;
  }

  /** Queues body bytes to send (see H2Connection.sendData). */
  write(data: Buffer, endStream = false): void {
    this.conn.sendData(this, data, endStream);
  }

  /** Ends the stream with RST_STREAM `code`; the handler is not told (it asked). */
  reset(code: number): void {
    this.conn.resetStream(this, code);
  }
}
