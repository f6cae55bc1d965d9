// Where a request or connection goes next: a lease on one endpoint, from a balanced cluster
// (outbound) or the fixed local application (inbound). Forwarders speak only this interface.
import { err, ok, TsmeshError, type HashSource, type Result } from '@tsmesh/common';
import type { BalancedCluster } from '../balance/cluster.js';
import type { BalancedEndpoint, PickContext } from '../balance/balancer.js';
import { pickContextOf } from '../balance/hash-key.js';
import type { SessionAffinity } from '../balance/session.js';
import type { HttpRequestInfo } from '../http/context.js';

/** An endpoint a forwarder may connect to. */
export interface UpstreamEndpoint extends BalancedEndpoint {
  /** SPIFFE identity discovery expects at this endpoint, when it is a meshed pod. */
  readonly identity?: string | undefined;
  /** Local address to bind when connecting (inbound delivery binds 127.0.0.6). */
  readonly localAddress?: string | undefined;
  /** Who runs there, for metrics and access logs (workload, namespace, identity). */
  readonly peer?:
    | { readonly workload?: string; readonly namespace?: string; readonly identity?: string; readonly app?: string | undefined; readonly version?: string | undefined }
    | undefined;
  /** The zone it runs in, and the zones topology-aware routing hints give it (balance/locality.ts). */
  readonly zone?: string | undefined;
  readonly forZones?: readonly string[] | undefined;
}

export type FailureKind = 'connect' | 'reset' | 'timeout';

/** One request's or connection's hold on an endpoint. Call exactly one of the outcome methods, then `release()`. */
export interface UpstreamLease {
  readonly endpoint: UpstreamEndpoint;
  /** The upstream could not be reached or broke: passive health may eject it. */
  failed(kind: FailureKind): void;
  /** The upstream accepted the connection (opaque TCP), or answered without saying which status. */
  succeeded(): void;
  /** The upstream answered with `status` after `latencyMs`: 5xx feed outlier detection, the rest count as successes. */
  responded(status: number, latencyMs: number): void;
  /** The request/connection is over (idempotent). */
  release(): void;
}

export interface UpstreamSelector {
  /** A name for logs and metrics (`ns/service:port`, `inbound:8080`). */
  readonly name: string;
  /** Where requests take their consistent-hash key from (the Service's TrafficPolicy), if anywhere. */
  readonly hash?: HashSource | undefined;
  /** How requests are bound to endpoints (the Service's BackendTrafficPolicy sessionPersistence), if at all. */
  readonly session?: SessionAffinity | undefined;
  /** The endpoints a session may be bound to (the cluster's, ejected or not); absent for a fixed endpoint. */
  readonly clusterEndpoints?: readonly BalancedEndpoint[];
  /** Chooses an endpoint now (synchronous); fails as a value when none is available. */
  select(ctx?: PickContext): Result<UpstreamLease, TsmeshError>;
  /** How many distinct endpoints a retry of a connect failure may try. */
  readonly size: number;
}

/** The pick context of an HTTP request: the consistent-hash key and the endpoint its session is bound to, when the selector has them. */
export function pickContextFor(selector: UpstreamSelector, request: HttpRequestInfo, clientAddress: string | undefined): PickContext | undefined {
  const base = selector.hash && pickContextOf(selector.hash, request, clientAddress);
  const session = selector.session;
  return session === undefined ? base : session.pickContext(request, selector.clusterEndpoints ?? [], base);
}

/** Adapts a BalancedCluster: failures feed passive health, releases feed least-request. `hash` and `session` may be changed later. */
export function clusterSelector(
  name: string,
  cluster: BalancedCluster<UpstreamEndpoint>,
): UpstreamSelector & { hash: HashSource | undefined; session: SessionAffinity | undefined } {
  return {
    name,
    hash: undefined,
    session: undefined,
    get size() {
      return cluster.endpoints.length;
    },
    get clusterEndpoints() {
      return cluster.endpoints;
    },
    select(ctx) {
      const picked = cluster.pick(ctx);
      if (!picked.ok) return picked;
      const { endpoint } = picked.value;
      return ok({
        endpoint,
        failed: (kind: FailureKind) => {
          if (kind !== 'timeout') cluster.reportFailure(endpoint.key);
        },
        succeeded: () => cluster.reportSuccess(endpoint.key),
        responded: (status: number, latencyMs: number) => {
          cluster.reportResponse(endpoint.key, status);
          cluster.reportLatency(endpoint.key, latencyMs);
        },
        release: () => picked.value.release(),
      });
    },
  };
}

/** Always the same endpoint (inbound delivery to the local application, passthrough). */
export function fixedSelector(name: string, endpoint: UpstreamEndpoint | undefined): UpstreamSelector {
  const noop = (): void => {};
  return {
    name,
    size: endpoint ? 1 : 0,
    select() {
      if (!endpoint) return err(new TsmeshError('TSMESH_ERR_NO_ENDPOINTS', `no endpoint for ${name}`));
      return ok({ endpoint, failed: noop, succeeded: noop, responded: noop, release: noop });
    },
  };
}

/** `ip:port`, with an IPv6 address in brackets (`[fd00::1]:80`), as in URLs and Envoy's logs. */
export function hostPort(address: string | undefined, port: number | undefined): string {
  const host = address?.includes(':') ? `[${address}]` : (address ?? '');
  return `${host}:${port ?? ''}`;
}

export function endpointOf(address: string, port: number, extra: Partial<UpstreamEndpoint> = {}): UpstreamEndpoint {
  return { key: hostPort(address, port), address, port, ...extra };
}
