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
