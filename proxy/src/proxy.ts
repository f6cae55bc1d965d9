// Assembles one sidecar. The main thread holds the control side: the mesh source (file or control
// plane), the workload identity, telemetry, inbound policy and the admin and health servers. The
// data side (capture listeners, clusters, routes, forwarders, pools) runs on the main thread with
// --concurrency 1, or in one worker thread per event loop with more (loops/). Only `tsmesh proxy`
// (and tests, and the demo) construct it; it owns every listener and thread it starts.
import type http from 'node:http';
import { logger, MeshFileSource, redactSecret, setLogLevel, type MeshProvider, type MeshSnapshot } from '@tsmesh/common';
import { createAdminServer, createHealthServer } from './admin/servers.js';
import type { ListenAddress, ProxyConfig } from './config.js';
import { startIdentity } from './identity/startup.js';
import { sharedMaterial } from './identity/shared.js';
import { ControlPlaneSource } from './control-client/index.js';
import { startDataPlane, type DataPlane } from './loops/data-plane.js';
import { mergeMetrics } from './loops/merge.js';
import { LoopPool } from './loops/pool.js';
import { compileWorkloadAuthorization, compileWorkloadPolicy, DEFAULT_ROOT_NAMESPACE, workloadOf, type InboundMtlsPolicy, type WorkloadAuthorization } from './policy/index.js';
import { AccessLog, ProxyMetrics, ProxyTracer, RequestTelemetry, startTelemetrySdk, telemetryConfigFromEnv, workloadFromPodName, type TelemetrySdk } from './telemetry/index.js';

const log = logger('proxy');

export interface RunningProxy {
  readonly config: ProxyConfig;
  /** The ports actually bound (useful when a test asks for port 0). */
  readonly ports: { outbound: number; inbound: number; admin: number; health: number };
  /** Event loops of the data path (config.concurrency). */
  readonly loops: number;
  snapshot(): MeshSnapshot | undefined;
  /** The workload's SPIFFE ID once it holds a certificate; undefined without a CA. */
  identity(): string | undefined;
  /**
   * Graceful drain (SIGTERM): not ready at once, listeners closed (new connections refused), HTTP/2
   * clients get GOAWAY and HTTP/1.1 responses `Connection: close`; resolves when every captured
   * connection has ended or after `durationMs`, whichever is first. `close()` then ends the rest.
   * With several loops, all of them drain at once and `remaining` counts over all.
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

function listen(server: http.Server, at: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : at.port);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The data side as the control side drives it: one data plane in this thread, or a pool of loops. */
interface DataSide {
  readonly ports: { readonly outbound: number; readonly inbound: number };
  /** Loops listening now. */
  listening(): number;
  update(snapshot: MeshSnapshot): void;
  /** Metrics views to merge with this thread's registry; none when the data plane shares it. */
  metrics(): Promise<Awaited<ReturnType<LoopPool['metrics']>>>;
  clusters(): unknown;
  /** Every loop's listeners closed: new connections are refused from then on. */
  stopAccepting(): Promise<void>;
  drain(durationMs: number): Promise<{ remaining: number }>;
  close(): Promise<void>;
}

function inThread(plane: DataPlane): DataSide {
  let listening = 1;
  return {
    ports: plane.ports,
    listening: () => listening,
    update: (snapshot) => plane.update(snapshot),
    metrics: () => Promise.resolve([]),
    clusters: () => plane.clusters(),
    stopAccepting: () => {
      plane.stopAccepting();
      return Promise.resolve();
    },
    drain: (durationMs) => plane.drain(durationMs),
    close: () => {
      listening = 0;
      return plane.close();
    },
  };
}

export async function startProxy(config: ProxyConfig, options: StartOptions = {}): Promise<RunningProxy> {
  setLogLevel(config.logLevel);
  const env = options.env ?? process.env;
  if (!options.provider && !config.meshFile && !(config.controlAddr && config.caAddr)) {
    throw new Error('no mesh source: pass --config FILE, or set TSMESH_CONTROL_ADDR and TSMESH_CA_ADDR (the control plane is reached over mTLS)');
  }

  // Identity: with a CA the sidecar is not ready until it holds a certificate.
  const { identity, tls } = await startIdentity(config, log, 'no TSMESH_CA_ADDR: running without workload identity (plaintext between sidecars)');

  // Telemetry: metrics always; spans when TSMESH_TRACING selects an exporter, from the thread that
  // makes them (this one with one loop, each loop's worker with several).
  const telemetryConfig = telemetryConfigFromEnv(env, (message) => log.warn(message));
  const loops = config.concurrency;
  const workload = config.podName ? workloadFromPodName(config.podName) : 'unknown';
  const sdk: TelemetrySdk = await startTelemetrySdk({
    tracing: loops === 1 ? telemetryConfig.tracing : { exporter: 'none', sampleRate: 0 },
    service: { name: workload, namespace: config.podNamespace, podName: config.podName },
  });
  const metrics = new ProxyMetrics();
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
    stopExpiry?.();
    identity?.stop();
    await sdk.shutdown();
    throw first.error;
  }
  let snapshot: MeshSnapshot = first.value;
  const policyFor = (s: MeshSnapshot): InboundMtlsPolicy => {
    const compiled = compileWorkloadPolicy(s, { namespace: config.podNamespace, podName: config.podName, podIp: config.podIp }, DEFAULT_ROOT_NAMESPACE);
    for (const problem of compiled.problems) log.warn({ problem }, 'PeerAuthentication left out');
    return compiled;
  };
  let policy = policyFor(snapshot);
  // The data side compiles its own (per loop); this one answers /authz/check and logs what was left out.
  const authorizationFor = (s: MeshSnapshot): WorkloadAuthorization => {
    const workload = workloadOf(s, { namespace: config.podNamespace, podName: config.podName, podIp: config.podIp });
    const compiled = compileWorkloadAuthorization(s, workload, DEFAULT_ROOT_NAMESPACE);
    for (const problem of compiled.problems) log.warn({ problem }, 'AuthorizationPolicy left out');
    return compiled;
  };
  let authorization = authorizationFor(snapshot);
  let data: DataSide | undefined;
  const unsubscribe = source.subscribe((next) => {
    snapshot = next;
    policy = policyFor(next);
    authorization = authorizationFor(next);
    data?.update(next);
    log.info({ version: next.version, services: next.services.length }, 'mesh updated');
  });

