// The access log: one JSON line per request or opaque TCP connection (a refused connection too,
// with its flag and reason), written through a pino child with `component: 'access'` at level
// info. The sidecar writes it only when switched on (TSMESH_ACCESS_LOG=on, config.ts): a line per
// request costs about a third of a request's CPU.
// Callers check `enabled` first so that building an entry costs nothing when it is off.
import { logger, type Logger } from '@tsmesh/common';
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
}

export interface TcpAccessEntry extends AccessEntryBase {
  /** A refused connection: why (the `reason` label of tsmesh_policy_denials_total); written only when set. */
  readonly reason?: string | undefined;
}

const MAX_FIELD = 1024;

function clip(value: string): string {
  return value.length > MAX_FIELD ? value.slice(0, MAX_FIELD) : value;
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
}

export class AccessLog {
  private readonly on: boolean;

  constructor(
    private readonly log: Logger = logger(ACCESS_LOG_COMPONENT),
    options: AccessLogOptions = {},
  ) {
    this.on = options.enabled ?? true;
  }

  /** An access log that writes nothing: the sidecar's default. */
  static off(): AccessLog {
    return new AccessLog(logger(ACCESS_LOG_COMPONENT), { enabled: false });
  }

  /** Whether entries are written at all: switched on, and the logger's level allows info. */
  get enabled(): boolean {
    return this.on && this.log.isLevelEnabled('info');
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
      ...common(entry),
    });
  }

  /** Writes one opaque TCP connection's line: `type: "tcp"`. */
  tcp(entry: TcpAccessEntry): void {
    if (!this.enabled) return;
    this.log.info(entry.reason === undefined ? { type: 'tcp', ...common(entry) } : { type: 'tcp', ...common(entry), reason: clip(entry.reason) });
  }
}
