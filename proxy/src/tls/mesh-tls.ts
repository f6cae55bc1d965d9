// Mutual TLS between sidecars: TLS 1.3 only; ALPN names the inner protocol so the receiving
// sidecar needs no detection; the peer's SPIFFE ID (its only URI SAN) must be the identity
// discovery expects (client side) or any identity of the mesh's trust domain (server side,
// where policy decides what to allow).
import net from 'node:net';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import { TsmeshError } from '@tsmesh/common';
import { PROXY_ERRORS } from '../errors.js';

export type InnerProtocol = 'http1' | 'http2' | 'tcp';

/** ALPN ids of mesh mTLS; the suffix is the protocol inside the tunnel. */
export const MESH_ALPN: Readonly<Record<InnerProtocol, string>> = {
  http1: 'tsmesh/http1.1',
  http2: 'tsmesh/h2',
  tcp: 'tsmesh/tcp',
};
const BY_ALPN = new Map<string, InnerProtocol>(Object.entries(MESH_ALPN).map(([k, v]) => [v, k as InnerProtocol]));

export function innerProtocolOf(alpn: string | false | null | undefined): InnerProtocol | undefined {
  return typeof alpn === 'string' ? BY_ALPN.get(alpn) : undefined;
}

/** Whether a ClientHello's ALPN list offers mesh mTLS. */
export function offersMeshAlpn(alpn: readonly string[] | undefined): boolean {
  return (alpn ?? []).some((p) => BY_ALPN.has(p));
}

/** What the data path needs from the workload identity. Contexts are replaced on renewal. */
export interface MeshTlsSource {
  readonly trustDomain: string;
  /** This workload's SPIFFE ID, once it holds a certificate. */
  identity(): string | undefined;
  clientContext(): SecureContext | undefined;
  serverContext(): SecureContext | undefined;
  /** Checks a peer leaf: not a CA, exactly one SPIFFE URI SAN of the trust domain. Returns the ID or an error. */
  peerIdentity(cert: tls.PeerCertificate): { ok: true; value: string } | { ok: false; error: TsmeshError };
}

/** The mesh TLS codes of PROXY_ERRORS, by their short names here. */
export const TLS_ERRORS = {
  PEER_IDENTITY: PROXY_ERRORS.PEER_IDENTITY,
  NO_IDENTITY: PROXY_ERRORS.NO_IDENTITY,
  HANDSHAKE: PROXY_ERRORS.TLS_HANDSHAKE,
} as const;

export interface DialOptions {
  readonly host: string;
  readonly port: number;
  readonly localAddress?: string | undefined;
  readonly inner: InnerProtocol;
  /** The SPIFFE ID the endpoint must present. */
  readonly expectedIdentity: string;
}

/**
 * Opens mesh mTLS to a peer sidecar. Returns the TLSSocket at once (writes are buffered until
 * the handshake); it emits 'secureConnect' when the peer is verified, or is destroyed with a
 * TsmeshError (code TSMESH_ERR_PEER_IDENTITY) when it presents another identity.
 */
export function dialMeshTls(source: MeshTlsSource, options: DialOptions): TLSSocket {
  const secureContext = source.clientContext();
  if (!secureContext) {
    const socket = new tls.TLSSocket(new net.Socket());
    process.nextTick(() => socket.destroy(new TsmeshError(TLS_ERRORS.NO_IDENTITY, 'no workload certificate yet')));
    return socket;
  }
  return tls.connect({
    host: options.host,
    port: options.port,
    localAddress: options.localAddress,
    secureContext,
    ALPNProtocols: [MESH_ALPN[options.inner]],
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    // The chain is verified against the trust bundle (rejectUnauthorized); the name check is
    // the SPIFFE ID, not a DNS name.
    rejectUnauthorized: true,
    servername: undefined,
    checkServerIdentity: (_host, cert) => {
      const peer = source.peerIdentity(cert);
      if (!peer.ok) return peer.error;
      if (peer.value !== options.expectedIdentity) {
        return new TsmeshError(TLS_ERRORS.PEER_IDENTITY, `peer ${options.host}:${options.port} presented ${peer.value}, expected ${options.expectedIdentity}`);
      }
      return undefined;
    },
    noDelay: true,
    // Opaque TCP keeps its half-close across the tunnel (TLS 1.3 close_notify closes one
    // direction); pooled HTTP connections must close with the peer.
    allowHalfOpen: options.inner === 'tcp',
  } as tls.ConnectionOptions);
}

export interface AcceptedMeshTls {
  readonly socket: TLSSocket;
  readonly peerIdentity: string;
  readonly inner: InnerProtocol;
}

/**
 * Terminates mesh mTLS on an accepted (paused, unread) socket: requires a client certificate
 * chaining to the trust bundle with a valid SPIFFE ID, and one of the mesh ALPN ids.
 */
export function acceptMeshTls(source: MeshTlsSource, socket: net.Socket, timeoutMs: number): Promise<AcceptedMeshTls> {
  return new Promise((resolve, reject) => {
    const secureContext = source.serverContext();
    if (!secureContext) {
      socket.destroy();
      reject(new TsmeshError(TLS_ERRORS.NO_IDENTITY, 'no workload certificate yet'));
      return;
    }
    const tlsSocket = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: Object.values(MESH_ALPN),
    });
    const timer = setTimeout(() => fail(new TsmeshError(TLS_ERRORS.HANDSHAKE, `no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      tlsSocket.destroy();
      reject(error);
    };
    tlsSocket.once('error', (e) => fail(new TsmeshError(TLS_ERRORS.HANDSHAKE, `mesh TLS handshake failed: ${e.message}`, { cause: e })));
    tlsSocket.once('secure', () => {
      clearTimeout(timer);
      // Only tls.Server clears this flag on a server socket; left set, http2 would wait forever for
      // a 'secureConnect' that server sockets never emit, and HTTP/2 inside mTLS would never start.
      (tlsSocket as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
      const inner = innerProtocolOf(tlsSocket.alpnProtocol);
      if (tlsSocket.getProtocol() !== 'TLSv1.3') return fail(new TsmeshError(TLS_ERRORS.HANDSHAKE, `peer negotiated ${tlsSocket.getProtocol()}, mesh requires TLSv1.3`));
      if (!inner) return fail(new TsmeshError(TLS_ERRORS.HANDSHAKE, 'peer offered no mesh ALPN'));
      const peer = source.peerIdentity(tlsSocket.getPeerCertificate());
      if (!peer.ok) return fail(peer.error);
      tlsSocket.removeAllListeners('error');
      resolve({ socket: tlsSocket, peerIdentity: peer.value, inner });
    });
    socket.resume();
  });
}
