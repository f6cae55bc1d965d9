// The inbound data path: capture (SO_ORIGINAL_DST gives the port the client asked for) →
// detect (mesh mTLS by its ALPN, the application's own TLS, plaintext HTTP/1, HTTP/2, or TCP)
// → policy (the effective PeerAuthentication mode for the port) → deliver to the application
// in this pod on that same port, at the address the client asked for when it is one of the pod's
// own (a dual-stack pod is reached over either family), else at the pod IP. Delivery binds
// 127.0.0.6 (IPv4) or ::6 (IPv6), which the iptables rules let through uncaptured.
import type { Socket } from 'node:net';
import { logger, ok } from '@tsmesh/common';
import { originalDst, type OriginalDst } from '../capture/original-dst.js';
import { detectProtocol } from '../detect/detect.js';
import type { DetectedProtocol } from '../detect/classify.js';
import { attachHttpContext } from '../http/context.js';
import type { H1Forwarder } from '../http/h1.js';
import type { H2Forwarder } from '../http/h2.js';
import { forwardTcp } from '../tcp/forward.js';
import { acceptMeshTls, offersMeshAlpn, type MeshTlsSource } from '../tls/mesh-tls.js';
import { endpointOf, fixedSelector, type UpstreamSelector } from '../upstream/selector.js';
import type { PeerInfo, RequestTelemetry } from '../telemetry/index.js';

const log = logger('inbound');

/** Source address of the sidecar's deliveries to the app (see iptables ruleset). */
export const INBOUND_SOURCE_ADDRESS = '127.0.0.6';

export type MtlsMode = 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface InboundDeps {
  readonly h1: H1Forwarder;
  readonly h2: H2Forwarder;
  readonly telemetry: RequestTelemetry;
  readonly detectTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly opaquePorts: ReadonlySet<number>;
  /** The pod IP to deliver to; without one, 127.0.0.1. */
  readonly podIp: string | undefined;
  /**
   * Whether an address is one of this pod's own (its other family on a dual-stack pod): a connection
   * to it is delivered there. Any other original destination goes to `podIp`, so a packet routed
   * through the pod to somewhere else never makes the sidecar dial that place.
   */
  isOwnAddress?(address: string): boolean;
  /** This workload, as the destination of what arrives. */
  readonly self: PeerInfo;
  /** The Service (`name.namespace`) whose endpoint this pod is on an application port, for telemetry. */
  serviceFor?(port: number): string | undefined;
  /** Mesh mTLS termination; undefined when the sidecar has no identity (plaintext only). */
  readonly tls: MeshTlsSource | undefined;
  /** The effective PeerAuthentication mode for an application port (read per connection). */
  mtlsMode(port: number): MtlsMode;
  /** Where connections go when SO_ORIGINAL_DST is unavailable (explicit-port local mode). */
  readonly fixedDestination?: OriginalDst | undefined;
  onDetectTimeout?(port: number): void;
  /** A connection refused by policy (STRICT without mesh mTLS, failed mTLS handshake). */
  onPolicyDenied?(port: number, reason: string): void;
}

/** Parses `spiffe://td/ns/<ns>/sa/<sa>` far enough for telemetry labels. */
function peerFromIdentity(identity: string): PeerInfo {
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(identity);
  return { identity, namespace: m?.[1], workload: m?.[2] };
}

export class Inbound {
  private readonly selectors = new Map<string, UpstreamSelector>();

  constructor(private readonly deps: InboundDeps) {}

  /**
   * The application endpoint for one port at one of the pod's addresses (cached: one selector, hence
   * one pooled upstream, per address and port). `address` undefined: the pod IP.
   */
  appSelector(port: number, address?: string): UpstreamSelector {
    const podIp = this.deps.podIp;
    const host = podIp === undefined ? '127.0.0.1' : address !== undefined && address !== podIp && this.deps.isOwnAddress?.(address) === true ? address : podIp;
    const key = `${host} ${port}`;
    let selector = this.selectors.get(key);
    if (!selector) {
      const endpoint =
        podIp === undefined
          ? endpointOf(host, port, { peer: this.deps.self })
          : endpointOf(host, port, { localAddress: host.includes(':') ? '::6' : INBOUND_SOURCE_ADDRESS, peer: this.deps.self });
      selector = fixedSelector(`inbound:${port}`, endpoint);
      this.selectors.set(key, selector);
    }
    return selector;
  }

