// The gateway's listener ports: one server per port of the programmed listeners. HTTP takes the
// connection as it comes (HTTP/2 with prior knowledge by its preface, else HTTP/1.1); HTTPS
// terminates TLS (1.2 at least, 1.3 when the client has it) with the certificate SNI selects
// (sni.ts), and agrees on h2 by ALPN only for a host whose routes are GRPCRoutes: the forwarders
// speak to a backend what the client spoke, and an HTTPRoute's backend may know only HTTP/1.1. Each connection then goes to the sidecar's HTTP forwarders with
// the port's router: the same route matching, balancing and telemetry as the outbound path.
import net, { type Server, type Socket } from 'node:net';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import { logger, type HttpGatewayPort, type ListenerCertificate } from '@tsmesh/common';
import { detectProtocol } from '../detect/detect.js';
import { attachHttpContext, type HttpConnectionContext } from '../http/context.js';
import { pickCertificate } from './sni.js';

const log = logger('gateway.listeners');

export interface HttpHandlers {
  accept(socket: Socket, protocol: 'http1' | 'http2'): void;
}

/** One bound port; `port` is replaced on every snapshot, so certificates and routes follow it. */
export class ListenerPort {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly contexts = new Map<ListenerCertificate, SecureContext>();

  constructor(
    public port: HttpGatewayPort,
    private readonly context: HttpConnectionContext,
    private readonly handlers: HttpHandlers,
    private readonly detectTimeoutMs: number,
  ) {
    if (port.protocol === 'HTTPS') {
      this.server = tls.createServer({
        minVersion: 'TLSv1.2',
        ALPNCallback: ({ servername, protocols }) => alpnFor(protocols, this.wantsH2(servername)),
        SNICallback: (servername, done) => {
          const context = this.secureContext(servername);
          if (context === undefined) done(new Error(`no listener on port ${this.port.port} serves ${JSON.stringify(servername)}`), undefined);
          else done(null, context);
        },
      });
      this.server.on('secureConnection', (socket: TLSSocket) => this.serve(socket, socket.alpnProtocol === 'h2' ? 'http2' : 'http1'));
      this.server.on('tlsClientError', (error) => log.debug({ err: error.message, port: this.port.port }, 'TLS handshake refused'));
    } else {
      this.server = net.createServer({ pauseOnConnect: true }, (socket) => {
        void detectProtocol(socket, { timeoutMs: this.detectTimeoutMs }).then((d) => this.serve(socket, d.protocol === 'http2' ? 'http2' : 'http1'));
      });
    }
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get protocol(): HttpGatewayPort['protocol'] {
    return this.port.protocol;
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

  /** Whether the routes for a server name are gRPC's (HTTP/2 end to end). */
  private wantsH2(servername: string | undefined): boolean {
    return this.port.table((servername ?? '').toLowerCase()).producer?.kind === 'GRPCRoute';
  }

  /** The certificate context for a server name, or undefined to refuse the handshake. */
  secureContext(servername: string): SecureContext | undefined {
    const certificate = pickCertificate(this.port.listeners, servername);
    if (certificate === undefined) return undefined;
    let context = this.contexts.get(certificate);
    if (context === undefined) {
      context = tls.createSecureContext({ cert: certificate.cert, key: certificate.key, minVersion: 'TLSv1.2' });
      if (this.contexts.size > 64) this.contexts.clear(); // certificates of old snapshots
      this.contexts.set(certificate, context);
    }
    return context;
  }

  private serve(socket: Socket, protocol: 'http1' | 'http2'): void {
    if (socket.destroyed) return;
    socket.on('error', (e) => log.debug({ err: e.message }, 'client socket error'));
    attachHttpContext(socket, this.context);
    this.handlers.accept(socket, protocol);
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

/**
 * The ALPN protocol to agree on: h2 when the routes want it and the client offers it, else
 * http/1.1 when offered; a client offering only h2 gets h2 (it speaks nothing else).
 */
export function alpnFor(offered: readonly string[], wantH2: boolean): string | undefined {
  if (wantH2 && offered.includes('h2')) return 'h2';
  if (offered.includes('http/1.1')) return 'http/1.1';
  return offered.includes('h2') ? 'h2' : undefined;
}
