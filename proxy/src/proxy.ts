// Assembles one sidecar: the mesh source, the outbound and inbound chains, the HTTP and TCP
// forwarders they share, and the admin and health servers. Only `tsmesh proxy` (and tests,
// and the demo) construct it; it owns every listener it opens and closes them all.
import net, { type Server } from 'node:net';
import type http from 'node:http';
import { logger, MeshFileSource, setLogLevel, type MeshProvider, type MeshSnapshot } from '@tsmesh/common';
import { createAdminServer, createHealthServer } from './admin/servers.js';
import type { ListenAddress, ProxyConfig } from './config.js';
import { H1Forwarder } from './http/h1.js';
import { H2Forwarder } from './http/h2.js';
import { Inbound } from './inbound/inbound.js';
import { ServiceClusters } from './outbound/clusters.js';
import { Outbound } from './outbound/outbound.js';
import { OutboundRouter } from './outbound/router.js';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

const log = logger('proxy');

export interface RunningProxy {
  readonly config: ProxyConfig;
  /** The ports actually bound (useful when a test asks for port 0). */
  readonly ports: { outbound: number; inbound: number; admin: number; health: number };
  snapshot(): MeshSnapshot | undefined;
  close(): Promise<void>;
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

/** Until the telemetry package is wired in: the proxy's own registry with detection timeouts and process metrics. */
class ProxyRegistry {
  private readonly registry = new Registry();
  private readonly detectTimeouts = new Counter({
    name: 'tsmesh_protocol_detect_timeouts_total',
    help: 'Connections whose protocol was not detected before the timeout (treated as opaque TCP)',
    labelNames: ['direction'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  detectTimeout(direction: 'inbound' | 'outbound'): void {
    this.detectTimeouts.inc({ direction });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
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

export async function startProxy(config: ProxyConfig, provider?: MeshProvider): Promise<RunningProxy> {
  setLogLevel(config.logLevel);
  const source: MeshProvider | undefined = provider ?? (config.meshFile ? new MeshFileSource(config.meshFile) : undefined);
  if (!source) {
    throw new Error('no mesh source: pass --config FILE (the control-plane client is not available in this build)');
  }
  const first = await source.start();
  if (!first.ok) throw first.error;
  let snapshot: MeshSnapshot | undefined = first.value;
  if (!config.caAddr) log.warn('no TSMESH_CA_ADDR: running without workload identity (plaintext between sidecars)');

  const metrics = new ProxyRegistry();
  const clusters = new ServiceClusters();
  clusters.update(snapshot);
  const router = new OutboundRouter(clusters, config.podNamespace);
  router.update(snapshot);
  const h1Out = new H1Forwarder({ connectTimeoutMs: config.connectTimeoutMs, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: 60_000 });
  const h2Out = new H2Forwarder({ connectTimeoutMs: config.connectTimeoutMs, maxConcurrentStreams: 1000 });
  const h1In = new H1Forwarder({ connectTimeoutMs: config.connectTimeoutMs, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: 60_000 });
  const h2In = new H2Forwarder({ connectTimeoutMs: config.connectTimeoutMs, maxConcurrentStreams: 1000 });

  const unsubscribe = source.subscribe((next) => {
    snapshot = next;
    clusters.update(next);
    router.update(next);
    h2Out.pool.retain(clusters.endpointKeys());
    log.info({ version: next.version, services: next.services.length }, 'mesh updated');
  });

  const outbound = new Outbound({
    snapshot: () => snapshot,
    clusters,
    router,
    h1: h1Out,
    h2: h2Out,
    detectTimeoutMs: config.detectTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    opaquePorts: config.opaquePorts,
    fixedDestination: config.outboundTarget,
    onDetectTimeout: () => metrics.detectTimeout('outbound'),
  });
  const inbound = new Inbound({
    h1: h1In,
    h2: h2In,
    detectTimeoutMs: config.detectTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    opaquePorts: config.opaquePorts,
    podIp: config.podIp,
    fixedDestination: config.inboundTarget,
    onDetectTimeout: () => metrics.detectTimeout('inbound'),
  });

  const outboundServer = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (s) => outbound.handle(s));
  const inboundServer = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (s) => inbound.handle(s));
  const captured = [trackConnections(outboundServer), trackConnections(inboundServer)];
  const adminServer = createAdminServer({
    configDump: () => ({
      version: snapshot?.version,
      source: config.meshFile ? { kind: 'file', path: config.meshFile } : { kind: 'provider' },
      services: snapshot?.services,
      pods: snapshot?.pods,
    }),
    clusters: () => clusters.stats(),
    certs: () => ({ identity: null, reason: 'no workload identity in this build' }),
  });
  let listening = false;
  const healthServer = createHealthServer({
    notReadyReason: () => (!listening ? 'listeners not bound' : snapshot ? undefined : 'no mesh configuration'),
    metrics: () => metrics.render(),
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
    throw error;
  }
  listening = true;
  log.info({ ports, meshVersion: snapshot.version, pod: config.podName, namespace: config.podNamespace }, 'sidecar ready');

  return {
    config,
    ports,
    snapshot: () => snapshot,
    async close() {
      listening = false;
      unsubscribe();
      await source.close();
      for (const f of [h1Out, h2Out, h1In, h2In]) f.close();
      clusters.close();
      const closing = servers.map(closeServer);
      for (const set of captured) for (const s of set) s.destroy();
      adminServer.closeAllConnections();
      healthServer.closeAllConnections();
      await Promise.all(closing);
    },
  };
}