  handle(socket: Socket): void {
    socket.on('error', (e) => log.debug({ err: e.message }, 'client socket error'));
    const dst = this.deps.fixedDestination ? ok(this.deps.fixedDestination) : originalDst(socket);
    if (!dst.ok) {
      log.warn({ err: dst.error.message, peer: socket.remoteAddress }, 'dropping inbound connection without an original destination');
      socket.destroy();
      return;
    }
    const port = dst.value.port;
    const address = dst.value.address;
    const mode = this.deps.mtlsMode(port);
    if (this.deps.opaquePorts.has(port) && mode !== 'STRICT') {
      this.deliver(socket, port, address, 'opaque', { identity: undefined, mtls: false });
      return;
    }
    void detectProtocol(socket, { timeoutMs: this.deps.detectTimeoutMs }).then((detection) => {
      if (socket.destroyed) return;
      if (detection.timedOut) this.deps.onDetectTimeout?.(port);
      const meshTls = detection.protocol === 'tls' && offersMeshAlpn(detection.alpn);
      if (meshTls && this.deps.tls && mode !== 'DISABLE') {
        this.terminate(socket, port, address);
        return;
      }
      if (mode === 'STRICT') {
        return this.deny(socket, port, meshTls ? 'mesh mTLS offered but this sidecar has no identity' : `plaintext ${detection.protocol} refused on a STRICT port`);
      }
      this.deliver(socket, port, address, detection.protocol, { identity: undefined, mtls: false });
    });
  }

  private terminate(socket: Socket, port: number, address: string): void {
    const tls = this.deps.tls;
    if (!tls) return this.deny(socket, port, 'no identity');
    acceptMeshTls(tls, socket, this.deps.connectTimeoutMs * 5).then(
      (accepted) => {
        const protocol: DetectedProtocol = accepted.inner === 'http1' ? 'http1' : accepted.inner === 'http2' ? 'http2' : 'opaque';
        this.deliver(accepted.socket as unknown as Socket, port, address, protocol, { identity: accepted.peerIdentity, mtls: true });
      },
      (error: Error) => this.deny(socket, port, error.message),
    );
  }

  private deny(socket: Socket, port: number, reason: string): void {
    log.warn({ port, peer: socket.remoteAddress, reason }, 'inbound connection refused by mTLS policy');
    this.deps.onPolicyDenied?.(port, reason);
    socket.destroy();
  }

  private deliver(socket: Socket, port: number, address: string, protocol: DetectedProtocol, peer: { identity: string | undefined; mtls: boolean }): void {
    const selector = this.appSelector(port, address);
    const source: PeerInfo = peer.identity ? peerFromIdentity(peer.identity) : {};
    const service = this.deps.serviceFor?.(port);
    const destination: PeerInfo = service ? { ...this.deps.self, service } : this.deps.self;
    if (protocol === 'http1' || protocol === 'http2') {
      const own = this.deps.tls?.identity();
      // The application learns who called, from the verified certificate only: any header of
      // that name the client sent was stripped (MESH_OWNED), so it cannot be forged.
      const addHeaders: Array<readonly [string, string]> =
        peer.identity && own ? [['x-forwarded-client-cert', `By=${own};URI=${peer.identity}`]] : [];
      attachHttpContext(socket, { direction: 'inbound', route: () => ok({ selector }), addHeaders, source, destination, mtls: peer.mtls });
      if (protocol === 'http1') this.deps.h1.accept(socket);
      else this.deps.h2.accept(socket);
      return;
    }
    forwardTcp(socket, selector, {
      connectTimeoutMs: this.deps.connectTimeoutMs,
      telemetry: { telemetry: this.deps.telemetry, reporter: 'destination', source, destination, mtls: peer.mtls },
    });
  }
}
