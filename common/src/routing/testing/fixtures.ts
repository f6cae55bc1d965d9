// Test fixtures: Kubernetes-format Services and routes, compiled through a real snapshot, and
// requests built from plain values.
import { buildSnapshot } from '../../mesh/snapshot.js';
import type { KubeObject } from '../../mesh/types.js';
import { compileRoutes } from '../compile.js';
import type { CompiledRoutes, GrpcRequestInfo, HttpRequestInfo, RouteTable } from '../types.js';

let nextIp = 1;

/** A ClusterIP Service with TCP ports (number or [name, number]). */
export function service(namespace: string, name: string, ports: readonly (number | readonly [string, number])[] = [80], extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: {
      clusterIP: `10.96.0.${nextIp++}`,
      ports: ports.map((p) => (typeof p === 'number' ? { name: `p${p}`, port: p } : { name: p[0], port: p[1] })),
      ...extra,
    },
  };
}

export interface RouteOptions {
  /** RFC 3339 `metadata.creationTimestamp`. */
  readonly created?: string;
}

function route(kind: string, namespace: string, name: string, spec: Record<string, unknown>, options: RouteOptions): KubeObject {
  const metadata: KubeObject['metadata'] = { name, namespace };
  if (options.created !== undefined) metadata['creationTimestamp'] = options.created;
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind, metadata, spec };
}

export const httpRoute = (namespace: string, name: string, spec: Record<string, unknown>, options: RouteOptions = {}): KubeObject => route('HTTPRoute', namespace, name, spec, options);
export const grpcRoute = (namespace: string, name: string, spec: Record<string, unknown>, options: RouteOptions = {}): KubeObject => route('GRPCRoute', namespace, name, spec, options);

/** A parentRef to a Service, as GAMMA writes it. */
export const parent = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ group: '', kind: 'Service', name, ...extra });
/** A backendRef to a Service port. */
export const backend = (name: string, port = 80, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, port, ...extra });

export function compile(objects: readonly KubeObject[]): CompiledRoutes {
  return compileRoutes(buildSnapshot(objects, 'test'));
}

export function tableOf(compiled: CompiledRoutes, namespace: string, name: string, port = 80): RouteTable {
  const table = compiled.table(namespace, name, port);
  if (table === undefined) throw new Error(`no route table for ${namespace}/${name}:${port}`);
  return table;
}

export interface RequestParts {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  readonly clientNamespace?: string;
}

/** An HTTP request; `path` may carry a query string, split off as the proxy would. */
export function request(parts: RequestParts = {}): HttpRequestInfo {
  const target = parts.path ?? '/';
  const q = target.indexOf('?');
  const headers = new Map(Object.entries(parts.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    method: parts.method ?? 'GET',
    path: q === -1 ? target : target.slice(0, q),
    query: new URLSearchParams(q === -1 ? '' : target.slice(q + 1)),
    headers: (name) => headers.get(name),
    clientNamespace: parts.clientNamespace,
  };
}

export function grpcCall(service: string, method: string, headers: Record<string, string> = {}, clientNamespace?: string): GrpcRequestInfo {
  const map = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { service, method, headers: (name) => map.get(name), clientNamespace };
}
