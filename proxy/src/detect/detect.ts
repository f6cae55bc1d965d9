// Protocol detection on a live socket: peeks (MSG_PEEK, nothing consumed) at what the client
// sent, with a short timeout so server-first protocols fall back to opaque TCP.
import type { Socket } from 'node:net';
import { loadLibc, socketFd } from '../capture/libc.js';
import { classify, MAX_DETECT_BYTES, type Detection } from './classify.js';

const MSG_PEEK = 0x2;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;

export interface DetectOptions {
  /** Give up and call it opaque after this long without a decision. */
  readonly timeoutMs: number;
}

/**
 * Decides the protocol of a socket accepted with `pauseOnConnect: true`. The socket must not have
 * been read from; it is left paused and untouched, so the chosen handler sees every byte.
 * Resolves `{protocol:'opaque', timedOut:true}` when the client stays silent for `timeoutMs`.
 */
export function detectProtocol(socket: Socket, options: DetectOptions): Promise<Detection> {
  const libc = loadLibc();
  const fd = socketFd(socket);
  if (!libc || fd === undefined) return Promise.resolve({ protocol: 'opaque', timedOut: false });
  const buf = Buffer.allocUnsafe(MAX_DETECT_BYTES);
  const deadline = Date.now() + options.timeoutMs;

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
      const eof = n === 0;
      const seen = n > 0 ? buf.subarray(0, n) : Buffer.alloc(0);
      const timedOut = Date.now() >= deadline;
      const result = classify(seen, eof || timedOut);
      if (result !== 'need-more') {
        return finish(timedOut && result.protocol === 'opaque' ? { ...result, timedOut: true } : result);
      }
      // Most clients speak at once; back off (1, 2, 4 ... 16 ms) for slow or silent ones.
      delay = delay === 0 ? 1 : Math.min(delay * 2, 16);
      timer = setTimeout(poll, Math.min(delay, Math.max(0, deadline - Date.now())));
    };
    setImmediate(poll);
  });
}
