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

type Narrowing = Partial<Pick<WatchedResource, 'labelSelector' | 'fieldSelector' | 'reportInvalid' | 'keepLastValid'>>;

/** A kind's collection across namespaces: `/api/v1/<plural>` for the core group, `/apis/<group>/<version>/<plural>` otherwise. */
function collectionPath(apiVersion: string, plural: string): string {
  return `${apiVersion.includes('/') ? '/apis' : '/api'}/${apiVersion}/${plural}`;
}

/** A kind every cluster serves; a malformed object gets a Warning Event unless `reportInvalid` says otherwise. */
function builtIn(kind: MeshKind, apiVersion: string, plural: string, narrowing: Narrowing = {}): WatchedResource {
  return { kind, apiVersion, path: collectionPath(apiVersion, plural), optional: false, reportInvalid: true, ...narrowing };
}

/** A kind served from a CustomResourceDefinition, which may not be installed. */
function custom(kind: MeshKind, apiVersion: string, plural: string, narrowing: Narrowing = {}): WatchedResource {
  return { ...builtIn(kind, apiVersion, plural, narrowing), optional: true };
}

export const WATCHED_RESOURCES: readonly WatchedResource[] = Object.freeze([
  builtIn('Namespace', 'v1', 'namespaces'),
  builtIn('ServiceAccount', 'v1', 'serviceaccounts'),
  builtIn('Service', 'v1', 'services'),
  builtIn('EndpointSlice', 'discovery.k8s.io/v1', 'endpointslices', {
    // Only slices that belong to a Service: the mesh routes to Services, and others lack the label it needs.
    labelSelector: SERVICE_NAME_LABEL,
    // Slices are written by controllers, not people: an Event on one would reach no one.
    reportInvalid: false,
  }),
  // A finished pod keeps its IP in its status while the IP is given to a new pod.
  builtIn('Pod', 'v1', 'pods', { fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' }),
  custom('PeerAuthentication', 'security.tsmesh.io/v1', 'peerauthentications'),
  custom('AuthorizationPolicy', 'security.tsmesh.io/v1', 'authorizationpolicies', { keepLastValid: true }),
  // A broken edit must not silently lift a limit.
  custom('HTTPLocalRateLimitPolicy', 'policy.tsmesh.io/v1', 'httplocalratelimitpolicies', { keepLastValid: true }),
  custom('HTTPRoute', 'gateway.networking.k8s.io/v1', 'httproutes'),
  custom('GRPCRoute', 'gateway.networking.k8s.io/v1', 'grpcroutes'),
  custom('TrafficPolicy', 'policy.tsmesh.io/v1alpha1', 'trafficpolicies'),
  // Gateway API's experimental install serves it; without that CRD discovery carries on without it.
  custom('XBackendTrafficPolicy', 'gateway.networking.x-k8s.io/v1alpha1', 'xbackendtrafficpolicies'),
]);

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
