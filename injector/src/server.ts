// The webhook's entry point: reads the TLS files (or makes its own certificate, tls/manager.ts),
// connects to the API server, and listens. The only module that opens a port; `tsmesh injector` calls it.
import { readFile, stat } from 'node:fs/promises';
import type { Server as HttpsServer } from 'node:https';
import { logger, setLogLevel } from '@tsmesh/common';
import { buildApp } from './app.js';
import type { InjectorConfig } from './config.js';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
import { kubeNamespaceLabels, kubernetesVersion, loadKubeConfig } from './kube.js';
import { cachedNamespaceLabels, type NamespaceLabels } from './namespaces.js';
import { makeSettings, useNativeSidecars } from './settings.js';
import { WebhookCertManager, type WebhookCertOptions } from './tls/manager.js';
import { kubeWebhookApi, type WebhookCertApi } from './tls/webhook-api.js';

const log = logger('injector.server');

/** How often the certificate files are checked for a rotation (cert-manager, a Secret update). */
const TLS_RELOAD_INTERVAL_MS = 30_000;

export interface RunningInjector {
  /** The address it listens on, e.g. "https://0.0.0.0:15017". */
  readonly address: string;
  /** Stops accepting requests, finishes the ones in flight, and resolves when done. */
  close(): Promise<void>;
}

export interface InjectorDependencies {
  /** Replaces the API server lookup (tests, or a cluster-less trial run). */
  readonly namespaceLabels?: NamespaceLabels;
  /** How often the TLS files are checked for a change (default 30 s). */
  readonly tlsReloadIntervalMs?: number;
  /** With `managedCert`: replaces the API server for the CA Secret and the caBundle. */
  readonly webhookCertApi?: WebhookCertApi;
  /** With `managedCert`: lifetimes, resync period, retry waits, clock (tests). */
  readonly webhookCertTuning?: Pick<WebhookCertOptions, 'caTtlMs' | 'servingTtlMs' | 'resyncMs' | 'retryMs' | 'now' | 'random'>;
}

type TlsFiles = { cert: Buffer; key: Buffer };

/** Where the serving certificate comes from: files re-read on change, or the certificate manager. */
interface TlsSource {
  readonly initial: TlsFiles;
  /** Starts pushing new certificates into the running server. */
  follow(server: HttpsServer): void;
  stop(): Promise<void>;
}

async function readTls(certFile: string, keyFile: string): Promise<TlsFiles> {
  try {
    const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
    return { cert, key };
  } catch (error) {
    throw injectorError(
      INJECTOR_ERRORS.TLS_FILES,
      `cannot read the webhook's TLS files (${certFile}, ${keyFile}): ${error instanceof Error ? error.message : String(error)}`,
      error,
    );
  }
}

async function fileTls(certFile: string, keyFile: string, intervalMs: number): Promise<TlsSource> {
  const modified = async () => {
    const [cert, key] = await Promise.all([stat(certFile), stat(keyFile)]);
    return `${cert.mtimeMs}/${key.mtimeMs}`;
  };
  const initial = await readTls(certFile, keyFile);
  let seen = await modified().catch(() => '');
  let timer: NodeJS.Timeout | undefined;
  return {
    initial,
    follow(server) {
      timer = setInterval(() => {
        void (async () => {
          try {
            const now = await modified();
            if (now === seen) return;
            server.setSecureContext(await readTls(certFile, keyFile));
            seen = now;
            log.info('TLS certificate reloaded');
          } catch (error) {
            log.warn({ err: error }, 'TLS certificate reload failed: still serving the previous one');
          }
        })();
      }, intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      return Promise.resolve();
    },
  };
}

async function managedTls(config: InjectorConfig, dependencies: InjectorDependencies): Promise<TlsSource> {
  const managed = config.managedCert!;
  const api = dependencies.webhookCertApi ?? kubeWebhookApi(await loadKubeConfig(config.kubeconfig));
  let server: HttpsServer | undefined;
  const { service, namespace } = managed;
  const manager = new WebhookCertManager({
    ...dependencies.webhookCertTuning,
    api,
    webhookConfiguration: managed.webhookConfiguration,
    secretNamespace: namespace,
    secretName: managed.caSecret,
    dnsNames: [service, `${service}.${namespace}`, `${service}.${namespace}.svc`],
    onCertificate(certificate) {
      // New connections get the new certificate; open ones keep theirs. No restart, no dropped request.
      server?.setSecureContext({ cert: certificate.certPem, key: certificate.keyPem });
    },
  });
  const first = await manager.start();
  return {
    initial: { cert: Buffer.from(first.certPem), key: Buffer.from(first.keyPem) },
    follow(running) {
      server = running;
      // A renewal may have happened between start and listen.
      const current = manager.certificate;
      if (current !== undefined && current !== first) running.setSecureContext({ cert: current.certPem, key: current.keyPem });
    },
    stop: () => manager.stop(),
  };
}

/** Starts the webhook over HTTPS. Rejects when the TLS files cannot be read or the port is taken. */
export async function startInjector(config: InjectorConfig, dependencies: InjectorDependencies = {}): Promise<RunningInjector> {
  setLogLevel(config.logLevel);
  const tls =
    config.managedCert !== undefined
      ? await managedTls(config, dependencies)
      : await fileTls(config.tlsCertFile ?? '', config.tlsKeyFile ?? '', dependencies.tlsReloadIntervalMs ?? TLS_RELOAD_INTERVAL_MS);
  let settings = config.settings;
  let namespaceLabels = dependencies.namespaceLabels;
  if (namespaceLabels === undefined || (settings.nativeSidecars === 'auto' && settings.kubernetesVersion === undefined)) {
    const kube = await loadKubeConfig(config.kubeconfig);
    namespaceLabels ??= cachedNamespaceLabels(kubeNamespaceLabels(kube), config.namespaceCacheMs);
    if (settings.nativeSidecars === 'auto' && settings.kubernetesVersion === undefined) {
      const version = await kubernetesVersion(kube);
      if (version.ok) settings = makeSettings({ ...settings, kubernetesVersion: version.value });
      else log.warn({ err: version.error }, 'Kubernetes version unknown: sidecars are injected as regular containers');
    }
  }
  log.info(
    { image: settings.image, nativeSidecars: useNativeSidecars(settings), kubernetesVersion: settings.kubernetesVersion },
    'injection settings',
  );

  const app = await buildApp({ settings, namespaceLabels, https: tls.initial }).catch(async (error: unknown) => {
    await tls.stop();
    throw error;
  });
  const address = await app.listen({ host: config.listen.host, port: config.listen.port }).catch(async (error: unknown) => {
    await tls.stop();
    throw error;
  });
  log.info({ address }, 'sidecar injector listening');
  tls.follow(app.server as unknown as HttpsServer);

  return {
    address,
    async close() {
      await tls.stop();
      await app.close();
    },
  };
}
