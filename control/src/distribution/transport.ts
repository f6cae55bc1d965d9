// The HTTP/2 server sidecars connect to: TLS 1.3 only, client certificates requested and checked per
// stream (so a refused sidecar gets a reason, not a bare handshake failure), and PINGs that drop
// sessions whose sidecar vanished without closing its connection.
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2';
import type { Logger } from '@tsmesh/common';
import type { MeshDistributor } from './distributor.js';

/** PEM material of the serving side. */
export interface ServingTls {
  /** The serving certificate, then its intermediates. */
  readonly cert: string;
  readonly key: string;
  /** Roots that client (workload) certificates must chain to. */
  readonly trustBundle: string;
}

export interface DistributionServerOptions {
  /** Interval between PINGs on each session; one unanswered by the next drops the session (default 30 s; 0: none). */
  readonly keepaliveMs?: number;
  readonly log: Logger;
}

export const DEFAULT_SERVER_KEEPALIVE_MS = 30_000;
const MAX_STREAMS_PER_SESSION = 8;

/** The secure context options for `tls`, also used by `setSecureContext` when the files change. */
export function servingContextOptions(tls: ServingTls): { cert: string; key: string; ca: string; minVersion: 'TLSv1.3'; maxVersion: 'TLSv1.3' } {
  return { cert: tls.cert, key: tls.key, ca: tls.trustBundle, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' };
}

/** Builds (does not listen) the server whose streams `distributor` handles. */
export function createDistributionServer(distributor: MeshDistributor, tls: ServingTls, options: DistributionServerOptions): Http2SecureServer {
  const server = createSecureServer({
    ...servingContextOptions(tls),
    requestCert: true,
    // Checked per stream by the distributor, which answers 401/403 with the reason.
    rejectUnauthorized: false,
    allowHTTP1: false,
    // A sidecar needs one stream; a few more cover a reconnect racing the old stream's close.
    settings: { maxConcurrentStreams: MAX_STREAMS_PER_SESSION },
  });
  server.on('stream', (stream, headers) => distributor.handleStream(stream, headers));
  server.on('session', (session) => keepAlive(session, options.keepaliveMs ?? DEFAULT_SERVER_KEEPALIVE_MS, options.log));
  server.on('tlsClientError', (error, socket) => options.log.debug({ err: error, remoteAddress: socket.remoteAddress }, 'TLS handshake with a client failed'));
  server.on('sessionError', (error) => options.log.debug({ err: error }, 'sidecar session error'));
  return server;
}

function keepAlive(session: Http2Session, intervalMs: number, log: Logger): void {
  if (intervalMs <= 0) return;
  let waiting = false;
  const timer = setInterval(() => {
    if (session.destroyed || session.closed) return clearInterval(timer);
    if (waiting) {
      log.info({ remoteAddress: session.socket?.remoteAddress }, 'dropping a sidecar session that stopped answering PINGs');
      session.destroy();
      return clearInterval(timer);
    }
    waiting = true;
    const sent = session.ping((error) => {
      if (error === null) waiting = false;
    });
    if (!sent) waiting = false;
  }, intervalMs);
  timer.unref();
  session.once('close', () => clearInterval(timer));
}
