// `tsmesh analyze` against a cluster: every object of the kinds the analyzers read, listed across all
// namespaces through the Kubernetes API (raw JSON, validated as the control plane validates it).
// Findings are narrowed to namespaces afterwards: a route in one namespace may name a Service in
// another, and a mesh-wide policy lives in the control-plane namespace.
import { IsomorphicFetchHttpLibrary, RequestContext, HttpMethod, type KubeConfig } from '@kubernetes/client-node';
import { SUPPORTED_KINDS, identify, validateObject, type KubeObject, type MeshObject } from '@tsmesh/common';
import type { AnalysisInput, InvalidObject } from './mesh.js';

export interface ListedResource {
  readonly kind: string;
  readonly apiVersion: string;
  /** The collection across namespaces. */
  readonly path: string;
  readonly fieldSelector?: string;
  /** Served from a CRD: 404 means none exist (the CRD is not installed). */
  readonly optional: boolean;
}

export const LISTED_RESOURCES: readonly ListedResource[] = Object.freeze([
  { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces', optional: false },
  { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services', optional: false },
  // Finished pods keep their labels but are no workload any more.
  { kind: 'Pod', apiVersion: 'v1', path: '/api/v1/pods', fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed', optional: false },
  { kind: 'PeerAuthentication', apiVersion: 'security.tsmesh.io/v1', path: '/apis/security.tsmesh.io/v1/peerauthentications', optional: true },
  { kind: 'AuthorizationPolicy', apiVersion: 'security.tsmesh.io/v1', path: '/apis/security.tsmesh.io/v1/authorizationpolicies', optional: true },
  { kind: 'HTTPLocalRateLimitPolicy', apiVersion: 'policy.tsmesh.io/v1', path: '/apis/policy.tsmesh.io/v1/httplocalratelimitpolicies', optional: true },
  { kind: 'HTTPRoute', apiVersion: 'gateway.networking.k8s.io/v1', path: '/apis/gateway.networking.k8s.io/v1/httproutes', optional: true },
  { kind: 'GRPCRoute', apiVersion: 'gateway.networking.k8s.io/v1', path: '/apis/gateway.networking.k8s.io/v1/grpcroutes', optional: true },
  { kind: 'Gateway', apiVersion: 'gateway.networking.k8s.io/v1', path: '/apis/gateway.networking.k8s.io/v1/gateways', optional: true },
  { kind: 'ReferenceGrant', apiVersion: 'gateway.networking.k8s.io/v1beta1', path: '/apis/gateway.networking.k8s.io/v1beta1/referencegrants', optional: true },
]);

const PAGE = '500';

class ListError extends Error {
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

async function getJson(config: KubeConfig, path: string, query: Record<string, string>): Promise<unknown> {
  const server = config.getCurrentCluster()?.server ?? '';
  const url = new URL(`${server.replace(/\/+$/, '')}${path}`);
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  const context = new RequestContext(url.toString(), HttpMethod.GET);
  context.setHeaderParam('Accept', 'application/json');
  let status: number;
  let text: string;
  try {
    await config.applySecurityAuthentication(context);
    const response = await new IsomorphicFetchHttpLibrary().send(context).toPromise();
    status = response.httpStatusCode;
    text = await response.body.text();
  } catch (cause) {
    const why = (cause as { cause?: { message?: unknown } }).cause?.message;
    throw new ListError(0, `cannot reach the API server at ${server}: ${typeof why === 'string' ? why : (cause as Error).message}`, { cause });
  }
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (status < 200 || status > 299) {
    const detail = (body as { message?: unknown } | undefined)?.message;
    throw new ListError(status, `GET ${path} at ${server}: HTTP ${status}${typeof detail === 'string' ? `: ${detail}` : ''}`);
  }
  return body;
}

/** Every object of one resource, page by page; [] for a CRD that is not installed. */
async function listAll(config: KubeConfig, resource: ListedResource): Promise<KubeObject[]> {
  const items: KubeObject[] = [];
  let token: string | undefined;
  do {
    const query: Record<string, string> = { limit: PAGE };
    if (resource.fieldSelector !== undefined) query['fieldSelector'] = resource.fieldSelector;
    if (token !== undefined) query['continue'] = token;
    let page: { items?: unknown; metadata?: { continue?: unknown } };
    try {
      page = (await getJson(config, resource.path, query)) as typeof page;
    } catch (error) {
      if (error instanceof ListError && error.status === 404 && resource.optional) return [];
      const hint = error instanceof ListError && (error.status === 401 || error.status === 403) ? ` (analyze needs list on ${resource.kind} in every namespace)` : '';
      throw new Error(`cannot list ${resource.kind} objects: ${(error as Error).message}${hint}`, { cause: error });
    }
    for (const item of Array.isArray(page?.items) ? (page.items as KubeObject[]) : []) {
      // List items of built-in kinds come without apiVersion and kind.
      item.apiVersion ??= resource.apiVersion;
      item.kind ??= resource.kind;
      if (item.metadata !== undefined && item.metadata !== null) delete item.metadata['managedFields'];
      items.push(item);
    }
    token = typeof page?.metadata?.continue === 'string' && page.metadata.continue !== '' ? page.metadata.continue : undefined;
  } while (token !== undefined);
  return items;
}

/** The whole mesh as the API server has it; objects that fail validation become InvalidObject findings. */
export async function inputFromCluster(config: KubeConfig, rootNamespace: string): Promise<AnalysisInput> {
  const lists = await Promise.all(LISTED_RESOURCES.map((resource) => listAll(config, resource)));
  const objects: MeshObject[] = [];
  const invalid: InvalidObject[] = [];
  for (const raw of lists.flat()) {
    const result = validateObject(raw);
    if (result.ok) {
      objects.push(result.value);
      continue;
    }
    const id = identify(raw);
    invalid.push({ kind: id.kind ?? raw.kind, namespace: id.namespace, name: id.name ?? '(unnamed)', reason: result.error.reason });
  }
  return { objects, invalid, complete: new Set(SUPPORTED_KINDS), rootNamespace };
}

/** The namespace of the kubeconfig's current context, else `default` (as kubectl does). */
export function contextNamespace(config: KubeConfig): string {
  return config.getContextObject(config.getCurrentContext())?.namespace ?? 'default';
}
