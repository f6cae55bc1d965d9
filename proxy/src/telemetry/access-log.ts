// The access log: one JSON line per request or opaque TCP connection (a refused connection too,
// with its flag and reason), written through a pino child with `component: 'access'` at level
// info. The sidecar writes it only when switched on (TSMESH_ACCESS_LOG=on, config.ts): a line per
// request costs about a third of a request's CPU.
// Callers check `enabled` first so that building an entry costs nothing when it is off.
// The sidecar's access lines have their own pino logger, so that their `level` is a word
// (`"level":"info"`, what log pipelines and greps expect); it follows the sidecar's log level.
import { isMainThread, workerData } from 'node:worker_threads';
import { logger, type Logger } from '@tsmesh/common';
import { pino, type DestinationStream } from 'pino';
import { formatFlags, type ResponseFlag } from './flags.js';
import type { Direction, Reporter } from './types.js';

export const ACCESS_LOG_COMPONENT = 'access';

/** What both kinds of entry carry. */
interface AccessEntryBase {
  readonly reporter: Reporter;
  readonly direction: Direction;
  readonly durationMs: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** The upstream endpoint, `ip:port`. */
  readonly upstream?: string | undefined;
  /** The downstream peer, `ip:port`. */
  readonly downstream?: string | undefined;
  readonly sourceIdentity?: string | undefined;
  readonly destinationIdentity?: string | undefined;
  readonly destinationService?: string | undefined;
  readonly mtls: boolean;
  readonly traceId?: string | undefined;
  readonly flags?: readonly ResponseFlag[] | undefined;
}

export interface HttpAccessEntry extends AccessEntryBase {
  readonly protocol: string;
  readonly method: string;
  readonly authority: string;
  /** Without the query string. */
  readonly path: string;
  /** The status sent downstream; `undefined` when none was. */
  readonly status: number | undefined;
  readonly grpcStatus?: number | undefined;
  /** Upstream attempts made (retries included); 0 when the proxy answered before any. */
  readonly attempts?: number | undefined;
  /** The request's `x-request-id`, as received (the sidecar does not make one). */
  readonly requestId?: string | undefined;
  /** The request's `user-agent`. */
  readonly userAgent?: string | undefined;
  /** The cluster the request was routed to (`namespace/service:port`, `inbound:8080`). */
  readonly upstreamCluster?: string | undefined;
  /** The route rule that matched (`namespace/route#rule`); absent without routes. */
  readonly routeName?: string | undefined;
}

export interface TcpAccessEntry extends AccessEntryBase {
  /** A refused connection: why (the `reason` label of tsmesh_policy_denials_total); written only when set. */
  readonly reason?: string | undefined;
}

const MAX_FIELD = 1024;

function clip(value: string): string {
  return value.length > MAX_FIELD ? value.slice(0, MAX_FIELD) : value;
}

function clipped(value: string | undefined): string | null {
  return value === undefined ? null : clip(value);
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function common(entry: AccessEntryBase): Record<string, unknown> {
  return {
    reporter: entry.reporter,
    direction: entry.direction,
    duration_ms: round3(entry.durationMs),
    bytes_sent: entry.bytesSent,
    bytes_received: entry.bytesReceived,
    upstream: entry.upstream ?? null,
    downstream: entry.downstream ?? null,
    source_identity: entry.sourceIdentity ?? null,
    destination_identity: entry.destinationIdentity ?? null,
    destination_service: entry.destinationService ?? null,
    mtls: entry.mtls,
    trace_id: entry.traceId ?? null,
    flags: formatFlags(entry.flags),
  };
}

export interface AccessLogOptions {
  /** Whether lines are written at all (the sidecar: TSMESH_ACCESS_LOG). Default true. */
  readonly enabled?: boolean;
  /** Without a logger: where the access logger writes (default standard output). */
  readonly destination?: DestinationStream | undefined;
}

/** The process's access logger: the root logger's fields, the level as a word. */
function accessLogger(destination: DestinationStream | undefined): Logger {
  const thread = isMainThread ? undefined : (workerData as { logBindings?: unknown } | null | undefined)?.logBindings;
  const options = {
    level: 'info',
    base: { pid: process.pid, ...(typeof thread === 'object' && thread !== null ? thread : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const root = destination === undefined ? pino(options) : pino(options, destination);
  return root.child({ component: ACCESS_LOG_COMPONENT });
}

export class AccessLog {
  private readonly on: boolean;
  private readonly log: Logger;
  /** Whose level decides whether lines are written: the sidecar's (root) logger, or the one given. */
  private readonly gate: Logger;

  /** With `log`, lines go to it as it formats them; without, to the sidecar's access logger. */
  constructor(log?: Logger, options: AccessLogOptions = {}) {
    this.on = options.enabled ?? true;
    this.log = log ?? accessLogger(options.destination);
    this.gate = log ?? logger(ACCESS_LOG_COMPONENT);
  }

  /** An access log that writes nothing: the sidecar's default. */
  static off(): AccessLog {
    const log = logger(ACCESS_LOG_COMPONENT);
    return new AccessLog(log, { enabled: false });
  }

  /** Whether entries are written at all: switched on, and the logger's level allows info. */
  get enabled(): boolean {
    return this.on && this.gate.isLevelEnabled('info');
  }

  /** Writes one request's line: `type: "http"`. */
  http(entry: HttpAccessEntry): void {
    if (!this.enabled) return;
    this.log.info({
      type: 'http',
      protocol: entry.protocol,
      method: clip(entry.method),
      authority: clip(entry.authority),
      path: clip(entry.path),
      status: entry.status ?? 0,
      grpc_status: entry.grpcStatus ?? null,
      attempts: entry.attempts ?? 0,
      request_id: clipped(entry.requestId),
      user_agent: clipped(entry.userAgent),
      upstream_cluster: clipped(entry.upstreamCluster),
      route_name: clipped(entry.routeName),
      ...common(entry),
    });
  }

  /** Writes one opaque TCP connection's line: `type: "tcp"`. */
  tcp(entry: TcpAccessEntry): void {
    if (!this.enabled) return;
    this.log.info(entry.reason === undefined ? { type: 'tcp', ...common(entry) } : { type: 'tcp', ...common(entry), reason: clip(entry.reason) });
  }
}
