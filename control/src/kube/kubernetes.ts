// KubernetesSource: the MeshProvider that reads the mesh from the API server. One informer per
// watched kind keeps its objects in memory; every change schedules a debounced rebuild of the whole
// MeshSnapshot from them. An object tsmesh cannot use is left out with a warning (and an Event),
// and everything else carries on.
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  buildSnapshotFrom,
  describeObject,
  err,
  logger,
  MaxDelayDebounce,
  ok,
  identify,
  SnapshotListeners,
  validateObject,
  type KubeObject,
  type Logger,
  type MeshObject,
  type MeshObjectError,
  type MeshProvider,
  type MeshSnapshot,
  type Result,
  type TsmeshError,
} from '@tsmesh/common';
import { CONTROL_ERRORS, controlError } from '../errors.js';
import type { BackoffOptions } from './backoff.js';
import { EventRecorder } from './events.js';
import { ResourceInformer, type InformerStatus, type WatchEventType } from './informer.js';
import { KubeHttp } from './kube-http.js';
import { WATCHED_RESOURCES, type WatchedResource } from './resources.js';

export const DEFAULT_DEBOUNCE_MS = 50;
export const DEFAULT_MAX_DELAY_MS = 500;
export const DEFAULT_SYNC_TIMEOUT_MS = 60_000;
export const DEFAULT_ABSENT_RETRY_MS = 60_000;
export const DEFAULT_PAGE_SIZE = 500;

export interface KubernetesSourceOptions {
  /** Quiet time after a change before the snapshot is rebuilt (default 50 ms). */
  readonly debounceMs?: number;
  /** The longest a change waits under continuous churn (default 500 ms). */
  readonly maxDelayMs?: number;
  /** start() fails when the first list of every kind has not completed by then (default 60 s). */
  readonly syncTimeoutMs?: number;
  /** Restarts of a failed list or watch (default: 0.5 s doubling to 30 s, jittered). */
  readonly backoff?: Partial<BackoffOptions>;
  /** How often a custom resource whose CRD is absent is looked for again (default 60 s). */
  readonly absentRetryMs?: number;
  /** Items per list page (default 500). */
  readonly pageSize?: number;
  /** The kinds to watch (default WATCHED_RESOURCES). */
  readonly resources?: readonly WatchedResource[];
  /** Record a Warning Event on each object left out (default true). */
  readonly recordEvents?: boolean;
  /** Hears every watch event, by kind and type (the control plane's metrics). */
  readonly onWatchEvent?: (kind: string, type: WatchEventType) => void;
  /** Default: `logger('discovery.kubernetes')`. */
  readonly log?: Logger;
}

const KIND_ORDER = new Map(WATCHED_RESOURCES.map((r, i) => [r.kind as string, i]));

export class KubernetesSource implements MeshProvider {
  private readonly log: Logger;
  private readonly syncTimeoutMs: number;
  private readonly informers: readonly ResourceInformer[];
  private readonly events: EventRecorder | undefined;
  private readonly listeners = new SnapshotListeners();
  /** Validation results by object: an informer keeps the same object until it changes. */
  private readonly validated = new WeakMap<KubeObject, Result<MeshObject, MeshObjectError>>();
  /** kind/namespace/name → the last valid version (with its uid), for kinds that keep it (keepLastValid). */
  private readonly lastValid = new Map<string, { readonly uid: unknown; readonly value: MeshObject }>();
  private snapshot: MeshSnapshot | undefined;
  private starting: Promise<Result<MeshSnapshot, TsmeshError>> | undefined;
  /** Rebuilds of the snapshot after changes, debounced with a ceiling. */
  private readonly rebuilds: MaxDelayDebounce;
  private closed = false;

