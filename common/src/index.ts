export * from './errors.js';
export * from './logger.js';
export * from './mesh/types.js';
export { declaredProtocol } from './mesh/protocol.js';
export { canonicalIp } from './mesh/ip.js';
export type { Problem } from './mesh/fields.js';
export {
  DEFAULT_NAMESPACE,
  SUPPORTED_KINDS,
  MeshObjectError,
  describeObject,
  identify,
  isMeshKind,
  validateObject,
  type MeshKind,
  type MeshKindValues,
  type MeshObject,
  type ObjectIdentity,
} from './mesh/objects.js';
export { LOAD_BALANCER_ANNOTATION, LOCALITY_ANNOTATION } from './mesh/kinds/service.js';
export {
  DEFAULT_LOAD_BALANCER,
  LOAD_BALANCERS,
  RING_HASH,
  isKnownLoadBalancer,
  unknownLoadBalancerWarning,
  type KnownLoadBalancer,
} from './mesh/load-balancers.js';
export { SERVICE_NAME_LABEL, type MeshEndpointSlice, type SliceEndpoint, type SlicePort } from './mesh/kinds/endpoint-slice.js';
export { DEFAULT_SERVICE_ACCOUNT, PROXY_CONTAINER, STATUS_ANNOTATION, type MeshPodDetails } from './mesh/kinds/pod.js';
export type { MeshNamespace, MeshServiceAccount } from './mesh/kinds/account.js';
export {
  AUTHZ_ACTIONS,
  type AuthzAction,
  type AuthzCondition,
  type AuthzConditionKey,
  type AuthzOperation,
  type AuthzRule,
  type AuthzSource,
  type MeshAuthorizationPolicy,
} from './mesh/kinds/authorization-policy.js';
export {
  MAX_REQUESTS_PER_SECOND,
  RATE_LIMIT_API_VERSION,
  type MeshHTTPLocalRateLimitPolicy,
  type RateLimitClientRef,
  type RateLimitOverride,
  type RateLimitRoute,
} from './mesh/kinds/rate-limit-policy.js';
export { MTLS_MODES, type MeshPeerAuthentication, type MtlsMode } from './mesh/kinds/peer-authentication.js';
export type { MeshRoute } from './mesh/kinds/route.js';
export {
  GATEWAY_GROUP,
  isGatewayHostname,
  selectorMatches,
  type AllowedRoutes,
  type LabelSelector,
  type ListenerProtocol,
  type MeshGateway,
  type MeshGatewayClass,
  type MeshListener,
  type MeshReferenceGrant,
  type ObjectRef,
} from './mesh/kinds/gateway.js';
export { redactSecret, TLS_SECRET_TYPE, type MeshSecret } from './mesh/kinds/secret.js';
export { TRAFFIC_POLICY_API_VERSION } from './mesh/kinds/traffic-policy.js';
export { BACKEND_TRAFFIC_POLICY_API_VERSION } from './mesh/kinds/backend-traffic-policy.js';
export {
  DEFAULT_CONNECTION_POOL,
  DEFAULT_OUTLIER_DETECTION,
  NO_POLICY_OUTLIER_DETECTION,
  SUCCESS_RATE_DEFAULTS,
  DEFAULT_RETRY_BUDGET,
  GRPC_STATUS_CODES,
  TRAFFIC_POLICY_DEFAULTS,
  effectiveTrafficPolicy,
  type ConnectionPoolSettings,
  type EffectiveTrafficPolicy,
  type HashSource,
  type MeshBackendTrafficPolicy,
  type MeshTrafficPolicy,
  type OutlierDetectionSettings,
  type PolicyRef,
  type PolicyTargetRef,
  type RetryBudgetSettings,
  type ServiceRetrySettings,
  type SessionPersistence,
} from './mesh/traffic-policy.js';
export { MeshFileError, parseMeshFile, parseMeshObjects, type MeshFileLocation } from './mesh/file.js';
export {
  DEFAULT_MESH_LIMITS,
  DEFAULT_PARSE_BUDGET,
  MESH_LIMIT_RANGES,
  formatBytes,
  parseByteSize,
  parseMeshLimits,
  type MeshLimits,
  type ParseBudget,
} from './mesh/limits.js';
export { findExcessJsonNesting, findExcessNesting, type NestingExcess } from './mesh/nesting.js';
export { parseOffThread, serveParseJob, type ParseRefusal, type ParsedObjects } from './mesh/off-thread.js';
export { buildSnapshot, buildSnapshotFrom, buildSnapshotInSlices, contentVersion, snapshotObjects } from './mesh/snapshot.js';
export { MeshFileSource, type MeshFileSourceOptions } from './mesh/watch.js';
export { SnapshotListeners } from './mesh/listeners.js';
export * from './routing/index.js';
export * from './distribution/index.js';
export { TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from './trust-bundle.js';
export { SIDECAR_NODE_FLAGS, SIDECAR_NODE_OPTIONS, SIDECAR_SEMI_SPACE_MB, SIDECAR_YOUNG_GENERATION_MB } from './sidecar-runtime.js';
export { nodeHttp } from './node-http.js';
export {
  formatSpiffeId,
  isNamespaceName,
  isServiceAccountName,
  isTrustDomain,
  MAX_SPIFFE_ID_LENGTH,
  parseSpiffeId,
  parseSpiffeIdParts,
  principalOf,
  SPIFFE_SCHEME,
  type SpiffeIdentity,
} from './identity/spiffe.js';
export { Backoff, backoffDelayMs, type BackoffWindow } from './backoff.js';
export { MaxDelayDebounce, type DebounceOptions } from './debounce.js';
export * from './sidecar-ports.js';
export { durationFlag, formatDuration, parseDuration, readFlags, type Flags, type FlagSpec } from './flags.js';
export { workloadFromPodName } from './mesh/workload.js';
export { DEFAULT_ROOT_NAMESPACE, policySelects, type ScopedPolicy, type ScopedWorkload } from './mesh/policy-scope.js';
