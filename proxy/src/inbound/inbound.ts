// The inbound data path: capture (SO_ORIGINAL_DST gives the port the client asked for) →
// detect (mesh mTLS by its ALPN, the application's own TLS, plaintext HTTP/1, HTTP/2, or TCP)
// → policy (the effective PeerAuthentication mode for the port) → authorization (AuthorizationPolicy:
// per request for HTTP, on the normalised request view; once before connecting for TCP, which is
// reset before a byte reaches the application) → local rate limits (HTTP only) → deliver to the application
// in this pod on that same port, at the address the client asked for when it is one of the pod's
// own (a dual-stack pod is reached over either family), else at the pod IP. Delivery binds
// 127.0.0.6 (IPv4) or ::6 (IPv6), which the iptables rules let through uncaptured.
// HTTP always goes through the HTTP forwarders, which set x-forwarded-client-cert from the
// verified peer alone: a port whose Service declares HTTP is never anything else, and on other
// ports an HTTP request that arrives late (after a silent detection, or inside a mesh mTLS
// tunnel opened as TCP) is taken back from TCP before the application sees a byte of it.
import type { Socket } from 'node:net';
import { err, INBOUND_SOURCE_ADDRESSES, logger, ok, parseSpiffeIdParts, workloadFromPodName, requestView, TsmeshError, type AppProtocol, type Result } from '@tsmesh/common';
import { capturedDestination, type OriginalDst } from '../capture/original-dst.js';
import { detectProtocol } from '../detect/detect.js';
import type { DetectedProtocol, Detection } from '../detect/classify.js';
import { holdForFirstSpeaker, watchFirstBytes } from '../detect/first-speaker.js';
import { attachHttpContext, type HttpRequestInfo, type HttpRouteTarget } from '../http/context.js';
import { PROXY_ERRORS } from '../errors.js';
import { principalOf, type AuthzRequest, type WorkloadAuthorization } from '../policy/authorization.js';
import type { WorkloadRateLimits } from '../policy/rate-limit.js';
import { limitRequest } from './rate-limit.js';
import type { H1Forwarder } from '../http/h1.js';
import type { H2Forwarder } from '../http/h2.js';
import { forwardTcp } from '../tcp/forward.js';
import { acceptMeshTls, offersMeshAlpn, type MeshTlsSource } from '../tls/mesh-tls.js';
import { endpointOf, fixedSelector, hostPort, type UpstreamSelector } from '../upstream/selector.js';
import { appOf, versionOf, type DenialReason, type PeerInfo, type RequestTelemetry, type ResponseFlag } from '../telemetry/index.js';
import { refuseUnfinishedRequest } from '../http/refuse.js';

const log = logger('inbound');

/** Source address of the sidecar's deliveries to the app (see iptables ruleset). */
export const INBOUND_SOURCE_ADDRESS = INBOUND_SOURCE_ADDRESSES[4];

export type MtlsMode = 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface InboundDeps {
  readonly h1: H1Forwarder;
  readonly h2: H2Forwarder;
  readonly telemetry: RequestTelemetry;
  readonly detectTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Opaque TCP idle timeout (0: none). */
  readonly tcpIdleTimeoutMs: number;
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
  /** The meshed pod at an address (a caller's, to name its workload in telemetry). */
  podAt?(ip: string): { readonly name: string; readonly namespace: string; readonly labels?: Readonly<Record<string, string>> } | undefined;
  /**
   * The protocol the Services of an application port declare (`appProtocol` or port name); HTTP
   * (`http`, `http2`, `grpc`) when any of them does. An HTTP port is always parsed as HTTP.
   */
  declaredProtocol?(port: number): AppProtocol | undefined;
  /** How long a client may take to finish an HTTP/1 request line it began; default detect.ts's. */
  readonly requestLineTimeoutMs?: number | undefined;
  /** Mesh mTLS termination; undefined when the sidecar has no identity (plaintext only). */
  readonly tls: MeshTlsSource | undefined;
  /** The effective PeerAuthentication mode for an application port (read per connection). */
  mtlsMode(port: number): MtlsMode;
  /**
   * The compiled AuthorizationPolicies of this workload (read per request and per connection, so a
   * new snapshot applies at once); undefined or inactive: nothing is checked.
   */
  authorization?(): WorkloadAuthorization | undefined;
  /**
   * The compiled HTTPLocalRateLimitPolicies of this workload, asked per HTTP request after
   * authorization (a denied request is not counted); undefined or inactive: nothing is limited.
   */
  rateLimits?(): WorkloadRateLimits | undefined;
  /** Where connections go when SO_ORIGINAL_DST is unavailable (explicit-port local mode). */
  readonly fixedDestination?: OriginalDst | undefined;
  onDetectTimeout?(port: number): void;
}

