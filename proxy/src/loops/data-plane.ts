// One event loop's data path: the capture listeners (outbound 15001, inbound 15006) and the
// clusters, router, forwarders and connection pools behind them. It reads mesh snapshots it is
// given and TLS contexts from a MeshTlsSource; it never fetches either. With --concurrency 1 the
// main thread runs one; with more, each worker thread (worker.ts) runs its own.
import net, { type Server } from 'node:net';
import { logger, type MeshSnapshot } from '@tsmesh/common';
import type { ListenAddress, ProxyConfig } from '../config.js';
import type { H2Counters } from '../h2/limits.js';
import { H1Relay } from '../h1/relay.js';
import { H1Forwarder } from '../http/h1.js';
import { H2Forwarder } from '../http/h2.js';
import { spiffeIdFor } from '../identity/spiffe.js';
import { Inbound, mergeDeclared, type InboundPort } from '../inbound/inbound.js';
import { endpointInfo } from '../outbound/endpoint-info.js';
import { callerZone } from '../outbound/locality.js';
import { Outbound } from '../outbound/outbound.js';
import { OutboundRouter } from '../outbound/router.js';
import {
  compileWorkloadAuthorization,
  compileWorkloadPolicy,
  compileWorkloadRateLimits,
  DEFAULT_ROOT_NAMESPACE,
  RateBuckets,
  rateBucketsBuffer,
  workloadOf,
  type InboundMtlsPolicy,
  type WorkloadAuthorization,
  type WorkloadRateLimits,
} from '../policy/index.js';
import { appOf, versionOf, workloadFromPodName, type PeerInfo, type ProxyMetrics, type RequestTelemetry } from '../telemetry/index.js';
import type { MeshTlsSource } from '../tls/mesh-tls.js';
import { dialerFor, plainDialer } from '../upstream/dial.js';
import { UpstreamManager, type ClusterView } from '../upstream/manager.js';
import { metricsRecorder, type CallFactory } from '../upstream/call.js';
import type { SharedCounts } from '../upstream/shared-counts.js';
import { TcpConnections } from '../tcp/connections.js';
import { startHeapTrim, type HeapTrim } from './heap-trim.js';

const log = logger('loop.data-plane');

/** The namespace whose selector-less PeerAuthentication is mesh-wide (SPEC: control-plane namespace). */
const ROOT_NAMESPACE = DEFAULT_ROOT_NAMESPACE;

export type ClusterStats = ClusterView[];

export interface DataPlaneOptions {
  readonly config: ProxyConfig;
  /** This loop's number (0 for the main thread's), the `loop` label of its connection counter. */
  readonly loop: number;
  readonly snapshot: MeshSnapshot;
  /** The workload identity's TLS contexts; undefined without a CA (plaintext only). */
  readonly tls: MeshTlsSource | undefined;
  /** Metrics, spans and access log of this loop. */
  readonly telemetry: RequestTelemetry;
  /** Bind with SO_REUSEPORT so that every loop listens on the same ports and the kernel spreads connections. */
  readonly reusePort: boolean;
  /** Ports to bind instead of config's (the loops after the first take the ports the first was given for port 0). */
  readonly ports?: { readonly outbound: number; readonly inbound: number };
  /** With several loops: the requests and retries in flight of them all (upstream/shared-counts.ts). */
  readonly shared?: SharedCounts;
  /** With several loops: the rate limit buckets of them all (policy/rate-buckets.ts); else this loop's own. */
  readonly rateBuckets?: SharedArrayBuffer;
}

export interface DataPlane {
  /** The capture ports actually bound. */
  readonly ports: { readonly outbound: number; readonly inbound: number };
  /** Applies a new mesh snapshot: clusters, routes, inbound policy; idle pooled connections to endpoints gone are closed. */
  update(snapshot: MeshSnapshot): void;
  /** Per-cluster endpoint stats (the admin `/clusters` view of this loop). */
  clusters(): ClusterStats;
  /** Captured connections still open. */
  openConnections(): number;
  /**
   * Closes the listeners: from its return on, a new connection to this loop's ports is refused (the fds
   * are closed synchronously). The first step of a drain, taken by every loop before readiness fails.
   */
  stopAccepting(): void;
  /**
   * Graceful drain: listeners closed (stopAccepting), HTTP/2 GOAWAY, HTTP/1.1 `Connection: close`; resolves when every
   * captured connection has ended or after `durationMs`, with how many were left.
   */
  drain(durationMs: number): Promise<{ remaining: number }>;
  /** Closes the listeners, the pools and every connection left. */
  close(): Promise<void>;
}

