// One upstream call (an HTTP/1.1 request, an HTTP/2 stream or an opaque TCP connection) as the
// cluster sees it: select an endpoint → attempt → record the outcome on the lease (passive
// health, least-request) → metrics, and, when the attempt failed before anything that cannot be
// replayed was sent, another attempt on an endpoint not tried yet. The forwarders only translate
// between the wire and this; retry policy and circuit breaking sit here.
import { err, TsmeshError, type Result } from '@tsmesh/common';
import type { PickContext } from '../balance/balancer.js';
import { PROXY_ERRORS } from '../errors.js';
import type { ClusterLimits, ConnectionGate, OverflowKind } from './limits.js';
import type { FailureKind, UpstreamLease, UpstreamSelector } from './selector.js';

export type UpstreamProtocol = 'http1' | 'http2' | 'tcp';

/**
 * Why an attempt failed: the endpoint's failures (FailureKind), `refused`: the upstream took
 * none of it (HTTP/2 REFUSED_STREAM, a stream above GOAWAY's last id), which says nothing bad of
 * the endpoint, or `status`: it answered with a status the retry policy retries (already told to
 * the endpoint by `responded`).
 */
export type AttemptFailure = FailureKind | 'refused' | 'status';

/** Attempts per call at most (the first included), as for connect failures until now. */
export const MAX_ATTEMPTS = 3;

/** Where the outcomes of attempts are counted (the loop's metrics). */
export interface UpstreamRecorder {
  /** One attempt that could not connect to an endpoint of `cluster`. */
  connectFailure(cluster: string): void;
  /** One attempt after the first, and why the previous one failed. */
  retry(cluster: string, protocol: UpstreamProtocol, reason: AttemptFailure): void;
  /** A request failed fast, or a retry was not sent, because of a cluster limit. */
  overflow(cluster: string, kind: OverflowKind): void;
}

export const NO_RECORDER: UpstreamRecorder = { connectFailure: () => {}, retry: () => {}, overflow: () => {} };

/** Makes the call of one request, stream or connection (the upstream layer's, or a plain one). */
export type CallFactory = (selector: UpstreamSelector, protocol: UpstreamProtocol, pickContext?: PickContext) => UpstreamCall;

/** Calls outside any cluster's limits, counted in `recorder` (inbound delivery, tests). */
export function plainCalls(recorder: UpstreamRecorder = NO_RECORDER): CallFactory {
  return (selector, protocol, pickContext) => new UpstreamCall(selector, protocol, recorder, pickContext);
}

/** The recorder that counts in a loop's metrics. */
export function metricsRecorder(metrics: {
  upstreamConnectFailure(cluster: string): void;
  upstreamRetry(cluster: string, protocol: string, reason: string): void;
  upstreamOverflow(cluster: string, kind: string): void;
}): UpstreamRecorder {
  return {
    connectFailure: (cluster) => metrics.upstreamConnectFailure(cluster),
    retry: (cluster, protocol, reason) => metrics.upstreamRetry(cluster, protocol, reason),
    overflow: (cluster, kind) => metrics.upstreamOverflow(cluster, kind),
  };
}

/**
 * How a failed attempt may be followed: `failover` sends the request again, possibly to another
 * endpoint (it spends the retry budget); `policy` is a retry the request's retry policy asks for
 * (a retriable status, a per-try timeout): as a failover, but with the policy's attempts instead
 * of MAX_ATTEMPTS, and to the same endpoint again when the cluster has no other; `transparent`
 * resends what the upstream never took (a pooled connection that had gone stale, REFUSED_STREAM,
 * a stream above GOAWAY's last id), which spends nothing.
 */
export type RetryKind = 'failover' | 'policy' | 'transparent';

export class UpstreamCall {
  private attemptCount = 0;
  private current: UpstreamLease | undefined;
  private lastFailure: AttemptFailure | undefined;
  /** Endpoint keys attempted so far (at most MAX_ATTEMPTS). */
  private readonly tried: string[] = [];
  /** Admitted by the cluster's limits (released with the call). */
  private admitted = false;
  private holdsRetry = false;
  private overflowed: OverflowKind | undefined;
  /** When the attempt in progress started (performance.now()). */
  private startedAt = 0;

  constructor(
    readonly selector: UpstreamSelector,
    readonly protocol: UpstreamProtocol,
    private readonly recorder: UpstreamRecorder = NO_RECORDER,
    private readonly pickContext?: PickContext,
    private readonly limits?: ClusterLimits,
  ) {}

  /** The limit that stopped this call or its last retry, if one did. */
  get overflow(): OverflowKind | undefined {
    return this.overflowed;
  }

