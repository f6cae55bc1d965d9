// Opaque TCP forwarding: bytes both ways with backpressure; a half-close (FIN) crosses to the
// other side and a reset (RST) is answered with a reset. One connection, one endpoint, reached
// over plain TCP or mesh mTLS (ALPN tsmesh/tcp) as the dialer decides. A connection on which no
// byte has crossed either way for the idle timeout is closed on both sides (Envoy's tcp_proxy
// idle_timeout, 1 h by default as in Istio): peers that vanished without a FIN, or a half-closed
// pair whose other side never ends, do not hold two fds each for ever.
import type { Socket } from 'node:net';
import { logger } from '@tsmesh/common';
import { hostPort, type UpstreamSelector } from '../upstream/selector.js';
import { armConnectTimeout, plainDialer, type Dialer } from '../upstream/dial.js';
import { metricsRecorder, UpstreamCall, type UpstreamRecorder } from '../upstream/call.js';
import { isConnectFailure } from '../upstream/connect-failure.js';
import type { TcpConnections } from './connections.js';
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
  /**
   * Closes both sides once no byte has crossed either way for this long (default
   * TCP_IDLE_TIMEOUT_MS; 0 turns it off). Every byte either way passes through the client
   * socket (read from it or written to it), so its inactivity timer is the connection's.
   */
  readonly idleTimeoutMs?: number | undefined;
  readonly dial?: Dialer | undefined;
  /** Counts connect failures and retries (default: the telemetry's metrics, when given). */
  readonly recorder?: UpstreamRecorder | undefined;
  /** The upstream layer's register of open TCP connections, per endpoint. */
  readonly connections?: TcpConnections | undefined;
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
  /** Called once when both directions are done (not after `ForwardGate.release`). */
  readonly onClose?: (result: TcpForwardResult) => void;
  /**
   * Holds the client's bytes once the upstream is connected: the upstream's bytes flow to the
   * client at once, the client's only after `gate.forward()`. For a caller that must see who
   * speaks first (a client that turns out to send HTTP is taken back with `gate.release()`).
   */
  readonly hold?: (client: Socket, gate: ForwardGate) => void;
}

/** What a `hold` callback steers a connection with. */
export interface ForwardGate {
  /** Calls `listener` once when the upstream sends its first byte or ends (at once if it already did). */
  onUpstreamSpoke(listener: () => void): void;
  /** Carries the client's bytes from now on; `leftover` (read from a client that has ended) is sent first. */
  forward(leftover?: Buffer): void;
  /**
   * Lets go of the client: the upstream connection is closed and nothing is recorded; the client,
   * with its unread bytes, is the caller's again. Only before the upstream spoke.
   */
  release(): void;
}

/** Envoy's and Istio's default idle timeout for opaque TCP: one hour. */
export const TCP_IDLE_TIMEOUT_MS = 60 * 60 * 1000;

/** Connects `client` (paused, unread) to an endpoint of `selector`, retrying other endpoints on connect failure. */
export function forwardTcp(client: Socket, selector: UpstreamSelector, options: TcpForwardOptions): void {
  const metrics = options.telemetry?.telemetry.metrics;
  const recorder = options.recorder ?? (metrics && metricsRecorder(metrics));
  attemptTcp(client, new UpstreamCall(selector, 'tcp', recorder), options);
}

