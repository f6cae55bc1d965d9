// Every limit of the HTTP/2 codec in one place: named, defaulted, enforced where the bytes arrive
// (connection.ts) and counted (H2Counters). A peer that passes one gets a stream error or GOAWAY,
// never more of the sidecar's memory or time.

export interface H2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise to clients; streams above it are refused (REFUSED_STREAM). */
  readonly maxConcurrentStreams: number;
  /** Our per-stream receive window: the most one stream may have buffered in the sidecar, each way. */
  readonly streamWindow: number;
  /** Bytes buffered over all streams of one connection before its connection window is held back. */
  readonly connectionBuffer: number;
  /** SETTINGS_MAX_FRAME_SIZE we advertise; larger frames are a FRAME_SIZE_ERROR. */
  readonly maxFrameSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a request over it gets 431 (a response, 502), that stream alone. */
  readonly maxHeaderListSize: number;
  /** Compressed octets of one header block (HEADERS + CONTINUATION) before the connection is closed. */
  readonly maxHeaderBlock: number;
  /** CONTINUATION frames in one header block before the connection is closed (CONTINUATION flood). */
  readonly maxContinuations: number;
  /** SETTINGS_HEADER_TABLE_SIZE we advertise (the HPACK decoder's dynamic table). */
  readonly headerTableSize: number;
  /** Resets of streams by the peer: a bucket of this many, refilled at `resetRate` per second (Rapid Reset, CVE-2023-44487). */
  readonly resetBurst: number;
  readonly resetRate: number;
  /** PING, SETTINGS and empty/odd frames needing work but no progress: bucket size and refill per second. */
  readonly controlBurst: number;
  readonly controlRate: number;
  /** Bytes waiting in our socket for a peer that does not read: over it, control ACKs are not queued, the peer is cut (ENHANCE_YOUR_CALM). */
  readonly maxOutboundBuffer: number;
  /** A connection without streams for this long is closed with GOAWAY (0 = never). */
  readonly idleTimeoutMs: number;
  /** A stream with no frame either way for this long is reset on both sides (0 = never). */
  readonly streamIdleTimeoutMs: number;
  /** How long the client preface and first SETTINGS may take. */
  readonly prefaceTimeoutMs: number;
}

export const DEFAULT_H2_LIMITS: H2Limits = Object.freeze({
  maxConcurrentStreams: 1000,
  streamWindow: 256 * 1024,
  connectionBuffer: 16 * 1024 * 1024,
  maxFrameSize: 16_384,
  maxHeaderListSize: 64 * 1024,
  maxHeaderBlock: 256 * 1024,
  maxContinuations: 64,
  headerTableSize: 4096,
  resetBurst: 1000,
  resetRate: 100,
  controlBurst: 1000,
  controlRate: 200,
  maxOutboundBuffer: 4 * 1024 * 1024,
  idleTimeoutMs: 300_000,
  streamIdleTimeoutMs: 300_000,
  prefaceTimeoutMs: 10_000,
});

export function h2Limits(overrides: Partial<H2Limits> = {}): H2Limits {
  return Object.freeze({ ...DEFAULT_H2_LIMITS, ...overrides });
}

/** What each protection did, for metrics (`tsmesh_h2_protection_total{kind}`). */
export type H2ProtectionKind =
  | 'header_list_too_large'
  | 'header_block_too_large'
  | 'continuation_flood'
  | 'rapid_reset'
  | 'control_flood'
  | 'outbound_buffer'
  | 'refused_stream'
  | 'malformed_headers'
  | 'protocol_error'
  | 'compression_error'
  | 'flow_control_error'
  | 'idle_timeout'
  | 'stream_idle_timeout'
  /** A bug: an exception in the codec or a handler, which cost that connection only. */
  | 'internal_error';

export interface H2Counters {
  protection(kind: H2ProtectionKind): void;
}

export const NO_COUNTERS: H2Counters = { protection: () => undefined };

/** A token bucket read lazily: no timers. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    const t = this.now();
    if (t > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.perSecond) / 1000);
      this.last = t;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
