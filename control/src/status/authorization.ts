// Writes an `Accepted` condition into each policy's status (AuthorizationPolicy here; the same writer
// serves HTTPLocalRateLimitPolicy, status/rate-limit.ts): True when the policy is in the mesh (the
// sidecars of the workloads it selects enforce it), False with the validator's reason when it was
// left out (or the kind's own review's, e.g. a selector that matches nothing), so `kubectl get`
// shows a refused policy where its author looks.
// Debounced per snapshot; writes only what differs; a failure is logged and retried on the next change.
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_ROOT_NAMESPACE, logger, policySelects, validateObject, type KubeObject, type Logger, type MeshProvider, type MeshSnapshot } from '@tsmesh/common';
import { KubeHttp, statusCodeOf } from '../kube/kube-http.js';
import { DebouncedPass } from '../debounced-pass.js';
import { sameJson } from './parents.js';
import type { StatusClient } from './writer.js';

/** Where the writer learns which AuthorizationPolicies discovery left out, and why (KubernetesSource). */
export interface RejectedObjects {
  rejected(kind: string): ReadonlyArray<{ readonly object: KubeObject; readonly reason: string }>;
}

export interface AuthorizationStatusWriterOptions {
  readonly debounceMs?: number;
  readonly log?: Logger;
  /** Without it only accepted policies get a condition. */
  readonly rejected?: RejectedObjects | undefined;
  /** The clock for lastTransitionTime (tests). */
  readonly now?: () => Date;
  /** Whose policies apply mesh-wide (`--root-namespace`); default DEFAULT_ROOT_NAMESPACE. */
  readonly rootNamespace?: string;
}

export const ACCEPTED_MESSAGE = 'enforced by the sidecars of the workloads it selects';

export interface AcceptedCondition {
  type: 'Accepted';
  status: 'True' | 'False';
  /** `Accepted`, `Invalid` (left out), or a kind's own (e.g. `NoMatchingWorkload`). */
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** `/apis/security.tsmesh.io/v1/namespaces/{ns}/authorizationpolicies/{name}/status`. */
export function authorizationStatusPath(namespace: string, name: string): string {
  return `/apis/security.tsmesh.io/v1/namespaces/${encodeURIComponent(namespace)}/authorizationpolicies/${encodeURIComponent(name)}/status`;
}

const rfc3339 = (date: Date): string => date.toISOString().replace(/\.\d+Z$/, 'Z');

function conditionsOf(object: KubeObject): Record<string, unknown>[] {
  const status = object['status'];
  if (typeof status !== 'object' || status === null) return [];
  const conditions = (status as Record<string, unknown>)['conditions'];
  return Array.isArray(conditions) ? conditions.filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null) : [];
}

/**
 * The conditions `object` should carry: its other conditions as they are, and Accepted as given.
 * lastTransitionTime moves only when the status changes; undefined when nothing differs.
 */
export function desiredConditions(object: KubeObject, accepted: boolean, message: string, now: string, reason?: string): Record<string, unknown>[] | undefined {
  const existing = conditionsOf(object);
  const previous = existing.find((c) => c['type'] === 'Accepted');
  const status = accepted ? 'True' : 'False';
  const generation = object.metadata['generation'];
  const condition: AcceptedCondition = {
    type: 'Accepted',
    status,
    reason: reason ?? (accepted ? 'Accepted' : 'Invalid'),
    message,
    ...(typeof generation === 'number' ? { observedGeneration: generation } : {}),
    lastTransitionTime: previous !== undefined && previous['status'] === status && typeof previous['lastTransitionTime'] === 'string' ? previous['lastTransitionTime'] : now,
  };
  if (previous !== undefined && sameJson(previous, condition)) return undefined;
  return [...existing.filter((c) => c['type'] !== 'Accepted'), condition as unknown as Record<string, unknown>];
}

/** What the writer needs to know of one policy kind. */
export interface PolicyStatusKind {
  readonly kind: string;
  /** The status subresource of one object. */
  statusPath(namespace: string, name: string): string;
  /** The Accepted condition's message for a policy in the mesh. */
  readonly acceptedMessage: string;
  /** A policy in the mesh that is not Accepted after all (e.g. it selects nothing): why; undefined: Accepted. */
  review?(object: KubeObject, snapshot: MeshSnapshot, rootNamespace: string): { readonly reason: string; readonly message: string } | undefined;
}

