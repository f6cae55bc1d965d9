// Warning Events (core/v1) on objects discovery leaves out of the mesh, or keeps with a warning
// (an unknown algorithm name), so `kubectl describe` shows why. Best effort: a post never blocks discovery, a failure is only logged, and when too
// many are in flight new ones are dropped.
import { hostname } from 'node:os';
import { HttpMethod } from '@kubernetes/client-node';
import { DEFAULT_NAMESPACE, type KubeObject, type Logger } from '@tsmesh/common';
import { describeError } from '../errors.js';
import type { KubeHttp } from './kube-http.js';

export const EVENT_COMPONENT = 'tsmesh-control';
export const INVALID_OBJECT_REASON = 'InvalidMeshObject';
/** An object in the mesh with a value kept as written that may not do what was meant (an unknown algorithm). */
export const OBJECT_WARNING_REASON = 'MeshObjectWarning';
const MAX_MESSAGE = 1024;

export interface EventRecorderOptions {
  readonly log: Logger;
  /** Posts in flight at most (default 8); more are dropped. */
  readonly maxInFlight?: number;
  /** Gives up on one post after this long (default 10 s). */
  readonly timeoutMs?: number;
}

export class EventRecorder {
  private readonly http: KubeHttp;
  private readonly log: Logger;
  private readonly maxInFlight: number;
  private readonly timeoutMs: number;
  private readonly closing = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly instance = hostname();

  constructor(http: KubeHttp, options: EventRecorderOptions) {
    this.http = http;
    this.log = options.log;
    this.maxInFlight = options.maxInFlight ?? 8;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Records a Warning Event on `object` saying why it is left out of the mesh. Never throws, never waits. */
  invalid(object: KubeObject, reason: string): void {
    this.post(object, `left out of the mesh: ${reason}`, INVALID_OBJECT_REASON);
  }

  /** Records a Warning Event on an object kept in the mesh whose value may not do what was meant. Never throws, never waits. */
  warning(object: KubeObject, detail: string): void {
    this.post(object, `in the mesh, but: ${detail}`, OBJECT_WARNING_REASON);
  }

  private post(object: KubeObject, message: string, reason: string): void {
    if (this.closing.signal.aborted) return;
    if (this.inFlight.size >= this.maxInFlight) {
      this.log.debug({ kind: object.kind, name: object.metadata.name }, 'too many Events in flight; this one is dropped');
      return;
    }
    const body = warningEvent(object, message, this.instance, reason);
    const namespace = (body['metadata'] as { namespace: string }).namespace;
    const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(this.timeoutMs)]);
    const post = this.http
      .request(HttpMethod.POST, `/api/v1/namespaces/${namespace}/events`, { body, signal })
      .then(
        () => undefined,
        (error: unknown) => {
          if (!this.closing.signal.aborted) this.log.debug({ err: describeError(error), kind: object.kind, name: object.metadata.name }, 'could not record an Event');
        },
      )
      .finally(() => this.inFlight.delete(post));
    this.inFlight.add(post);
  }

  /** Cancels the posts in flight. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.all([...this.inFlight]);
  }
}

/** A core/v1 Warning Event about `object`; cluster-scoped objects get theirs in `default`, as kubectl looks there. */
export function warningEvent(object: KubeObject, message: string, instance: string, reason = INVALID_OBJECT_REASON): Record<string, unknown> {
  const { name = '', namespace, uid, resourceVersion } = object.metadata;
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${name}.`, namespace: namespace ?? DEFAULT_NAMESPACE },
    involvedObject: {
      apiVersion: object.apiVersion,
      kind: object.kind,
      name,
      ...(namespace === undefined ? {} : { namespace }),
      ...(typeof uid === 'string' ? { uid } : {}),
      ...(typeof resourceVersion === 'string' ? { resourceVersion } : {}),
    },
    reason,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
    type: 'Warning',
    source: { component: EVENT_COMPONENT },
    reportingComponent: EVENT_COMPONENT,
    reportingInstance: instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
