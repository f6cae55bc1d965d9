// The outbound data path, one connection at a time:
// capture (SO_ORIGINAL_DST) → target (Service / endpoint / passthrough) → detect (unless the
// port declares its protocol) → HTTP/1, HTTP/2 (per-request balancing) or opaque TCP. Routes
// apply to every HTTP request to a Service: one that only shows itself late (a pause, a silent
// start) is still taken to the HTTP forwarders, or refused, never carried as TCP.
import type { Socket } from 'node:net';
import { logger, type AppProtocol, type MeshSnapshot } from '@tsmesh/common';
import { capturedDestination, type OriginalDst } from '../capture/original-dst.js';
import { detectProtocol } from '../detect/detect.js';
import type { DetectedProtocol } from '../detect/classify.js';
import { holdForFirstSpeaker } from '../detect/first-speaker.js';
import { refuseUnfinishedRequest } from '../http/refuse.js';
import { attachHttpContext, type HttpConnectionContext } from '../http/context.js';
import type { H1Forwarder } from '../http/h1.js';
import type { H2Forwarder } from '../http/h2.js';
import { forwardTcp } from '../tcp/forward.js';
import { endpointOf, fixedSelector, hostPort } from '../upstream/selector.js';
import type { ServiceClusters } from './clusters.js';
import type { TcpConnections } from '../tcp/connections.js';
import type { OutboundRouter } from './router.js';
import type { Dialer } from '../upstream/dial.js';
import type { PeerInfo, RequestTelemetry } from '../telemetry/index.js';
import { outboundTarget, type OutboundTarget } from './target.js';

const log = logger('outbound');

export interface OutboundDeps {
  snapshot(): MeshSnapshot | undefined;
  readonly clusters: ServiceClusters;
  /** The upstream layer's register of open opaque TCP connections. */
  readonly tcpConnections?: TcpConnections | undefined;
  readonly router: OutboundRouter;
  readonly telemetry: RequestTelemetry;
  /** Plain TCP or mesh mTLS per endpoint. */
  readonly dial: Dialer;
  /** This workload, as the source of what leaves. */
  readonly self: PeerInfo;
  readonly h1: H1Forwarder;
  readonly h2: H2Forwarder;
  readonly detectTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Opaque TCP idle timeout (0: none). */
  readonly tcpIdleTimeoutMs: number;
  /** Ports never detected (annotation `tsmesh.io/opaque-ports`). */
  readonly opaquePorts: ReadonlySet<number>;
  /** Counts connections whose protocol could not be detected in time (server-first). */
  onDetectTimeout?(target: OutboundTarget): void;
  /** How long a client may take to finish an HTTP/1 request line it began; default detect.ts's. */
  readonly requestLineTimeoutMs?: number | undefined;
  /** Where connections go when SO_ORIGINAL_DST is unavailable (explicit-port local mode). */
  readonly fixedDestination?: OriginalDst | undefined;
}

/** Declared protocol → the handler; undefined means detect. */
function declared(protocol: AppProtocol | undefined): DetectedProtocol | undefined {
  switch (protocol) {
    case 'http':
      return 'http1';
    case 'http2':
    case 'grpc':
      return 'http2';
    case 'tcp':
      return 'opaque';
    case 'tls':
      return 'tls';
    default:
      return undefined;
  }
}

export class Outbound {
  constructor(private readonly deps: OutboundDeps) {}