  // The data side: in this thread, or one worker thread per loop on the same ports.
  let logLevelChanged: ((level: string) => void) | undefined;
  let stopShare: (() => void) | undefined;
  try {
    if (loops === 1) {
      const telemetry = new RequestTelemetry({ metrics, tracer: new ProxyTracer({ sampleRate: telemetryConfig.tracing.sampleRate }), accessLog: new AccessLog(undefined, { enabled: telemetryConfig.accessLog }) });
      const started = snapshot;
      data = inThread(await startDataPlane({ config, loop: 0, snapshot: started, tls, telemetry, reusePort: false }));
      // A mesh that changed while the listeners were bound.
      if (snapshot !== started) data.update(snapshot);
    } else {
      const started = snapshot;
      const material = identity?.current();
      const pool = await LoopPool.start({
        config,
        loops,
        snapshot: started,
        identity: identity !== undefined,
        material: material === undefined ? undefined : sharedMaterial(material),
        tracing: telemetryConfig.tracing,
        accessLog: telemetryConfig.accessLog,
        logLevel: config.logLevel,
        onRestart: (loop) => metrics.loopRestart(loop),
      });
      // What changed while the loops started, then every later change.
      if (snapshot !== started) pool.update(snapshot);
      const now = identity?.current();
      if (now !== undefined && now !== material) pool.identityChanged(sharedMaterial(now));
      stopShare = identity?.onChange((renewed) => pool.identityChanged(sharedMaterial(renewed)));
      data = {
        ports: pool.ports,
        listening: () => pool.listening(),
        update: (s) => pool.update(s),
        metrics: () => pool.metrics(),
        clusters: () => pool.clusters(),
        stopAccepting: () => pool.stopAccepting(),
        drain: (durationMs) => pool.drain(durationMs),
        close: () => pool.close(),
      };
      logLevelChanged = (level) => pool.logLevelChanged(level);
    }
  } catch (error) {
    unsubscribe();
    stopExpiry?.();
    await source.close();
    identity?.stop();
    await sdk.shutdown();
    throw error;
  }
  const dataSide: DataSide = data;

