// What each sidecar is sent, per provider snapshot: the objects every workload needs are serialised
// once; what depends on the workload (its namespace's PeerAuthentications, and the root namespace's)
// is added per namespace and cached, so a thousand sidecars of one namespace cost one serialisation.
import { createHash } from 'node:crypto';
import type { MeshSnapshot } from '@tsmesh/common';
import { projectSnapshot, type WireObject } from './project.js';

/** Who is asking, from the client certificate's SPIFFE ID. */
export interface WorkloadIdentity {
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** A snapshot message for one scope, as the pieces of one NDJSON line. */
export interface ScopedView {
  /** Content-derived: equal objects, equal version (across replicas and restarts). */
  readonly version: string;
  readonly objectCount: number;
  /**
   * Written in order they make one `{"type":"snapshot",...}\n` line. Buffers, so that every stream
   * writes the same bytes: a string written to a stream is copied for it (N sidecars, N copies).
   */
  readonly parts: readonly Buffer[];
}

/** Kinds sent only when they belong to the workload's namespace or to the root namespace. */
const NAMESPACE_SCOPED_KINDS: ReadonlySet<string> = new Set(['PeerAuthentication', 'AuthorizationPolicy', 'HTTPLocalRateLimitPolicy']);

/**
 * Scoping: a workload receives every Namespace, Service, EndpointSlice, Pod (identity fields only),
 * HTTPRoute, GRPCRoute, TrafficPolicy and XBackendTrafficPolicy — it may call any Service, and routes
 * and policies of the Service's namespace (or, for routes, any namespace) apply to those calls —
 * and the PeerAuthentications of its own namespace and of the root namespace (mesh-wide policy):
 * PeerAuthentication governs a workload's inbound side only.
 */
export class SnapshotViews {
  readonly sourceVersion: string;
  private readonly rootNamespace: string;
  private readonly shared: Buffer;
  private readonly sharedCount: number;
  private readonly sharedHash: string;
  private readonly scoped: ReadonlyMap<string, readonly string[]>;
  private readonly cache = new Map<string, ScopedView>();

  constructor(snapshot: MeshSnapshot, rootNamespace: string) {
    this.sourceVersion = snapshot.version;
    this.rootNamespace = rootNamespace;
    const shared: string[] = [];
    const scoped = new Map<string, string[]>();
    for (const wire of projectSnapshot(snapshot)) {
      const json = JSON.stringify(wire.object);
      if (!NAMESPACE_SCOPED_KINDS.has(wire.kind)) shared.push(json);
      else scoped.set(wire.namespace, [...(scoped.get(wire.namespace) ?? []), json]);
    }
    this.shared = Buffer.from(shared.join(','));
    this.sharedCount = shared.length;
    this.sharedHash = createHash('sha256').update(this.shared).digest('hex');
    this.scoped = scoped;
  }

  /** The view of a workload in `namespace` (memoised). */
  forNamespace(namespace: string): ScopedView {
    let view = this.cache.get(namespace);
    if (view === undefined) {
      view = this.build(namespace);
      this.cache.set(namespace, view);
    }
    return view;
  }

  /** The objects a workload in `namespace` receives (for tests and the debug endpoint). */
  objectsFor(namespace: string): WireObject['object'][] {
    const view = this.forNamespace(namespace);
    const line = view.parts.join('');
    return (JSON.parse(line) as { objects: WireObject['object'][] }).objects;
  }

  private build(namespace: string): ScopedView {
    const namespaces = namespace === this.rootNamespace ? [namespace] : [this.rootNamespace, namespace];
    const extra = namespaces.flatMap((ns) => this.scoped.get(ns) ?? []);
    const tail = extra.join(',');
    const version = createHash('sha256').update(this.sharedHash).update('\n').update(tail).digest('hex').slice(0, 16);
    const separator = this.sharedCount > 0 && extra.length > 0 ? ',' : '';
    return Object.freeze({
      version,
      objectCount: this.sharedCount + extra.length,
      parts: Object.freeze([Buffer.from(`{"type":"snapshot","version":${JSON.stringify(version)},"objects":[`), this.shared, Buffer.from(`${separator}${tail}]}\n`)]),
    });
  }
}
