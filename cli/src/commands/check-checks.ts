// The checks `tsmesh check` runs, each against the Kubernetes API through @kubernetes/client-node:
// a title, and a verdict (✔, or ✖ with what is wrong and how to fix it). Prerequisites first (the
// API server, its version, the Gateway API, the installer's permissions), then the installation
// (CRDs, the webhook and its CA bundle, the Deployments, the trust bundle ConfigMaps).
import { X509Certificate } from 'node:crypto';
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  VersionApi,
  type KubeConfig,
} from '@kubernetes/client-node';
import { describeKubeError } from './proxy-status.js';

/** What a check found: passed, or failed with the problem and the fix. */
export type Verdict = { readonly ok: true; readonly detail: string } | { readonly ok: false; readonly detail: string; readonly fix: string };

export interface CheckContext {
  readonly kube: KubeConfig;
  /** The control-plane namespace (default tsmesh-system). */
  readonly namespace: string;
}

export interface Check {
  readonly title: string;
  /** One or more verdicts (a check of three Deployments gives three lines). */
  run(context: CheckContext): Promise<Verdict[]>;
}

/** The oldest Kubernetes the chart installs on (Chart.yaml kubeVersion). */
export const MIN_KUBERNETES = { major: 1, minor: 25 } as const;
export const GATEWAY_API_CRDS = ['httproutes.gateway.networking.k8s.io', 'grpcroutes.gateway.networking.k8s.io'] as const;
export const TSMESH_CRDS = [
  'peerauthentications.security.tsmesh.io',
  'authorizationpolicies.security.tsmesh.io',
  'httplocalratelimitpolicies.policy.tsmesh.io',
  'trafficpolicies.policy.tsmesh.io',
] as const;
export const DEPLOYMENTS = ['tsmesh-control', 'tsmesh-ca', 'tsmesh-injector'] as const;
/** The injector's CA: the Secret it keeps itself (--manage-webhook-cert), else the one the chart made. */
export const INJECTOR_CA_SECRETS = ['tsmesh-injector-ca', 'tsmesh-injector-tls'] as const;
export const TRUST_BUNDLE_CONFIGMAP = 'tsmesh-ca-root-cert';
export const TRUST_BUNDLE_KEY = 'root-cert.pem';
export const INJECTION_LABEL = 'tsmesh-injection=enabled';
export const webhookName = (namespace: string): string => `tsmesh-sidecar-injector-${namespace}`;

const INSTALL_FIX = 'install or upgrade tsmesh: helm upgrade --install tsmesh charts/tsmesh -n tsmesh-system --create-namespace';
const GATEWAY_FIX = 'install the Gateway API standard CRDs: kubectl apply -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/standard-install.yaml';

const pass = (detail: string): Verdict => ({ ok: true, detail });
const fail = (detail: string, fix: string): Verdict => ({ ok: false, detail, fix });
const statusOf = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
};

export const apiServerCheck: Check = {
  title: 'Kubernetes API',
  async run({ kube }) {
    const server = kube.getCurrentCluster()?.server ?? '(no cluster)';
    let version;
    try {
      version = await kube.makeApiClient(VersionApi).getCode();
    } catch (error) {
      return [fail(`cannot reach the API server at ${server}: ${describeKubeError(error)}`, 'check the kubeconfig context (kubectl config current-context) and that the cluster is up (kubectl get --raw /version)')];
    }
    const major = Number.parseInt(version.major, 10);
    const minor = Number.parseInt(version.minor, 10);
    const reached = pass(`the API server at ${server} answers (Kubernetes ${version.gitVersion})`);
    if (!(major > MIN_KUBERNETES.major || (major === MIN_KUBERNETES.major && minor >= MIN_KUBERNETES.minor))) {
      return [reached, fail(`Kubernetes ${version.gitVersion} is older than ${MIN_KUBERNETES.major}.${MIN_KUBERNETES.minor}`, `upgrade the cluster to Kubernetes ${MIN_KUBERNETES.major}.${MIN_KUBERNETES.minor} or newer (1.29+ for native sidecars)`)];
    }
    return [reached, pass(`Kubernetes ${version.major}.${version.minor} is ${MIN_KUBERNETES.major}.${MIN_KUBERNETES.minor} or newer`)];
  },
};

/** Which of `names` the API server has no CustomResourceDefinition for. */
async function missingCrds(kube: KubeConfig, names: readonly string[]): Promise<string[]> {
  const api = kube.makeApiClient(ApiextensionsV1Api);
  const missing: string[] = [];
  for (const name of names) {
    try {
      await api.readCustomResourceDefinition({ name });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
      missing.push(name);
    }
  }
  return missing;
}

