// Detection by reading, where peeking cannot help: on a connection already handed to opaque TCP
// after a silent detection (the client may speak later), and inside a mesh mTLS tunnel. Whoever
// speaks first decides: the server (a server-first protocol: opaque for good) or the client, whose
// first bytes are read, classified like detect.ts does, and put back unread for the next owner.
import type { Duplex } from 'node:stream';
import type { ForwardGate } from '../tcp/forward.js';
import { classify, MAX_DETECT_BYTES, type Detection } from './classify.js';
import { REQUEST_LINE_TIMEOUT_MS, settleAtTimeout } from './detect.js';

/** What `watchFirstBytes` found. */
export type FirstBytes =
  /** The server spoke (or ended) first; the client's bytes so far are back in the stream. */
  | { readonly kind: 'server-first' }
  /**
   * The client spoke first. Its bytes are back in the stream (`unshift`), unless it ended
   * before a decision: then `ended` is true and `leftover` holds them (the stream is spent).
   */
  | { readonly kind: 'client-first'; readonly detection: Detection; readonly leftover?: Buffer | undefined; readonly ended: boolean };

export interface FirstBytesOptions {
  /** How long the client's first bytes may take to become classifiable (an HTTP/1 request line to finish). Default REQUEST_LINE_TIMEOUT_MS. */
  readonly requestLineTimeoutMs?: number;
  /** Settle a silent client after this long (as `client-first`, opaque, timed out). Default: wait. */
  readonly silenceTimeoutMs?: number;
  /** Registers the call that says the server spoke; default: it never does. */
  readonly onServerSpoke?: (listener: () => void) => void;
}

/**
 * Reads `client` (not flowing, nothing consumed yet) until its first bytes can be classified, the
 * server speaks first, or the client ends. Calls `done` once, synchronously with the decision (so
 * a caller can act before any other byte moves); not at all when the client closes first.
 * Returns a function that stops watching and puts back what was read.
 */
export function watchFirstBytes(client: Duplex, options: FirstBytesOptions, done: (result: FirstBytes) => void): () => void {
  const chunks: Buffer[] = [];
  let total = 0;
  let settled = false;
  let lineTimer: NodeJS.Timeout | undefined;
  let silenceTimer: NodeJS.Timeout | undefined;

  const stop = (putBack: boolean): Buffer => {
    settled = true;
    if (lineTimer) clearTimeout(lineTimer);
    if (silenceTimer) clearTimeout(silenceTimer);
    client.off('readable', onReadable);
    client.off('end', onEnd);
    client.off('close', onClose);
    const read = Buffer.concat(chunks, total);
    if (putBack && total > 0) client.unshift(read);
    return read;
  };
  const decide = (detection: Detection): void => {
    if (settled) return;
    stop(true);
    done({ kind: 'client-first', detection, ended: false });
  };
  const onReadable = (): void => {
    if (settled) return;
    let chunk: Buffer | null;
    while (total < MAX_DETECT_BYTES && (chunk = client.read() as Buffer | null) !== null) {
      chunks.push(chunk);
      total += chunk.length;
    }
    if (total === 0) return;
    if (silenceTimer) clearTimeout(silenceTimer);
    const seen = Buffer.concat(chunks, total);
    const result = classify(seen, false);
    if (result !== 'need-more') return decide(result);
    // Undecided (a request line, a TLS record or the preface in the making): bounded from the first byte.
    lineTimer ??= setTimeout(() => decide(settleAtTimeout(Buffer.concat(chunks, total))), options.requestLineTimeoutMs ?? REQUEST_LINE_TIMEOUT_MS);
  };
  const onEnd = (): void => {
    if (settled) return;
    // The stream is spent: nothing can be put back, so the bytes travel with the verdict.
    const leftover = stop(false);
    const atEof = classify(leftover, true);
    done({ kind: 'client-first', detection: atEof === 'need-more' ? { protocol: 'opaque', timedOut: false } : atEof, leftover, ended: true });
  };
  const onClose = (): void => {
    if (!settled) stop(false);
  };

  client.on('readable', onReadable);
  client.once('end', onEnd);
  client.once('close', onClose);
  if (options.silenceTimeoutMs !== undefined) {
    silenceTimer = setTimeout(() => decide({ protocol: 'opaque', timedOut: true }), options.silenceTimeoutMs);
  }
  options.onServerSpoke?.(() => {
    if (settled) return;
    stop(true);
    done({ kind: 'server-first' });
  });
  return () => {
    if (!settled) stop(true);
  };
}

/** What a held connection's owner does when its client spoke first with something not to pass on. */
export interface ClientFirstHandlers {
  /** The client sent an HTTP request: the connection is the caller's again, to serve as HTTP. */
  http(client: Duplex, protocol: 'http1' | 'http2'): void;
  /** The client began a request line and did not finish it in time: the caller refuses it. */
  incomplete(client: Duplex): void;
}

/**
 * A `hold` for forwardTcp (after a silent detection, or inside a mesh mTLS tunnel): a server that
 * speaks first makes the connection opaque for good; a client that speaks first with HTTP is taken
 * back before a byte reaches the server, so no request ever crosses the sidecar unparsed.
 */
export function holdForFirstSpeaker(options: { readonly requestLineTimeoutMs?: number | undefined }, handlers: ClientFirstHandlers): (client: Duplex, gate: ForwardGate) => void {
  return (client, gate) => {
    watchFirstBytes(client, { requestLineTimeoutMs: options.requestLineTimeoutMs, onServerSpoke: (listener) => gate.onUpstreamSpoke(listener) }, (result) => {
      if (result.kind === 'server-first') return gate.forward();
      const { detection } = result;
      const http = detection.protocol === 'http1' || detection.protocol === 'http2';
      if (!http) return gate.forward(result.leftover);
      gate.release();
      // A request whose bytes were spent by the client's end cannot be served: refused like an unfinished one.
      if (detection.incomplete === true || result.ended) handlers.incomplete(client);
      else handlers.http(client, detection.protocol === 'http2' ? 'http2' : 'http1');
    });
  };
}