  /** Handles one captured connection (accepted with pauseOnConnect). Never throws. */
  handle(socket: Socket): void {
    const dst = capturedDestination(socket, this.deps.fixedDestination, log, 'dropping connection without an original destination');
    if (dst === undefined) return;
    const target = outboundTarget(this.deps.snapshot(), dst);
    if (target.kind !== 'service') {
      // Outside the mesh's Services: forward untouched, never delay with detection.
      const address = target.kind === 'endpoint' ? target.address : target.dst.address;
      forwardTcp(socket, fixedSelector(`passthrough:${address}`, endpointOf(address, target.dst.port)), {
        connections: this.deps.tcpConnections,
        connectTimeoutMs: this.deps.connectTimeoutMs,
        idleTimeoutMs: this.deps.tcpIdleTimeoutMs,
        telemetry: { telemetry: this.deps.telemetry, reporter: 'source', source: this.deps.self, destination: { service: `${address}:${target.dst.port}` }, mtls: false },
      });
      return;
    }
    const known = this.deps.opaquePorts.has(target.port.port) ? 'opaque' : declared(target.port.declaredProtocol);
    if (known && known !== 'http1') {
      this.dispatch(socket, target, known);
      return;
    }
    const started = performance.now();
    void detectProtocol(socket, { timeoutMs: this.deps.detectTimeoutMs, requestLineTimeoutMs: this.deps.requestLineTimeoutMs }).then((detection) => {
      // Declared HTTP: parsed whatever came, HTTP/2 by its preface (h2c with prior knowledge), else HTTP/1, as inbound.
      if (known === 'http1') return this.dispatch(socket, target, detection.protocol === 'http2' ? 'http2' : 'http1');
      if (detection.timedOut) this.deps.onDetectTimeout?.(target);
      if (detection.incomplete === true) return this.refuseIncomplete(socket, target, started);
      this.dispatch(socket, target, detection.protocol, detection.protocol === 'opaque' ? started : undefined);
    });
  }

  /** A request line begun and never finished: refused, since it would pass every route as bytes. */
  private refuseIncomplete(socket: Socket, target: Extract<OutboundTarget, { kind: 'service' }>, started: number): void {
    if (socket.destroyed) return;
    log.warn({ cluster: target.key, peer: socket.remoteAddress }, 'outbound connection refused: an HTTP request line left unfinished');
    this.deps.telemetry.denied({
      reporter: 'source',
      reason: 'incomplete_http',
      flags: ['DPE'],
      source: this.deps.self,
      destination: { service: `${target.service.name}.${target.service.namespace}`, namespace: target.service.namespace },
      mtls: false,
      downstream: hostPort(socket.remoteAddress, socket.remotePort),
      durationMs: performance.now() - started,
    });
    refuseUnfinishedRequest(socket);
  }

  /**
   * Hands a connection to its forwarder. Opaque TCP that came out of detection (`started` given)
   * is held until someone speaks: a client that speaks first with HTTP is routed after all.
   */
  private dispatch(socket: Socket, target: Extract<OutboundTarget, { kind: 'service' }>, protocol: DetectedProtocol, started?: number): void {
    if (socket.destroyed) return;
    const entry = this.deps.clusters.get(target.key);
    if (!entry) {
      log.warn({ cluster: target.key }, 'no cluster for service port');
      socket.destroy();
      return;
    }
    const destination: PeerInfo = { service: `${entry.service.name}.${entry.service.namespace}`, namespace: entry.service.namespace };
    if (protocol === 'http1' || protocol === 'http2') {
      const ctx: HttpConnectionContext = {
        direction: 'outbound',
        route: this.deps.router.routerFor(entry),
        source: this.deps.self,
        destination,
        // Outbound mTLS is decided per endpoint by the dialer; the record's flag says the hop's intent.
        mtls: false,
      };
      attachHttpContext(socket, ctx);
      if (protocol === 'http1') this.deps.h1.accept(socket);
      else this.deps.h2.accept(socket);
      return;
    }
    // TLS (passed through, balanced per connection; SNI is only logged) and opaque TCP.
    const hold =
      started === undefined
        ? undefined
        : holdForFirstSpeaker(
            { requestLineTimeoutMs: this.deps.requestLineTimeoutMs },
            {
              http: (client, late) => this.dispatch(client as Socket, target, late),
              incomplete: (client) => this.refuseIncomplete(client as Socket, target, started),
            },
          );
    forwardTcp(socket, entry.selector, {
      connections: this.deps.tcpConnections,
      connectTimeoutMs: this.deps.connectTimeoutMs,
      idleTimeoutMs: this.deps.tcpIdleTimeoutMs,
      dial: this.deps.dial,
      telemetry: { telemetry: this.deps.telemetry, reporter: 'source', source: this.deps.self, destination, flags: [] },
      hold,
    });
  }
}
