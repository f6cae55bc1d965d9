// The object store of the fake API server: objects per resource, one global resourceVersion, and
// the history of changes that watches replay from (until compact() forgets it).
import { randomUUID } from 'node:crypto';
import type { KubeObject } from '@tsmesh/common';
import type { Selector } from './selectors.js';

export interface FakeResource {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Served from a CustomResourceDefinition: it can be absent, and its list items carry apiVersion and kind. */
  readonly custom: boolean;
  /**
   * Has a `status` subresource: writes to the object keep its status, writes to `/status` change only
   * the status, and only a change outside metadata and status bumps metadata.generation.
   */
  readonly statusSubresource?: boolean;
}

const core = (plural: string, kind: string, namespaced = true): FakeResource => ({ group: '', version: 'v1', plural, kind, namespaced, custom: false });
const custom = (group: string, plural: string, kind: string, statusSubresource = false, version = 'v1'): FakeResource => ({
  group,
  version,
  plural,
  kind,
  namespaced: true,
  custom: true,
  statusSubresource,
});

export const FAKE_RESOURCES: readonly FakeResource[] = [
  core('services', 'Service'),
  core('pods', 'Pod'),
  core('namespaces', 'Namespace', false),
  core('serviceaccounts', 'ServiceAccount'),
  core('events', 'Event'),
  core('configmaps', 'ConfigMap'),
  { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true, custom: false },
  // What `tsmesh check` reads of an installation.
  core('secrets', 'Secret'),
  { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true, custom: false },
  { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false, custom: false },
  { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false, custom: false },
  custom('security.tsmesh.io', 'peerauthentications', 'PeerAuthentication'),
  custom('security.tsmesh.io', 'authorizationpolicies', 'AuthorizationPolicy', true),
  custom('gateway.networking.k8s.io', 'httproutes', 'HTTPRoute', true),
  custom('gateway.networking.k8s.io', 'grpcroutes', 'GRPCRoute', true),
  custom('policy.tsmesh.io', 'httplocalratelimitpolicies', 'HTTPLocalRateLimitPolicy', true),
  custom('policy.tsmesh.io', 'trafficpolicies', 'TrafficPolicy', false, 'v1alpha1'),
  custom('gateway.networking.x-k8s.io', 'xbackendtrafficpolicies', 'XBackendTrafficPolicy', false, 'v1alpha1'),
  // What `tsmesh analyze` reads besides the watched kinds.
  custom('gateway.networking.k8s.io', 'gateways', 'Gateway', true),
  custom('gateway.networking.k8s.io', 'referencegrants', 'ReferenceGrant', false, 'v1beta1'),
];

/** A Kubernetes Status object, as error answers and watch ERROR events carry. */
export function statusObject(code: number, reason: string, message: string): KubeObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** A failure the API server answers with a Status of this code. */
export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export const clone = <T>(value: T): T => structuredClone(value);
export const groupVersion = (r: FakeResource): string => (r.group === '' ? r.version : `${r.group}/${r.version}`);
const keyOf = (namespace: string | undefined, name: string): string => `${namespace ?? ''}/${name}`;
/** What a spec change is judged on: the object without metadata and status. */
const withoutMeta = (object: Record<string, unknown>): Record<string, unknown> => {
  const { metadata: _metadata, status: _status, apiVersion: _apiVersion, kind: _kind, ...rest } = object;
  return rest;
};
const timestamp = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface HistoryRecord {
  readonly rv: number;
  readonly resource: FakeResource;
  readonly type: EventType;
  readonly object: KubeObject;
  /** The object before a change, to turn MODIFIED into ADDED or DELETED for selector-filtered watches. */
  readonly previous: KubeObject | undefined;
}

export class FakeStore {
  private readonly objectsByResource = new Map<FakeResource, Map<string, KubeObject>>();
  private readonly absent: Set<string>;
  private readonly historyLimit: number;
  private readonly onRecord: (record: HistoryRecord) => void;
  private history: HistoryRecord[] = [];
  private historyStart = 0;
  private rv = 0;

  /** `onRecord` hears every change, in resourceVersion order, as it is stored. */
  constructor(options: { absent: readonly string[]; historyLimit: number; onRecord: (record: HistoryRecord) => void }) {
    this.absent = new Set(options.absent);
    this.historyLimit = options.historyLimit;
    this.onRecord = options.onRecord;
    for (const resource of FAKE_RESOURCES) this.objectsByResource.set(resource, new Map());
  }

