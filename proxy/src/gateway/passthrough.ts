// A port of TLS Passthrough listeners: reads the client's ClientHello (client-hello.ts) without
// terminating TLS, picks the TLSRoute by its server name, and hands the connection, with every
// byte it sent put back unchanged, to the relay (opaque TCP to a backend). A port of TCP
// listeners hands every connection to its TCPRoute's relay at once. A ClientHello that is
// malformed, too large, too slow, or that names no served host is refused: the connection is
// closed (an unrecognized_name alert first when only the name was wrong) and counted.
import net, { type Server, type Socket } from 'node:net';
import { logger, type StreamGatewayPort, type TlsDestination } from '@tsmesh/common';
import { ClientHelloReader, MAX_CLIENT_HELLO_BYTES, type ClientHelloError, type ClientHelloInfo } from './client-hello.js';

const log = logger('gateway.passthrough');

/** How long a client may take to send its whole ClientHello (a slow-drip client is cut here). */
export const CLIENT_HELLO_TIMEOUT_MS = 10_000;

/** Why a passthrough connection was refused before it was relayed. */
export type PassthroughRefusal = ClientHelloError | 'timeout' | 'truncated' | 'no_server_name' | 'unknown_server_name' | 'no_route';

export interface PassthroughLimits {
  readonly clientHelloTimeoutMs: number;
  readonly maxClientHelloBytes: number;
}

export const DEFAULT_PASSTHROUGH_LIMITS: PassthroughLimits = Object.freeze({ clientHelloTimeoutMs: CLIENT_HELLO_TIMEOUT_MS, maxClientHelloBytes: MAX_CLIENT_HELLO_BYTES });

export interface PassthroughHandlers {
  /**
   * Relays `socket` (paused; what it sent is unread again) to a backend of `destination`. It owns
   * the socket from then on, refusals of its own included.
   */
  relay(socket: Socket, destination: TlsDestination, hello: ClientHelloInfo): void;
  /** Counts one refused connection. */
  refused(port: number, reason: PassthroughRefusal): void;
}

export type ClientHelloRead = { readonly ok: true; readonly value: ClientHelloInfo } | { readonly ok: false; readonly error: ClientHelloError | 'timeout' | 'truncated' };

/**
 * Reads a ClientHello from a paused, unread socket. Whatever the outcome, the bytes read are put
 * back (`unshift`) and the socket is left paused, so the caller relays or closes it as it is.
 * Resolves `truncated` when the client ends or closes first, `timeout` after `timeoutMs`.
 */
export function readClientHello(socket: Socket, limits: PassthroughLimits): Promise<ClientHelloRead> {
  const reader = new ClientHelloReader(limits.maxClientHelloBytes);
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    let done = false;
    const finish = (result: ClientHelloRead): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      if (!socket.destroyed && !socket.readableEnded && chunks.length > 0) socket.unshift(Buffer.concat(chunks));
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      const result = reader.push(chunk);
      if (result !== undefined) finish(result);
    };
    const onEnd = (): void => finish({ ok: false, error: 'truncated' });
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), limits.clientHelloTimeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}

// RFC 8446 §6: a fatal alert record (TLS 1.2 record version), unrecognized_name (112, RFC 6066 §3).
const UNRECOGNIZED_NAME_ALERT = Buffer.from([21, 3, 3, 0, 2, 2, 112]);

/** One bound passthrough port; `port` is replaced on every snapshot, so its routes follow. */
export class PassthroughPort {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    public port: StreamGatewayPort,
    private readonly handlers: PassthroughHandlers,
    private readonly limits: PassthroughLimits = DEFAULT_PASSTHROUGH_LIMITS,
  ) {
    this.server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => void this.accept(socket));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get protocol(): StreamGatewayPort['protocol'] {
    return this.port.protocol;
  }

  private async accept(socket: Socket): Promise<void> {
    socket.on('error', (e) => log.debug({ err: e.message, port: this.port.port }, 'client socket error'));
    if (this.port.protocol === 'TCP') {
      const destination = this.port.destination('');
      if (destination === undefined) return this.refuse(socket, 'no_route');
      return this.handlers.relay(socket, destination, { sni: undefined, alpn: undefined });
    }
    const hello = await readClientHello(socket, this.limits);
    if (!hello.ok) return this.refuse(socket, hello.error);
    const name = hello.value.sni;
    if (name === undefined) return this.refuse(socket, 'no_server_name');
    const destination = this.port.destination(name);
    if (destination === undefined) return this.refuse(socket, 'unknown_server_name', name);
    log.debug({ port: this.port.port, sni: name, route: `${destination.route.namespace}/${destination.route.name}` }, 'passthrough connection routed');
    this.handlers.relay(socket, destination, hello.value);
  }

  private refuse(socket: Socket, reason: PassthroughRefusal, name?: string): void {
    this.handlers.refused(this.port.port, reason);
    log.debug({ port: this.port.port, reason, sni: name, client: socket.remoteAddress }, 'passthrough connection refused');
    if (socket.destroyed) return;
    if (reason === 'unknown_server_name' || reason === 'no_server_name') {
      socket.end(UNRECOGNIZED_NAME_ALERT);
      // The client may never read the alert or close: do not wait for it.
      socket.setTimeout(1000, () => socket.destroy());
    } else socket.destroy();
  }

  listen(host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port: this.port.port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** The bound address (tests bind port 0). */
  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  /** Stops accepting, ends every connection, resolves when the server is closed. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    return closed;
  }

  stopAccepting(): void {
    this.server.close();
  }

  get connections(): number {
    return this.sockets.size;
  }
}