/**
 * Why a valid AuthorizationPolicy in the mesh decides nothing, if it does: it selects no pod (by the
 * sidecar's own rule, policySelects: the root namespace's policies reach every namespace). Such a
 * policy is still sent to sidecars and applies as soon as a pod matches.
 */
export function reviewAuthorization(object: KubeObject, snapshot: Pick<MeshSnapshot, 'pods'>, rootNamespace: string): { readonly reason: string; readonly message: string } | undefined {
  const checked = validateObject(object);
  if (!checked.ok || checked.value.kind !== 'AuthorizationPolicy') return undefined;
  const policy = checked.value.value;
  if (snapshot.pods.some((pod) => policySelects(policy, pod, rootNamespace))) return undefined;
  const scope = policy.namespace === rootNamespace ? 'the mesh' : `namespace ${policy.namespace}`;
  const labels = Object.entries(policy.selector ?? {});
  const wanted = labels.length === 0 ? 'no pod runs there' : `no pod there has ${labels.map(([k, v]) => `${k}=${v}`).join(',')}`;
  return { reason: 'NoMatchingWorkload', message: `spec.selector matches no workload of ${scope}: ${wanted} (it applies as soon as one does)` };
}

export const AUTHORIZATION_STATUS: PolicyStatusKind = {
  kind: 'AuthorizationPolicy',
  statusPath: authorizationStatusPath,
  acceptedMessage: ACCEPTED_MESSAGE,
  review: reviewAuthorization,
};

export class PolicyStatusWriter {
  private readonly client: StatusClient;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly passes: DebouncedPass;
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly provider: MeshProvider,
    client: StatusClient | KubeConfig,
    private readonly policyKind: PolicyStatusKind,
    private readonly options: AuthorizationStatusWriterOptions = {},
  ) {
    this.client = client instanceof KubeConfig ? new KubeHttp(client) : client;
    this.log = options.log ?? logger('control.status');
    this.now = options.now ?? (() => new Date());
    this.passes = new DebouncedPass(() => this.pass(), options.debounceMs ?? 200);
  }

  start(): void {
    if (this.unsubscribe !== undefined || this.closed) return;
    this.unsubscribe = this.provider.subscribe(() => this.passes.schedule());
    this.passes.schedule();
  }

  idle(): Promise<void> {
    return this.passes.idle();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    await this.passes.close();
  }

  private async pass(): Promise<void> {
    const snapshot = this.provider.current();
    if (snapshot === undefined) return;
    const now = rfc3339(this.now());
    const kind = this.policyKind;
    const wanted: Array<{ object: KubeObject; accepted: boolean; message: string; reason?: string }> = [];
    for (const object of snapshot.others) {
      if (object.kind !== kind.kind) continue;
      const review = kind.review?.(object, snapshot, this.options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE);
      wanted.push(review === undefined ? { object, accepted: true, message: kind.acceptedMessage } : { object, accepted: false, ...review });
    }
    for (const { object, reason } of this.options.rejected?.rejected(kind.kind) ?? []) wanted.push({ object, accepted: false, message: `left out of the mesh: ${reason}` });
    for (const { object, accepted, message, reason } of wanted) {
      if (this.closed) return;
      const conditions = desiredConditions(object, accepted, message, now, reason);
      if (conditions === undefined) continue;
      const namespace = object.metadata.namespace ?? 'default';
      const name = object.metadata.name ?? '';
      const status = typeof object['status'] === 'object' && object['status'] !== null ? (object['status'] as Record<string, unknown>) : {};
      try {
        await this.client.request(HttpMethod.PUT, kind.statusPath(namespace, name), { body: { ...object, status: { ...status, conditions } } });
      } catch (error) {
        const code = statusCodeOf(error);
        // 404: deleted meanwhile; 409: a newer object is on its way through the watch, and with it another pass.
        if (code !== 404 && code !== 409) this.log.warn({ err: error, policy: `${namespace}/${name}` }, `cannot write the ${kind.kind} status; trying again on the next change`);
      }
    }
  }
}

/** The AuthorizationPolicy status writer. */
export class AuthorizationStatusWriter extends PolicyStatusWriter {
  constructor(provider: MeshProvider, client: StatusClient | KubeConfig, options: AuthorizationStatusWriterOptions = {}) {
    super(provider, client, AUTHORIZATION_STATUS, options);
  }
}