  /** The latest resourceVersion handed out. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** The changes after `rv` in order; undefined when some are forgotten (the watch must get 410 Gone). */
  changesSince(rv: number): readonly HistoryRecord[] | undefined {
    if (rv < this.historyStart) return undefined;
    return this.history.filter((record) => record.rv > rv);
  }

  /** The oldest resourceVersion a watch may resume from. */
  get oldestResumable(): number {
    return this.historyStart;
  }

  /** Forgets the history: a watch from any earlier resourceVersion gets 410 Gone. */
  compact(): void {
    this.history = [];
    this.historyStart = this.rv;
  }

  isServed(resource: FakeResource): boolean {
    return !this.absent.has(resource.plural);
  }

  /** Serves a custom resource from now on (its CRD was installed). */
  install(plural: string): void {
    this.absent.delete(plural);
  }

  /** Deletes every object of a custom resource and stops serving it (its CRD was deleted). */
  uninstall(plural: string): void {
    const resource = this.resourceByPlural(plural);
    for (const object of [...this.objects(resource).values()]) this.delete(object);
    this.absent.add(plural);
  }

  /** Stores a new object (resourceVersion, uid, creationTimestamp set). */
  create(object: KubeObject): KubeObject {
    const resource = this.resourceOf(object);
    const namespace = resource.namespaced ? (object.metadata.namespace ?? 'default') : undefined;
    const generateName = object.metadata['generateName'];
    const name = object.metadata.name ?? (typeof generateName === 'string' ? `${generateName}${randomUUID().slice(0, 5)}` : undefined);
    if (name === undefined) throw new StatusError(400, 'Invalid', `${object.kind}: metadata.name or generateName is required`);
    const objects = this.objects(resource);
    if (objects.has(keyOf(namespace, name))) {
      throw new StatusError(409, 'AlreadyExists', `${resource.plural} "${name}" already exists`);
    }
    const rv = ++this.rv;
    const stored: KubeObject = {
      ...clone(object),
      apiVersion: groupVersion(resource),
      kind: resource.kind,
      metadata: {
        ...clone(object.metadata),
        name,
        ...(namespace === undefined ? {} : { namespace }),
        uid: randomUUID(),
        resourceVersion: String(rv),
        creationTimestamp: timestamp(),
        generation: 1,
      },
    };
    objects.set(keyOf(namespace, name), stored);
    this.record({ rv, resource, type: 'ADDED', object: stored, previous: undefined });
    return clone(stored);
  }

  /** Replaces a stored object (keeping uid and creationTimestamp). */
  update(object: KubeObject): KubeObject {
    const resource = this.resourceOf(object);
    const { key, existing } = this.find(resource, object);
    const given = object.metadata.resourceVersion;
    if (typeof given === 'string' && given !== '' && given !== existing.metadata.resourceVersion) {
      throw new StatusError(409, 'Conflict', `the object has been modified; resourceVersion ${given} is not the latest`);
    }
    const rv = ++this.rv;
    const kept = resource.statusSubresource ? { status: clone(existing['status']) } : {};
    const { status: _given, ...rest } = clone(object);
    const next: KubeObject = resource.statusSubresource ? (rest as KubeObject) : clone(object);
    const specChanged = !resource.statusSubresource || JSON.stringify(withoutMeta(existing)) !== JSON.stringify(withoutMeta(next));
    const stored: KubeObject = {
      ...next,
      ...(kept.status === undefined ? {} : kept),
      apiVersion: existing.apiVersion,
      kind: existing.kind,
      metadata: {
        ...clone(object.metadata),
        name: existing.metadata.name,
        ...(existing.metadata.namespace === undefined ? {} : { namespace: existing.metadata.namespace }),
        uid: existing.metadata['uid'],
        creationTimestamp: existing.metadata['creationTimestamp'],
        resourceVersion: String(rv),
        generation: Number(existing.metadata['generation'] ?? 1) + (specChanged ? 1 : 0),
      },
    };
    this.objects(resource).set(key, stored);
    this.record({ rv, resource, type: 'MODIFIED', object: stored, previous: existing });
    return clone(stored);
  }

