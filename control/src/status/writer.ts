// Writes what compiling found about each HTTPRoute and GRPCRoute (Accepted, ResolvedRefs,
// PartiallyInvalid) into its `status.parents`, so an unsupported field is reported where the route's
// author looks, not silently ignored. Debounced per snapshot; writes only what differs.
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { compileRoutes, logger, type CompiledRoutes, type KubeObject, type Logger, type MeshProvider, type MeshSnapshot, type RouteStatus } from '@tsmesh/common';
import { KubeHttp, statusCodeOf } from '../kube/kube-http.js';
import { DebouncedPass } from '../debounced-pass.js';
import { MESH_CONTROLLER_NAME, desiredParents, existingParents } from './parents.js';

/** What the writer needs of the API server: one JSON request (KubeHttp fits). */
export interface StatusClient {
  /** Resolves with the parsed answer; rejects with an error carrying `statusCode` (0: no answer). */
  request(method: HttpMethod, path: string, options: { readonly body?: unknown }): Promise<unknown>;
}

export interface RouteStatusWriterOptions {
  /** Written as `controllerName`; entries of other controllers are kept as they are. */
  readonly controllerName?: string;
  /** How long snapshots are collected before statuses are computed (default 200 ms). */
  readonly debounceMs?: number;
  /** Writes of one route per pass, the first included, when the API server answers 409 Conflict (default 4). */
  readonly maxAttempts?: number;
  /** After a 409, how long to wait for the watch to bring the newer object before trying again (default 1 s). */
  readonly conflictWaitMs?: number;
  readonly log?: Logger;
  /** The clock for lastTransitionTime (tests). */
  readonly now?: () => Date;
}

export const DEFAULT_STATUS_DEBOUNCE_MS = 200;
export const DEFAULT_STATUS_MAX_ATTEMPTS = 4;
export const DEFAULT_CONFLICT_WAIT_MS = 1000;

const PLURALS = { HTTPRoute: 'httproutes', GRPCRoute: 'grpcroutes' } as const;

/** One snapshot's routes, compiled, with the objects and statuses by route. */
interface Compiled {
  readonly snapshot: MeshSnapshot;
  readonly routes: CompiledRoutes;
  readonly objects: ReadonlyMap<string, KubeObject>;
  readonly statuses: ReadonlyMap<string, RouteStatus>;
}

type RouteRef = RouteStatus['route'];
const routeKey = (route: RouteRef): string => `${route.kind}/${route.namespace}/${route.name}`;

function compile(snapshot: MeshSnapshot): Compiled {
  const routes = compileRoutes(snapshot);
  const objects = new Map<string, KubeObject>();
  for (const object of snapshot.others) {
    if (object.kind !== 'HTTPRoute' && object.kind !== 'GRPCRoute') continue;
    objects.set(routeKey({ kind: object.kind, namespace: object.metadata.namespace || 'default', name: object.metadata.name ?? '' }), object);
  }
  return { snapshot, routes, objects, statuses: new Map(routes.statuses.map((s) => [routeKey(s.route), s])) };
}

/** Seconds-precision RFC 3339, as metav1.Time serializes. */
const rfc3339 = (date: Date): string => date.toISOString().replace(/\.\d+Z$/, 'Z');

