// Assembles `tsmesh gateway`: the mesh file source, an optional mesh identity, and the sidecar's
// outbound data path (clusters, router, HTTP forwarders, opaque TCP relay, upstream pools,
// telemetry) behind listener ports taken from Gateway objects instead of iptables capture. Every snapshot recompiles the
// Gateways (common/src/routing/gateway.ts) and re-syncs the ports: new ports are bound, gone ones
// closed, and certificates and routes of kept ones replaced in place.
import type http from 'node:http';
import type { Socket } from 'node:net';
import { Counter } from 'prom-client';
import { logger, MeshFileSource, pickBackend, redactSecret, setLogLevel, type CompiledGateways, type GatewayPort, type MeshService, type MeshSnapshot, type ServicePort, type TlsDestination } from '@tsmesh/common';
import { createAdminServer, createHealthServer } from '../admin/servers.js';
import { BalancedCluster } from '../balance/index.js';
import { H1Relay } from '../h1/relay.js';
import type { H1Forwarder } from '../http/h1.js';
import { H2Forwarder } from '../http/h2.js';
import { startIdentity } from '../identity/startup.js';
import { spiffeIdFor } from '../identity/spiffe.js';
import type { ClusterEntry } from '../outbound/clusters.js';
import { endpointInfo } from '../outbound/endpoint-info.js';
import { OutboundRouter } from '../outbound/router.js';
import { DEFAULT_ROOT_NAMESPACE } from '../policy/index.js';
import { AccessLog, ProxyMetrics, ProxyTracer, RequestTelemetry, telemetryConfigFromEnv, type PeerInfo } from '../telemetry/index.js';
import { dialerFor } from '../upstream/dial.js';
import { metricsRecorder } from '../upstream/call.js';
import { UpstreamManager } from '../upstream/manager.js';
import { clusterSelector, type UpstreamEndpoint } from '../upstream/selector.js';
import type { GatewayConfig } from './config.js';
import { forwardTcp } from '../tcp/forward.js';
import { TcpConnections } from '../tcp/connections.js';
import { ListenerPort } from './listeners.js';
import { PassthroughPort, type PassthroughRefusal } from './passthrough.js';
import { GatewayTables } from './tables.js';

const log = logger('gateway');

