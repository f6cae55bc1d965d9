// Inbound policy: the mTLS mode (PeerAuthentication) each connection to this workload must meet.
export {
  DEFAULT_MTLS_MODE,
  DEFAULT_ROOT_NAMESPACE,
  compileInboundPolicy,
  compileWorkloadPolicy,
  compilePolicies,
  effectiveMtlsMode,
  peerAuthenticationsOf,
  workloadOf,
  type EffectiveMtlsMode,
  type InboundMtlsPolicy,
  type PeerAuthenticationPolicy,
  type PolicyOptions,
  type PolicyProblem,
  type PolicySources,
  type PolicyWorkload,
} from './peer-authentication.js';
export {
  authorizationPoliciesOf,
  compileAuthorization,
  compileWorkloadAuthorization,
  principalOf,
  selects,
  type AuthzDecision,
  type AuthzExplanation,
  type AuthzHttpRequest,
  type AuthzPolicyVerdict,
  type AuthzReason,
  type AuthzRequest,
  type WorkloadAuthorization,
} from './authorization.js';
export { compileRateLimits, compileWorkloadRateLimits, rateLimitPoliciesOf, rateLimitSelects, type RateLimitCounters, type RateLimitOptions, type RateLimitReason, type RateLimitVerdict, type WorkloadRateLimits } from './rate-limit.js';
export { BUCKET_SLOTS, RateBuckets, bucketShape, keyHash, monotonicNs, rateBucketsBuffer, retryAfterSeconds, type BucketRef, type BucketShape, type NanoClock } from './rate-buckets.js';
