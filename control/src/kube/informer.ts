// One watched resource, kept in memory by client-node's informer (ListWatch: list, then watch from
// the list's resourceVersion; resume after a closed watch; re-list after 410 Gone), plus what that
// informer leaves to its user: restarting after an error (it stops for good on any error but 410
// and timeouts) with jittered backoff, asking for bookmarks, stopping without leaking a watch, and
// carrying on without a custom resource whose CRD is not installed.
import {
  ADD,
  CONNECT,
  DELETE,
  ERROR,
  ListWatch,
  UPDATE,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { err, ok, type KubeObject, type Logger, type Result } from '@tsmesh/common';
import { describeError } from '../errors.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { KubeApiError, listResource, statusCodeOf, type KubeHttp } from './kube-http.js';
import { normalizeObject, type InformedResource, type WatchedResource } from './resources.js';

/** `pending` until the first list; `absent` while an optional resource is not served (404). */
export type InformerState = 'pending' | 'synced' | 'absent';

export interface InformerStatus {
  readonly kind: string;
  readonly state: InformerState;
  /** The last list or watch failure, if any since the start. */
  readonly lastError: string | undefined;
}

/** The events an informer hears: an object added, changed or deleted. */
export type WatchEventType = 'added' | 'modified' | 'deleted';

export interface ResourceInformerOptions {
  readonly http: KubeHttp;
  /** Items per list page (`limit`). */
  readonly pageSize: number;
  readonly backoff: Partial<BackoffOptions>;
  /** How often an absent optional resource is looked for again. */
  readonly absentRetryMs: number;
  readonly log: Logger;
  /** Called after every change of `objects()`. */
  readonly onChange: () => void;
  /** Every watch (or list) event of the current informer, by type (metrics). */
  readonly onEvent?: (type: WatchEventType) => void;
  /** Called once, when the first list is in memory (even if an empty one, which changes nothing). */
  readonly onSynced?: () => void;
}

export class ResourceInformer<R extends InformedResource = WatchedResource> {
  readonly resource: R;
  private readonly options: ResourceInformerOptions;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  /** Aborted by stop(): cancels lists, reconnect delays and watches being opened. */
  private readonly stopping = new AbortController();
  private informer: ListWatch<KubernetesObject> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private state: InformerState = 'pending';
  private error: unknown;
  /** A list or an object event since the last failure: the next failure starts the backoff over. */
  private progressed = false;
  private readonly synced: Promise<Result<void, KubeApiError>>;
  private settle: (result: Result<void, KubeApiError>) => void = () => undefined;

  constructor(resource: R, options: ResourceInformerOptions) {
    this.resource = resource;
    this.options = options;
    this.log = options.log.child({ kind: resource.kind });
    this.backoff = new Backoff(options.backoff);
    this.synced = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /**
   * Starts listing and watching. Resolves once the first list is in memory (or an optional resource
   * turned out absent); retries failures meanwhile, except 401 and 403, which it reports.
   */
  start(): Promise<Result<void, KubeApiError>> {
    if (this.informer === undefined && this.timer === undefined) this.run();
    return this.synced;
  }

  /** The objects as last listed and watched (raw JSON, apiVersion and kind set). */
  objects(): readonly KubeObject[] {
    return (this.informer?.list() ?? []) as readonly KubeObject[];
  }

  status(): InformerStatus {
    return { kind: this.resource.kind, state: this.state, lastError: this.error === undefined ? undefined : describeError(this.error) };
  }

  /** Stops for good: no list, watch or callback after it resolves. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.settle(err(new KubeApiError(0, undefined, `${this.resource.kind}: stopped before the first list`)));
    await this.informer?.stop();
  }

  private run(): void {
    this.timer = undefined;
    if (this.stopping.signal.aborted) return;
    const informer = (this.informer ??= this.create());
    // start() resolves after the list (when it needs one) and the watch request, or after an error.
    informer.start().then(
      () => {
        if (informer === this.informer && informer.latestResourceVersion() !== '') this.markSynced();
      },
      (error: unknown) => this.failed(informer, error),
    );
  }

  private create(): ListWatch<KubernetesObject> {
    const { resource } = this;
    const watch = new ResourceWatch(this.options.http.config, resource, this.stopping.signal, this.log);
    const informer: ListWatch<KubernetesObject> = new ListWatch(
      resource.path,
      watch,
      () => this.list(informer),
      false,
      resource.labelSelector,
      resource.fieldSelector,
      { delayFn: (ms) => this.delay(ms) },
    );
    const changed = (type: WatchEventType): void => {
      if (informer !== this.informer) return;
      this.progressed = true;
      this.options.onEvent?.(type);
      this.options.onChange();
    };
    informer.on(ADD, () => changed('added'));
    informer.on(UPDATE, () => changed('modified'));
    informer.on(DELETE, () => changed('deleted'));
    informer.on(ERROR, (error: unknown) => this.failed(informer, error));
    informer.on(CONNECT, () => this.log.debug({ resourceVersion: informer.latestResourceVersion() }, 'watch (re)connecting'));
    return informer;
  }

  private async list(informer: ListWatch<KubernetesObject>): Promise<KubernetesListObject<KubernetesObject>> {
    const list = await listResource(this.options.http, this.resource, { pageSize: this.options.pageSize, signal: this.stopping.signal });
    if (informer === this.informer) {
      if (this.state === 'absent') this.log.info(`${this.resource.kind} is served again (CRD installed); watching it`);
      if (this.state !== 'pending') this.state = 'synced';
      this.progressed = true;
      this.log.debug({ items: list.items.length, resourceVersion: list.metadata?.resourceVersion }, 'listed');
    }
    return list as KubernetesListObject<KubernetesObject>;
  }

  private failed(informer: ListWatch<KubernetesObject>, error: unknown): void {
    if (this.stopping.signal.aborted || informer !== this.informer || this.timer !== undefined) return;
    const status = statusCodeOf(error);
    if (status === 404 && this.resource.optional) {
      this.becomeAbsent(informer);
      return;
    }
    this.error = error;
    if (this.state === 'pending' && (status === 401 || status === 403)) {
      const what = status === 401 ? 'the API server refused our credentials' : 'access refused (RBAC needs list and watch)';
      this.settle(err(new KubeApiError(status, undefined, `cannot list ${this.resource.path}: ${what}: ${describeError(error)}`, error)));
    }
    if (this.progressed) this.backoff.reset();
    this.progressed = false;
    const delay = this.backoff.next();
    this.log.warn({ err: describeError(error), status, attempt: this.backoff.attempts, retryInMs: delay }, `${this.resource.kind} list/watch failed; restarting`);
    this.timer = setTimeout(() => this.run(), delay);
  }

  /** The CRD is not installed (or was removed): no objects, and a look again now and then. */
  private becomeAbsent(informer: ListWatch<KubernetesObject>): void {
    const hadObjects = informer.list().length > 0;
    // The next attempt lists from nothing with a new informer: its cache and resourceVersion are gone.
    this.informer = undefined;
    void informer.stop();
    if (this.state !== 'absent') {
      this.log.info(
        { path: this.resource.path, retryInMs: this.options.absentRetryMs },
        `${this.resource.kind} is not served by the API server (CRD not installed); continuing without it`,
      );
    }
    this.state = 'absent';
    this.settle(ok(undefined));
    if (hadObjects) this.options.onChange();
    this.timer = setTimeout(() => this.run(), this.options.absentRetryMs);
  }

  private markSynced(): void {
    if (this.state === 'pending') {
      this.state = 'synced';
      this.options.onSynced?.();
    }
    this.settle(ok(undefined));
  }

  /** The informer's reconnect delay, cut short by stop() (its own would hold the process for up to 30 s). */
  private delay(ms: number): Promise<void> {
    const signal = this.stopping.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

const isObject = (value: unknown): value is KubeObject =>
  typeof value === 'object' && value !== null && typeof (value as { metadata?: unknown }).metadata === 'object' && (value as { metadata?: unknown }).metadata !== null;

function abortedController(): AbortController {
  const controller = new AbortController();
  controller.abort();
  return controller;
}

/**
 * client-node's Watch, asking for bookmarks (they keep the informer's resourceVersion fresh, so a
 * quiet resource resumes instead of re-listing), normalising objects as lists do, and closing a watch
 * that connects after stop() (the informer only aborts watches it has been handed back).
 */
class ResourceWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly resource: InformedResource,
    private readonly stopping: AbortSignal,
    private readonly log: Logger,
  ) {
    super(config);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.stopping.aborted) return abortedController();
    const events = (phase: string, object: unknown, event?: unknown): void => {
      if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') {
        // The informer reads object.metadata unguarded; a throw here would escape the stream.
        if (!isObject(object)) {
          this.log.warn({ phase }, 'watch event without an object left out');
          return;
        }
        normalizeObject(this.resource, object);
      }
      callback(phase, object, event);
    };
    let controller: AbortController;
    try {
      controller = await super.watch(path, { ...queryParams, allowWatchBookmarks: true }, events, done);
    } catch (error) {
      // Watch.watch throws, instead of calling done, when authentication fails before connecting; the
      // informer would leave that rejection unhandled and never restart.
      queueMicrotask(() => done(error));
      return abortedController();
    }
    if (this.stopping.aborted) controller.abort();
    return controller;
  }
}