function listen(server: Server, at: ListenAddress, reusePort: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port, ...(reusePort ? { reusePort: true } : {}) }, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : at.port);
    });
  });
}

/** Tracks a capture listener's sockets so close() can end them instead of waiting. */
function trackConnections(server: Server, accepted: () => void): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    accepted();
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return sockets;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The inbound mTLS policy of this sidecar's workload in `snapshot` (its problems are the main thread's to log). */
export function inboundPolicyOf(snapshot: MeshSnapshot, config: ProxyConfig): InboundMtlsPolicy {
  return compileWorkloadPolicy(snapshot, { namespace: config.podNamespace, podName: config.podName, podIp: config.podIp }, ROOT_NAMESPACE);
}

/** The AuthorizationPolicies of this sidecar's workload in `snapshot`, compiled (its problems are the main thread's to log). */
export function authorizationOf(snapshot: MeshSnapshot, config: ProxyConfig): WorkloadAuthorization {
  const workload = workloadOf(snapshot, { namespace: config.podNamespace, podName: config.podName, podIp: config.podIp });
  return compileWorkloadAuthorization(snapshot, workload, ROOT_NAMESPACE);
}

/** The HTTPLocalRateLimitPolicies of this sidecar's workload in `snapshot`, compiled onto `buckets`. */
export function rateLimitsOf(snapshot: MeshSnapshot, config: ProxyConfig, buckets: RateBuckets, metrics?: ProxyMetrics): WorkloadRateLimits {
  const workload = workloadOf(snapshot, { namespace: config.podNamespace, podName: config.podName, podIp: config.podIp });
  const counters = metrics === undefined ? undefined : (policy: string, decision: 'admitted' | 'limited', reason: string) => metrics.rateLimitCounter(policy, decision, reason);
  return compileWorkloadRateLimits(snapshot, workload, { trustDomain: config.trustDomain, buckets, counters, podIp: config.podIp });
}

/**
 * Which Service each of this pod's ports serves, so inbound telemetry can name it, with the
 * protocol their ports declare: an HTTP port is always parsed as HTTP inbound.
 */
function servicesOf(snapshot: MeshSnapshot, podIp: string | undefined): Map<number, InboundPort> {
  const map = new Map<number, InboundPort>();
  if (!podIp) return map;
  for (const service of snapshot.services) {
    for (const port of service.ports) {
      for (const e of snapshot.endpoints(service, port)) {
        if (e.address === podIp) map.set(e.port, { service: `${service.name}.${service.namespace}`, protocol: mergeDeclared(map.get(e.port)?.protocol, port.declaredProtocol) });
      }
    }
  }
  return map;
}