  const adminServer = createAdminServer({
    configDump: () => ({
      version: snapshot.version,
      source: config.meshFile ? { kind: 'file', path: config.meshFile } : control ? { kind: 'control-plane', address: config.controlAddr, ...control.status() } : { kind: 'provider' },
      identity: identity?.current()?.spiffeId ?? null,
      inboundMtls: { defaultMode: policy.defaultMode, portModes: Object.fromEntries(policy.portModes ?? []) },
      services: snapshot.services,
      pods: snapshot.pods,
      // Secrets (TLS keys for a gateway) are never shown: a mesh file may carry them.
      others: snapshot.others.map(redactSecret),
    }),
    clusters: () => dataSide.clusters(),
    authorization: () => authorization,
    certs: () => (identity ? identity.describe() : { identity: null, reason: 'no TSMESH_CA_ADDR: running without workload identity' }),
    logLevelChanged: (level) => logLevelChanged?.(level),
  });
  let draining = false;
  const healthServer = createHealthServer({
    notReadyReason: () => {
      if (draining) return 'draining';
      if (dataSide.listening() === 0) return 'listeners not bound';
      if (identity && !identity.current()) return `no workload certificate yet${identity.lastError() ? `: ${identity.lastError()?.message}` : ''}`;
      return undefined;
    },
    metrics: async () => {
      const loopViews = await dataSide.metrics();
      if (loopViews.length === 0) return { contentType: metrics.contentType, body: await metrics.render() };
      const merged = mergeMetrics([await metrics.json(), ...loopViews]);
      return { contentType: merged.contentType, body: await merged.metrics() };
    },
    appProbes: config.appProbes,
    appHost: config.podIp ?? '127.0.0.1',
  });

  const servers: http.Server[] = [];
  const bind = async (server: http.Server, at: ListenAddress): Promise<number> => {
    const port = await listen(server, at);
    servers.push(server);
    return port;
  };
  let ports: RunningProxy['ports'];
  try {
    ports = {
      ...dataSide.ports,
      admin: await bind(adminServer, config.admin),
      health: await bind(healthServer, config.health),
    };
  } catch (error) {
    await Promise.all(servers.map(closeServer));
    unsubscribe();
    stopShare?.();
    stopExpiry?.();
    await dataSide.close();
    await source.close();
    identity?.stop();
    await sdk.shutdown();
    throw error;
  }
  const announce = (): void =>
    log.info({ ports, loops, meshVersion: snapshot.version, pod: config.podName, namespace: config.podNamespace, identity: identity?.current()?.spiffeId }, 'sidecar ready');
  if (!identity || identity.current()) announce();
  else identity.ready().then(announce, () => undefined);

  return {
    config,
    ports,
    loops,
    snapshot: () => snapshot,
    identity: () => identity?.current()?.spiffeId,
    async drain(durationMs) {
      // Listeners close first, in every loop, and readiness fails right after (a message round trip):
      // whoever sees the sidecar not ready can count on a new connection being refused, never reset.
      await dataSide.stopAccepting();
      draining = true;
      log.info({ drainMs: durationMs, loops }, 'draining: not ready, no new connections, in-flight requests finish');
      const { remaining } = await dataSide.drain(durationMs);
      log.info({ remaining }, remaining === 0 ? 'drained' : 'drain period over: closing the connections left');
      return { remaining };
    },
    async close() {
      unsubscribe();
      stopShare?.();
      stopExpiry?.();
      await source.close();
      const closing = servers.map(closeServer);
      adminServer.closeAllConnections();
      healthServer.closeAllConnections();
      await dataSide.close();
      await Promise.all(closing);
      identity?.stop();
      await sdk.shutdown();
    },
  };
}