function attemptTcp(client: Socket, call: UpstreamCall, options: TcpForwardOptions): void {
  const selected = call.next();
  if (!selected.ok) {
    log.warn({ cluster: call.cluster, err: selected.error.message }, 'no endpoint for TCP connection');
    client.resetAndDestroy();
    options.onClose?.({ upstream: undefined, sent: 0, received: 0, error: selected.error.code });
    return;
  }
  const { endpoint } = selected.value;
  const dialed = (options.dial ?? plainDialer)(endpoint, 'tcp');
  const upstream = dialed.socket;
  armConnectTimeout(dialed, options.connectTimeoutMs);
  options.connections?.track(endpoint.key, upstream);
  let connected = false;
  let finished = false;
  let released = false;
  let forwarding = false;
  let record: TcpRecord | undefined;
  const totals = () => ({ sent: upstream.bytesRead, received: upstream.bytesWritten });
  const startRecord = (): void => {
    const t = options.telemetry;
    if (!t || record) return;
    record = t.telemetry.startTcp({
      reporter: t.reporter,
      source: t.source,
      destination: { ...t.destination, ...endpoint.peer },
      mtls: t.mtls ?? dialed.mtls,
      upstream: endpoint.key,
      downstream: hostPort(client.remoteAddress, client.remotePort),
    });
  };
  const finish = (error?: string, flag: ResponseFlag = 'UR'): void => {
    if (finished) return;
    finished = true;
    call.release();
    // A held connection that closed before its client's bytes flowed is still one connection.
    if (connected) startRecord();
    record?.end({ ...totals(), flags: error ? [flag] : undefined, error });
    options.onClose?.({ upstream: endpoint.key, sent: upstream.bytesWritten, received: upstream.bytesRead, error });
  };
  const forward = (leftover?: Buffer): void => {
    if (finished || released) return;
    forwarding = true;
    startRecord();
    if (leftover && leftover.length > 0) upstream.write(leftover);
    client.pipe(upstream);
    client.resume();
  };

  upstream.once(dialed.readyEvent, () => {
    connected = true;
    call.succeeded();
    const idleMs = options.idleTimeoutMs ?? TCP_IDLE_TIMEOUT_MS;
    if (idleMs > 0 && !client.destroyed) {
      client.setTimeout(idleMs);
      client.once('timeout', () => {
        log.debug({ upstream: endpoint.key, idleMs }, 'TCP connection idle: closed');
        upstream.destroy();
        client.destroy();
        finish('idle_timeout', 'SI');
      });
    }
    upstream.pipe(client);
    if (!options.hold) return forward();
    let spoke = false;
    const spokeListeners: Array<() => void> = [];
    const onSpoke = (): void => {
      if (spoke) return;
      spoke = true;
      for (const listener of spokeListeners.splice(0)) listener();
    };
    upstream.once('data', onSpoke);
    upstream.once('end', onSpoke);
    options.hold(client, {
      onUpstreamSpoke: (listener) => (spoke ? listener() : void spokeListeners.push(listener)),
      forward,
      release: () => {
        if (finished || spoke) return;
        released = true;
        finished = true;
        call.release();
        upstream.unpipe(client);
        upstream.destroy();
        client.off('error', onClientError);
        client.off('close', onClientClose);
        client.off('end', closeWhenBothEnded);
      },
    });
  });
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    if (!connected) {
      call.failed('connect');
      finished = true;
      if (isConnectFailure(error) && call.mayRetry() && !client.destroyed) {
        attemptTcp(client, call, options);
        return;
      }
      call.release();
      log.warn({ upstream: endpoint.key, err: error.message }, 'TCP upstream connect failed');
      client.resetAndDestroy();
      options.onClose?.({ upstream: endpoint.key, sent: 0, received: 0, error: error.code ?? 'connect' });
      return;
    }
    // Reset from upstream: reset the client too, so it sees what the server did.
    if (!client.destroyed) client.resetAndDestroy();
    finish(error.code ?? error.message);
  });
  const onClientError = (error: NodeJS.ErrnoException): void => {
    if (!upstream.destroyed) {
      if (connected && 'resetAndDestroy' in upstream) upstream.resetAndDestroy();
      else upstream.destroy();
    }
    finish(error.code ?? error.message);
  };
  client.on('error', onClientError);
  upstream.on('close', () => {
    if (connected && !client.destroyed && client.writableEnded && client.readableEnded) client.destroy();
    // Also when the client went away while the connect was pending (client 'close' destroyed us):
    // the lease must be released. A failed connect has already finished (no-op here).
    finish(connected ? undefined : 'ECONNABORTED');
  });
  const onClientClose = (): void => {
    if (!upstream.destroyed && connected && upstream.writableEnded && upstream.readableEnded) upstream.destroy();
    // Not connected yet, or held: nothing of the client's will ever reach the upstream.
    if (!connected || !forwarding) upstream.destroy();
  };
  client.on('close', onClientClose);
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
