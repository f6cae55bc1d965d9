// The control-plane program: discovery (Kubernetes or a mesh file) feeding the mTLS server sidecars
// stream the mesh from, and the local debug server. `tsmesh control` is a thin wrapper around it.
import { readFile } from 'node:fs/promises';
import type { Http2SecureServer, Http2Session } from 'node:http2';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { logger, type Logger, type MeshProvider, type TsmeshError } from '@tsmesh/common';
import type { KubeConfig } from '@kubernetes/client-node';
import { createMeshProvider, loadKubeConfig, type ProviderOptions } from './kube/provider.js';
import type { ControlPlaneConfig, DistributionConfig, ListenAddress } from './config.js';
import { MeshDistributor } from './distribution/distributor.js';
import { CONTROL_DISTRIBUTION_ERRORS, distributionError } from './errors.js';
import { createDistributionServer, servingContextOptions, type ServingTls } from './distribution/transport.js';
import { RouteStatusWriter, type RouteStatusWriterOptions } from './status/writer.js';
import { AuthorizationStatusWriter, PolicyStatusWriter, type RejectedObjects } from './status/authorization.js';
import { RateLimitStatusWriter } from './status/rate-limit.js';
import { TrustBundlePublisher, type TrustBundlePublisherOptions } from './trust/publisher.js';
import { createAdminServer } from './admin.js';
import { ControlMetrics } from './metrics.js';

export interface StartControlPlaneOptions {
  /** Replaces the provider the config asks for (tests, embedding). It is started here and closed by close(). */
  readonly provider?: MeshProvider;
  readonly providerOptions?: ProviderOptions;
  /** How often the certificate, key and trust bundle files are re-read (default 60 s; 0: never). */
  readonly tlsReloadMs?: number;
  /** PING interval on sidecar sessions (default 30 s). */
  readonly keepaliveMs?: number;
  /** The longest a change waits under continuous churn (default 1 s). */
  readonly maxDelayMs?: number;
  /**
   * Writing HTTPRoute/GRPCRoute status. By default it runs when the mesh comes from Kubernetes and the
   * provider is the one the config asks for (a mesh file has nowhere to write). `false` turns it off;
   * a `kubeConfig` names the API server to write to (needed with a provider given in `provider`).
   */
  readonly routeStatus?: false | (RouteStatusWriterOptions & { readonly kubeConfig?: KubeConfig });
  /**
   * Publishing the trust bundle as a ConfigMap in every namespace: as for `routeStatus`, by default
   * when the mesh comes from Kubernetes and `--trust-bundle-configmap` is not `off`.
   */
  readonly trustBundle?: false | (Omit<TrustBundlePublisherOptions, 'name'> & { readonly kubeConfig?: KubeConfig });
  /** The metrics served at the admin server's /metrics (default: a new ControlMetrics). */
  readonly metrics?: ControlMetrics;
  readonly log?: Logger;
}

export interface RunningControlPlane {
  /** Where sidecars connect (the port resolved when 0 was asked). */
  readonly address: ListenAddress;
  readonly debugAddress: ListenAddress | undefined;
  readonly distributor: MeshDistributor;
  readonly provider: MeshProvider;
  /** What GET /metrics on the admin server (`debugAddress`) serves. */
  readonly metrics: ControlMetrics;
  /** Writes route status to the API server; undefined when the mesh does not come from Kubernetes. */
  readonly routeStatus: RouteStatusWriter | undefined;
  /** Keeps the trust bundle ConfigMaps; undefined when the mesh does not come from Kubernetes, or it is off. */
  readonly trustBundle: TrustBundlePublisher | undefined;
  /** Re-reads the TLS files now; true when the serving context changed. A bad file keeps the current one. */
  reloadTls(): Promise<boolean>;
  /** Ends every sidecar stream, stops listening, closes the provider. */
  close(): Promise<void>;
}

export const DEFAULT_TLS_RELOAD_MS = 60_000;
const CLOSE_GRACE_MS = 1000;

/** Reads and checks the serving material; fails naming the file. */
export async function readServingTls(config: Pick<DistributionConfig, 'tlsCertFile' | 'tlsKeyFile' | 'trustBundleFile'>): Promise<ServingTls> {
  const read = async (file: string, what: string): Promise<string> => {
    try {
      const text = await readFile(file, 'utf8');
      if (!text.includes('-----BEGIN ')) throw new Error('no PEM block in it');
      return text;
    } catch (cause) {
      throw distributionError(CONTROL_DISTRIBUTION_ERRORS.TLS_FILES, `${what} ${file}: ${(cause as Error).message}`, cause);
    }
  };
  const tls: ServingTls = {
    cert: await read(config.tlsCertFile, 'TLS certificate'),
    key: await read(config.tlsKeyFile, 'TLS key'),
    trustBundle: await read(config.trustBundleFile, 'trust bundle'),
  };
  try {
    createSecureContext(servingContextOptions(tls));
  } catch (cause) {
    const files = `${config.tlsCertFile}, ${config.tlsKeyFile}, ${config.trustBundleFile}`;
    throw distributionError(CONTROL_DISTRIBUTION_ERRORS.TLS_FILES, `cannot use the TLS files (${files}): ${(cause as Error).message}`, cause);
  }
  return tls;
}

