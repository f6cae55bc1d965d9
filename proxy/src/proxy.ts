// Assembles one sidecar: the mesh source, the workload identity, telemetry, the outbound and
// inbound chains and the forwarders they share, and the admin and health servers. Only
// `tsmesh proxy` (and tests, and the demo) construct it; it owns every listener it opens.
import net, { type Server } from 'node:net';
import type http from 'node:http';
import { logger, MeshFileSource, ok, setLogLevel, type MeshProvider, type MeshSnapshot } from '@tsmesh/common';
import { createAdminServer, createHealthServer } from './admin/servers.js';
import type { ListenAddress, ProxyConfig } from './config.js';
import { H1Forwarder } from './http/h1.js';
import type { H2Counters } from './h2/limits.js';
import { H2Forwarder } from './http/h2.js';
import { peerIdentityFromCertificate, spiffeIdFor, WorkloadIdentityManager, identityOptionsFromConfig } from './identity/index.js';
import { Inbound, mergeDeclared, type InboundPort } from './inbound/inbound.js';
import { ControlPlaneSource } from './discovery/index.js';
import { ServiceClusters } from './outbound/clusters.js';
import { Outbound } from './outbound/outbound.js';
import { OutboundRouter } from './outbound/router.js';
import { compileInboundPolicy, workloadOf, type InboundMtlsPolicy } from './policy/index.js';
import { endpointInfo } from './outbound/endpoint-info.js';
import { AccessLog, ProxyMetrics, ProxyTracer, RequestTelemetry, startTelemetrySdk, telemetryConfigFromEnv, workloadFromPodName, type PeerInfo, type TelemetrySdk } from './telemetry/index.js';
import type { MeshTlsSource } from './tls/mesh-tls.js';
import { dialerFor, plainDialer } from './upstream/dial.js';

const log = logger('proxy');

/** The namespace whose selector-less PeerAuthentication is mesh-wide (SPEC: control-plane namespace). */
const ROOT_NAMESPACE = 'tsmesh-system';

export interface RunningProxy {
  readonly config: ProxyConfig;
  /** The ports actually bound (useful when a test asks for port 0). */
  readonly ports: { outbound: number; inbound: number; admin: number; health: number };
  snapshot(): MeshSnapshot | undefined;
  /** The workload's SPIFFE ID once it holds a certificate; undefined without a CA. */
  identity(): string | undefined;
  /**
   * Graceful drain (SIGTERM): not ready at once, listeners closed (new connections refused), HTTP/2
   * clients get GOAWAY and HTTP/1.1 responses `Connection: close`; resolves when every captured
   * connection has ended or after `durationMs`, whichever is first. `close()` then ends the rest.
   */
  drain(durationMs: number): Promise<{ remaining: number }>;
  close(): Promise<void>;
}

export interface StartOptions {
  /** A mesh source other than `--config` (the control-plane client, tests). */
  readonly provider?: MeshProvider;
  /** Environment for telemetry settings (TSMESH_TRACING...); default process.env. */
  readonly env?: Record<string, string | undefined>;
}

function listen(server: Server | http.Server, at: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : at.port);
    });
  });
}

/** Tracks a capture listener's sockets so close() can end them instead of waiting. */
function trackConnections(server: Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return sockets;
}

