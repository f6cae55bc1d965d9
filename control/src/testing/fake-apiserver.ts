// A local stand-in for the Kubernetes API server, for tests. It keeps the list/watch protocol well
// enough for the real @kubernetes/client-node to run against it unmodified: one global
// resourceVersion, paginated lists, watches that replay from a resourceVersion or answer 410 Gone
// once it is compacted away, bookmarks, label and field selectors; `GET /version`; pod port-forward
// (the v4.channel.k8s.io WebSocket protocol, to an address the test names); and test controls to
// change objects and to break connections.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from '@tsmesh/common';
import { FAKE_RESOURCES, FakeStore, StatusError, clone, groupVersion, statusObject, type FakeResource, type HistoryRecord } from './fake-store.js';
import { parseFieldSelector, parseLabelSelector, type Selector } from './selectors.js';

export { FAKE_RESOURCES, statusObject, type FakeResource } from './fake-store.js';

export interface FakeApiServerOptions {
  /** Plurals of custom resources whose CRD is not installed at start: their paths answer 404. */
  readonly absent?: readonly string[];
  /** Sends a BOOKMARK this often to watches that allow them; default none (a real server: about a minute). */
  readonly bookmarkIntervalMs?: number;
  /** Watch events kept for resuming (default 1000); a watch from an older resourceVersion gets 410 Gone. */
  readonly historyLimit?: number;
  /** When set, every request must carry `Authorization: Bearer <token>`, else 401. */
  readonly token?: string;
}

/** What a SelfSubjectAccessReview asks (`spec.resourceAttributes`). */
export interface AccessAttributes {
  readonly verb?: string;
  readonly group?: string;
  readonly resource?: string;
  readonly namespace?: string;
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly watch: boolean;
  readonly status: number;
}

/** An injected failure: the next matching requests (`times`, default 1) answer `status`. */
export interface Fault {
  readonly method?: string;
  /** The exact path, or a pattern. */
  readonly path?: string | RegExp;
  /** Only watch requests (true) or only other requests (false); default both. */
  readonly watch?: boolean;
  readonly status: number;
  times?: number;
}

interface Watcher {
  readonly resource: FakeResource;
  readonly namespace: string | undefined;
  readonly matches: Selector;
  readonly res: ServerResponse;
  readonly timers: NodeJS.Timeout[];
}

interface Route {
  readonly resource: FakeResource;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

/** The part of the `ws` package's WebSocket the port-forward uses (ws ships no types). */
interface PortForwardSocket {
  send(data: Buffer): void;
  close(): void;
  on(event: 'message', listener: (data: Buffer) => void): void;
  on(event: 'close', listener: () => void): void;
}
interface WebSocketServerLike {
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, done: (ws: PortForwardSocket) => void): void;
  close(): void;
}
const PORT_FORWARD_PROTOCOL = 'v4.channel.k8s.io';

export class FakeApiServer {
  /** Every request answered, in order. */
  readonly requests: RequestRecord[] = [];
  private readonly server: Server;
  private readonly store: FakeStore;
  private readonly watchers = new Set<Watcher>();
  private readonly faults: Fault[] = [];
  private readonly continues = new Map<string, { items: KubeObject[]; rv: number; offset: number }>();
  private readonly options: FakeApiServerOptions;
  /** `namespace/pod:port` → where a port-forward to it connects. */
  private readonly forwards = new Map<string, { host: string; port: number }>();
  private webSockets: WebSocketServerLike | undefined;
  /** Answers SelfSubjectAccessReviews (POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews); default: all allowed. */
  authorize: (attributes: AccessAttributes) => boolean = () => true;
  /** What GET /version answers. */
  version: { major: string; minor: string; gitVersion: string } = { major: '1', minor: '31', gitVersion: 'v1.31.0' };

  private constructor(options: FakeApiServerOptions) {
    this.options = options;
    this.store = new FakeStore({
      absent: options.absent ?? [],
      historyLimit: options.historyLimit ?? 1000,
      onRecord: (record) => {
        for (const watcher of this.watchers) this.deliver(watcher, record);
      },
    });
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
  }

