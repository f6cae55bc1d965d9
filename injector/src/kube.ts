// The injector's only use of the Kubernetes API: namespace labels and the server's version. The client
// library is loaded on first use, so `tsmesh inject` (no cluster) starts without it.
import type { KubeConfig } from '@kubernetes/client-node';
import { err, ok, type Result } from '@tsmesh/common';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
import type { NamespaceLabels } from './namespaces.js';

/** A KubeConfig from the file, else in-cluster, else the usual places ($KUBECONFIG, ~/.kube/config). */
export async function loadKubeConfig(kubeconfigPath?: string): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const config = new KubeConfig();
  if (kubeconfigPath !== undefined) config.loadFromFile(kubeconfigPath);
  else config.loadFromDefault();
  return config;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Labels read with GET /api/v1/namespaces/<name> (needs RBAC `get` on namespaces). */
export function kubeNamespaceLabels(config: KubeConfig): NamespaceLabels {
  let api: Promise<import('@kubernetes/client-node').CoreV1Api> | undefined;
  return {
    async labels(namespace) {
      try {
        api ??= import('@kubernetes/client-node').then(({ CoreV1Api }) => config.makeApiClient(CoreV1Api));
        const found = await (await api).readNamespace({ name: namespace });
        return ok({ ...(found.metadata?.labels ?? {}) });
      } catch (error) {
        return err(
          injectorError(
            INJECTOR_ERRORS.NAMESPACE_LOOKUP,
            `cannot read the labels of namespace ${namespace}: ${message(error)}`,
            error,
          ),
        );
      }
    },
  };
}

/** The API server's gitVersion ("v1.30.2"), for `nativeSidecars: 'auto'`. */
export async function kubernetesVersion(config: KubeConfig): Promise<Result<string>> {
  try {
    const { VersionApi } = await import('@kubernetes/client-node');
    const info = await config.makeApiClient(VersionApi).getCode();
    return ok(info.gitVersion);
  } catch (error) {
    return err(
      injectorError(INJECTOR_ERRORS.KUBE_VERSION, `cannot read the Kubernetes version: ${message(error)}`, error),
    );
  }
}
