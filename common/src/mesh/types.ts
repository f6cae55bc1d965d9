// The mesh model: what discovery (Kubernetes or a mesh file) knows, as immutable values.
// Providers build a MeshSnapshot; the proxy reads it on the hot path without awaiting anything.

import type { Result, TsmeshError } from '../errors.js';
import type { EffectiveTrafficPolicy } from './traffic-policy.js';

export type AppProtocol = 'http' | 'http2' | 'grpc' | 'tcp' | 'tls';

/** One port of a Service, with its declared protocol when there is one. */
export interface ServicePort {
  readonly name: string; // '' when unnamed
  readonly port: number;
  /** A number, or the name of a container port. */
  readonly targetPort: number | string;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  /** From `appProtocol`, or the port-name prefix (`http-`, `grpc-`, ...); undefined: detect. */
  readonly declaredProtocol: AppProtocol | undefined;
}

export interface MeshService {
  readonly namespace: string;
  readonly name: string;
  /** Cluster IPs (IPv4 and/or IPv6); empty for a headless Service. */
  readonly clusterIPs: readonly string[];
  readonly headless: boolean;
  readonly ports: readonly ServicePort[];
  readonly selector: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** From the annotation `tsmesh.io/load-balancer`; the default is `least-request`. */
  readonly loadBalancer: string;
  /**
   * From the annotation `tsmesh.io/locality`: `zone` (absent: the default) prefers endpoints in the
   * caller's zone, `off` balances over every zone alike.
   */
  readonly locality?: LocalityMode | undefined;
}

/** How a Service's callers weigh endpoint zones (annotation `tsmesh.io/locality`). */
export type LocalityMode = 'zone' | 'off';

/** One address of an EndpointSlice, resolved to a concrete port for one Service port. */
export interface MeshEndpoint {
  readonly address: string;
  readonly port: number;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** The Pod behind the address, when the slice names one (targetRef). */
  readonly pod: PodRef | undefined;
  /** The zone the endpoint runs in (EndpointSlice `zone`, from its node's `topology.kubernetes.io/zone`). */
  readonly zone?: string | undefined;
  /** Topology-aware routing hints (EndpointSlice `hints.forZones`): the zones whose callers should use it. */
  readonly forZones?: readonly string[] | undefined;
}

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

export interface MeshPod {
  readonly namespace: string;
  readonly name: string;
  readonly ips: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** Whether the pod carries a tsmesh sidecar (annotation `tsmesh.io/status`, or a `tsmesh-proxy` container). */
  readonly meshed: boolean;
}

/** What an original destination (ip:port) maps to. */
export type DestinationMatch =
  | { readonly kind: 'service'; readonly service: MeshService; readonly port: ServicePort }
  | { readonly kind: 'endpoint'; readonly pod: MeshPod | undefined; readonly address: string; readonly port: number }
  | { readonly kind: 'passthrough' };

/** An immutable view of the mesh at one moment. Build a new one on every change. */
export interface MeshSnapshot {
  /** Monotonic version of this snapshot (content-derived or counter). */
  readonly version: string;
  readonly services: readonly MeshService[];
  readonly pods: readonly MeshPod[];
  /** Raw objects of kinds the proxy does not interpret yet (PeerAuthentication, HTTPRoute...), kept for later stages. */
  readonly others: readonly KubeObject[];
  /** Maps an original destination to a Service port (by cluster IP), a pod endpoint, or passthrough. */
  resolve(address: string, port: number): DestinationMatch;
  /** The endpoints of one Service port, all conditions included; callers filter on ready/serving/terminating. */
  endpoints(service: MeshService, port: ServicePort): readonly MeshEndpoint[];
  /** The pod that owns an IP, if known. */
  podByIp(address: string): MeshPod | undefined;
  /** A Service by namespace and name (route backendRefs and parentRefs name Services this way). */
  service(namespace: string, name: string): MeshService | undefined;
  /**
   * The traffic policy of one Service port: every TrafficPolicy and XBackendTrafficPolicy targeting
   * it merged (port-level over Service-level, then oldest, then by name; Gateway API's retry budget
   * over TrafficPolicy's), defaults filled. Memoised per port: a map read after the first call.
   */
  trafficPolicyFor(service: MeshService, port: ServicePort): EffectiveTrafficPolicy;
}

/** A source of snapshots (a mesh file, the control plane). Each change produces a whole new snapshot. */
export interface MeshProvider {
  /** Loads the first snapshot and starts watching; fails with the reason when the first load is invalid. */
  start(): Promise<Result<MeshSnapshot, TsmeshError>>;
  /** The last good snapshot; undefined before start() succeeded. */
  current(): MeshSnapshot | undefined;
  /** Calls `listener` with every later snapshot (not the current one); returns the unsubscribe function. */
  subscribe(listener: (snapshot: MeshSnapshot) => void): () => void;
  /** Stops watching; no snapshot is delivered after it resolves. */
  close(): Promise<void>;
}

/** A Kubernetes-format object as read from YAML or the API server. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}
