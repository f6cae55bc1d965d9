// The inbound data path: capture (SO_ORIGINAL_DST gives the port the client asked for) →
// detect → deliver to the application in this pod on that same port. Delivery binds
// 127.0.0.6 when it targets the pod IP, which the iptables rules let through uncaptured.
import type { Socket } from 'node:net';
import { logger, ok } from '@tsmesh/common';
import { originalDst, type OriginalDst } from '../capture/original-dst.js';
import { detectProtocol } from '../detect/detect.js';
import { attachHttpContext } from '../http/context.js';
import type { H1Forwarder } from '../http/h1.js';
import type { H2Forwarder } from '../http/h2.js';
import { forwardTcp } from '../tcp/forward.js';
import { endpointOf, fixedSelector, type UpstreamSelector } from '../upstream/selector.js';

const log = logger('inbound');

/** Source address of the sidecar's deliveries to the app (see iptables ruleset). */
export const INBOUND_SOURCE_ADDRESS = '127.0.0.6';

export interface InboundDeps {
  readonly h1: H1Forwarder;
  readonly h2: H2Forwarder;
  readonly detectTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly opaquePorts: ReadonlySet<number>;
  /** The pod IP to deliver to; without one, 127.0.0.1. */
  readonly podIp: string | undefined;
  /** Where connections go when SO_ORIGINAL_DST is unavailable (explicit-port local mode). */
  readonly fixedDestination?: OriginalDst | undefined;
  onDetectTimeout?(port: number): void;
}

export class Inbound {
  private readonly selectors = new Map<number, UpstreamSelector>();

  constructor(private readonly deps: InboundDeps) {}

  /** The application endpoint for one port (cached: one selector, hence one pooled upstream, per port). */
  appSelector(port: number): UpstreamSelector {
    let selector = this.selectors.get(port);
    if (!selector) {
      const endpoint = this.deps.podIp
        ? endpointOf(this.deps.podIp, port, { localAddress: this.deps.podIp.includes(':') ? '::6' : INBOUND_SOURCE_ADDRESS })
        : endpointOf('127.0.0.1', port);
      selector = fixedSelector(`inbound:${port}`, endpoint);
      this.selectors.set(port, selector);
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
    const selector = this.appSelector(port);
    if (this.deps.opaquePorts.has(port)) {
      forwardTcp(socket, selector, { connectTimeoutMs: this.deps.connectTimeoutMs });
      return;
    }
    void detectProtocol(socket, { timeoutMs: this.deps.detectTimeoutMs }).then((detection) => {
      if (socket.destroyed) return;
      if (detection.timedOut) this.deps.onDetectTimeout?.(port);
      if (detection.protocol === 'http1' || detection.protocol === 'http2') {
        attachHttpContext(socket, { direction: 'inbound', route: () => ok({ selector }) });
        if (detection.protocol === 'http1') this.deps.h1.accept(socket);
        else this.deps.h2.accept(socket);
        return;
      }
      forwardTcp(socket, selector, { connectTimeoutMs: this.deps.connectTimeoutMs });
    });
  }
}
