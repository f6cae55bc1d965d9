// TSM0101-TSM0105: HTTPRoutes and GRPCRoutes that point at nothing — a backend Service or port
// that does not exist, a parent Service or Gateway that does not exist — and backends in another
// namespace without a ReferenceGrant (refused behind a Gateway; accepted by tsmesh's mesh, GEP-1426).
import { GATEWAY_GROUP, referenceGranted, type MeshRoute } from '@tsmesh/common';
import type { Analyzer } from '../analyzer.js';
import type { MeshIndex } from '../mesh.js';
import { message, type Message } from '../messages.js';

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCore = (group: unknown): boolean => group === undefined || group === null || group === '' || group === 'core';

interface Parent {
  readonly kind: 'Service' | 'Gateway';
  readonly namespace: string;
  readonly name: string;
}

/** The parentRefs tsmesh attaches to (Services, Gateways of the Gateway API group); others are skipped. */
export function parentsOf(route: MeshRoute): Parent[] {
  const parents: Parent[] = [];
  for (const ref of route.parentRefs) {
    const name = ref['name'];
    if (typeof name !== 'string') continue;
    const namespace = typeof ref['namespace'] === 'string' ? ref['namespace'] : route.namespace;
    const kind = ref['kind'] ?? 'Gateway';
    const group = ref['group'] ?? GATEWAY_GROUP;
    if (kind === 'Service' && isCore(ref['group'])) parents.push({ kind, namespace, name });
    else if (kind === 'Gateway' && group === GATEWAY_GROUP) parents.push({ kind, namespace, name });
  }
  return parents;
}

export interface BackendRef {
  /** `rule 0 backendRef 1`, for messages. */
  readonly at: string;
  readonly namespace: string;
  readonly name: string;
  readonly port: unknown;
}

/** The Service backendRefs of every rule, as written (other kinds are not Services and are skipped). */
export function backendRefsOf(route: MeshRoute): BackendRef[] {
  const refs: BackendRef[] = [];
  const rules = Array.isArray(route.spec['rules']) ? (route.spec['rules'] as unknown[]) : [];
  rules.forEach((rule, i) => {
    const list = isRecord(rule) && Array.isArray(rule['backendRefs']) ? (rule['backendRefs'] as unknown[]) : [];
    list.forEach((ref, j) => {
      if (!isRecord(ref) || typeof ref['name'] !== 'string') return;
      if (!isCore(ref['group']) || (ref['kind'] ?? 'Service') !== 'Service') return;
      const namespace = typeof ref['namespace'] === 'string' ? ref['namespace'] : route.namespace;
      refs.push({ at: `rule ${i} backendRef ${j}`, namespace, name: ref['name'], port: ref['port'] });
    });
  });
  return refs;
}

function analyzeRoute(mesh: MeshIndex, route: MeshRoute): Message[] {
  const found: Message[] = [];
  const self = { kind: route.kind, namespace: route.namespace, name: route.name };
  const parents = parentsOf(route);
  for (const parent of parents) {
    const exists = parent.kind === 'Service' ? mesh.service(parent.namespace, parent.name) : mesh.gateway(parent.namespace, parent.name);
    if (exists === undefined) {
      const what = parent.kind === 'Service' ? 'callers of that Service' : 'requests to that Gateway';
      found.push(message('parentNotFound', self, `parentRef ${parent.kind} ${parent.namespace}/${parent.name} does not exist: the route attaches to nothing there and ${what} are not routed by it`));
    }
  }
  const behindGateway = parents.some((p) => p.kind === 'Gateway');
  for (const ref of backendRefsOf(route)) {
    const target = `Service ${ref.namespace}/${ref.name}`;
    const service = mesh.service(ref.namespace, ref.name);
    if (service === undefined) {
      found.push(message('backendServiceNotFound', self, `${ref.at} names ${target}, which does not exist: its share of requests fails with 500`));
    } else if (typeof ref.port !== 'number') {
      found.push(message('backendPortNotFound', self, `${ref.at} names ${target} without a port, which a Service backend needs: the rule is dropped (the Service exposes ${service.ports.map((p) => p.port).join(', ') || 'no port'})`));
    } else if (!service.ports.some((p) => p.port === ref.port)) {
      found.push(message('backendPortNotFound', self, `${ref.at} names port ${ref.port} of ${target}, which exposes ${service.ports.map((p) => p.port).join(', ') || 'no port'}: its share of requests fails with 500`));
    }
    if (ref.namespace === route.namespace) continue;
    const granted = referenceGranted(mesh.grants, { group: GATEWAY_GROUP, kind: route.kind, namespace: route.namespace }, { group: '', kind: 'Service', namespace: ref.namespace, name: ref.name });
    if (granted) continue;
    if (behindGateway) {
      found.push(message('gatewayBackendNotGranted', self, `${ref.at} names ${target} in another namespace and no ReferenceGrant in ${ref.namespace} permits it: the gateway refuses that backend (RefNotPermitted)`));
    } else {
      found.push(message('meshBackendNotGranted', self, `${ref.at} names ${target} in another namespace without a ReferenceGrant in ${ref.namespace}: tsmesh's mesh routes it, a Gateway parent would not`));
    }
  }
  return found;
}

export const routeAnalyzer: Analyzer = {
  name: 'routes',
  reports: ['backendServiceNotFound', 'backendPortNotFound', 'parentNotFound', 'gatewayBackendNotGranted', 'meshBackendNotGranted'],
  analyze: (mesh) => mesh.routes.flatMap((route) => analyzeRoute(mesh, route)),
};