/** Whether a declared protocol means HTTP semantics (and so the app may trust x-forwarded-client-cert). */
function declaresHttp(protocol: AppProtocol | undefined): boolean {
  return protocol === 'http' || protocol === 'http2' || protocol === 'grpc';
}

/** An application port of this pod as its Services describe it. */
export interface InboundPort {
  /** `name.namespace` of (one of) the Services, for telemetry. */
  readonly service: string;
  readonly protocol: AppProtocol | undefined;
}

/** Two Services' declarations of one pod port: HTTP wins (the app may trust XFCC there), else the first one. */
export function mergeDeclared(a: AppProtocol | undefined, b: AppProtocol | undefined): AppProtocol | undefined {
  if (declaresHttp(a)) return a;
  if (declaresHttp(b)) return b;
  return a ?? b;
}

type Peer = { identity: string | undefined; mtls: boolean };

/** Who called, as authorization compares it: principal and namespace (both undefined for plaintext) and the port. */
interface AuthzCaller {
  readonly principal: string | undefined;
  readonly namespace: string | undefined;
  readonly port: number;
}

/** One accepted connection, as the stages pass it on. */
interface Conn {
  readonly port: number;
  /** The pod address the client asked for. */
  readonly address: string;
  /** A Service declares HTTP on this port: it is parsed as HTTP, whatever comes. */
  readonly http: boolean;
  /** When it was accepted (`performance.now()`). */
  readonly started: number;
  /** The downstream peer, `ip:port` (kept: a refused socket may no longer know it). */
  readonly downstream: string;
  /** The downstream peer's IP (unmapped), to find its pod. */
  readonly remoteIp: string | undefined;
}
const PLAINTEXT: Peer = { identity: undefined, mtls: false };

/**
 * A verified caller as telemetry labels it: its namespace from the SPIFFE ID, and its workload
 * guessed from its pod's name (docs/observability.md: `reviews-v1-7d9f8c6b5-x2kqz` → `reviews-v1`)
 * when the mesh knows a pod of that namespace at the caller's address; else the service account,
 * the nearest name the certificate proves.
 */
function peerFromIdentity(identity: string, pod: { readonly name: string; readonly namespace: string; readonly labels?: Readonly<Record<string, string>> } | undefined): PeerInfo {
  const parsed = parseSpiffeIdParts(identity);
  if (!parsed.ok) return { identity };
  const { namespace, serviceAccount } = parsed.value;
  if (pod === undefined || pod.namespace !== namespace) return { identity, namespace, workload: serviceAccount };
  return { identity, namespace, workload: workloadFromPodName(pod.name), app: appOf(pod.labels), version: versionOf(pod.labels) };
}

/** The one refusal every denied request gets (the same object: nothing allocated per refusal). */
const AUTHZ_DENIED = new TsmeshError(PROXY_ERRORS.AUTHZ_DENIED, 'RBAC: access denied');