function crdCheck(title: string, names: readonly string[], fix: string): Check {
  return {
    title,
    async run({ kube }) {
      try {
        const missing = await missingCrds(kube, names);
        if (missing.length === 0) return [pass(`${names.length} CustomResourceDefinitions present (${names.join(', ')})`)];
        return [fail(`CustomResourceDefinition${missing.length > 1 ? 's' : ''} missing: ${missing.join(', ')}`, fix)];
      } catch (error) {
        return [fail(`cannot read CustomResourceDefinitions: ${describeKubeError(error)}`, 'allow get on customresourcedefinitions.apiextensions.k8s.io to this user')];
      }
    },
  };
}

export const gatewayApiCheck = crdCheck('Gateway API', GATEWAY_API_CRDS, GATEWAY_FIX);
export const tsmeshCrdsCheck = crdCheck('tsmesh CRDs', TSMESH_CRDS, INSTALL_FIX);

/** What installing the chart needs to be allowed to do: verb, group, resource, namespaced. */
export function installPermissions(namespace: string): ReadonlyArray<{ verb: string; group: string; resource: string; namespace?: string }> {
  return [
    { verb: 'create', group: '', resource: 'namespaces' },
    { verb: 'create', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
    { verb: 'create', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
    { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
    { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
    { verb: 'create', group: 'apps', resource: 'deployments', namespace },
    { verb: 'create', group: '', resource: 'secrets', namespace },
    { verb: 'create', group: '', resource: 'serviceaccounts', namespace },
  ];
}

export const permissionsCheck: Check = {
  title: 'permissions',
  async run({ kube, namespace }) {
    const api = kube.makeApiClient(AuthorizationV1Api);
    const wanted = installPermissions(namespace);
    const denied: string[] = [];
    for (const attributes of wanted) {
      try {
        const review = await api.createSelfSubjectAccessReview({ body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: attributes } } });
        if (review.status?.allowed !== true) denied.push(`${attributes.verb} ${attributes.resource}${attributes.group === '' ? '' : `.${attributes.group}`}${attributes.namespace === undefined ? '' : ` in ${attributes.namespace}`}`);
      } catch (error) {
        return [fail(`cannot ask the API server what this user may do (SelfSubjectAccessReview): ${describeKubeError(error)}`, 'run the check as the user who will install tsmesh')];
      }
    }
    if (denied.length === 0) return [pass(`this user may install tsmesh (${wanted.length} SelfSubjectAccessReviews allowed)`)];
    return [fail(`this user may not ${denied.join(', ')}`, 'install as a cluster administrator, or bind this user to a role that allows these (kubectl auth can-i --list)')];
  },
};

/** Every certificate in a PEM bundle, by SHA-256 fingerprint. */
function fingerprints(pem: string): Set<string> {
  const found = new Set<string>();
  for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    try {
      found.add(new X509Certificate(block).fingerprint256);
    } catch {
      // not a certificate: ignored, and so matches nothing
    }
  }
  return found;
}

/** The injector's CA certificate (PEM) and where it was found, or undefined. */
async function injectorCa(kube: KubeConfig, namespace: string): Promise<{ pem: string; secret: string } | undefined> {
  const core = kube.makeApiClient(CoreV1Api);
  for (const name of INJECTOR_CA_SECRETS) {
    try {
      const secret = await core.readNamespacedSecret({ name, namespace });
      const data = secret.data?.['ca.crt'];
      if (data !== undefined && data !== '') return { pem: Buffer.from(data, 'base64').toString('utf8'), secret: `${namespace}/${name}` };
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }
  return undefined;
}

export const webhookCheck: Check = {
  title: 'injection webhook',
  async run({ kube, namespace }) {
    const name = webhookName(namespace);
    const restart = `kubectl -n ${namespace} rollout restart deployment/tsmesh-injector (a self-managed injector rewrites caBundle at start), or ${INSTALL_FIX}`;
    try {
      let configuration;
      try {
        configuration = await kube.makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name });
      } catch (error) {
        if (statusOf(error) === 404) return [fail(`MutatingWebhookConfiguration ${name} is missing: no pod is injected`, INSTALL_FIX)];
        throw error;
      }
      const webhooks = configuration.webhooks ?? [];
      if (webhooks.length === 0) return [fail(`MutatingWebhookConfiguration ${name} has no webhooks`, INSTALL_FIX)];
      const ca = await injectorCa(kube, namespace);
      if (ca === undefined) return [fail(`the injector's CA is not found (Secret ${INJECTOR_CA_SECRETS.map((s) => `${namespace}/${s}`).join(' or ')}, key ca.crt)`, restart)];
      const wanted = [...fingerprints(ca.pem)][0];
      const wrong = webhooks.filter((w) => {
        const bundle = w.clientConfig.caBundle;
        return bundle === undefined || wanted === undefined || !fingerprints(Buffer.from(bundle, 'base64').toString('utf8')).has(wanted);
      });
      if (wrong.length > 0) {
        return [fail(`the caBundle of ${wrong.map((w) => w.name).join(', ')} in ${name} does not hold the injector's CA (Secret ${ca.secret}): the API server will refuse the injector's certificate and pods will not be created`, restart)];
      }
      return [pass(`MutatingWebhookConfiguration ${name}: ${webhooks.length} webhook${webhooks.length > 1 ? 's' : ''}, caBundle matches the injector's CA (Secret ${ca.secret})`)];
    } catch (error) {
      return [fail(`cannot read the webhook configuration: ${describeKubeError(error)}`, 'allow get on mutatingwebhookconfigurations and on secrets in the control-plane namespace to this user')];
    }
  },
};

