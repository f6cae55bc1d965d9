// Recent traces for the dashboard: from the demo collector's span file (one JSON span per line,
// read from its end) or from a Zipkin-compatible query API (GET /api/v2/traces). Only a summary
// leaves this module — names, services, timing, error — never a span's tags, which may carry
// headers or other values that are not the dashboard's to show.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface TraceSummary {
  readonly traceId: string;
  /** The root span's name (the earliest span's when the root is missing). */
  readonly name: string;
  /** The services (sidecars) its spans came from. */
  readonly services: readonly string[];
  readonly spans: number;
  /** Start, ms since the epoch, and duration in ms of the root (or earliest) span. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly error: boolean;
}

interface SpanLike {
  traceId?: unknown;
  id?: unknown;
  parentId?: unknown;
  name?: unknown;
  service?: unknown;
  localEndpoint?: { serviceName?: unknown } | null;
  timestamp?: unknown;
  timestampUs?: unknown;
  duration?: unknown;
  durationUs?: unknown;
  tags?: Record<string, unknown> | null;
}

const TAIL_BYTES = 512 * 1024;

/** The last `limit` traces (by start) of a list of spans, Zipkin's shape or the demo collector's. */
export function summarize(spans: readonly SpanLike[], limit: number): TraceSummary[] {
  const byTrace = new Map<string, SpanLike[]>();
  for (const span of spans) {
    if (typeof span.traceId !== 'string' || !/^[0-9a-f]{16,32}$/i.test(span.traceId)) continue;
    const list = byTrace.get(span.traceId) ?? [];
    list.push(span);
    byTrace.set(span.traceId, list);
  }
  const summaries: TraceSummary[] = [];
  for (const [traceId, list] of byTrace) {
    const start = (s: SpanLike): number => Number(s.timestampUs ?? s.timestamp ?? 0) || 0;
    const sorted = [...list].sort((a, b) => start(a) - start(b));
    const root = sorted.find((s) => s.parentId === undefined || s.parentId === null) ?? sorted[0];
    if (!root) continue;
    const service = (s: SpanLike): string => String(s.service ?? s.localEndpoint?.serviceName ?? 'unknown');
    summaries.push({
      traceId: traceId.toLowerCase(),
      name: String(root.name ?? ''),
      services: [...new Set(sorted.map(service))],
      spans: list.length,
      startMs: start(root) / 1000,
      durationMs: (Number(root.durationUs ?? root.duration ?? 0) || 0) / 1000,
      error: list.some((s) => s.tags != null && ('error' in s.tags || s.tags['otel.status_code'] === 'ERROR')),
    });
  }
  return summaries.sort((a, b) => b.startMs - a.startMs).slice(0, limit);
}

/** Summaries of the last traces in a span file (JSON lines), reading only its last 512 KiB. */
export function tracesFromFile(file: string, limit: number): TraceSummary[] {
  const fd = openSync(file, 'r');
  let text: string;
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    text = buffer.toString('utf8');
    // The first line may be cut: drop it unless the whole file was read.
    if (length < size) text = text.slice(text.indexOf('\n') + 1);
  } finally {
    closeSync(fd);
  }
  const spans: SpanLike[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      spans.push(JSON.parse(line) as SpanLike);
    } catch {
      // a line being written: skip it
    }
  }
  return summarize(spans, limit);
}

/** Summaries from a Zipkin query API at `base` (e.g. http://127.0.0.1:9411). */
export async function tracesFromZipkin(base: string, limit: number, timeoutMs: number): Promise<TraceSummary[]> {
  const url = new URL('/api/v2/traces', base);
  url.searchParams.set('limit', String(limit));
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url.origin}/api/v2/traces answered ${res.status}`);
  const body = (await res.json()) as unknown;
  if (!Array.isArray(body)) throw new Error(`${url.origin}/api/v2/traces did not answer a list of traces`);
  return summarize(body.flat() as SpanLike[], limit);
}
