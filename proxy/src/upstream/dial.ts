// How a forwarder reaches an endpoint: mesh mTLS when the endpoint is a meshed pod with an
// expected identity and this sidecar holds a certificate; plain TCP otherwise (outside the
// mesh, local delivery to the app, or no identity configured).
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { dialMeshTls, type InnerProtocol, type MeshTlsSource } from '../tls/mesh-tls.js';
import type { UpstreamEndpoint } from './selector.js';

export interface Dialed {
  readonly socket: net.Socket | TLSSocket;
  /** The event that says the connection is usable: 'connect', or 'secureConnect' for mTLS. */
  readonly readyEvent: 'connect' | 'secureConnect';
  readonly mtls: boolean;
}

export interface Dialer {
  (endpoint: UpstreamEndpoint, inner: InnerProtocol): Dialed;
  /** Whether `endpoint` is reached over mesh mTLS (for metrics and logs; pooled connections agree). */
  mtlsFor(endpoint: UpstreamEndpoint): boolean;
}

export function dialerFor(tls: MeshTlsSource | undefined): Dialer {
  const mtlsFor = (endpoint: UpstreamEndpoint): boolean => tls !== undefined && endpoint.identity !== undefined && tls.identity() !== undefined;
  const dial = (endpoint: UpstreamEndpoint, inner: InnerProtocol): Dialed => {
    if (tls && mtlsFor(endpoint) && endpoint.identity !== undefined) {
      const socket = dialMeshTls(tls, { host: endpoint.address, port: endpoint.port, localAddress: endpoint.localAddress, inner, expectedIdentity: endpoint.identity });
      return { socket, readyEvent: 'secureConnect', mtls: true };
    }
    // Half-open only for opaque TCP, where a FIN must cross on its own. A pooled HTTP connection
    // must close when the peer ends it, or the pool keeps handing out a dead connection.
    const socket = net.connect({ host: endpoint.address, port: endpoint.port, localAddress: endpoint.localAddress, allowHalfOpen: inner === 'tcp' });
    socket.setNoDelay(true);
    return { socket, readyEvent: 'connect', mtls: false };
  };
  return Object.assign(dial, { mtlsFor });
}

/** Plain TCP only: inbound delivery to the application, and tests. */
export const plainDialer: Dialer = dialerFor(undefined);

/** Destroys the dialed socket with a connect-timeout error unless it is ready in time. */
export function armConnectTimeout(dialed: Dialed, timeoutMs: number): void {
  const timer = setTimeout(() => {
    dialed.socket.destroy(Object.assign(new Error(`connect timeout after ${timeoutMs} ms`), { code: 'ECONNECTTIMEOUT' }));
  }, timeoutMs);
  dialed.socket.once(dialed.readyEvent, () => clearTimeout(timer));
  dialed.socket.once('close', () => clearTimeout(timer));
}