export async function startDataPlane(options: DataPlaneOptions): Promise<DataPlane> {
  const { config, loop, tls, telemetry } = options;
  const metrics = telemetry.metrics;
  let snapshot = options.snapshot;
  let policy = inboundPolicyOf(snapshot, config);
  let authorization = authorizationOf(snapshot, config);
  const rateBuckets = new RateBuckets(options.rateBuckets ?? rateBucketsBuffer());
  rateBuckets.onLocalBucket = () => metrics.rateLimitLocalBucket();
  const compileRateLimits = (s: MeshSnapshot): WorkloadRateLimits => {
    const compiled = rateLimitsOf(s, config, rateBuckets, metrics);
    // Every loop compiles the same; one says what was left out.
    if (loop === 0) for (const problem of compiled.problems) log.warn({ problem }, 'HTTPLocalRateLimitPolicy left out');
    return compiled;
  };
  let rateLimits = compileRateLimits(snapshot);
  let inboundServices = servicesOf(snapshot, config.podIp);
  // The caller's zone for zone-preferring balancing; every loop finds the same, one says when it changes.
  let zone: string | undefined;
  const zoneOf = (s: MeshSnapshot): string | undefined => {
    const found = callerZone(s, config);
    if (found !== zone && loop === 0) log.info({ zone: found ?? null }, found === undefined ? 'zone unknown: balancing over every zone alike' : 'balancing prefers endpoints in this zone');
    zone = found;
    return found;
  };
  // The upstream layer: clusters and the pools behind them, updated and pruned together.
  const upstream = new UpstreamManager({
    infoOf: endpointInfo(config.trustDomain, ROOT_NAMESPACE),
    recorder: metricsRecorder(metrics),
    shared: options.shared,
    locality: { zoneOf: (s) => zoneOf(s), tally: (cluster) => metrics.zonePickTally(cluster) },
  });
  const clusters = upstream.clusters;
  const router = new OutboundRouter(clusters, config.podNamespace);

  const workload = config.podName ? workloadFromPodName(config.podName) : 'unknown';
  const ownSpiffeId = spiffeIdFor(config.trustDomain, config.podNamespace, config.serviceAccount);
  // This pod's app and version labels (Istio's *_app, *_version metric labels), looked up once per mesh snapshot.
  const ownPod = (s: MeshSnapshot) =>
    s.pods.find((p) => p.namespace === config.podNamespace && p.name === config.podName) ?? (config.podIp !== undefined ? s.podByIp(config.podIp) : undefined);
  let ownLabels = ownPod(snapshot)?.labels;
  let ownApp = appOf(ownLabels);
  let ownVersion = versionOf(ownLabels);
  const self = (): PeerInfo => ({ workload, namespace: config.podNamespace, identity: tls?.identity() ?? ownSpiffeId, app: ownApp, version: ownVersion });

  const dial = dialerFor(tls);
  const forwarderOptions = { connectTimeoutMs: config.connectTimeoutMs, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: config.httpIdleTimeoutMs };
  const h2Limits = { idleTimeoutMs: config.httpIdleTimeoutMs };
  // `--http1-engine`: Outbound and Inbound only call accept() (drain/close come from `forwarders`),
  // which both engines implement alike; the relay stands in for the H1Forwarder type they name.
  const relay = config.http1Engine === 'relay';
  const calls: CallFactory = (selector, protocol, pick) => upstream.call(selector, protocol, pick);
  const relayOut = relay ? new H1Relay(forwarderOptions, { telemetry, dial, calls }) : undefined;
  const h1Out = relayOut ? (relayOut as unknown as H1Forwarder) : new H1Forwarder(forwarderOptions, { telemetry, dial, calls });
  const h2Counters = (direction: string): H2Counters => ({ protection: (kind) => metrics.h2Protection(direction, kind) });
  const h2Out = new H2Forwarder(
    { connectTimeoutMs: config.connectTimeoutMs, limits: h2Limits },
    { telemetry, dial, counters: h2Counters('outbound'), calls: (selector, protocol, pick) => upstream.call(selector, protocol, pick) },
  );
  // Inbound delivery to the application is local and plain.
  const h1In = relay ? (new H1Relay(forwarderOptions, { telemetry, dial: plainDialer }) as unknown as H1Forwarder) : new H1Forwarder(forwarderOptions, { telemetry, dial: plainDialer });
  const h2In = new H2Forwarder({ connectTimeoutMs: config.connectTimeoutMs, limits: h2Limits }, { telemetry, dial: plainDialer, counters: h2Counters('inbound') });
  const forwarders = [h1Out, h2Out, h1In, h2In];
  upstream.adopt('http1', relayOut ? relayOut.pool : h1Out.pool);
  upstream.adopt('http2', h2Out.pool);
  // The relay's outbound pool is pruned and counted by the upstream layer (node:http's Agent is not).
  const tcpOut = upstream.adopt('tcp', new TcpConnections());
  upstream.update(snapshot);
  router.update(snapshot);

  const outbound = new Outbound({
    snapshot: () => snapshot,
    clusters,
    tcpConnections: tcpOut,
    router,
    telemetry,
    dial,
    get self() {
      return self();
    },
    h1: h1Out,
    h2: h2Out,
    detectTimeoutMs: config.detectTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    tcpIdleTimeoutMs: config.tcpIdleTimeoutMs,
    opaquePorts: config.opaquePorts,
    fixedDestination: config.outboundTarget,
    onDetectTimeout: () => metrics.protocolDetectTimeout('outbound'),
  });
  const inbound = new Inbound({
    h1: h1In,
    h2: h2In,
    telemetry,
    tls,
    get self() {
      return self();
    },
    mtlsMode: (port) => policy.modeFor(port),
    authorization: () => authorization,
    rateLimits: () => rateLimits,
    serviceFor: (port) => inboundServices.get(port)?.service,
    podAt: (ip) => snapshot.podByIp(ip),
    declaredProtocol: (port) => inboundServices.get(port)?.protocol,
    detectTimeoutMs: config.detectTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    tcpIdleTimeoutMs: config.tcpIdleTimeoutMs,
    opaquePorts: config.opaquePorts,
    podIp: config.podIp,
    isOwnAddress: (address) => {
      const pod = snapshot.podByIp(address);
      return pod !== undefined && pod.namespace === config.podNamespace && pod.name === config.podName;
    },
    fixedDestination: config.inboundTarget,
    onDetectTimeout: () => metrics.protocolDetectTimeout('inbound'),
  });

  const captured: Array<Set<net.Socket>> = [];
  const servers: Server[] = [];
  const captureServer = (direction: 'outbound' | 'inbound'): Server => {
    const chain = direction === 'outbound' ? outbound : inbound;
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (s) => chain.handle(s));
    captured.push(trackConnections(server, () => metrics.loopConnection(loop, direction)));
    return server;
  };
  const bound = { outbound: 0, inbound: 0 };
  try {
    for (const direction of ['outbound', 'inbound'] as const) {
      const server = captureServer(direction);
      const at = { host: config[direction].host, port: options.ports?.[direction] ?? config[direction].port };
      bound[direction] = await listen(server, at, options.reusePort);
      servers.push(server);
    }
  } catch (error) {
    await Promise.all(servers.map(closeServer));
    for (const f of forwarders) f.close();
    upstream.close();
    throw error;
  }
  // ip6tables redirects IPv6 traffic to the same ports: listen on [::] too where the kernel has IPv6.
  if (config.outbound.host === '0.0.0.0') {
    for (const direction of ['outbound', 'inbound'] as const) {
      const v6 = captureServer(direction);
      const port = bound[direction];
      await new Promise<void>((resolve) => {
        v6.once('error', (error: NodeJS.ErrnoException) => {
          log.debug({ port, err: error.code }, 'no IPv6 capture listener');
          resolve();
        });
        v6.listen({ host: '::', port, ipv6Only: true, ...(options.reusePort ? { reusePort: true } : {}) }, () => {
          servers.push(v6);
          resolve();
        });
      });
    }
  }

  // malloc_trim covers the whole process: loop 0 (the main thread's, or the first worker) trims for all.
  const heapTrim: HeapTrim | undefined = config.heapTrim && loop === 0 ? startHeapTrim() : undefined;

  const openConnections = (): number => captured.reduce((n, set) => n + set.size, 0);
  const stopAccepting = (): void => {
    for (const server of servers) if (server.listening) server.close();
  };
  return {
    ports: bound,
    update(next) {
      snapshot = next;
      ownLabels = ownPod(next)?.labels;
      ownApp = appOf(ownLabels);
      ownVersion = versionOf(ownLabels);
      upstream.update(next);
      router.update(next);
      policy = inboundPolicyOf(next, config);
      authorization = authorizationOf(next, config);
      rateLimits = compileRateLimits(next);
      inboundServices = servicesOf(next, config.podIp);
    },
    clusters: () => upstream.stats(),
    openConnections,
    stopAccepting,
    async drain(durationMs) {
      stopAccepting();
      for (const f of forwarders) f.drain();
      const deadline = Date.now() + durationMs;
      while (openConnections() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      return { remaining: openConnections() };
    },
    async close() {
      heapTrim?.stop();
      for (const f of forwarders) f.close();
      upstream.close();
      const closing = servers.map(closeServer);
      for (const set of captured) for (const s of set) s.destroy();
      await Promise.all(closing);
    },
  };
}
