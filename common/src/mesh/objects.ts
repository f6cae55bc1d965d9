// Validation and normalisation of Kubernetes-format objects of the kinds the mesh reads. One entry
// per kind in KINDS; each turns a raw object into its typed model value or an error naming the
// object, the field and the bad value.
import { MESH_ERRORS, TsmeshError, err, ok, type Result } from '../errors.js';
import { FieldChecker, describeValue, isRecord, type Problem } from './fields.js';
import { authorizationPolicyKind, type MeshAuthorizationPolicy } from './kinds/authorization-policy.js';
import { namespaceKind, serviceAccountKind, type MeshNamespace, type MeshServiceAccount } from './kinds/account.js';
import { endpointSliceKind, type MeshEndpointSlice } from './kinds/endpoint-slice.js';
import type { KindDefinition, ObjectMeta } from './kinds/kind.js';
import { peerAuthenticationKind, type MeshPeerAuthentication } from './kinds/peer-authentication.js';
import { podKind, type MeshPodDetails } from './kinds/pod.js';
import { httpLocalRateLimitPolicyKind, type MeshHTTPLocalRateLimitPolicy } from './kinds/rate-limit-policy.js';
import { grpcRouteKind, httpRouteKind, tcpRouteKind, tlsRouteKind, type MeshRoute } from './kinds/route.js';
import { gatewayClassKind, gatewayKind, referenceGrantKind, type MeshGateway, type MeshGatewayClass, type MeshReferenceGrant } from './kinds/gateway.js';
import { secretKind, type MeshSecret } from './kinds/secret.js';
import { serviceKind } from './kinds/service.js';
import { backendTrafficPolicyKind } from './kinds/backend-traffic-policy.js';
import { trafficPolicyKind } from './kinds/traffic-policy.js';
import type { MeshBackendTrafficPolicy, MeshTrafficPolicy } from './traffic-policy.js';
import type { KubeObject, MeshService } from './types.js';

export const DEFAULT_NAMESPACE = 'default';

/** The model value each supported kind normalises to. */
export interface MeshKindValues {
  Service: MeshService;
  EndpointSlice: MeshEndpointSlice;
  Pod: MeshPodDetails;
  ServiceAccount: MeshServiceAccount;
  Namespace: MeshNamespace;
  PeerAuthentication: MeshPeerAuthentication;
  AuthorizationPolicy: MeshAuthorizationPolicy;
  HTTPLocalRateLimitPolicy: MeshHTTPLocalRateLimitPolicy;
  HTTPRoute: MeshRoute;
  GRPCRoute: MeshRoute;
  TLSRoute: MeshRoute;
  TCPRoute: MeshRoute;
  TrafficPolicy: MeshTrafficPolicy;
  XBackendTrafficPolicy: MeshBackendTrafficPolicy;
  GatewayClass: MeshGatewayClass;
  Gateway: MeshGateway;
  ReferenceGrant: MeshReferenceGrant;
  Secret: MeshSecret;
}

export type MeshKind = keyof MeshKindValues;

/**
 * A validated object: the raw object (namespace defaulted), its normalised value, and the warnings
 * about values kept as written that may not do what was meant (e.g. an unknown algorithm name).
 */
export type MeshObject = {
  [K in MeshKind]: { readonly kind: K; readonly object: KubeObject; readonly value: MeshKindValues[K]; readonly warnings?: readonly Problem[] };
}[MeshKind];

const KINDS: { readonly [K in MeshKind]: KindDefinition<MeshKindValues[K]> } = {
  Service: serviceKind,
  EndpointSlice: endpointSliceKind,
  Pod: podKind,
  ServiceAccount: serviceAccountKind,
  Namespace: namespaceKind,
  PeerAuthentication: peerAuthenticationKind,
  AuthorizationPolicy: authorizationPolicyKind,
  HTTPLocalRateLimitPolicy: httpLocalRateLimitPolicyKind,
  HTTPRoute: httpRouteKind,
  GRPCRoute: grpcRouteKind,
  TLSRoute: tlsRouteKind,
  TCPRoute: tcpRouteKind,
  TrafficPolicy: trafficPolicyKind,
  XBackendTrafficPolicy: backendTrafficPolicyKind,
  GatewayClass: gatewayClassKind,
  Gateway: gatewayKind,
  ReferenceGrant: referenceGrantKind,
  Secret: secretKind,
};

export function isMeshKind(kind: string): kind is MeshKind {
  return Object.hasOwn(KINDS, kind);
}

export const SUPPORTED_KINDS: readonly MeshKind[] = Object.freeze(Object.keys(KINDS) as MeshKind[]);

/** One object refused: which object (as far as known) and why. */
export class MeshObjectError extends TsmeshError {
  readonly kind: string | undefined;
  readonly namespace: string | undefined;
  readonly objectName: string | undefined;
  /** Every problem found, in field order; the message lists them. */
  readonly problems: readonly Problem[];

