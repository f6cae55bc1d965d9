// Opaque TCP forwarding: bytes both ways with backpressure; a half-close (FIN) crosses to the
// other side and a reset (RST) is answered with a reset. One connection, one endpoint, reached
// over plain TCP or mesh mTLS (ALPN tsmesh/tcp) as the dialer decides.
import type { Socket } from 'node:net';
import { logger } from '@tsmesh/common';
import { hostPort, type UpstreamSelector } from '../upstream/selector.js';
import { armConnectTimeout, plainDialer, type Dialer } from '../upstream/dial.js';
import { isConnectFailure } from '../http/errors.js';
import type { PeerInfo, RequestTelemetry, ResponseFlag, TcpRecord } from '../telemetry/index.js';

const log = logger('tcp.forward');

export interface TcpForwardResult {
  readonly upstream: string | undefined;
  readonly sent: number;
  readonly received: number;
  readonly error?: string | undefined;
}

export interface TcpForwardOptions {
  readonly connectTimeoutMs: number;
  readonly dial?: Dialer | undefined;
  /** Records the connection (metrics, access log, span) when given. */
  readonly telemetry?: {
    readonly telemetry: RequestTelemetry;
    readonly reporter: 'source' | 'destination';
    readonly source: PeerInfo;
    readonly destination: PeerInfo;
    /** Inbound: the connection arrived over mesh mTLS. Outbound: decided by the dial. */
    readonly mtls?: boolean;
    readonly flags?: readonly ResponseFlag[];
  };
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
  const dialed = (options.dial ?? plainDialer)(endpoint, 'tcp');
  const upstream = dialed.socket;
  armConnectTimeout(dialed, options.connectTimeoutMs);
  let connected = false;
  let finished = false;
  let record: TcpRecord | undefined;
  const totals = () => ({ sent: upstream.bytesRead, received: upstream.bytesWritten });
  const finish = (error?: string): void => {
    if (finished) return;
    finished = true;
    lease.release();
    record?.end({ ...totals(), flags: error ? ['UR'] : undefined, error });
    options.onClose?.({ upstream: endpoint.key, sent: upstream.bytesWritten, received: upstream.bytesRead, error });
  };

  upstream.once(dialed.readyEvent, () => {
    connected = true;
    lease.succeeded();
    const t = options.telemetry;
    if (t) {
      record = t.telemetry.startTcp({
        reporter: t.reporter,
        source: t.source,
        destination: { ...t.destination, ...endpoint.peer },
        mtls: t.mtls ?? dialed.mtls,
        upstream: endpoint.key,
        downstream: hostPort(client.remoteAddress, client.remotePort),
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    if (!connected) {
      lease.failed('connect');
      lease.release();
      finished = true;
      options.telemetry?.telemetry.metrics.upstreamConnectFailure(selector.name);
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
      if (connected && 'resetAndDestroy' in upstream) upstream.resetAndDestroy();
      else upstream.destroy();
    }
    finish(error.code ?? error.message);
  });
  upstream.on('close', () => {
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