  /** The connection slots of the call's cluster, which the pools ask before dialing; undefined outside any cluster's limits. */
  get gate(): ConnectionGate | undefined {
    return this.limits?.gate;
  }

  /** A connection limit held the call up (`max_connections`: it waits) or stopped it (`max_pending`): counted. */
  limited(kind: OverflowKind): void {
    this.overflowed = kind;
    this.recorder.overflow(this.selector.name, kind);
  }

  /** The cluster's name, for logs and metrics. */
  get cluster(): string {
    return this.selector.name;
  }

  /** Attempts started so far. */
  get attempts(): number {
    return this.attemptCount;
  }

  /**
   * The header the answer of the attempt in progress carries to bind the client's session to its
   * endpoint (session persistence): undefined without persistence or when the request was bound there already.
   */
  sessionHeader(): [string, string] | undefined {
    const session = this.selector.session;
    const key = this.current?.endpoint.key;
    if (session === undefined || key === undefined) return undefined;
    return session.responseHeader(this.pickContext?.prefer, key);
  }

  /** The lease of the attempt in progress (undefined before the first and after `release`). */
  get lease(): UpstreamLease | undefined {
    return this.current;
  }

  /**
   * Starts the next attempt: the previous lease is released, and an endpoint not tried yet is
   * chosen while the cluster has an eligible one (PickContext.avoid).
   */
  next(): Result<UpstreamLease, TsmeshError> {
    this.current?.release();
    this.current = undefined;
    if (this.attemptCount === 0 && this.limits !== undefined && !this.admitted) {
      const over = this.limits.admitRequest();
      if (over !== undefined) return this.refuse(over);
      this.admitted = true;
    }
    const ctx = this.tried.length === 0 ? this.pickContext : { ...this.pickContext, avoid: this.tried };
    const picked = this.selector.select(ctx);
    if (!picked.ok) return picked;
    this.attemptCount++;
    if (this.attemptCount > 1 && this.lastFailure !== undefined) this.recorder.retry(this.selector.name, this.protocol, this.lastFailure);
    this.current = picked.value;
    this.tried.push(picked.value.endpoint.key);
    this.startedAt = performance.now();
    return picked;
  }

  /** The endpoint accepted the connection (opaque TCP). */
  succeeded(): void {
    this.current?.succeeded();
  }

  /** The endpoint's response head arrived with `status`: 5xx feed outlier detection, the latency feeds peak-ewma. */
  responded(status: number): void {
    this.current?.responded(status, performance.now() - this.startedAt);
  }

  /** The attempt failed: passive health hears of it (not of a refusal or a retried status), and connect failures are counted. */
  failed(kind: AttemptFailure): void {
    this.lastFailure = kind;
    if (kind !== 'refused' && kind !== 'status') this.current?.failed(kind);
    if (kind === 'connect') this.recorder.connectFailure(this.selector.name);
  }

  /**
   * Whether another attempt may follow the failed one. The caller decides whether the request
   * can be sent again (nothing sent, or a replayable request); this decides whether the call has
   * attempts left: MAX_ATTEMPTS in all (`policy`: 1 + `retries`); a failover no more than the
   * cluster has endpoints, and both only within the cluster's retry budget and concurrent-retry
   * limit (counted when refused).
   */
  mayRetry(kind: RetryKind = 'failover', retries = MAX_ATTEMPTS - 1): boolean {
    if (kind === 'policy') {
      if (this.attemptCount > retries) return false;
    } else {
      if (this.attemptCount >= MAX_ATTEMPTS) return false;
      if (kind === 'transparent') return true;
      if (this.attemptCount >= this.selector.size) return false;
    }
    if (this.limits === undefined || !this.admitted) return true;
    const over = this.limits.admitRetry(this.holdsRetry);
    if (over !== undefined) {
      this.overflowed = over;
      this.recorder.overflow(this.selector.name, over);
      return false;
    }
    this.holdsRetry = true;
    return true;
  }

  /** The call is over: the lease in hand is released, and the call's place in the cluster's limits (idempotent). */
  release(): void {
    this.current?.release();
    this.current = undefined;
    if (this.admitted) {
      this.admitted = false;
      this.limits?.done(this.holdsRetry);
      this.holdsRetry = false;
    }
  }

  private refuse(over: OverflowKind): Result<never, TsmeshError> {
    this.overflowed = over;
    this.recorder.overflow(this.selector.name, over);
    return err(new TsmeshError(PROXY_ERRORS.OVERFLOW, `${this.selector.name}: over the cluster's ${over.replace('_', ' ')} limit (circuit breaker)`));
  }
}