/** A TCP reset (RST) where the socket is TCP; a TLS tunnel (no TCP handle of its own) is destroyed. */
function resetConnection(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
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
          : endpointOf(host, port, { localAddress: host.includes(':') ? INBOUND_SOURCE_ADDRESSES[6] : INBOUND_SOURCE_ADDRESS, peer: this.deps.self });
      selector = fixedSelector(`inbound:${port}`, endpoint);
      this.selectors.set(key, selector);
    }
    return selector;
  }

  handle(socket: Socket): void {
    const dst = capturedDestination(socket, this.deps.fixedDestination, log, 'dropping inbound connection without an original destination');
    if (dst === undefined) return;
    const port = dst.port;
    const conn: Conn = {
      port,
      address: dst.address,
      http: declaresHttp(this.deps.declaredProtocol?.(port)),
      started: performance.now(),
      downstream: hostPort(socket.remoteAddress, socket.remotePort),
      remoteIp: socket.remoteAddress?.startsWith('::ffff:') ? socket.remoteAddress.slice(7) : socket.remoteAddress,
    };
    const mode = this.deps.mtlsMode(port);
    if (!conn.http && this.deps.opaquePorts.has(port) && mode !== 'STRICT') {
      this.deliver(socket, conn, 'opaque', PLAINTEXT, false);
      return;
    }
    void detectProtocol(socket, { timeoutMs: this.deps.detectTimeoutMs, requestLineTimeoutMs: this.deps.requestLineTimeoutMs }).then((detection) => {
      if (socket.destroyed) return;
      if (detection.timedOut) this.deps.onDetectTimeout?.(port);
      const meshTls = detection.protocol === 'tls' && offersMeshAlpn(detection.alpn);
      if (meshTls && this.deps.tls && mode !== 'DISABLE') {
        this.terminate(socket, conn);
        return;
      }
      if (mode === 'STRICT') {
        const detail = meshTls ? 'mesh mTLS offered but this sidecar has no identity' : `plaintext ${detection.protocol} refused on a STRICT port`;
        return this.deny(socket, conn, meshTls ? 'mtls_unavailable' : 'mtls_required', detail);
      }
      this.plaintext(socket, conn, detection);
    });
  }

  /** A connection that is not mesh mTLS, allowed by the port's mode: HTTP, the app's own TLS, or TCP. */
  private plaintext(socket: Socket, conn: Conn, detection: Detection): void {
    // Declared HTTP: the HTTP parser takes whatever came (it answers 400 to what is not HTTP).
    if (conn.http) return this.deliver(socket, conn, detection.protocol === 'http2' ? 'http2' : 'http1', PLAINTEXT, false);
    if (detection.incomplete === true) return this.refuseIncomplete(socket, conn, PLAINTEXT);
    // The app's own TLS stays opaque; anything else is held until it is clear who speaks first.
    this.deliver(socket, conn, detection.protocol, PLAINTEXT, detection.protocol === 'opaque');
  }

  private terminate(socket: Socket, conn: Conn): void {
    const tls = this.deps.tls;
    if (!tls) return this.deny(socket, conn, 'mtls_unavailable', 'no identity');
    acceptMeshTls(tls, socket, this.deps.connectTimeoutMs * 5).then(
      (accepted) => {
        const tunnel = accepted.socket as unknown as Socket;
        const peer: Peer = { identity: accepted.peerIdentity, mtls: true };
        if (accepted.inner === 'http1' || accepted.inner === 'http2') return this.deliver(tunnel, conn, accepted.inner, peer, false);
        // Opened as TCP by the calling sidecar (its own port list or detection decided so): the
        // bytes inside are the client's, so elsewhere they are held until someone speaks, and on an
        // HTTP port they are parsed all the same (HTTP/2 by its preface, else HTTP/1).
        if (!conn.http) return this.deliver(tunnel, conn, 'opaque', peer, true);
        watchFirstBytes(tunnel, { silenceTimeoutMs: this.deps.detectTimeoutMs, requestLineTimeoutMs: this.deps.requestLineTimeoutMs }, (first) => {
          if (first.kind === 'client-first' && first.ended) return tunnel.destroy();
          const h2 = first.kind === 'client-first' && first.detection.protocol === 'http2';
          this.deliver(tunnel, conn, h2 ? 'http2' : 'http1', peer, false);
        });
      },
      (error: Error) => this.deny(socket, conn, 'mtls_handshake', error.message),
    );
  }

  private deny(socket: Socket, conn: Conn, reason: DenialReason, detail: string): void {
    log.warn({ port: conn.port, peer: conn.downstream, reason: detail }, 'inbound connection refused by mTLS policy');
    this.recordDenial(conn, reason, ['RBAC'], PLAINTEXT);
    socket.destroy();
  }

  /**
   * Judges one HTTP request on the normalised view (the application then receives the path that was
   * judged). Refused requests come back as errors the forwarders answer 403 (gRPC PERMISSION_DENIED).
   */
  private authorizeRequest(authz: WorkloadAuthorization, caller: AuthzCaller, req: HttpRequestInfo, selector: UpstreamSelector): Result<HttpRouteTarget, TsmeshError> {
    let request: AuthzRequest;
    let path: string | undefined;
    if (authz.needsHttp) {
      const view = requestView({ method: req.method, target: req.url, authority: req.authority, header: (n) => req.header(n) });
      if (!view.ok) return err(new TsmeshError(PROXY_ERRORS.BAD_REQUEST, `request refused: ${view.reason}`));
      const normalised = view.request;
      request = { principal: caller.principal, namespace: caller.namespace, port: caller.port, http: { method: req.method, path: normalised.path, host: normalised.headers('host'), header: (n) => req.header(n) } };
      path = view.target;
    } else {
      // No policy reads the request: the connection's facts decide (as for TCP, no rule is HTTP-only).
      request = { principal: caller.principal, namespace: caller.namespace, port: caller.port, http: undefined };
    }
    const decision = authz.check(request);
    const metrics = this.deps.telemetry.metrics;
    const audited = authz.audit(request);
    if (audited !== undefined) {
      metrics.authzDecision('audit', audited, 'audit_matched', 'http');
      log.info({ policy: audited, principal: caller.principal, method: req.method, path: request.http?.path ?? req.url, port: caller.port, allowed: decision.allowed }, 'request matched an AUDIT AuthorizationPolicy');
    }
    metrics.authzDecision(decision.allowed ? 'allow' : 'deny', decision.policy, decision.reason, 'http');
    if (!decision.allowed) {
      // The caller learns no policy name (it is in the metrics, and in this sidecar's debug log).
      log.debug({ port: caller.port, principal: caller.principal, method: req.method, policy: decision.policy, reason: decision.reason }, 'request refused by AuthorizationPolicy');
      return err(AUTHZ_DENIED);
    }
    return ok(path === undefined || path === req.url ? { selector } : { selector, path });
  }

  /** Judges a TCP connection (ports, principals, namespaces); a refusal is counted and logged, the caller resets it. */
  private authorizeConnection(authz: WorkloadAuthorization, conn: Conn, peer: Peer): boolean {
    const request: AuthzRequest = { ...principalOf(peer.identity), port: conn.port, http: undefined };
    const decision = authz.check(request);
    const metrics = this.deps.telemetry.metrics;
    const audited = authz.audit(request);
    if (audited !== undefined) {
      metrics.authzDecision('audit', audited, 'audit_matched', 'tcp');
      log.info({ policy: audited, principal: request.principal, port: conn.port, allowed: decision.allowed }, 'connection matched an AUDIT AuthorizationPolicy');
    }
    metrics.authzDecision(decision.allowed ? 'allow' : 'deny', decision.policy, decision.reason, 'tcp');
    if (decision.allowed) return true;
    log.warn({ port: conn.port, peer: conn.downstream, principal: request.principal, policy: decision.policy, reason: decision.reason }, 'inbound connection refused by AuthorizationPolicy');
    this.recordDenial(conn, 'authz_denied', ['RBAC'], peer);
    return false;
  }

  /** A request line begun and never finished: refused, since it must not reach the app as bytes. */
  private refuseIncomplete(socket: Socket, conn: Conn, peer: Peer): void {
    log.warn({ port: conn.port, peer: conn.downstream }, 'inbound connection refused: an HTTP request line left unfinished');
    this.recordDenial(conn, 'incomplete_http', ['DPE'], peer);
    refuseUnfinishedRequest(socket);
  }

  private recordDenial(conn: Conn, reason: DenialReason, flags: ResponseFlag[], peer: Peer): void {
    this.deps.telemetry.denied({
      reporter: 'destination',
      reason,
      flags,
      source: this.sourceOf(conn, peer),
      destination: this.destinationFor(conn.port),
      mtls: peer.mtls,
      downstream: conn.downstream,
      durationMs: performance.now() - conn.started,
    });
  }

  /** The caller for telemetry: known only when its certificate proved who it is. */
  private sourceOf(conn: Conn, peer: Peer): PeerInfo {
    if (!peer.identity) return {};
    return peerFromIdentity(peer.identity, conn.remoteIp === undefined ? undefined : this.deps.podAt?.(conn.remoteIp));
  }

  private destinationFor(port: number): PeerInfo {
    const service = this.deps.serviceFor?.(port);
    return service ? { ...this.deps.self, service } : this.deps.self;
  }

  /**
   * Hands a connection to the HTTP forwarders, or forwards it as TCP. With `hold`, TCP is held
   * until someone speaks: a client that speaks first with HTTP is served as HTTP after all (or
   * refused when its request line never ends).
   */
  private deliver(socket: Socket, conn: Conn, protocol: DetectedProtocol, peer: Peer, hold: boolean): void {
    const selector = this.appSelector(conn.port, conn.address);
    const source = this.sourceOf(conn, peer);
    const destination = this.destinationFor(conn.port);
    if (protocol === 'http1' || protocol === 'http2') {
      const own = this.deps.tls?.identity();
      // The application learns who called, from the verified certificate only: any header of
      // that name the client sent was stripped (MESH_OWNED), so it cannot be forged.
      const addHeaders: Array<readonly [string, string]> =
        peer.identity && own ? [['x-forwarded-client-cert', `By=${own};URI=${peer.identity}`]] : [];
      const plain = ok<HttpRouteTarget>({ selector });
      const caller: AuthzCaller = { ...principalOf(peer.identity), port: conn.port };
      const route = (req: HttpRequestInfo): Result<HttpRouteTarget, TsmeshError> => {
        const authz = this.deps.authorization?.();
        const routed = authz?.active === true ? this.authorizeRequest(authz, caller, req, selector) : plain;
        const limits = this.deps.rateLimits?.();
        return limits?.active === true && routed.ok ? limitRequest(limits, conn.port, peer.identity, req, routed) : routed;
      };
      attachHttpContext(socket, { direction: 'inbound', route, addHeaders, source, destination, mtls: peer.mtls });
      if (protocol === 'http1') this.deps.h1.accept(socket);
      else this.deps.h2.accept(socket);
      return;
    }
    const authz = this.deps.authorization?.();
    if (authz?.active === true && !this.authorizeConnection(authz, conn, peer)) {
      // Before the application is dialled: not a byte either way (a server-first app would speak).
      resetConnection(socket);
      return;
    }
    forwardTcp(socket, selector, {
      connectTimeoutMs: this.deps.connectTimeoutMs,
      idleTimeoutMs: this.deps.tcpIdleTimeoutMs,
      telemetry: { telemetry: this.deps.telemetry, reporter: 'destination', source, destination, mtls: peer.mtls },
      hold: hold
        ? holdForFirstSpeaker(
            { requestLineTimeoutMs: this.deps.requestLineTimeoutMs },
            {
              http: (client, late) => this.deliver(client as Socket, conn, late, peer, false),
              incomplete: (client) => this.refuseIncomplete(client as Socket, conn, peer),
            },
          )
        : undefined,
    });
  }
}