  constructor(config: KubeConfig, options: KubernetesSourceOptions = {}) {
    this.log = options.log ?? logger('discovery.kubernetes');
    this.rebuilds = new MaxDelayDebounce(() => this.rebuild(), { debounceMs: options.debounceMs ?? DEFAULT_DEBOUNCE_MS, maxDelayMs: options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS });
    this.syncTimeoutMs = options.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS;
    const http = new KubeHttp(config);
    this.events = options.recordEvents === false ? undefined : new EventRecorder(http, { log: this.log });
    this.informers = (options.resources ?? WATCHED_RESOURCES).map(
      (resource) =>
        new ResourceInformer(resource, {
          http,
          pageSize: options.pageSize ?? DEFAULT_PAGE_SIZE,
          backoff: options.backoff ?? {},
          absentRetryMs: options.absentRetryMs ?? DEFAULT_ABSENT_RETRY_MS,
          log: this.log,
          onChange: () => this.schedule(),
          ...(options.onWatchEvent === undefined ? {} : { onEvent: (type: WatchEventType) => options.onWatchEvent?.(resource.kind, type) }),
        }),
    );
  }

  /** Lists every kind, then builds the first snapshot; fails when a kind cannot be listed in time or access is refused. */
  start(): Promise<Result<MeshSnapshot, TsmeshError>> {
    if (this.snapshot !== undefined) return Promise.resolve(ok(this.snapshot));
    this.starting ??= this.sync();
    return this.starting;
  }

  current(): MeshSnapshot | undefined {
    return this.snapshot;
  }

  subscribe(listener: (snapshot: MeshSnapshot) => void): () => void {
    return this.listeners.add(listener);
  }

  /** Per kind: synced, pending or absent, and the last list/watch failure (for health reporting). */
  status(): readonly InformerStatus[] {
    return this.informers.map((informer) => informer.status());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.rebuilds.cancel();
    await Promise.all([...this.informers.map((informer) => informer.stop()), this.events?.close()]);
  }