export class RouteStatusWriter {
  private readonly client: StatusClient;
  private readonly controllerName: string;
  private readonly maxAttempts: number;
  private readonly conflictWaitMs: number;
  private readonly log: Logger;
  private readonly now: () => Date;
  private unsubscribe: (() => void) | undefined;
  /** Collects the snapshots of a burst: the pass reads the latest one when it runs. */
  private readonly passes: DebouncedPass;
  private closed = false;
  private compiled: Compiled | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly provider: MeshProvider,
    client: StatusClient | KubeConfig,
    options: RouteStatusWriterOptions = {},
  ) {
    this.client = client instanceof KubeConfig ? new KubeHttp(client) : client;
    this.controllerName = options.controllerName ?? MESH_CONTROLLER_NAME;
    this.passes = new DebouncedPass(() => this.pass(), options.debounceMs ?? DEFAULT_STATUS_DEBOUNCE_MS);
    this.maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_STATUS_MAX_ATTEMPTS);
    this.conflictWaitMs = options.conflictWaitMs ?? DEFAULT_CONFLICT_WAIT_MS;
    this.log = options.log ?? logger('control.status');
    this.now = options.now ?? (() => new Date());
  }

  /** Writes the statuses of the current snapshot, then of every later one. */
  start(): void {
    if (this.unsubscribe !== undefined || this.closed) return;
    this.unsubscribe = this.provider.subscribe(() => {
      for (const wake of this.waiters) wake();
      this.passes.schedule();
    });
    this.passes.schedule();
  }

  /** Resolves when no pass is pending or running (tests, shutdown). */
  idle(): Promise<void> {
    return this.passes.idle();
  }

  /** Stops listening; a pass under way finishes its current request and stops. */
  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    for (const wake of this.waiters) wake();
    await this.passes.close();
  }

  /** One pass over every route of the latest snapshot. */
  private async pass(): Promise<void> {
    const latest = this.routes();
    if (latest === undefined) return;
    let written = 0;
    for (const status of latest.routes.statuses) {
      if (this.closed) return;
      if (await this.reconcile(status.route)) written += 1;
    }
    if (written > 0) this.log.debug({ written, version: latest.snapshot.version }, 'route statuses written');
  }

  /** The compiled routes of the provider's current snapshot (compiled once per snapshot). */
  private routes(): Compiled | undefined {
    const snapshot = this.provider.current();
    if (snapshot === undefined) return undefined;
    if (this.compiled?.snapshot !== snapshot) this.compiled = compile(snapshot);
    return this.compiled;
  }

  /**
   * Brings one route's status up to date with the latest snapshot; true when it wrote. A 409 waits for
   * the watch to deliver the newer object (the cache is the re-read) and tries again, a bounded number
   * of times; every failure is logged, none is thrown.
   */
  private async reconcile(route: RouteRef): Promise<boolean> {
    const describe = `${route.kind} ${route.namespace}/${route.name}`;
    for (let attempt = 1; attempt <= this.maxAttempts && !this.closed; attempt += 1) {
      const latest = this.routes();
      const object = latest?.objects.get(routeKey(route));
      const computed = latest?.statuses.get(routeKey(route));
      if (object === undefined || computed === undefined) return false;
      const generation = object.metadata['generation'];
      const desired = desiredParents(existingParents(object), computed, {
        controllerName: this.controllerName,
        generation: typeof generation === 'number' ? generation : undefined,
        now: rfc3339(this.now()),
      });
      if (!desired.changed) return false;
      const resourceVersion = object.metadata['resourceVersion'];
      try {
        await this.client.request(HttpMethod.PUT, statusPath(route.kind, route.namespace, route.name), { body: statusBody(object, desired.parents) });
        return true;
      } catch (error) {
        const code = statusCodeOf(error);
        if (code === 404) {
          this.log.debug({ route: describe }, 'route deleted before its status was written');
          return false;
        }
        if (code !== 409) {
          this.log.warn({ err: error, route: describe }, 'cannot write the route status; trying again on the next change');
          return false;
        }
        this.log.debug({ route: describe, attempt }, 'route status conflict; waiting for the newer object');
        if (attempt < this.maxAttempts) await this.newerThan(route, typeof resourceVersion === 'string' ? resourceVersion : undefined);
      }
    }
    if (!this.closed) this.log.warn({ route: describe, attempts: this.maxAttempts }, 'route status still conflicts; trying again on the next change');
    return false;
  }

  /** Waits until the provider's snapshot holds another resourceVersion of the route, or conflictWaitMs passed. */
  private async newerThan(route: RouteRef, resourceVersion: string | undefined): Promise<void> {
    const deadline = Date.now() + this.conflictWaitMs;
    while (!this.closed && Date.now() < deadline) {
      const object = this.routes()?.objects.get(routeKey(route));
      if (object === undefined || object.metadata['resourceVersion'] !== resourceVersion) return;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(0, deadline - Date.now()));
        this.waiters.add(wake);
      });
    }
  }
}

/** `/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/{httproutes|grpcroutes}/{name}/status`. */
export function statusPath(kind: RouteRef['kind'], namespace: string, name: string): string {
  return `/apis/gateway.networking.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/${PLURALS[kind]}/${encodeURIComponent(name)}/status`;
}

/** The object as stored with the new parents: the resourceVersion it was read at makes the write conditional. */
function statusBody(object: KubeObject, parents: unknown[]): KubeObject {
  const status = typeof object['status'] === 'object' && object['status'] !== null ? (object['status'] as Record<string, unknown>) : {};
  return { ...object, status: { ...status, parents } };
}
