// The API calls of the self-managed webhook certificate: the CA Secret (get, create, update) and the
// caBundle of the MutatingWebhookConfiguration (get, patch). An interface, so the manager can be driven
// by any implementation; `kubeWebhookApi` is the one backed by the API server.
import type { KubeConfig } from '@kubernetes/client-node';

/** A Secret's data (values base64, as the API has them) and the version to update it against. */
export interface StoredSecret {
  readonly data: Readonly<Record<string, string>>;
  readonly resourceVersion: string;
}

/** The caBundle (base64, "" when unset) of every webhook entry, and the object's version. */
export interface WebhookBundles {
  readonly caBundles: readonly string[];
  readonly resourceVersion: string;
}

export interface WebhookCertApi {
  /** The Secret, or undefined when it does not exist. Throws on any other failure. */
  readSecret(namespace: string, name: string): Promise<StoredSecret | undefined>;
  /** Creates the Secret; false when it already exists (another replica won). */
  createSecret(namespace: string, name: string, data: Record<string, string>): Promise<boolean>;
  /** Replaces the Secret's data if it is still at `resourceVersion`; false on a conflict. */
  updateSecret(namespace: string, name: string, data: Record<string, string>, resourceVersion: string): Promise<boolean>;
  /** The webhook configuration's caBundles. Throws when it cannot be read (missing included). */
  readWebhookBundles(name: string): Promise<WebhookBundles>;
  /**
   * Sets every entry's clientConfig.caBundle to `caBundle` (base64), provided the object is still at
   * `expected.resourceVersion` with as many entries; false on a conflict.
   */
  patchWebhookBundles(name: string, expected: WebhookBundles, caBundle: string): Promise<boolean>;
}

function status(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The WebhookCertApi of a real API server (client loaded on first use). */
export function kubeWebhookApi(config: KubeConfig): WebhookCertApi {
  const clients = import('@kubernetes/client-node').then((k) => ({
    core: config.makeApiClient(k.CoreV1Api),
    admission: config.makeApiClient(k.AdmissionregistrationV1Api),
  }));
  const secretBody = (namespace: string, name: string, data: Record<string, string>, resourceVersion?: string) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/part-of': 'tsmesh', 'app.kubernetes.io/component': 'injector' }, ...(resourceVersion === undefined ? {} : { resourceVersion }) },
    data,
  });
  return {
    async readSecret(namespace, name) {
      try {
        const secret = await (await clients).core.readNamespacedSecret({ name, namespace });
        return { data: { ...(secret.data ?? {}) }, resourceVersion: secret.metadata?.resourceVersion ?? '' };
      } catch (error) {
        if (status(error) === 404) return undefined;
        throw error;
      }
    },
    async createSecret(namespace, name, data) {
      try {
        await (await clients).core.createNamespacedSecret({ namespace, body: secretBody(namespace, name, data) });
        return true;
      } catch (error) {
        if (status(error) === 409) return false;
        throw error;
      }
    },
    async updateSecret(namespace, name, data, resourceVersion) {
      try {
        await (await clients).core.replaceNamespacedSecret({ name, namespace, body: secretBody(namespace, name, data, resourceVersion) });
        return true;
      } catch (error) {
        if (status(error) === 409) return false;
        throw error;
      }
    },
    async readWebhookBundles(name) {
      const found = await (await clients).admission.readMutatingWebhookConfiguration({ name });
      return {
        caBundles: (found.webhooks ?? []).map((w) => w.clientConfig.caBundle ?? ''),
        resourceVersion: found.metadata?.resourceVersion ?? '',
      };
    },
    async patchWebhookBundles(name, expected, caBundle) {
      // JSON patch (the client's default for PATCH): the test ops make it fail (422) instead of
      // writing over a configuration that changed since it was read.
      const body = [
        { op: 'test', path: '/metadata/resourceVersion', value: expected.resourceVersion },
        ...expected.caBundles.map((_, i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle })),
      ];
      try {
        await (await clients).admission.patchMutatingWebhookConfiguration({ name, body });
        return true;
      } catch (error) {
        if (status(error) === 409 || status(error) === 422) return false;
        throw error;
      }
    },
  };
}