  private async sync(): Promise<Result<MeshSnapshot, TsmeshError>> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.syncTimeoutMs);
    });
    const outcome = await Promise.race([firstFailureOrAll(this.informers.map((informer) => informer.start())), timeout]);
    clearTimeout(timer);
    if (this.closed) return err(controlError(CONTROL_ERRORS.KUBE_SYNC, 'closed before the first list completed'));
    if (outcome === 'timeout' || !outcome.ok) {
      const error =
        outcome === 'timeout'
          ? controlError(CONTROL_ERRORS.KUBE_SYNC, this.timeoutMessage())
          : controlError(CONTROL_ERRORS.KUBE_SYNC, outcome.error.message, outcome.error);
      await this.close();
      return err(error);
    }
    const snapshot = this.build();
    this.snapshot = snapshot;
    const absent = this.status().filter((s) => s.state === 'absent').map((s) => s.kind);
    this.log.info(
      { version: snapshot.version, services: snapshot.services.length, pods: snapshot.pods.length, others: snapshot.others.length, absent },
      'synced with the Kubernetes API server',
    );
    return ok(snapshot);
  }

  private timeoutMessage(): string {
    const waiting = this.status().filter((s) => s.state === 'pending');
    const errors = [...new Set(waiting.flatMap((s) => (s.lastError === undefined ? [] : [s.lastError])))];
    const seconds = Math.round(this.syncTimeoutMs / 100) / 10;
    const why = errors.length === 0 ? '' : `; last error${errors.length > 1 ? 's' : ''}: ${errors.slice(0, 3).join('; ')}`;
    return `the first list of ${waiting.map((s) => s.kind).join(', ')} did not complete within ${seconds}s${why}`;
  }

  /** Debounces changes: a rebuild `debounceMs` after the last one, and at most `maxDelayMs` after the first. */
  private schedule(): void {
    if (this.closed) return;
    this.rebuilds.schedule();
  }

  private rebuild(): void {
    if (this.closed || this.snapshot === undefined) return;
    const next = this.build();
    if (next.version === this.snapshot.version) return;
    this.snapshot = next;
    this.log.debug({ version: next.version, services: next.services.length, pods: next.pods.length }, 'mesh snapshot rebuilt');
    this.listeners.deliver(next, this.log);
  }

  /** The objects of `kind` left out as invalid, with the reason (for the status writers). */
  rejected(kind: string): Array<{ object: KubeObject; reason: string }> {
    const out: Array<{ object: KubeObject; reason: string }> = [];
    for (const informer of this.informers) {
      if (informer.resource.kind !== kind) continue;
      for (const object of informer.objects()) {
        const result = this.validate(informer.resource, object);
        if (result.ok) continue;
        const kept = informer.resource.keepLastValid === true && this.keptVersion(object) !== undefined;
        out.push({ object, reason: kept ? `${result.error.reason} (its last valid version stays in force)` : result.error.reason });
      }
    }
    return out;
  }

  private build(): MeshSnapshot {
    const valid: MeshObject[] = [];
    const seen = new Set<string>();
    for (const informer of this.informers) {
      const keep = informer.resource.keepLastValid === true;
      for (const object of informer.objects()) {
        const result = this.validate(informer.resource, object);
        if (keep) seen.add(lastValidKey(object));
        if (result.ok) {
          valid.push(result.value);
          if (keep) this.lastValid.set(lastValidKey(object), { uid: object.metadata['uid'], value: result.value });
          continue;
        }
        const kept = keep ? this.keptVersion(object) : undefined;
        if (kept !== undefined) valid.push(kept);
      }
    }
    for (const key of this.lastValid.keys()) if (!seen.has(key)) this.lastValid.delete(key);
    valid.sort(compareObjects);
    return buildSnapshotFrom(valid, versionOf(valid));
  }

  /** The last valid version of the same object (same uid), if one was seen. */
  private keptVersion(object: KubeObject): MeshObject | undefined {
    const kept = this.lastValid.get(lastValidKey(object));
    return kept !== undefined && kept.uid === object.metadata['uid'] ? kept.value : undefined;
  }

  private validate(resource: WatchedResource, object: KubeObject): Result<MeshObject, MeshObjectError> {
    const known = this.validated.get(object);
    if (known !== undefined) return known;
    const result = validateObject(object);
    this.validated.set(object, result);
    if (!result.ok) {
      const { error } = result;
      this.log.warn(
        { kind: error.kind, namespace: error.namespace, name: error.objectName, code: error.code, reason: error.reason },
        `${describeObject({ kind: error.kind, namespace: error.namespace, name: error.objectName })} left out of the mesh: ${error.reason}`,
      );
      if (resource.reportInvalid) this.events?.invalid(object, error.reason);
    } else if (result.value.warnings !== undefined && result.value.warnings.length > 0) {
      const detail = result.value.warnings.map((w) => (w.path === '' ? w.reason : `${w.path}: ${w.reason}`)).join('; ');
      const name = describeObject(identify(object));
      this.log.warn({ kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name, warnings: result.value.warnings }, `${name}: ${detail}`);
      if (resource.reportInvalid) this.events?.warning(object, detail);
    }
    return result;
  }
}

const lastValidKey = (object: KubeObject): string => `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name ?? ''}`;

/** Resolves with the first failure, or with ok once every result is ok. */
function firstFailureOrAll<E>(results: readonly Promise<Result<void, E>>[]): Promise<Result<void, E>> {
  return new Promise((resolve) => {
    let left = results.length;
    if (left === 0) resolve(ok(undefined));
    for (const result of results) {
      void result.then((r) => {
        if (!r.ok) resolve(r);
        else if (--left === 0) resolve(ok(undefined));
      });
    }
  });
}

function identity(object: KubeObject): string {
  return `${object.metadata.namespace ?? ''}/${object.metadata.name ?? ''}`;
}

/** A stable order (kind, namespace, name), so equal content makes equal snapshots. */
function compareObjects(a: MeshObject, b: MeshObject): number {
  const byKind = (KIND_ORDER.get(a.kind) ?? 99) - (KIND_ORDER.get(b.kind) ?? 99);
  if (byKind !== 0) return byKind;
  const [x, y] = [identity(a.object), identity(b.object)];
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A version from what each object is and its resourceVersion: cheap, and equal for equal content across restarts. */
function versionOf(objects: readonly MeshObject[]): string {
  const hash = createHash('sha256');
  for (const { kind, object } of objects) {
    const rv = object.metadata['resourceVersion'];
    hash.update(`${kind} ${identity(object)} ${typeof rv === 'string' ? rv : JSON.stringify(object)}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}