export interface RunningGateway {
  readonly ports: { readonly admin: number; readonly health: number };
  /** Listener ports bound now. */
  listening(): number[];
  snapshot(): MeshSnapshot;
  compiled(): CompiledGateways | undefined;
  identity(): string | undefined;
  /** Not ready, listeners closed, in-flight requests get up to `durationMs`. */
  drain(durationMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface GatewayStartOptions {
  readonly env?: Record<string, string | undefined>;
}

/** A Service-like stand-in for one listener port, which the router names in logs and redirects. */
function listenerEntry(port: GatewayPort, snapshot: MeshSnapshot): ClusterEntry {
  const [namespace, name] = (port.listeners[0]?.gateway ?? 'default/gateway').split('/') as [string, string];
  const key = `gateway:${namespace}/${name}:${port.port}`;
  const servicePort: ServicePort = { name: '', port: port.port, targetPort: port.port, protocol: 'TCP', declaredProtocol: 'http' };
  const service: MeshService = { namespace, name, clusterIPs: [], headless: false, ports: [servicePort], selector: {}, annotations: {}, loadBalancer: 'round-robin' };
  const { cluster } = BalancedCluster.create<UpstreamEndpoint>({ name: key, loadBalancer: 'round-robin' });
  return { key, service, port: servicePort, cluster, selector: clusterSelector(key, cluster), policy: snapshot.trafficPolicyFor(service, servicePort) };
}

/** The compiled Gateways as /config_dump shows them: certificates by Secret and names, never their keys. */
function describeCompiled(compiled: CompiledGateways | undefined): unknown {
  if (compiled === undefined) return null;
  return {
    gateways: compiled.gateways,
    listeners: compiled.listeners.map((l) => ({ ...l, certificates: l.certificates.map((c) => ({ secret: c.secret, dnsNames: c.dnsNames })) })),
    routes: compiled.routeStatuses,
    warnings: compiled.warnings.map((w) => w.message),
    problems: compiled.problems,
  };
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

export async function startGateway(config: GatewayConfig, options: GatewayStartOptions = {}): Promise<RunningGateway> {
  const proxyConfig = config.proxy;
  setLogLevel(proxyConfig.logLevel);
  const env = options.env ?? process.env;

  const { identity, tls } = await startIdentity(proxyConfig, log, 'no TSMESH_CA_ADDR: running without mesh identity (plaintext to every backend)');

  const source = new MeshFileSource(proxyConfig.meshFile, { limits: proxyConfig.meshLimits });
  const first = await source.start();
  if (!first.ok) {
    identity?.stop();
    throw first.error;
  }
  let snapshot = first.value;

  const telemetryConfig = telemetryConfigFromEnv(env, (message) => log.warn(message));
  const metrics = new ProxyMetrics();
  const telemetry = new RequestTelemetry({ metrics, tracer: new ProxyTracer({ sampleRate: telemetryConfig.tracing.sampleRate }), accessLog: new AccessLog(undefined, { enabled: telemetryConfig.accessLog }) });
  const upstream = new UpstreamManager({ infoOf: endpointInfo(proxyConfig.trustDomain, DEFAULT_ROOT_NAMESPACE), recorder: metricsRecorder(metrics) });
  const tables = new GatewayTables({ only: config.gateway });
  const router = new OutboundRouter(upstream.clusters, proxyConfig.podNamespace, tables);
  const dial = dialerFor(tls);
  const calls = (selector: Parameters<UpstreamManager['call']>[0], protocol: Parameters<UpstreamManager['call']>[1], pick: Parameters<UpstreamManager['call']>[2]) => upstream.call(selector, protocol, pick);
  const h1 = new H1Relay({ connectTimeoutMs: proxyConfig.connectTimeoutMs, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: proxyConfig.httpIdleTimeoutMs }, { telemetry, dial, calls });
  const h2 = new H2Forwarder({ connectTimeoutMs: proxyConfig.connectTimeoutMs, limits: { idleTimeoutMs: proxyConfig.httpIdleTimeoutMs } }, { telemetry, dial, counters: { protection: (kind) => metrics.h2Protection('gateway', kind) }, calls });
  upstream.adopt('http1', h1.pool);
  upstream.adopt('http2', h2.pool);
  const handlers = { accept: (socket: import('node:net').Socket, protocol: 'http1' | 'http2') => (protocol === 'http2' ? h2.accept(socket) : (h1 as unknown as H1Forwarder).accept(socket)) };

  const ownId = spiffeIdFor(proxyConfig.trustDomain, proxyConfig.podNamespace, proxyConfig.serviceAccount);
  const self = (): PeerInfo => ({ workload: proxyConfig.podName ?? 'tsmesh-gateway', namespace: proxyConfig.podNamespace, identity: tls?.identity() ?? ownId });
  const tcpConnections = upstream.adopt('tcp', new TcpConnections());
  const refusals = new Counter({
    name: 'tsmesh_gateway_tls_refused_total',
    help: 'Connections to TLS Passthrough listeners closed before they were relayed, by port and reason (malformed, too_large, timeout, truncated, no_server_name, unknown_server_name, backend_refused, ...).',
    labelNames: ['port', 'reason'],
    registers: [metrics.registry],
  });
  const refused = (port: number, reason: PassthroughRefusal | 'backend_refused'): void => {
    refusals.inc({ port: String(port), reason });
    refusedCounts.set(`${port}/${reason}`, (refusedCounts.get(`${port}/${reason}`) ?? 0) + 1);
  };
  const refusedCounts = new Map<string, number>();
  /** Opaque TCP to a backend of the TLSRoute: the sidecar's relay (mTLS to meshed backends). */
  const relay = (socket: Socket, port: number, destination: TlsDestination): void => {
    const backend = pickBackend(destination.backends);
    const entry = backend && !backend.problem && backend.port !== undefined ? upstream.clusters.get(`${backend.namespace}/${backend.name}:${backend.port}`) : undefined;
    if (entry === undefined) {
      // An invalid backendRef keeps its weight: its share of connections is refused (as HTTP's 500).
      log.debug({ port, route: `${destination.route.namespace}/${destination.route.name}`, backend: backend && `${backend.namespace}/${backend.name}`, problem: backend?.problem }, 'passthrough backend refused');
      refused(port, 'backend_refused');
      socket.destroy();
      return;
    }
    forwardTcp(socket, entry.selector, {
      connections: tcpConnections,
      connectTimeoutMs: proxyConfig.connectTimeoutMs,
      dial,
      telemetry: { telemetry, reporter: 'source', source: self(), destination: { service: `${entry.service.name}.${entry.service.namespace}`, namespace: entry.service.namespace }, flags: [] },
    });
  };
  const listeners = new Map<number, ListenerPort | PassthroughPort>();
  let accepting = true;

  const syncListeners = async (s: MeshSnapshot): Promise<void> => {
    const compiled = tables.current();
    const wanted = new Map((compiled?.ports ?? []).map((p) => [p.port, p]));
    for (const [port, listener] of listeners) {
      const next = wanted.get(port);
      if (next !== undefined && (next.protocol === 'TLS' || next.protocol === 'TCP') && listener instanceof PassthroughPort && next.protocol === listener.protocol) listener.port = next;
      else if (next !== undefined && (next.protocol === 'HTTP' || next.protocol === 'HTTPS') && listener instanceof ListenerPort && next.protocol === listener.protocol) listener.port = next;
      else {
        listeners.delete(port);
        await listener.close();
        log.info({ port }, 'listener port closed');
      }
    }
    if (!accepting) return;
    for (const [port, gatewayPort] of wanted) {
      if (listeners.has(port)) continue;
      if (gatewayPort.protocol === 'TLS' || gatewayPort.protocol === 'TCP') {
        const passthrough = new PassthroughPort(gatewayPort, { relay: (socket, destination) => relay(socket, port, destination), refused });
        try {
          await passthrough.listen(proxyConfig.health.host);
          listeners.set(port, passthrough);
          log.info({ port, protocol: gatewayPort.protocol, listeners: gatewayPort.listeners.map((l) => `${l.gateway}/${l.name}`) }, 'listener port bound');
        } catch (error) {
          log.error({ port, err: (error as Error).message }, 'cannot bind a listener port (kept trying on the next mesh change)');
        }
        continue;
      }
      const entry = listenerEntry(gatewayPort, s);
      const context = {
        direction: 'outbound' as const,
        route: router.routerFor(entry),
        get source() {
          return self();
        },
        destination: { service: `${entry.service.name}.${entry.service.namespace}`, namespace: entry.service.namespace },
        mtls: false,
      };
      const listener = new ListenerPort(gatewayPort, context, handlers, proxyConfig.detectTimeoutMs);
      try {
        await listener.listen(proxyConfig.health.host);
        listeners.set(port, listener);
        log.info({ port, protocol: gatewayPort.protocol, listeners: gatewayPort.listeners.map((l) => `${l.gateway}/${l.name}`) }, 'listener port bound');
      } catch (error) {
        log.error({ port, err: (error as Error).message }, 'cannot bind a listener port (kept trying on the next mesh change)');
      }
    }
  };

  const report = (compiled: CompiledGateways | undefined): void => {
    if (compiled === undefined) return;
    for (const problem of compiled.problems) log.warn({ problem }, 'gateway problem');
    for (const status of compiled.routeStatuses) {
      for (const parent of status.parents) {
        for (const c of parent.conditions) {
          if (c.status === 'False') log.warn({ route: `${status.route.kind} ${status.route.namespace}/${status.route.name}`, parent: `${parent.parentRef.namespace}/${parent.parentRef.name}`, condition: c.type, reason: c.reason }, c.message);
        }
      }
    }
    for (const l of compiled.listeners) {
      for (const c of l.conditions) if (c.status === 'False') log.warn({ listener: `${l.gateway}/${l.name}`, condition: c.type, reason: c.reason }, c.message);
    }
  };

  const apply = async (s: MeshSnapshot): Promise<void> => {
    upstream.update(s);
    router.update(s);
    report(tables.current());
    await syncListeners(s);
  };
  let applying = apply(snapshot);
  await applying;
  if ((tables.current()?.gateways.length ?? 0) === 0) log.warn({ gateway: config.gateway }, 'no Gateway of class controller tsmesh.io/gateway-controller in the mesh file yet: nothing to listen on');
  const unsubscribe = source.subscribe((next) => {
    snapshot = next;
    applying = applying.then(() => apply(next)).catch((error: unknown) => log.error({ err: (error as Error).message }, 'applying a mesh change failed'));
    log.info({ version: next.version }, 'mesh updated');
  });

  let draining = false;
  const adminServer = createAdminServer({
    configDump: () => ({
      version: snapshot.version,
      source: { kind: 'file', path: proxyConfig.meshFile },
      identity: identity?.current()?.spiffeId ?? null,
      gateway: describeCompiled(tables.current()),
      // Passthrough connections closed before the relay, by `port/reason`.
      passthroughRefused: Object.fromEntries(refusedCounts),
      services: snapshot.services,
      // Secrets (the listeners' TLS keys) are never shown.
      others: snapshot.others.map(redactSecret),
    }),
    clusters: () => upstream.clusters.stats(),
    certs: () => (identity ? identity.describe() : { identity: null, reason: 'no TSMESH_CA_ADDR: running without mesh identity' }),
  });
  const healthServer = createHealthServer({
    notReadyReason: () => {
      if (draining) return 'draining';
      if (identity && !identity.current()) return 'no workload certificate yet';
      if (listeners.size === 0) return 'no listener port bound';
      return undefined;
    },
    metrics: async () => ({ contentType: metrics.contentType, body: await metrics.render() }),
    appProbes: {},
    appHost: '127.0.0.1',
  });
  const ports = {
    admin: await listen(adminServer, proxyConfig.admin.host, proxyConfig.admin.port),
    health: await listen(healthServer, proxyConfig.health.host, proxyConfig.health.port),
  };
  log.info({ ...ports, listeners: [...listeners.keys()], gateways: tables.current()?.gateways, identity: identity?.current()?.spiffeId }, 'gateway ready');

  const closeAll = async (): Promise<void> => {
    unsubscribe();
    await source.close();
    await applying;
    await Promise.all([...listeners.values()].map((l) => l.close()));
    listeners.clear();
    h1.close();
    h2.close();
    upstream.close();
    for (const server of [adminServer, healthServer]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    identity?.stop();
  };

  return {
    ports,
    listening: () => [...listeners.keys()],
    snapshot: () => snapshot,
    compiled: () => tables.current(),
    identity: () => identity?.current()?.spiffeId,
    async drain(durationMs) {
      accepting = false;
      draining = true;
      for (const l of listeners.values()) l.stopAccepting();
      h1.drain();
      h2.drain();
      const until = Date.now() + durationMs;
      while (Date.now() < until && [...listeners.values()].some((l) => l.connections > 0)) await new Promise((r) => setTimeout(r, 50));
    },
    close: closeAll,
  };
}
