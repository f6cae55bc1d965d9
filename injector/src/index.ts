// Public API of @tsmesh/injector: the pure injection core, the webhook app, and the entry points used by
// `tsmesh injector` and `tsmesh inject`.
export { INJECTOR_ERRORS, isUserError, type InjectorErrorCode } from './errors.js';
export {
  INJECTOR_VERSION,
  DEFAULT_IMAGE,
  DEFAULT_CONTROL_PLANE_NAMESPACE,
  DEFAULT_PROXY_RESOURCES,
  makeSettings,
  parseKubernetesVersion,
  useNativeSidecars,
  TRACING_PROVIDERS,
  type InjectionSettings,
  type ProxyResources,
  type ProxyTracing,
  type TracingProvider,
} from './settings.js';
export { ANNOTATIONS, INJECTION_NAMESPACE_LABEL, readPodOptions, type PodOptions } from './annotations.js';
export { decideInjection, injectOverride, neverInjectReason, SYSTEM_NAMESPACES, type Decision, type NamespaceInfo } from './policy.js';
export { injectPod, injectionStatus, type Injection, type InjectionStatus } from './inject.js';
export { rewriteProbes, appHealthPath, type AppProbe, type ProbeRewrite } from './probes.js';
export {
  INIT_CONTAINER_NAME,
  PROXY_CONTAINER_NAME,
  CA_TOKEN_VOLUME,
  TRUST_BUNDLE_VOLUME,
  TRUST_BUNDLE_CONFIGMAP,
  CA_TOKEN_AUDIENCE,
  ENV as SIDECAR_ENV,
  PROXY_PORTS,
  tracingEnv,
  WAIT_READY_COMMAND,
} from './sidecar.js';
export { applyPatch, diff, type PatchOperation } from './jsonpatch.js';
export { parseQuantity } from './quantity.js';
export { readAdmissionReview, allow, allowWithPatch, deny, type AdmissionRequest, type AdmissionReviewResponse } from './admission.js';
export { staticNamespaceLabels, cachedNamespaceLabels, type NamespaceLabels, type Labels } from './namespaces.js';
export { kubeNamespaceLabels, kubernetesVersion, loadKubeConfig } from './kube.js';
export { InjectorMetrics, INJECTOR_METRIC_NAMES, ADMISSION_BUCKETS, PATCH_BUCKETS, admissionResult, type AdmissionResult, type InjectorMetricsOptions } from './metrics.js';
export { buildApp, WEBHOOK_PATH, DEFAULT_BODY_LIMIT, type AppOptions } from './app.js';
export { injectManifests, type InjectedManifests } from './manifests.js';
export {
  injectorConfig,
  injectConfig,
  INJECTOR_HELP,
  INJECT_HELP,
  INJECTOR_ENV,
  DEFAULT_WEBHOOK_SERVICE,
  DEFAULT_WEBHOOK_CA_SECRET,
  type InjectorConfig,
  type InjectConfig,
  type ManagedCertConfig,
} from './config.js';
export { WebhookCertManager, CA_SECRET_KEYS, type WebhookCertOptions } from './tls/manager.js';
export { kubeWebhookApi, type WebhookCertApi, type StoredSecret, type WebhookBundles } from './tls/webhook-api.js';
export { generateCa, issueServingCertificate, type KeyedCertificate } from './tls/certificates.js';
export { startInjector, type RunningInjector, type InjectorDependencies } from './server.js';