function closeServer(server: Server | http.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startProxy(config: ProxyConfig, options: StartOptions = {}): Promise<RunningProxy> {
  setLogLevel(config.logLevel);
  const env = options.env ?? process.env;
  if (!options.provider && !config.meshFile && !(config.controlAddr && config.caAddr)) {
    throw new Error('no mesh source: pass --config FILE, or set TSMESH_CONTROL_ADDR and TSMESH_CA_ADDR (the control plane is reached over mTLS)');
  }

  // Identity: with a CA the sidecar is not ready until it holds a certificate.
  const identityOptions = identityOptionsFromConfig(config);
  if (!identityOptions.ok) throw identityOptions.error;
  const identity = identityOptions.value ? new WorkloadIdentityManager(identityOptions.value) : undefined;
  if (identity) {
    const first = await identity.start();
    if (!first.ok) log.warn({ err: first.error.message }, 'no workload certificate yet; retrying in the background (not ready)');
  } else {
    log.warn('no TSMESH_CA_ADDR: running without workload identity (plaintext between sidecars)');
  }
  const tls: MeshTlsSource | undefined = identity && {
    trustDomain: config.trustDomain,
    identity: () => identity.current()?.spiffeId,
    clientContext: () => identity.clientContext(),
    serverContext: () => identity.serverContext(),
    peerIdentity: (cert) => {
      const peer = peerIdentityFromCertificate(cert, config.trustDomain);
      return peer.ok ? ok(peer.value.spiffeId) : peer;
    },
  };

  // Telemetry: metrics always; spans when TSMESH_TRACING selects an exporter.
  const telemetryConfig = telemetryConfigFromEnv(env, (message) => log.warn(message));
  const workload = config.podName ? workloadFromPodName(config.podName) : 'unknown';
  const sdk: TelemetrySdk = await startTelemetrySdk({
    tracing: telemetryConfig.tracing,
    service: { name: workload, namespace: config.podNamespace, podName: config.podName },
  });
  const metrics = new ProxyMetrics();
  const telemetry = new RequestTelemetry({ metrics, tracer: new ProxyTracer({ sampleRate: telemetryConfig.tracing.sampleRate }), accessLog: new AccessLog(undefined, { enabled: telemetryConfig.accessLog }) });
  const self = (): PeerInfo => ({
    workload,
    namespace: config.podNamespace,
    identity: identity?.current()?.spiffeId ?? spiffeIdFor(config.trustDomain, config.podNamespace, config.serviceAccount),
  });
  const stopExpiry = identity?.onChange(() => {
    const current = identity.current();
    if (current) metrics.setCertExpiry(current.expiresAt, current.spiffeId);
  });
  const initial = identity?.current();
  if (initial) metrics.setCertExpiry(initial.expiresAt, initial.spiffeId);

  // The mesh: a file (--config), the control plane (over mTLS with this workload's certificate), or a given provider.
  const control =
    !options.provider && !config.meshFile && config.controlAddr && identity
      ? new ControlPlaneSource({
          controlAddr: config.controlAddr,
          tlsSource: identity,
          podName: config.podName,
          serverIdentity: config.controlIdentity,
          decode: { maxDepth: config.meshLimits.maxDepth },
        })
      : undefined;
  const source: MeshProvider = options.provider ?? control ?? new MeshFileSource(config.meshFile ?? '', { limits: config.meshLimits });
  const first = await source.start();
  if (!first.ok) {
    identity?.stop();
    await sdk.shutdown();
    throw first.error;
  }
  let snapshot: MeshSnapshot = first.value;

  const clusters = new ServiceClusters(endpointInfo(config.trustDomain, ROOT_NAMESPACE));
  const router = new OutboundRouter(clusters, config.podNamespace);
  const policyFor = (s: MeshSnapshot): InboundMtlsPolicy => {
    const compiled = compileInboundPolicy(s, workloadOf(s, { namespace: config.podNamespace, podName: config.podName, podIp: config.podIp }), ROOT_NAMESPACE);
    for (const problem of compiled.problems) log.warn({ problem }, 'PeerAuthentication left out');
    return compiled;
  };
  let policy = policyFor(snapshot);
  // Which Service each of this pod's ports serves, so inbound telemetry can name it.
  // With the protocol their ports declare: an HTTP port is always parsed as HTTP inbound.
  const servicesOf = (s: MeshSnapshot): Map<number, InboundPort> => {
    const map = new Map<number, InboundPort>();
    if (!config.podIp) return map;
    for (const service of s.services) {
      for (const port of service.ports) {
        for (const e of s.endpoints(service, port)) {
          if (e.address === config.podIp) map.set(e.port, { service: `${service.name}.${service.namespace}`, protocol: mergeDeclared(map.get(e.port)?.protocol, port.declaredProtocol) });
        }
      }
    }
    return map;
  };
  let inboundServices = servicesOf(snapshot);
  clusters.update(snapshot);
  router.update(snapshot);

  const dial = dialerFor(tls);
  const forwarderOptions = { connectTimeoutMs: config.connectTimeoutMs, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: 60_000 };
  const h1Out = new H1Forwarder(forwarderOptions, { telemetry, dial });
  const h2Counters = (direction: string): H2Counters => ({ protection: (kind) => telemetry.metrics.h2Protection(direction, kind) });
  const h2Out = new H2Forwarder({ connectTimeoutMs: config.connectTimeoutMs }, { telemetry, dial, counters: h2Counters('outbound') });
  // Inbound delivery to the application is local and plain.
  const h1In = new H1Forwarder(forwarderOptions, { telemetry, dial: plainDialer });
  const h2In = new H2Forwarder({ connectTimeoutMs: config.connectTimeoutMs }, { telemetry, dial: plainDialer, counters: h2Counters('inbound') });

  const unsubscribe = source.subscribe((next) => {
    snapshot = next;
    clusters.update(next);
    router.update(next);
    policy = policyFor(next);
    inboundServices = servicesOf(next);
    h2Out.pool.retain(clusters.endpointKeys());
    log.info({ version: next.version, services: next.services.length }, 'mesh updated');
  });

  const outbound = new Outbound({
    snapshot: () => snapshot,
    clusters,
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
    serviceFor: (port) => inboundServices.get(port)?.service,
    declaredProtocol: (port) => inboundServices.get(port)?.protocol,
    detectTimeoutMs: config.detectTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    opaquePorts: config.opaquePorts,
    podIp: config.podIp,
    isOwnAddress: (address) => {
      const pod = snapshot.podByIp(address);
      return pod !== undefined && pod.namespace === config.podNamespace && pod.name === config.podName;
    },
    fixedDestination: config.inboundTarget,
    onDetectTimeout: () => metrics.protocolDetectTimeout('inbound'),
  });

  const outboundServer = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (s) => outbound.handle(s));
  const inboundServer = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (s) => inbound.handle(s));
  const captured = [trackConnections(outboundServer), trackConnections(inboundServer)];
  const adminServer = createAdminServer({
    configDump: () => ({
      version: snapshot.version,
      source: config.meshFile ? { kind: 'file', path: config.meshFile } : control ? { kind: 'control-plane', address: config.controlAddr, ...control.status() } : { kind: 'provider' },
      identity: identity?.current()?.spiffeId ?? null,
      inboundMtls: { defaultMode: policy.defaultMode, portModes: Object.fromEntries(policy.portModes ?? []) },
      services: snapshot.services,
      pods: snapshot.pods,
      others: snapshot.others,
    }),
    clusters: () => clusters.stats(),
    certs: () => (identity ? identity.describe() : { identity: null, reason: 'no TSMESH_CA_ADDR: running without workload identity' }),
  });
  let listening = false;
  let draining = false;
  const healthServer = createHealthServer({
    notReadyReason: () => {
      if (draining) return 'draining';
      if (!listening) return 'listeners not bound';
      if (identity && !identity.current()) return `no workload certificate yet${identity.lastError() ? `: ${identity.lastError()?.message}` : ''}`;
      return undefined;
    },
    metrics: async () => ({ contentType: metrics.contentType, body: await metrics.render() }),
    appProbes: config.appProbes,
    appHost: config.podIp ?? '127.0.0.1',
  });

  const servers: Array<Server | http.Server> = [];
  const bind = async (server: Server | http.Server, at: ListenAddress): Promise<number> => {
    const port = await listen(server, at);
    servers.push(server);
    return port;
  };
  let ports: RunningProxy['ports'];
  try {
    ports = {
      outbound: await bind(outboundServer, config.outbound),
      inbound: await bind(inboundServer, config.inbound),
      admin: await bind(adminServer, config.admin),
      health: await bind(healthServer, config.health),
    };
  } catch (error) {
    await Promise.all(servers.map(closeServer));
    await source.close();
    identity?.stop();
    await sdk.shutdown();
    throw error;
  }
  // ip6tables redirects IPv6 traffic to the same ports: listen on [::] too where the kernel has IPv6.
  if (config.outbound.host === '0.0.0.0') {
    for (const [handler, port] of [[(sock: net.Socket) => outbound.handle(sock), ports.outbound], [(sock: net.Socket) => inbound.handle(sock), ports.inbound]] as const) {
      const v6 = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, handler);
      captured.push(trackConnections(v6));
      await new Promise<void>((resolve) => {
        v6.once('error', (error: NodeJS.ErrnoException) => {
          log.debug({ port, err: error.code }, 'no IPv6 capture listener');
          resolve();
        });
        v6.listen({ host: '::', port, ipv6Only: true }, () => {
          servers.push(v6);
          resolve();
        });
      });
    }
  }
  listening = true;
  const announce = (): void =>
    log.info({ ports, meshVersion: snapshot.version, pod: config.podName, namespace: config.podNamespace, identity: identity?.current()?.spiffeId }, 'sidecar ready');
  if (!identity || identity.current()) announce();
  else identity.ready().then(announce, () => undefined);

  return {
    config,
    ports,
    snapshot: () => snapshot,
    identity: () => identity?.current()?.spiffeId,
    async drain(durationMs) {
      draining = true;
      log.info({ drainMs: durationMs }, 'draining: not ready, no new connections, in-flight requests finish');
      for (const server of [outboundServer, inboundServer, ...servers.filter((s) => s !== outboundServer && s !== inboundServer && s !== adminServer && s !== healthServer)]) {
        if (server.listening) server.close();
      }
      for (const f of [h1Out, h2Out, h1In, h2In]) f.drain();
      const open = (): number => captured.reduce((n, set) => n + set.size, 0);
      const deadline = Date.now() + durationMs;
      while (open() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      const remaining = open();
      log.info({ remaining }, remaining === 0 ? 'drained' : 'drain period over: closing the connections left');
      return { remaining };
    },
    async close() {
      listening = false;
      unsubscribe();
      stopExpiry?.();
      await source.close();
      for (const f of [h1Out, h2Out, h1In, h2In]) f.close();
      clusters.close();
      const closing = servers.map(closeServer);
      for (const set of captured) for (const s of set) s.destroy();
      adminServer.closeAllConnections();
      healthServer.closeAllConnections();
      await Promise.all(closing);
      identity?.stop();
      await sdk.shutdown();
    },
  };
}
