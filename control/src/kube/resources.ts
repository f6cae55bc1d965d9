// The Kubernetes resources discovery lists and watches (the kinds a mesh file holds): one entry per
// kind, with its collection path across namespaces, the selectors that narrow it, and whether it may
// be absent (a CRD).
import type { KubeObject, MeshKind } from '@tsmesh/common';
import { SERVICE_NAME_LABEL } from '@tsmesh/common';

/** A collection a ResourceInformer lists and watches. */
export interface InformedResource {
  readonly kind: string;
  readonly apiVersion: string;
  /** The collection across all namespaces, e.g. `/api/v1/services`. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Served from a CustomResourceDefinition: a 404 means "not installed", and discovery carries on without it. */
  readonly optional: boolean;
}

/** A kind of the mesh model that discovery feeds to it. */
export interface WatchedResource extends InformedResource {
  readonly kind: MeshKind;
  /** Whether a malformed object of this kind gets a Warning Event (kinds people write and `kubectl describe`). */
  readonly reportInvalid: boolean;
  /**
   * An invalid update of an object that was valid keeps its last valid version in the mesh (until it
   * is fixed or deleted): for policies whose silent disappearance would open access (AuthorizationPolicy) or lift a limit (HTTPLocalRateLimitPolicy).
   */
  readonly keepLastValid?: boolean;
}

export const WATCHED_RESOURCES: readonly WatchedResource[] = Object.freeze([
  { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces', optional: false, reportInvalid: true },
  { kind: 'ServiceAccount', apiVersion: 'v1', path: '/api/v1/serviceaccounts', optional: false, reportInvalid: true },
  { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services', optional: false, reportInvalid: true },
  {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    // Only slices that belong to a Service: the mesh routes to Services, and others lack the label it needs.
    labelSelector: SERVICE_NAME_LABEL,
    optional: false,
    // Slices are written by controllers, not people: an Event on one would reach no one.
    reportInvalid: false,
  },
  {
    kind: 'Pod',
    apiVersion: 'v1',
    path: '/api/v1/pods',
    // A finished pod keeps its IP in its status while the IP is given to a new pod.
    fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
    optional: false,
    reportInvalid: true,
  },
  {
    kind: 'PeerAuthentication',
    apiVersion: 'security.tsmesh.io/v1',
    path: '/apis/security.tsmesh.io/v1/peerauthentications',
    optional: true,
    reportInvalid: true,
  },
  {
    kind: 'AuthorizationPolicy',
    apiVersion: 'security.tsmesh.io/v1',
    path: '/apis/security.tsmesh.io/v1/authorizationpolicies',
    optional: true,
    reportInvalid: true,
    keepLastValid: true,
  },
  {
    kind: 'HTTPLocalRateLimitPolicy',
    apiVersion: 'policy.tsmesh.io/v1',
    path: '/apis/policy.tsmesh.io/v1/httplocalratelimitpolicies',
    optional: true,
    reportInvalid: true,
    // A broken edit must not silently lift a limit.
    keepLastValid: true,
  },
  { kind: 'HTTPRoute', apiVersion: 'gateway.networking.k8s.io/v1', path: '/apis/gateway.networking.k8s.io/v1/httproutes', optional: true, reportInvalid: true },
  { kind: 'GRPCRoute', apiVersion: 'gateway.networking.k8s.io/v1', path: '/apis/gateway.networking.k8s.io/v1/grpcroutes', optional: true, reportInvalid: true },
  { kind: 'TrafficPolicy', apiVersion: 'policy.tsmesh.io/v1alpha1', path: '/apis/policy.tsmesh.io/v1alpha1/trafficpolicies', optional: true, reportInvalid: true },
  {
    kind: 'XBackendTrafficPolicy',
    apiVersion: 'gateway.networking.x-k8s.io/v1alpha1',
    // Gateway API's experimental install serves it; without that CRD discovery carries on without it.
    path: '/apis/gateway.networking.x-k8s.io/v1alpha1/xbackendtrafficpolicies',
    optional: true,
    reportInvalid: true,
  },
] satisfies WatchedResource[]);

/**
 * Makes an object from a list or a watch event ready for validation, in place: list items of built-in
 * kinds come without apiVersion and kind, and managedFields (often most of an object) are never read.
 */
export function normalizeObject(resource: InformedResource, object: KubeObject): KubeObject {
  object.apiVersion ??= resource.apiVersion;
  object.kind ??= resource.kind;
  if (object.metadata !== undefined && object.metadata !== null) delete object.metadata['managedFields'];
  return object;
}
