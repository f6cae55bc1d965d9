// The webhook's entry point: reads the TLS files, connects to the API server, and listens. The only
// module that opens a port; `tsmesh injector` calls it.
import { readFile, stat } from 'node:fs/promises';
import type { Server as HttpsServer } from 'node:https';
import { logger, setLogLevel } from '@tsmesh/common';
import { buildApp } from './app.js';
import type { InjectorConfig } from './config.js';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
import { kubeNamespaceLabels, kubernetesVersion, loadKubeConfig } from './kube.js';
import { cachedNamespaceLabels, type NamespaceLabels } from './namespaces.js';
import { makeSettings, useNativeSidecars } from './settings.js';

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
}

async function readTls(config: InjectorConfig): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    const [cert, key] = await Promise.all([readFile(config.tlsCertFile), readFile(config.tlsKeyFile)]);
    return { cert, key };
  } catch (error) {
    throw injectorError(
      INJECTOR_ERRORS.TLS_FILES,
      `cannot read the webhook's TLS files (${config.tlsCertFile}, ${config.tlsKeyFile}): ${error instanceof Error ? error.message : String(error)}`,
      error,
    );
  }
}

async function modified(config: InjectorConfig): Promise<string> {
  const [cert, key] = await Promise.all([stat(config.tlsCertFile), stat(config.tlsKeyFile)]);
  return `${cert.mtimeMs}/${key.mtimeMs}`;
}

/** Starts the webhook over HTTPS. Rejects when the TLS files cannot be read or the port is taken. */
export async function startInjector(config: InjectorConfig, dependencies: InjectorDependencies = {}): Promise<RunningInjector> {
  setLogLevel(config.logLevel);
  const tls = await readTls(config);
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

  const app = await buildApp({ settings, namespaceLabels, https: tls });
  const address = await app.listen({ host: config.listen.host, port: config.listen.port });
  log.info({ address }, 'sidecar injector listening');

  let seen = await modified(config).catch(() => '');
  const timer = setInterval(() => {
    void (async () => {
      try {
        const now = await modified(config);
        if (now === seen) return;
        const fresh = await readTls(config);
        (app.server as unknown as HttpsServer).setSecureContext(fresh);
        seen = now;
        log.info('TLS certificate reloaded');
      } catch (error) {
        log.warn({ err: error }, 'TLS certificate reload failed: still serving the previous one');
      }
    })();
  }, dependencies.tlsReloadIntervalMs ?? TLS_RELOAD_INTERVAL_MS);
  timer.unref();

  return {
    address,
    async close() {
      clearInterval(timer);
      await app.close();
    },
  };
}