function listen(server: Http2SecureServer | HttpServer, at: ListenAddress, what: string): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    const failed = (cause: Error): void => reject(distributionError(CONTROL_DISTRIBUTION_ERRORS.LISTEN, `cannot listen on ${at.host}:${at.port} (${what}): ${cause.message}`, cause));
    server.once('error', failed);
    server.listen(at.port, at.host, () => {
      server.off('error', failed);
      const bound = server.address() as AddressInfo;
      resolve(Object.freeze({ host: bound.address, port: bound.port }));
    });
  });
}

function closeServer(server: Http2SecureServer | HttpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The API server a Kubernetes-side writer (route status, trust bundle) talks to: the one `given`, or
 * the one the config reads the mesh from; undefined when there is none to write to.
 */
function writerKubeConfig(config: ControlPlaneConfig, options: StartControlPlaneOptions, given: KubeConfig | undefined): KubeConfig | undefined {
  const source = config.discovery.source;
  if (source.kind !== 'kubernetes') return undefined;
  if (given !== undefined) return given;
  // A provider handed in may read anything: write only where the config says the mesh comes from.
  if (options.provider !== undefined) return undefined;
  const loaded = loadKubeConfig(source.kubeconfig);
  if (!loaded.ok) throw loaded.error;
  return loaded.value;
}

/** The route status writer the options ask for, if any: only with the mesh read from Kubernetes. */
function routeStatusWriter(config: ControlPlaneConfig, options: StartControlPlaneOptions, provider: MeshProvider): RouteStatusWriter | undefined {
  const settings = options.routeStatus;
  if (settings === false) return undefined;
  const { kubeConfig: given, ...writerOptions } = settings ?? {};
  const kubeConfig = writerKubeConfig(config, options, given);
  if (kubeConfig === undefined) return undefined;
  return new RouteStatusWriter(provider, kubeConfig, { log: options.log ?? logger('control.status'), ...writerOptions });
}

/**
 * The AuthorizationPolicy (or, with `writer`, HTTPLocalRateLimitPolicy) status writer: it runs exactly when the route status writer does (same
 * API server, same `routeStatus: false` to turn both off). Refused policies are learnt from a
 * provider that reports them (KubernetesSource).
 */
function authorizationStatusWriter(config: ControlPlaneConfig, options: StartControlPlaneOptions, provider: MeshProvider, writer: typeof AuthorizationStatusWriter | typeof RateLimitStatusWriter = AuthorizationStatusWriter): PolicyStatusWriter | undefined {
  const settings = options.routeStatus;
  if (settings === false) return undefined;
  const kubeConfig = writerKubeConfig(config, options, settings?.kubeConfig);
  if (kubeConfig === undefined) return undefined;
  const rejecting = provider as Partial<RejectedObjects>;
  return new writer(provider, kubeConfig, {
    log: options.log ?? logger('control.status'),
    rejected: typeof rejecting.rejected === 'function' ? (provider as unknown as RejectedObjects) : undefined,
    rootNamespace: config.distribution.rootNamespace,
    ...(settings?.debounceMs === undefined ? {} : { debounceMs: settings.debounceMs }),
  });
}

/** The trust bundle publisher the config and options ask for, if any: only with the mesh read from Kubernetes. */
function trustBundlePublisher(config: ControlPlaneConfig, options: StartControlPlaneOptions, provider: MeshProvider, bundle: string): TrustBundlePublisher | undefined {
  const settings = options.trustBundle;
  const name = config.distribution.trustBundleConfigMap;
  if (settings === false || name === undefined) return undefined;
  const { kubeConfig: given, ...publisherOptions } = settings ?? {};
  const kubeConfig = writerKubeConfig(config, options, given);
  if (kubeConfig === undefined) return undefined;
  return new TrustBundlePublisher(provider, kubeConfig, bundle, { log: options.log ?? logger('control.trust-bundle'), ...publisherOptions, name });
}

/**
 * Starts discovery, waits for its first snapshot, then serves sidecars. Throws TsmeshError when the
 * TLS files are unusable, the provider cannot start, or an address cannot be bound.
 */
export async function startControlPlane(config: ControlPlaneConfig, options: StartControlPlaneOptions = {}): Promise<RunningControlPlane> {
  const log = options.log ?? logger('control');
  const settings = config.distribution;
  let tls = await readServingTls(settings);
  const metrics = options.metrics ?? new ControlMetrics();
  let provider = options.provider;
  if (provider === undefined) {
    const providerOptions = options.providerOptions ?? {};
    const created = createMeshProvider(config.discovery.source, {
      ...providerOptions,
      kubernetes: { ...providerOptions.kubernetes, onWatchEvent: (kind, type) => metrics.watchEvent(kind, type) },
    });
    if (!created.ok) throw created.error;
    provider = created.value;
  }
  const first = await provider.start();
  if (!first.ok) throw first.error as TsmeshError;
  let routeStatus: RouteStatusWriter | undefined;
  let authorizationStatus: PolicyStatusWriter | undefined;
  let rateLimitStatus: PolicyStatusWriter | undefined;
  let trustBundle: TrustBundlePublisher | undefined;
  try {
    routeStatus = routeStatusWriter(config, options, provider);
    authorizationStatus = authorizationStatusWriter(config, options, provider);
    rateLimitStatus = authorizationStatusWriter(config, options, provider, RateLimitStatusWriter);
    trustBundle = trustBundlePublisher(config, options, provider, tls.trustBundle);
  } catch (error) {
    await provider.close();
    throw error;
  }

  const distributor = new MeshDistributor(provider, {
    trustDomain: settings.trustDomain,
    rootNamespace: settings.rootNamespace,
    debounceMs: settings.debounceMs,
    ...(options.maxDelayMs === undefined ? {} : { maxDelayMs: options.maxDelayMs }),
    log: options.log ?? logger('control.distribution'),
    observer: metrics,
  });
  metrics.follow(distributor);
  distributor.start();
  const server = createDistributionServer(distributor, tls, {
    log: options.log ?? logger('control.transport'),
    ...(options.keepaliveMs === undefined ? {} : { keepaliveMs: options.keepaliveMs }),
  });
  const sessions = new Set<Http2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  const debug = settings.debugListen === undefined ? undefined : createAdminServer(distributor, metrics);
  let address: ListenAddress;
  let debugAddress: ListenAddress | undefined;
  try {
    address = await listen(server, settings.listen, 'sidecars');
    debugAddress = debug === undefined || settings.debugListen === undefined ? undefined : await listen(debug, settings.debugListen, 'debug');
  } catch (error) {
    distributor.close();
    if (server.listening) await closeServer(server);
    await provider.close();
    throw error;
  }
  routeStatus?.start();
  authorizationStatus?.start();
  rateLimitStatus?.start();
  trustBundle?.start();

  const reloadTls = async (): Promise<boolean> => {
    let next: ServingTls;
    try {
      next = await readServingTls(settings);
    } catch (error) {
      log.warn({ err: error }, 'cannot reload the TLS files; still serving with the current ones');
      return false;
    }
    if (next.cert === tls.cert && next.key === tls.key && next.trustBundle === tls.trustBundle) return false;
    tls = next;
    server.setSecureContext(servingContextOptions(tls));
    trustBundle?.setBundle(tls.trustBundle);
    log.info('TLS files changed: serving with the new certificate and trust bundle');
    return true;
  };
  const reloadMs = options.tlsReloadMs ?? DEFAULT_TLS_RELOAD_MS;
  const reloader = reloadMs > 0 ? setInterval(() => void reloadTls(), reloadMs) : undefined;
  reloader?.unref();

  log.info(
    {
      address: `${address.host}:${address.port}`,
      debug: debugAddress === undefined ? undefined : `${debugAddress.host}:${debugAddress.port}`,
      source: config.discovery.source.kind,
      routeStatus: routeStatus !== undefined,
      trustBundleConfigMap: trustBundle === undefined ? undefined : config.distribution.trustBundleConfigMap,
      version: first.value.version,
      trustDomain: settings.trustDomain,
    },
    'control plane serving sidecars',
  );

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    clearInterval(reloader);
    await Promise.all([routeStatus?.close(), authorizationStatus?.close(), rateLimitStatus?.close(), trustBundle?.close()]);
    distributor.close();
    for (const session of sessions) session.close();
    const closed = closeServer(server);
    // Sidecars end their side when ours ends; one that does not is cut off after a grace period.
    const grace = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref());
    await Promise.race([closed, grace]);
    for (const session of sessions) session.destroy();
    await Promise.all([closed, debug === undefined ? undefined : closeServer(debug), (provider as MeshProvider).close()]);
  };

  return {
    address,
    debugAddress,
    distributor,
    provider,
    metrics,
    routeStatus,
    trustBundle,
    reloadTls,
    close: () => (closing ??= close()),
  };
}
