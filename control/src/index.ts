// Public API of @tsmesh/control: discovery of the mesh (from Kubernetes or a mesh file), its
// distribution to sidecars, the route status it writes back, and the control plane's configuration. The fake API server is for tests.
export { CONTROL_ERRORS, type ControlErrorCode } from './errors.js';
export { controlPlaneConfig, parseListenAddress, CONTROL_ENV, type ControlConfig, type ControlPlaneConfig, type DistributionConfig, type ListenAddress, type MeshSourceConfig } from './config.js';
export {
  KubernetesSource,
  DEFAULT_ABSENT_RETRY_MS,
  DEFAULT_DEBOUNCE_MS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_PAGE_SIZE,
  DEFAULT_SYNC_TIMEOUT_MS,
  type KubernetesSourceOptions,
} from './kube/kubernetes.js';
export type { InformerState, InformerStatus } from './kube/informer.js';
export { WATCHED_RESOURCES, type WatchedResource } from './kube/resources.js';
export { KubeApiError } from './kube/kube-http.js';
export { EVENT_COMPONENT, INVALID_OBJECT_REASON } from './kube/events.js';
export type { BackoffOptions } from './kube/backoff.js';
export { createMeshProvider, loadKubeConfig, type ProviderOptions } from './kube/provider.js';
export {
  RouteStatusWriter,
  MESH_CONTROLLER_NAME,
  DEFAULT_CONFLICT_WAIT_MS,
  DEFAULT_STATUS_DEBOUNCE_MS,
  DEFAULT_STATUS_MAX_ATTEMPTS,
  statusPath,
  type RouteStatusWriterOptions,
  type StatusClient,
} from './status/index.js';
export {
  TrustBundlePublisher,
  TRUST_BUNDLE_LABELS,
  DEFAULT_EXCLUDED_NAMESPACES,
  DEFAULT_PUBLISH_DEBOUNCE_MS,
  DEFAULT_RESYNC_MS,
  type TrustBundlePublisherOptions,
  type TrustBundlePublisherStatus,
} from './trust/publisher.js';
export { readServingTls, startControlPlane, DEFAULT_TLS_RELOAD_MS, type RunningControlPlane, type StartControlPlaneOptions } from './server.js';
export * from './distribution/index.js';
export { ControlMetrics, CONTROL_METRIC_NAMES, PUSH_BUCKETS, nackKind, type ControlMetricsOptions, type NackKind } from './metrics.js';
export { createAdminServer, ADMIN_ENDPOINTS } from './admin.js';
