// Opaque TCP forwarding: bytes both ways with backpressure; a half-close (FIN) crosses to the
// other side and a reset (RST) is answered with a reset. One connection, one endpoint.
import net, { type Socket } from 'node:net';
import { logger } from '@tsmesh/common';
import type { UpstreamSelector } from '../upstream/selector.js';
import { isConnectFailure } from '../http/errors.js';

const log = logger('tcp.forward');

export interface TcpForwardResult {
  readonly upstream: string | undefined;
  readonly sent: number;
  readonly received: number;
  readonly error?: string | undefined;
}

export interface TcpForwardOptions {
  readonly connectTimeoutMs: number;
  /** Called once when both directions are done. */
  readonly onClose?: (result: TcpForwardResult) => void;
}

/** Connects `client` (paused, unread) to an endpoint of `selector`, retrying other endpoints on connect failure. */
export function forwardTcp(client: Socket, selector: UpstreamSelector, options: TcpForwardOptions, attempt = 1): void {
  const selected = selector.select();
  if (!selected.ok) {
    log.warn({ cluster: selector.name, err: selected.error.message }, 'no endpoint for TCP connection');
    client.resetAndDestroy();
    options.onClose?.({ upstream: undefined, sent: 0, received: 0, error: selected.error.code });
    return;
  }
  const lease = selected.value;
  const { endpoint } = lease;
  const upstream = net.connect({ host: endpoint.address, port: endpoint.port, localAddress: endpoint.localAddress, allowHalfOpen: true });
  upstream.setNoDelay(true);
  const timer = setTimeout(() => {
    upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ECONNECTTIMEOUT' }));
  }, options.connectTimeoutMs);
  let connected = false;
  let finished = false;
  const finish = (error?: string): void => {
    if (finished) return;
    finished = true;
    lease.release();
    options.onClose?.({ upstream: endpoint.key, sent: upstream.bytesWritten, received: upstream.bytesRead, error });
  };

  upstream.once('connect', () => {
    clearTimeout(timer);
    connected = true;
    lease.succeeded();
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    if (!connected) {
      lease.failed('connect');
      lease.release();
      finished = true;
      if (isConnectFailure(error) && attempt < Math.min(3, selector.size) && !client.destroyed) {
        forwardTcp(client, selector, options, attempt + 1);
        return;
      }
      log.warn({ upstream: endpoint.key, err: error.message }, 'TCP upstream connect failed');
      client.resetAndDestroy();
      options.onClose?.({ upstream: endpoint.key, sent: 0, received: 0, error: error.code ?? 'connect' });
      return;
    }
    // Reset from upstream: reset the client too, so it sees what the server did.
    if (!client.destroyed) client.resetAndDestroy();
    finish(error.code ?? error.message);
  });
  client.on('error', (error: NodeJS.ErrnoException) => {
    if (!upstream.destroyed) {
      if (connected) upstream.resetAndDestroy();
      else upstream.destroy();
    }
    finish(error.code ?? error.message);
  });
  upstream.on('close', () => {
    clearTimeout(timer);
    if (connected && !client.destroyed && client.writableEnded && client.readableEnded) client.destroy();
    // Also when the client went away while the connect was pending (client 'close' destroyed us):
    // the lease must be released. A failed connect has already finished (no-op here).
    finish(connected ? undefined : 'ECONNABORTED');
  });
  client.on('close', () => {
    if (!upstream.destroyed && connected && upstream.writableEnded && upstream.readableEnded) upstream.destroy();
    if (!connected) upstream.destroy();
  });
  // Both halves closed: release the sockets (allowHalfOpen keeps them until both FINs are seen).
  const closeWhenBothEnded = (): void => {
    if (client.readableEnded && upstream.readableEnded) {
      client.end();
      upstream.end();
    }
  };
  client.on('end', closeWhenBothEnded);
  upstream.on('end', closeWhenBothEnded);
}
