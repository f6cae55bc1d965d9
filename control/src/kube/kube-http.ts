// Raw JSON requests to the API server through client-node's own HTTP stack (its kubeconfig
// authentication and TLS), for lists and Events. The generated typed clients are not used for lists:
// they turn items into model classes (Dates, unknown fields dropped) while watch events stay raw
// JSON, and one cache must hold one shape.
import { HttpMethod, IsomorphicFetchHttpLibrary, RequestContext, type KubeConfig, type KubernetesListObject } from '@kubernetes/client-node';
import { TsmeshError, type KubeObject } from '@tsmesh/common';
import { CONTROL_ERRORS, describeError } from '../errors.js';
import { normalizeObject, type InformedResource } from './resources.js';

/** An error answer of the API server (or no answer: statusCode 0). `statusCode` is what client-node's informer reads. */
export class KubeApiError extends TsmeshError {
  readonly statusCode: number;
  /** The Status reason (`NotFound`, `Expired`, `Forbidden`...), when the server sent one. */
  readonly reason: string | undefined;

  constructor(statusCode: number, reason: string | undefined, message: string, cause?: unknown) {
    super(CONTROL_ERRORS.KUBE_API, message, cause === undefined ? undefined : { cause });
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = reason;
  }
}

/** The HTTP status of an error from a list, a watch or a request (0 when there was no answer). */
export function statusCodeOf(error: unknown): number {
  if (typeof error !== 'object' || error === null) return 0;
  const code = (error as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : 0;
}

export interface RequestOptions {
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly signal?: AbortSignal;
}

export class KubeHttp {
  private readonly library = new IsomorphicFetchHttpLibrary();

  constructor(readonly config: KubeConfig) {}

  /** One request; resolves with the parsed JSON answer, rejects with a KubeApiError. */
  async request(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<unknown> {
    const cluster = this.config.getCurrentCluster();
    if (cluster === null) throw new KubeApiError(0, undefined, 'the kubeconfig has no current cluster');
    const url = new URL(`${cluster.server.replace(/\/+$/, '')}${path}`);
    for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value);
    const context = new RequestContext(url.toString(), method);
    context.setHeaderParam('Accept', 'application/json');
    if (options.body !== undefined) {
      context.setHeaderParam('Content-Type', 'application/json');
      context.setBody(JSON.stringify(options.body));
    }
    if (options.signal !== undefined) context.setSignal(options.signal);
    let status: number;
    let text: string;
    try {
      await this.config.applySecurityAuthentication(context);
      const response = await this.library.send(context).toPromise();
      status = response.httpStatusCode;
      text = await response.body.text();
    } catch (cause) {
      throw new KubeApiError(0, undefined, `${method} ${path}: ${describeError(cause)}`, cause);
    }
    const body = parseJson(text);
    if (status < 200 || status > 299) {
      const statusBody = typeof body === 'object' && body !== null ? (body as { reason?: unknown; message?: unknown }) : {};
      const reason = typeof statusBody.reason === 'string' ? statusBody.reason : undefined;
      const detail = typeof statusBody.message === 'string' ? statusBody.message : text.slice(0, 200);
      throw new KubeApiError(status, reason, `${method} ${path}: ${status}${reason === undefined ? '' : ` ${reason}`}: ${detail}`);
    }
    return body;
  }
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface ListOptions {
  /** Items per page (`limit`); 0 lists in one answer. */
  readonly pageSize: number;
  readonly signal?: AbortSignal;
}

/**
 * Lists every object of a resource, page by page, as one list with the resourceVersion to watch
 * from. A continue token that expires mid-way (410) starts the list over, as client-go does.
 */
export async function listResource(http: KubeHttp, resource: InformedResource, options: ListOptions): Promise<KubernetesListObject<KubeObject>> {
  const base: Record<string, string> = {};
  if (resource.labelSelector !== undefined) base['labelSelector'] = resource.labelSelector;
  if (resource.fieldSelector !== undefined) base['fieldSelector'] = resource.fieldSelector;
  if (options.pageSize > 0) base['limit'] = String(options.pageSize);
  for (let restarts = 0; ; restarts += 1) {
    const list = await listPages(http, resource, base, options.signal, restarts < 3);
    if (list !== undefined) return list;
  }
}

/** One list, page by page; undefined when a continue token expired and `mayRestart` (the caller starts over). */
async function listPages(
  http: KubeHttp,
  resource: InformedResource,
  base: Readonly<Record<string, string>>,
  signal: AbortSignal | undefined,
  mayRestart: boolean,
): Promise<KubernetesListObject<KubeObject> | undefined> {
  const items: KubeObject[] = [];
  let token: string | undefined;
  let resourceVersion: string;
  do {
    const query = token === undefined ? base : { ...base, continue: token };
    let page: ListPage;
    try {
      page = asList(await http.request(HttpMethod.GET, resource.path, { query, signal }), resource);
    } catch (error) {
      if (mayRestart && token !== undefined && statusCodeOf(error) === 410) return undefined;
      throw error;
    }
    for (const item of page.items) items.push(normalizeObject(resource, item));
    resourceVersion = page.metadata.resourceVersion ?? '';
    token = page.metadata.continue === '' ? undefined : page.metadata.continue;
  } while (token !== undefined);
  return { apiVersion: resource.apiVersion, kind: `${resource.kind}List`, metadata: { resourceVersion }, items };
}

/** A list page as JSON (client-node's V1ListMeta calls `continue` `_continue`: it is for its model classes). */
interface ListPage {
  readonly metadata: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items: KubeObject[];
}

function asList(body: unknown, resource: InformedResource): ListPage {
  const items = typeof body === 'object' && body !== null ? (body as { items?: unknown }).items : undefined;
  // `items` is null, not [], in some answers for an empty list.
  if (items !== null && items !== undefined && !Array.isArray(items)) {
    throw new KubeApiError(0, undefined, `GET ${resource.path}: the answer is not a ${resource.kind}List`);
  }
  const metadata = (body as { metadata?: ListPage['metadata'] }).metadata ?? {};
  return { metadata, items: ((items ?? []) as unknown[]).filter((i): i is KubeObject => typeof i === 'object' && i !== null) };
}