  /** Starts a server on 127.0.0.1 on a free port. */
  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const fake = new FakeApiServer(options);
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      fake.server.listen(0, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** The latest resourceVersion handed out. */
  get resourceVersion(): number {
    return this.store.resourceVersion;
  }

  /** A KubeConfig for this server (plain HTTP, which client-node allows only with skipTLSVerify). */
  kubeConfig(token = this.options.token): KubeConfig {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [token === undefined ? { name: 'fake' } : { name: 'fake', token }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return config;
  }

  // ---- test controls ------------------------------------------------------------------------

  /** Stores a new object (resourceVersion, uid, creationTimestamp set) and tells the watches. */
  create(object: KubeObject): KubeObject {
    return this.store.create(object);
  }

  /** Replaces a stored object (keeping uid and creationTimestamp) and tells the watches. */
  update(object: KubeObject): KubeObject {
    return this.store.update(object);
  }

  /** Replaces an object's status only, as a write to its `/status` subresource does (without a resourceVersion check). */
  updateStatus(object: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'> & { status?: unknown }): KubeObject {
    const resource = FAKE_RESOURCES.find((r) => groupVersion(r) === object.apiVersion && r.kind === object.kind);
    if (resource?.statusSubresource !== true) throw new Error(`${object.apiVersion} ${object.kind} has no status subresource`);
    return this.store.updateStatus(resource, object, object.status, undefined);
  }

  /** Creates or updates. */
  apply(object: KubeObject): KubeObject {
    return this.store.apply(object);
  }

  /** Removes an object (named by apiVersion, kind, metadata.name and namespace) and tells the watches. */
  delete(object: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): KubeObject {
    return this.store.delete(object);
  }

  /** The stored objects of one resource (by plural), optionally of one namespace. */
  list(plural: string, namespace?: string): KubeObject[] {
    return this.store.matching(this.store.resourceByPlural(plural), namespace, () => true).map(clone);
  }

  /** Forgets the watch history (and list continue tokens): a watch from any earlier resourceVersion gets 410 Gone. */
  compact(): void {
    this.store.compact();
    this.continues.clear();
  }

  /** Ends every open watch (as an API server restart would); `abrupt` resets the connections instead. Returns how many. */
  dropWatches(options: { abrupt?: boolean; plural?: string } = {}): number {
    let dropped = 0;
    for (const watcher of [...this.watchers]) {
      if (options.plural !== undefined && watcher.resource.plural !== options.plural) continue;
      this.removeWatcher(watcher);
      if (options.abrupt) watcher.res.socket?.destroy();
      else watcher.res.end();
      dropped += 1;
    }
    return dropped;
  }

  /** Open watches, of one resource (by plural) or all. */
  watchCount(plural?: string): number {
    return [...this.watchers].filter((w) => plural === undefined || w.resource.plural === plural).length;
  }

  /** Makes the next matching requests fail with `fault.status`. */
  fail(fault: Fault): void {
    this.faults.push({ ...fault, times: fault.times ?? 1 });
  }

  /** Serves a custom resource from now on (its CRD was installed). */
  install(plural: string): void {
    this.store.install(plural);
  }

  /** Stops serving a custom resource (its CRD was deleted): its objects are deleted, its watches end. */
  uninstall(plural: string): void {
    this.store.uninstall(plural);
    this.dropWatches({ plural });
  }

  /** The requests answered for one path (optionally only watches, or only lists). */
  requestsFor(path: string, watch?: boolean): RequestRecord[] {
    return this.requests.filter((r) => r.path === path && (watch === undefined || r.watch === watch));
  }

  /** Port-forwards to `port` of pod `namespace/pod` connect to `target` from now on (others are refused). */
  forwardPort(namespace: string, pod: string, port: number, target: { host: string; port: number }): void {
    this.forwards.set(`${namespace}/${pod}:${port}`, target);
  }

  async close(): Promise<void> {
    this.webSockets?.close();
    this.dropWatches();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams.entries());
    const watch = query['watch'] === 'true' || query['watch'] === '1';
    const method = req.method ?? 'GET';
    const answer = (status: number, body: unknown): void => {
      this.requests.push({ method, path: url.pathname, query, watch, status });
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const token = this.options.token;
    if (token !== undefined && req.headers.authorization !== `Bearer ${token}`) {
      answer(401, statusObject(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const fault = this.faults.find(
      (f) =>
        (f.method === undefined || f.method === method) &&
        (f.watch === undefined || f.watch === watch) &&
        (f.path === undefined || (typeof f.path === 'string' ? f.path === url.pathname : f.path.test(url.pathname))),
    );
    if (fault !== undefined) {
      fault.times = (fault.times ?? 1) - 1;
      if (fault.times <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
      answer(fault.status, statusObject(fault.status, REASONS[fault.status] ?? 'Unknown', `injected failure ${fault.status}`));
      return;
    }
    if (url.pathname === '/version' && method === 'GET') {
      answer(200, { ...this.version, platform: 'linux/amd64' });
      return;
    }
    if (url.pathname === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews' && method === 'POST') {
      void readJson(req).then(
        (body) => {
          const review = body as { spec?: { resourceAttributes?: AccessAttributes } };
          const allowed = this.authorize(review.spec?.resourceAttributes ?? {});
          answer(201, { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: review.spec ?? {}, status: { allowed } });
        },
        () => answer(400, statusObject(400, 'BadRequest', 'the request body is not JSON')),
      );
      return;
    }
    void this.serve(req, res, url.pathname, query, watch)
      .then((result) => {
        if (result !== 'streaming') answer(result.status, result.body);
      })
      .catch((error: unknown) => {
        if (error instanceof StatusError) answer(error.code, statusObject(error.code, error.reason, error.message));
        else answer(500, statusObject(500, 'InternalError', String(error)));
      });
  }

  /**
   * `GET /api/v1/namespaces/{ns}/pods/{name}/portforward?ports=P` upgraded to a WebSocket: each frame
   * starts with its channel (0 data, 1 errors); the server first sends the port on both channels.
   */
  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward$/.exec(url.pathname);
    const port = Number(url.searchParams.get('ports'));
    const target = match === null ? undefined : this.forwards.get(`${match[1]}/${match[2]}:${port}`);
    const token = this.options.token;
    const refused = token !== undefined && req.headers.authorization !== `Bearer ${token}` ? 401 : target === undefined ? 404 : 0;
    this.requests.push({ method: 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams.entries()), watch: false, status: refused || 101 });
    if (refused !== 0 || target === undefined) {
      socket.end(`HTTP/1.1 ${refused} ${REASONS[refused] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    if (this.webSockets === undefined) {
      // ws comes with @kubernetes/client-node; taken by require because it ships no types.
      const { WebSocketServer } = createRequire(import.meta.url)('ws') as { WebSocketServer: new (options: object) => WebSocketServerLike };
      this.webSockets = new WebSocketServer({ noServer: true, handleProtocols: () => PORT_FORWARD_PROTOCOL });
    }
    this.webSockets.handleUpgrade(req, socket, head, (ws) => {
      const portBytes = Buffer.alloc(2);
      portBytes.writeUInt16LE(port);
      ws.send(Buffer.concat([Buffer.from([0]), portBytes]));
      ws.send(Buffer.concat([Buffer.from([1]), portBytes]));
      const upstream = connectTcp(target.port, target.host);
      upstream.on('data', (chunk: Buffer) => ws.send(Buffer.concat([Buffer.from([0]), chunk])));
      upstream.on('error', (error) => {
        ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(error.message)]));
        ws.close();
      });
      upstream.on('end', () => ws.close());
      ws.on('message', (data: Buffer) => {
        if (data[0] === 0 && data.length > 1) upstream.write(data.subarray(1));
      });
      ws.on('close', () => upstream.end());
    });
  }

  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: Record<string, string>,
    watch: boolean,
  ): Promise<{ status: number; body: unknown } | 'streaming'> {
    const route = this.route(path);
    const method = req.method ?? 'GET';
    if (route.subresource !== undefined) return this.serveStatus(req, route);
    if (route.name === undefined) {
      if (method === 'GET' && watch) {
        this.startWatch(route, query, res);
        this.requests.push({ method, path, query, watch, status: 200 });
        return 'streaming';
      }
      if (method === 'GET') return { status: 200, body: this.listBody(route, query) };
      if (method === 'POST') {
        const body = (await readJson(req)) as KubeObject;
        if (route.namespace !== undefined && body.metadata?.namespace !== undefined && body.metadata.namespace !== route.namespace) {
          throw new StatusError(400, 'BadRequest', 'the namespace of the object does not match the namespace of the request');
        }
        if (route.namespace !== undefined) this.refuseInTerminatingNamespace(route.namespace);
        const metadata = { ...(body.metadata ?? {}), ...(route.namespace === undefined ? {} : { namespace: route.namespace }) };
        return { status: 201, body: this.create({ ...body, apiVersion: groupVersion(route.resource), kind: route.resource.kind, metadata }) };
      }
      throw new StatusError(405, 'MethodNotAllowed', `${method} is not allowed on a collection`);
    }
    const named = { apiVersion: groupVersion(route.resource), kind: route.resource.kind, metadata: { name: route.name, ...(route.namespace === undefined ? {} : { namespace: route.namespace }) } };
    if (method === 'GET') return { status: 200, body: clone(this.store.find(route.resource, named).existing) };
    if (method === 'DELETE') return { status: 200, body: this.delete(named) };
    if (method === 'PUT') {
      const body = (await readJson(req)) as KubeObject;
      return { status: 200, body: this.update({ ...body, apiVersion: named.apiVersion, kind: named.kind, metadata: { ...(body.metadata ?? {}), ...named.metadata } }) };
    }
    throw new StatusError(405, 'MethodNotAllowed', `${method} is not allowed on an object`);
  }

  /** As the NamespaceLifecycle admission plugin does: nothing new in a namespace being deleted. */
  private refuseInTerminatingNamespace(name: string): void {
    const namespace = this.store.matching(this.store.resourceByPlural('namespaces'), undefined, (o) => (o['metadata'] as { name?: unknown } | undefined)?.name === name)[0];
    if (namespace === undefined) return;
    const phase = (namespace['status'] as { phase?: unknown } | undefined)?.phase;
    if (namespace.metadata['deletionTimestamp'] !== undefined || phase === 'Terminating') {
      throw new StatusError(403, 'Forbidden', `unable to create new content in namespace ${name} because it is being terminated`);
    }
  }

  /** GET, PUT and PATCH (JSON merge patch) on `.../{name}/status` of a resource with a status subresource. */
  private async serveStatus(req: IncomingMessage, route: Route): Promise<{ status: number; body: unknown }> {
    const method = req.method ?? 'GET';
    if (route.subresource !== 'status' || !route.resource.statusSubresource || route.name === undefined) {
      throw new StatusError(404, 'NotFound', `subresource ${route.subresource ?? ''} is not served`);
    }
    const named = { metadata: { name: route.name, ...(route.namespace === undefined ? {} : { namespace: route.namespace }) } };
    const { existing } = this.store.find(route.resource, named);
    if (method === 'GET') return { status: 200, body: clone(existing) };
    if (method === 'PUT') {
      const body = (await readJson(req)) as KubeObject;
      const rv = body.metadata?.resourceVersion;
      return { status: 200, body: this.store.updateStatus(route.resource, named, body['status'], typeof rv === 'string' ? rv : undefined) };
    }
    if (method === 'PATCH') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
      if (type !== 'application/merge-patch+json') throw new StatusError(415, 'UnsupportedMediaType', `patch type ${type ?? ''} is not served`);
      const patch = (await readJson(req)) as Partial<KubeObject>;
      const rv = patch.metadata?.resourceVersion;
      const status = 'status' in patch ? mergePatch(existing['status'], patch['status']) : existing['status'];
      return { status: 200, body: this.store.updateStatus(route.resource, named, status, typeof rv === 'string' ? rv : undefined) };
    }
    throw new StatusError(405, 'MethodNotAllowed', `${method} is not allowed on a status subresource`);
  }

  /** `/api/v1/...` and `/apis/<group>/<version>/...` to a resource, namespace, name and subresource. */
  private route(path: string): Route {
    const parts = path.split('/').filter((p) => p !== '');
    let group: string;
    let version: string | undefined;
    let rest: string[];
    if (parts[0] === 'api') [group, version, rest] = ['', parts[1], parts.slice(2)];
    else if (parts[0] === 'apis') [group, version, rest] = [parts[1] ?? '', parts[2], parts.slice(3)];
    else throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource] = rest;
    const resource = FAKE_RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
    if (resource === undefined || !this.store.isServed(resource) || (namespace !== undefined && !resource.namespaced)) {
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    return { resource, namespace, name, subresource };
  }

  private selector(query: Record<string, string>): Selector {
    try {
      const labels = parseLabelSelector(query['labelSelector']);
      const fields = parseFieldSelector(query['fieldSelector']);
      return (object) => labels(object) && fields(object);
    } catch (error) {
      throw new StatusError(400, 'BadRequest', error instanceof Error ? error.message : String(error));
    }
  }

  private listBody(route: Route, query: Record<string, string>): KubeObject {
    const token = query['continue'];
    let page: { items: KubeObject[]; rv: number; offset: number };
    if (token !== undefined && token !== '') {
      const stored = this.continues.get(token);
      if (stored === undefined) throw new StatusError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.');
      this.continues.delete(token);
      page = stored;
    } else {
      page = { items: this.store.matching(route.resource, route.namespace, this.selector(query)).map(clone), rv: this.resourceVersion, offset: 0 };
    }
    const limit = Number(query['limit'] ?? 0);
    const end = limit > 0 ? page.offset + limit : page.items.length;
    let next: string | undefined;
    if (end < page.items.length) {
      next = randomUUID();
      this.continues.set(next, { ...page, offset: end });
    }
    const { resource } = route;
    // Built-in kinds leave apiVersion and kind off list items; custom resources keep them.
    const items = page.items.slice(page.offset, end).map((o) => (resource.custom ? o : { ...o, apiVersion: undefined, kind: undefined }));
    return {
      apiVersion: groupVersion(resource),
      kind: `${resource.kind}List`,
      metadata: { resourceVersion: String(page.rv), ...(next === undefined ? {} : { continue: next }) },
      items: JSON.parse(JSON.stringify(items)) as unknown,
    };
  }

  private startWatch(route: Route, query: Record<string, string>, res: ServerResponse): void {
    const matches = this.selector(query);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const watcher: Watcher = { resource: route.resource, namespace: route.namespace, matches, res, timers: [] };
    const from = query['resourceVersion'];
    if (from === undefined || from === '' || from === '0') {
      // No resourceVersion: the current state as ADDED events, then changes.
      for (const object of this.store.matching(route.resource, route.namespace, matches)) send(res, 'ADDED', object);
    } else {
      const rv = Number(from);
      if (!Number.isInteger(rv) || rv < 0) {
        send(res, 'ERROR', statusObject(400, 'BadRequest', `invalid resourceVersion "${from}"`));
        res.end();
        return;
      }
      const changes = this.store.changesSince(rv);
      if (changes === undefined) {
        send(res, 'ERROR', statusObject(410, 'Expired', `too old resource version: ${rv} (${this.store.oldestResumable})`));
        res.end();
        return;
      }
      for (const record of changes) this.deliver(watcher, record);
    }
    this.watchers.add(watcher);
    res.on('close', () => this.removeWatcher(watcher));
    const interval = this.options.bookmarkIntervalMs;
    if (query['allowWatchBookmarks'] === 'true' && interval !== undefined) {
      const bookmark = { kind: route.resource.kind, apiVersion: groupVersion(route.resource), metadata: { resourceVersion: String(this.resourceVersion) } };
      watcher.timers.push(setInterval(() => send(res, 'BOOKMARK', { ...bookmark, metadata: { resourceVersion: String(this.resourceVersion) } }), interval));
    }
    const timeout = Number(query['timeoutSeconds'] ?? 0);
    if (timeout > 0) watcher.timers.push(setTimeout(() => this.endWatch(watcher), timeout * 1000));
  }

  private endWatch(watcher: Watcher): void {
    this.removeWatcher(watcher);
    watcher.res.end();
  }

  private removeWatcher(watcher: Watcher): void {
    this.watchers.delete(watcher);
    for (const timer of watcher.timers) clearTimeout(timer);
  }

  /** Sends one change as the watcher sees it through its namespace and selectors. */
  private deliver(watcher: Watcher, record: HistoryRecord): void {
    if (record.resource !== watcher.resource) return;
    if (watcher.namespace !== undefined && record.object.metadata.namespace !== watcher.namespace) return;
    const now = watcher.matches(record.object);
    const before = record.previous !== undefined && watcher.matches(record.previous);
    if (record.type === 'ADDED' && now) send(watcher.res, 'ADDED', record.object);
    else if (record.type === 'DELETED' && before) send(watcher.res, 'DELETED', record.object);
    else if (record.type === 'MODIFIED') {
      // An object that starts or stops matching a selector is ADDED or DELETED for that watch.
      if (now && before) send(watcher.res, 'MODIFIED', record.object);
      else if (now) send(watcher.res, 'ADDED', record.object);
      else if (before) send(watcher.res, 'DELETED', record.object);
    }
  }
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return clone(patch);
  const result: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function send(res: ServerResponse, type: string, object: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  res.write(`${JSON.stringify({ type, object })}\n`);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new StatusError(400, 'BadRequest', 'the request body is not JSON');
  }
}
