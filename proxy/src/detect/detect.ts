// Protocol detection on a live socket: peeks (MSG_PEEK, nothing consumed) at what the client
// sent, with a short timeout so server-first protocols fall back to opaque TCP. A client that is
// still sending an HTTP request line at that timeout is waited for (up to the request-line limit):
// a pause must not turn HTTP into bytes passed through unparsed.
import type { Socket } from 'node:net';
import { loadLibc, socketFd } from '../capture/libc.js';
import { classify, http1RequestLine, MAX_DETECT_BYTES, type Detection } from './classify.js';

const MSG_PEEK = 0x2;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;

/** How long a client may take to finish an HTTP/1 request line it has begun, by default. */
export const REQUEST_LINE_TIMEOUT_MS = 5_000;

export interface DetectOptions {
  /** Give up and call it opaque after this long without a decision. */
  readonly timeoutMs: number;
  /**
   * How long (from the start) a client that has begun an HTTP/1 request line may take to finish
   * it; past this it is `{protocol:'http1', incomplete:true}`. Default REQUEST_LINE_TIMEOUT_MS;
   * never shorter than `timeoutMs`.
   */
  readonly requestLineTimeoutMs?: number;
}

const INCOMPLETE_HTTP1: Detection = { protocol: 'http1', timedOut: true, incomplete: true };

/**
 * Settles what a client sent by the time detection stops waiting: an unfinished request line is
 * `incomplete` HTTP/1 (never opaque), anything else is classified as ended.
 */
export function settleAtTimeout(seen: Buffer): Detection {
  if (http1RequestLine(seen) === 'prefix') return INCOMPLETE_HTTP1;
  const result = classify(seen, true);
  return result === 'need-more' ? { protocol: 'opaque', timedOut: true } : { ...result, timedOut: true };
}

/**
 * Decides the protocol of a socket accepted with `pauseOnConnect: true`. The socket must not have
 * been read from; it is left paused and untouched, so the chosen handler sees every byte.
 * Resolves `{protocol:'opaque', timedOut:true}` when the client stays silent for `timeoutMs`, and
 * `{protocol:'http1', timedOut:true, incomplete:true}` when it began a request line and did not
 * finish it within `requestLineTimeoutMs`.
 */
export function detectProtocol(socket: Socket, options: DetectOptions): Promise<Detection> {
  const libc = loadLibc();
  const fd = socketFd(socket);
  if (!libc || fd === undefined) return Promise.resolve({ protocol: 'opaque', timedOut: false });
  const buf = Buffer.allocUnsafe(MAX_DETECT_BYTES);
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  const requestLineDeadline = started + Math.max(options.timeoutMs, options.requestLineTimeoutMs ?? REQUEST_LINE_TIMEOUT_MS);

  return new Promise((resolve) => {
    let delay = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (d: Detection): void => {
      if (timer) clearTimeout(timer);
      socket.off('close', onClose);
      resolve(d);
    };
    const onClose = (): void => finish({ protocol: 'opaque', timedOut: false });
    socket.once('close', onClose);

    const poll = (): void => {
      timer = undefined;
      if (socket.destroyed) return finish({ protocol: 'opaque', timedOut: false });
      const n = libc.recv(fd, buf, buf.length, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && libc.errno() !== EAGAIN) return finish({ protocol: 'opaque', timedOut: false });
      const seen = n > 0 ? buf.subarray(0, n) : Buffer.alloc(0);
      if (n === 0) {
        const atEof = classify(seen, true);
        return finish(atEof === 'need-more' ? { protocol: 'opaque', timedOut: false } : atEof);
      }
      const result = classify(seen, false);
      if (result !== 'need-more') return finish(result);
      const now = Date.now();
      // Past the detection timeout only an unfinished request line is still waited for.
      const waitingForLine = n > 0 && http1RequestLine(seen) === 'prefix';
      const until = waitingForLine ? requestLineDeadline : deadline;
      if (now >= until) return finish(settleAtTimeout(seen));
      // Most clients speak at once; back off (1, 2, 4 ... 16 ms) for slow or silent ones.
      delay = delay === 0 ? 1 : Math.min(delay * 2, 16);
      timer = setTimeout(poll, Math.min(delay, Math.max(0, until - now)));
    };
    setImmediate(poll);
  });
}
