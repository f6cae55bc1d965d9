// What the main thread and the event loops in worker threads say to each other. Everything here
// crosses by structured clone: plain data, never a SecureContext, a socket or a snapshot's indexes.
import type { KubeObject } from '@tsmesh/common';
import type { Registry } from 'prom-client';
import type { ProxyConfig } from '../config.js';
import type { SharedMaterial } from '../identity/shared.js';
import type { TracingConfig } from '../telemetry/index.js';
import type { ClusterStats } from './data-plane.js';

/** A mesh snapshot as the objects it is built from (`snapshotObjects`), rebuilt by each loop. */
export interface MeshMessage {
  readonly version: string;
  readonly objects: readonly KubeObject[];
}

/** A worker's `workerData`. */
export interface LoopInit {
  readonly loop: number;
  /** Read by the common logger: every line of the loop says which loop it is. */
  readonly logBindings: { readonly loop: number };
  readonly config: ProxyConfig;
  /** Ports to bind (concrete ones: a port 0 of the config was resolved by the first loop). */
  readonly ports: { readonly outbound: number; readonly inbound: number } | undefined;
  readonly logLevel: string;
  readonly tracing: TracingConfig;
  /** TSMESH_ACCESS_LOG: one JSON line per request. */
  readonly accessLog: boolean;
  readonly mesh: MeshMessage;
  /** Whether the sidecar has a workload identity (a CA); `material` is its certificate once issued. */
  readonly identity: boolean;
  readonly material: SharedMaterial | undefined;
  /** The requests and retries in flight of every loop (upstream/shared-counts.ts): this loop's row is `loop`. */
  readonly counts: SharedArrayBuffer;
  /** The rate limit buckets every loop takes tokens from (policy/rate-buckets.ts). */
  readonly rateBuckets: SharedArrayBuffer;
}

/** A registry's `getMetricsAsJSON()`: what the main thread merges into one `/metrics`. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Questions with an answer, by kind: what is asked and what comes back. */
export interface LoopRequests {
  metrics: { ask: Record<string, never>; answer: MetricsJson };
  clusters: { ask: Record<string, never>; answer: ClusterStats };
  stopAccepting: { ask: Record<string, never>; answer: null };
  drain: { ask: { durationMs: number }; answer: { remaining: number } };
  close: { ask: Record<string, never>; answer: null };
}
export type RequestKind = keyof LoopRequests;

/** Main → loop. */
export type ToLoop =
  | { readonly type: 'mesh'; readonly mesh: MeshMessage }
  | { readonly type: 'tls'; readonly material: SharedMaterial }
  | { readonly type: 'log-level'; readonly level: string }
  | { readonly type: 'request'; readonly id: number; readonly kind: RequestKind; readonly ask: LoopRequests[RequestKind]['ask'] };

/** Loop → main. */
export type FromLoop =
  | { readonly type: 'listening'; readonly ports: { readonly outbound: number; readonly inbound: number } }
  | { readonly type: 'failed'; readonly message: string; readonly code: string | undefined }
  | { readonly type: 'answer'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'answer'; readonly id: number; readonly ok: false; readonly message: string };
