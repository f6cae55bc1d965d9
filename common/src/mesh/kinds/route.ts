// HTTPRoute and GRPCRoute (gateway.networking.k8s.io/v1, GAMMA), TLSRoute and TCPRoute (v1alpha2,
// for `tsmesh gateway`'s TLS passthrough and TCP listeners): checked only as far as attaching them needs
// (parentRefs); the routing stage interprets the rest of the raw spec.
import type { FieldChecker } from '../fields.js';
import type { KindDefinition, ObjectMeta } from './kind.js';

export interface MeshRoute {
  readonly kind: 'HTTPRoute' | 'GRPCRoute' | 'TLSRoute' | 'TCPRoute';
  readonly namespace: string;
  readonly name: string;
  /** `spec.parentRefs` as written; each entry is a mapping with a `name`. */
  readonly parentRefs: readonly Readonly<Record<string, unknown>>[];
  /** The raw `spec`. */
  readonly spec: Readonly<Record<string, unknown>>;
}

function routeKind(kind: MeshRoute['kind'], apiVersion = 'gateway.networking.k8s.io/v1'): KindDefinition<MeshRoute> {
  return {
    apiVersion,
    namespaced: true,
    nameRule: 'dnsSubdomain',
    normalize: (check, meta, raw) => normalizeRoute(kind, check, meta, raw),
  };
}

function normalizeRoute(kind: MeshRoute['kind'], check: FieldChecker, meta: ObjectMeta, raw: Readonly<Record<string, unknown>>): MeshRoute {
  const spec = check.object(raw['spec'], 'spec', true) ?? {};
  const parentRefs: Record<string, unknown>[] = [];
  (check.array(spec['parentRefs'], 'spec.parentRefs', true) ?? []).forEach((item, i) => {
    const ref = check.object(item, `spec.parentRefs[${i}]`, true);
    if (ref !== undefined && check.string(ref['name'], `spec.parentRefs[${i}].name`, true) !== undefined) parentRefs.push(ref);
  });
  return Object.freeze({ kind, namespace: meta.namespace, name: meta.name, parentRefs: Object.freeze(parentRefs), spec });
}

export const httpRouteKind = routeKind('HTTPRoute');
export const grpcRouteKind = routeKind('GRPCRoute');
export const tlsRouteKind = routeKind('TLSRoute', 'gateway.networking.k8s.io/v1alpha2');
export const tcpRouteKind = routeKind('TCPRoute', 'gateway.networking.k8s.io/v1alpha2');