  /**
   * Replaces the status of a stored object of a resource with a status subresource, as a PUT (or a
   * PATCH, after the caller merged it) on `/status` does: everything else is kept, generation too.
   * A non-empty `resourceVersion` that is not the stored one is a 409 Conflict.
   */
  updateStatus(resource: FakeResource, object: Pick<KubeObject, 'metadata'>, status: unknown, resourceVersion: string | undefined): KubeObject {
    const { key, existing } = this.find(resource, object);
    if (resourceVersion !== undefined && resourceVersion !== '' && resourceVersion !== existing.metadata.resourceVersion) {
      throw new StatusError(409, 'Conflict', `the object has been modified; resourceVersion ${resourceVersion} is not the latest`);
    }
    const rv = ++this.rv;
    const stored: KubeObject = { ...clone(existing), metadata: { ...clone(existing.metadata), resourceVersion: String(rv) } };
    if (status === undefined || status === null) delete stored['status'];
    else stored['status'] = clone(status);
    this.objects(resource).set(key, stored);
    this.record({ rv, resource, type: 'MODIFIED', object: stored, previous: existing });
    return clone(stored);
  }

  /** Creates or updates. */
  apply(object: KubeObject): KubeObject {
    const resource = this.resourceOf(object);
    const namespace = resource.namespaced ? (object.metadata.namespace ?? 'default') : undefined;
    const exists = object.metadata.name !== undefined && this.objects(resource).has(keyOf(namespace, object.metadata.name));
    const { resourceVersion: _ignored, ...metadata } = object.metadata;
    return exists ? this.update({ ...object, metadata }) : this.create(object);
  }

  /** Removes an object (named by apiVersion, kind, metadata.name and namespace). */
  delete(object: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): KubeObject {
    const resource = this.resourceOf(object);
    const { key, existing } = this.find(resource, object);
    const rv = ++this.rv;
    const deleted: KubeObject = { ...existing, metadata: { ...existing.metadata, resourceVersion: String(rv) } };
    this.objects(resource).delete(key);
    this.record({ rv, resource, type: 'DELETED', object: deleted, previous: existing });
    return clone(deleted);
  }

  /** Objects of a resource, of one namespace or all, that match `selector`: sorted as etcd keys are (namespace, then name). */
  matching(resource: FakeResource, namespace: string | undefined, selector: Selector): KubeObject[] {
    return [...this.objects(resource).entries()]
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .filter(([, o]) => selector(o))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o);
  }

  /** A resource by its plural (whether served or not). */
  resourceByPlural(plural: string): FakeResource {
    const resource = FAKE_RESOURCES.find((r) => r.plural === plural);
    if (resource === undefined) throw new Error(`unknown resource ${plural}`);
    return resource;
  }

  /** The stored object `object` names (by namespace and name), or a 404. */
  find(resource: FakeResource, object: Pick<KubeObject, 'metadata'>): { key: string; existing: KubeObject } {
    const namespace = resource.namespaced ? (object.metadata.namespace ?? 'default') : undefined;
    const name = object.metadata.name ?? '';
    const key = keyOf(namespace, name);
    const existing = this.objects(resource).get(key);
    if (existing === undefined) throw new StatusError(404, 'NotFound', `${resource.plural} "${name}" not found`);
    return { key, existing };
  }

  private objects(resource: FakeResource): Map<string, KubeObject> {
    const objects = this.objectsByResource.get(resource);
    if (objects === undefined) throw new Error(`no store for ${resource.plural}`);
    return objects;
  }

  private resourceOf(object: Pick<KubeObject, 'apiVersion' | 'kind'>): FakeResource {
    const resource = FAKE_RESOURCES.find((r) => groupVersion(r) === object.apiVersion && r.kind === object.kind);
    if (resource === undefined) throw new StatusError(404, 'NotFound', `no resource for ${object.apiVersion} ${object.kind}`);
    if (!this.isServed(resource)) throw new StatusError(404, 'NotFound', `${resource.plural} is not installed`);
    return resource;
  }

  private record(record: HistoryRecord): void {
    this.history.push(record);
    while (this.history.length > this.historyLimit) {
      const dropped = this.history.shift();
      if (dropped !== undefined) this.historyStart = dropped.rv;
    }
    this.onRecord(record);
  }
}