  constructor(code: string, identity: ObjectIdentity, problems: readonly Problem[]) {
    super(code, `${describeObject(identity)}: ${problems.map(formatProblem).join('; ')}`);
    this.name = 'MeshObjectError';
    this.kind = identity.kind;
    this.namespace = identity.namespace;
    this.objectName = identity.name;
    this.problems = problems;
  }

  /** The reason without the object's name, e.g. `spec.ports[0].port: must be ...`. */
  get reason(): string {
    return this.problems.map(formatProblem).join('; ');
  }
}

export interface ObjectIdentity {
  readonly kind: string | undefined;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

/** `Service default/web`, `Namespace shop`, `object` when nothing is known. */
export function describeObject(identity: ObjectIdentity): string {
  const name = identity.name ?? '(unnamed)';
  const qualified = identity.namespace === undefined || identity.namespace === '' ? name : `${identity.namespace}/${name}`;
  return `${identity.kind ?? 'object'} ${qualified}`;
}

function formatProblem(problem: Problem): string {
  return problem.path === '' ? problem.reason : `${problem.path}: ${problem.reason}`;
}

/** The identity of a raw object as far as it can be read, for error messages. */
export function identify(raw: unknown): ObjectIdentity {
  if (!isRecord(raw)) return { kind: undefined, namespace: undefined, name: undefined };
  const meta = isRecord(raw['metadata']) ? raw['metadata'] : {};
  const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const kind = text(raw['kind']);
  const namespaced = kind === undefined || !isMeshKind(kind) || KINDS[kind].namespaced;
  return {
    kind,
    namespace: namespaced ? (text(meta['namespace']) ?? DEFAULT_NAMESPACE) : undefined,
    name: text(meta['name']),
  };
}

/**
 * Checks one raw object of a supported kind and normalises it. Refuses (as a value, never a throw)
 * an unknown kind or apiVersion (TSMESH_ERR_MESH_UNKNOWN_KIND) and an invalid object
 * (TSMESH_ERR_MESH_INVALID_OBJECT), naming every bad field.
 */
export function validateObject(raw: unknown): Result<MeshObject, MeshObjectError> {
  const identity = identify(raw);
  if (!isRecord(raw)) {
    return err(new MeshObjectError(MESH_ERRORS.MESH_INVALID_OBJECT, identity, [{ path: '', reason: `must be a mapping, got ${describeValue(raw)}` }]));
  }
  const check = new FieldChecker();
  const kind = check.string(raw['kind'], 'kind', true);
  const apiVersion = check.string(raw['apiVersion'], 'apiVersion', true);
  if (kind === undefined || apiVersion === undefined) {
    return err(new MeshObjectError(MESH_ERRORS.MESH_INVALID_OBJECT, identity, check.problems));
  }
  if (!isMeshKind(kind)) {
    const reason = `unknown kind ${describeValue(kind)} (apiVersion ${apiVersion}); supported kinds: ${SUPPORTED_KINDS.join(', ')}`;
    return err(new MeshObjectError(MESH_ERRORS.MESH_UNKNOWN_KIND, identity, [{ path: 'kind', reason }]));
  }
  const definition: KindDefinition<MeshKindValues[MeshKind]> = KINDS[kind];
  if (apiVersion !== definition.apiVersion) {
    const reason = `unsupported apiVersion ${describeValue(apiVersion)} for kind ${kind} (expected ${definition.apiVersion})`;
    return err(new MeshObjectError(MESH_ERRORS.MESH_UNKNOWN_KIND, identity, [{ path: 'apiVersion', reason }]));
  }
  const meta = objectMeta(check, raw['metadata'], definition);
  const value = definition.normalize(check, meta, raw);
  if (check.problems.length > 0) {
    return err(new MeshObjectError(MESH_ERRORS.MESH_INVALID_OBJECT, identity, check.problems));
  }
  const metadata = definition.namespaced ? { ...(raw['metadata'] as KubeObject['metadata']), namespace: meta.namespace } : (raw['metadata'] as KubeObject['metadata']);
  const object: KubeObject = { ...raw, apiVersion, kind, metadata };
  const warnings = check.warnings.length > 0 ? { warnings: Object.freeze([...check.warnings]) } : {};
  return ok({ kind, object, value, ...warnings } as MeshObject);
}

function objectMeta(check: FieldChecker, value: unknown, definition: KindDefinition<unknown>): ObjectMeta {
  const metadata = check.object(value, 'metadata', true) ?? {};
  const name = check[definition.nameRule](metadata['name'], 'metadata.name', true) ?? '';
  const namespace = definition.namespaced ? (check.dnsLabel(metadata['namespace'], 'metadata.namespace') ?? DEFAULT_NAMESPACE) : '';
  return {
    name,
    namespace,
    labels: Object.freeze(check.stringMap(metadata['labels'], 'metadata.labels')),
    annotations: Object.freeze(check.stringMap(metadata['annotations'], 'metadata.annotations')),
  };
}
