// The opaque TCP "pool" of the upstream layer: TCP connections are never shared, so this only
// knows which upstream connections are open to which endpoint, for `/clusters` and for closing
// them with the loop. An endpoint that leaves its Service keeps its open connections (a database
// session is not cut because an EndpointSlice changed; Envoy's default too): they end when
// either side closes them, the pod goes away or the TCP idle timeout passes.
import type { Socket } from 'node:net';
import type { ConnectionPool } from '../upstream/manager.js';

export class TcpConnections implements ConnectionPool {
  private readonly open = new Map<string, Set<Socket>>();

  /** Counts `socket` as an upstream connection to `endpointKey` until it closes. */
  track(endpointKey: string, socket: Socket): void {
    let sockets = this.open.get(endpointKey);
    if (sockets === undefined) this.open.set(endpointKey, (sockets = new Set()));
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0 && this.open.get(endpointKey) === sockets) this.open.delete(endpointKey);
    });
  }

  /** Keeps every open connection: see the module header. */
  retain(): void {}

  connections(): ReadonlyMap<string, number> {
    const counts = new Map<string, number>();
    for (const [key, sockets] of this.open) counts.set(key, sockets.size);
    return counts;
  }

  close(): void {
    for (const sockets of this.open.values()) for (const socket of sockets) socket.destroy();
    this.open.clear();
  }
}
