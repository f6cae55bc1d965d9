// TLSRoute and TCPRoute (gateway.networking.k8s.io/v1alpha2) for `tsmesh gateway`'s TLS
// Passthrough and TCP listeners: parsed into the weighted Service backends a connection goes to
// once the ClientHello's server name (TLSRoute) or the port alone (TCPRoute) picked the route. The connection is relayed opaque, so a route has no matches: the rules'
// backendRefs together form one weighted set. Attachment (listeners, allowedRoutes, hostnames) is
// gateway.ts's, shared with HTTPRoute and GRPCRoute. Pure.
import { describeValue, isMissing, isRecord } from '../mesh/fields.js';
import type { BackendFailure } from './report.js';
import type { RouteSource } from './compile.js';
import type { WeightedBackend } from './types.js';

export const TLS_ROUTE_API_VERSION = 'gateway.networking.k8s.io/v1alpha2';
const DEFAULT_NAMESPACE = 'default';
const MAX_WEIGHT = 1_000_000;

/** A TLSRoute or TCPRoute: routes of whole connections. */
export interface TlsRouteRef {
  readonly kind: 'TLSRoute' | 'TCPRoute';
  readonly namespace: string;
  readonly name: string;
}

/** One TLSRoute, its backends resolved (a bad one keeps its weight and refuses its share). */
export interface ParsedTlsRoute {
  readonly ref: TlsRouteRef;
  readonly origin: { readonly created: number; readonly key: string };
  readonly parentRefs: readonly unknown[];
  readonly spec: unknown;
  /** One entry per rule that is programmed (TLSRoute rules have only backendRefs). */
  readonly rules: readonly { readonly backends: readonly WeightedBackend[] }[];
  /** Every rule's backends, in order: the weighted set a connection picks from. */
  readonly backends: readonly WeightedBackend[];
  readonly dropped: readonly string[];
  readonly unresolved: readonly BackendFailure[];
  readonly warnings: readonly string[];
}

/** Every TLSRoute and TCPRoute of the source, oldest first (then by namespace/name, the spec's tie-break). */
export function parseTlsRoutes(source: RouteSource): ParsedTlsRoute[] {
  return source.others
    .filter((o) => (o.kind === 'TLSRoute' || o.kind === 'TCPRoute') && o.apiVersion === TLS_ROUTE_API_VERSION)
    .map((o) => {
      const namespace = typeof o.metadata.namespace === 'string' && o.metadata.namespace !== '' ? o.metadata.namespace : DEFAULT_NAMESPACE;
      const name = o.metadata.name ?? '';
      const stamp = o.metadata['creationTimestamp'];
      const created = typeof stamp === 'string' && Number.isFinite(Date.parse(stamp)) ? Date.parse(stamp) : Number.POSITIVE_INFINITY;
      return parseTlsRoute({ kind: o.kind as TlsRouteRef['kind'], namespace, name }, { created, key: `${namespace}/${name}` }, o['spec'], source);
    })
    .sort((a, b) => a.origin.created - b.origin.created || (a.origin.key < b.origin.key ? -1 : a.origin.key > b.origin.key ? 1 : 0));
}

function parseTlsRoute(ref: TlsRouteRef, origin: ParsedTlsRoute['origin'], spec: unknown, source: RouteSource): ParsedTlsRoute {
  const at = `${ref.kind} ${ref.namespace}/${ref.name}`;
  const fields = ref.kind === 'TLSRoute' ? ['parentRefs', 'hostnames', 'rules'] : ['parentRefs', 'rules'];
  const s = isRecord(spec) ? spec : {};
  const warnings: string[] = [];
  const dropped: string[] = [];
  const unresolved: BackendFailure[] = [];
  for (const key of Object.keys(s)) if (!fields.includes(key)) warnings.push(`${at}: spec.${key} is not a field tsmesh knows (ignored)`);
  const rawRules = Array.isArray(s['rules']) ? s['rules'] : [];
  if (!isMissing(s['rules']) && !Array.isArray(s['rules'])) warnings.push(`${at}: spec.rules must be a list, got ${describeValue(s['rules'])} (route not attached)`);
  const rules: { backends: WeightedBackend[] }[] = [];
  rawRules.forEach((raw, index) => {
    const refs = isRecord(raw) ? raw['backendRefs'] : undefined;
    if (!Array.isArray(refs) || refs.length === 0) {
      dropped.push(`Dropped Rule ${index}: backendRefs must be a list of 1 to 16 references`);
      return;
    }
    const backends: WeightedBackend[] = [];
    for (const [i, item] of refs.entries()) {
      const where = `rule ${index} backendRefs[${i}]`;
      const backend = parseBackend(item, ref.namespace, where, source, unresolved);
      if (typeof backend === 'string') {
        dropped.push(`Dropped Rule ${index}: ${backend}`);
        return;
      }
      backends.push(backend);
    }
    rules.push({ backends });
  });
  return Object.freeze({ ref: Object.freeze(ref), origin, parentRefs: Array.isArray(s['parentRefs']) ? s['parentRefs'] : [], spec, rules, backends: Object.freeze(rules.flatMap((r) => r.backends)), dropped, unresolved, warnings });
}

/** A backend, or why the whole rule is invalid (a string). */
function parseBackend(item: unknown, routeNamespace: string, where: string, source: RouteSource, unresolved: BackendFailure[]): WeightedBackend | string {
  if (!isRecord(item) || typeof item['name'] !== 'string' || item['name'] === '') return `${where}.name must be a non-empty string`;
  const weight = item['weight'] ?? 1;
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT) return `${where}.weight must be an integer from 0 to ${MAX_WEIGHT}, got ${describeValue(weight)}`;
  const port = item['port'];
  const namespace = typeof item['namespace'] === 'string' && item['namespace'] !== '' ? item['namespace'] : routeNamespace;
  const name = item['name'];
  const group = item['group'] ?? '';
  const kind = item['kind'] ?? 'Service';
  if ((group !== '' && group !== 'core') || kind !== 'Service') {
    unresolved.push({ reason: 'InvalidKind', message: `${where} refers to ${describeValue(group)}/${describeValue(kind)}; only core Services are backends` });
    return Object.freeze({ namespace, name, port: undefined, weight, problem: 'InvalidKind' });
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return `${where}.port is required for a Service (1 to 65535), got ${describeValue(port)}`;
  const service = source.service(namespace, name);
  if (service === undefined || !service.ports.some((p) => p.port === port && p.protocol === 'TCP')) {
    unresolved.push({ reason: 'BackendNotFound', message: `${where}: Service ${namespace}/${name} ${service ? `has no TCP port ${port}` : 'does not exist'}` });
    return Object.freeze({ namespace, name, port, weight, problem: 'BackendNotFound' });
  }
  return Object.freeze({ namespace, name, port, weight, problem: undefined });
}