export const deploymentsCheck: Check = {
  title: 'control plane',
  async run({ kube, namespace }) {
    const apps = kube.makeApiClient(AppsV1Api);
    const verdicts: Verdict[] = [];
    for (const name of DEPLOYMENTS) {
      const where = `Deployment ${namespace}/${name}`;
      const diagnose = `kubectl -n ${namespace} describe deployment/${name}; kubectl -n ${namespace} logs deployment/${name}`;
      try {
        const deployment = await apps.readNamespacedDeployment({ name, namespace });
        const wanted = deployment.spec?.replicas ?? 1;
        const ready = deployment.status?.readyReplicas ?? 0;
        if (wanted === 0) verdicts.push(fail(`${where} is scaled to 0`, `kubectl -n ${namespace} scale deployment/${name} --replicas=1`));
        else if (ready < wanted) verdicts.push(fail(`${where} is not ready (${ready}/${wanted} replicas ready)`, diagnose));
        else verdicts.push(pass(`${where} ready (${ready}/${wanted})`));
      } catch (error) {
        verdicts.push(statusOf(error) === 404 ? fail(`${where} is missing`, INSTALL_FIX) : fail(`cannot read ${where}: ${describeKubeError(error)}`, 'allow get on deployments in the control-plane namespace to this user'));
      }
    }
    return verdicts;
  },
};

export const trustBundleCheck: Check = {
  title: 'trust bundle',
  async run({ kube, namespace }) {
    const core = kube.makeApiClient(CoreV1Api);
    const fix = `the control plane publishes it (tsmesh control --trust-bundle-configmap): kubectl -n ${namespace} logs deployment/tsmesh-control, and check its RBAC on configmaps`;
    try {
      const namespaces = (await core.listNamespace({ labelSelector: INJECTION_LABEL })).items.map((n) => n.metadata?.name ?? '').filter((n) => n !== '');
      if (namespaces.length === 0) return [pass(`no namespace is labelled ${INJECTION_LABEL} yet (kubectl label namespace NAME ${INJECTION_LABEL})`)];
      const missing: string[] = [];
      for (const name of namespaces) {
        try {
          const map = await core.readNamespacedConfigMap({ name: TRUST_BUNDLE_CONFIGMAP, namespace: name });
          if (fingerprints(map.data?.[TRUST_BUNDLE_KEY] ?? '').size === 0) missing.push(`${name} (no certificate under ${TRUST_BUNDLE_KEY})`);
        } catch (error) {
          if (statusOf(error) !== 404) throw error;
          missing.push(name);
        }
      }
      if (missing.length > 0) return [fail(`ConfigMap ${TRUST_BUNDLE_CONFIGMAP} is missing in labelled namespace${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: injected sidecars there cannot verify the CA`, fix)];
      return [pass(`ConfigMap ${TRUST_BUNDLE_CONFIGMAP} present in all ${namespaces.length} namespace${namespaces.length > 1 ? 's' : ''} labelled ${INJECTION_LABEL}`)];
    } catch (error) {
      return [fail(`cannot read namespaces and ConfigMaps: ${describeKubeError(error)}`, 'allow list on namespaces and get on configmaps to this user')];
    }
  },
};

/** `tsmesh check --pre`: can tsmesh be installed here? */
export const PRE_CHECKS: readonly Check[] = [apiServerCheck, gatewayApiCheck, permissionsCheck];
/** `tsmesh check`: is the installation healthy? */
export const INSTALL_CHECKS: readonly Check[] = [apiServerCheck, gatewayApiCheck, tsmeshCrdsCheck, webhookCheck, deploymentsCheck, trustBundleCheck];
