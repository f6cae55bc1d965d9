// What the telemetry suite reads back from a running mesh: spans from a collector's output file,
// a sidecar's Prometheus metrics (scraped from inside its pod) and its access-log lines.
import { readCollectedSpans, type CollectedSpan, type Pod } from 'tsmesh/demo';

/** Polls `read` until `done` holds for its value; rejects with `what` and the last value after `timeoutMs`. */
export async function eventually<T>(read: () => T | Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(value)?.slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The spans of one trace in a collector's file, once at least `count` have arrived. */
export function traceSpans(file: string, traceId: string, count: number, timeoutMs?: number): Promise<CollectedSpan[]> {
  return eventually(
    () => readCollectedSpans(file).filter((s) => s.traceId === traceId),
    (spans) => spans.length >= count,
    `${count} spans of trace ${traceId} in ${file}`,
    timeoutMs,
  );
}

/** `00-<trace>-<span>-<flags>` → its parts. */
export function parseTraceparent(value: string | undefined): { traceId: string; spanId: string; sampled: boolean } {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value ?? '');
  if (!match?.[1] || !match[2] || !match[3]) throw new Error(`not a traceparent: ${value}`);
  return { traceId: match[1], spanId: match[2], sampled: (Number.parseInt(match[3], 16) & 1) === 1 };
}

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of a Prometheus text exposition. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match?.[1] || match[3] === undefined) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(LABEL)) if (label[1] && label[2] !== undefined) labels[label[1]] = label[2].replace(/\\(.)/g, '$1');
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sidecar's `:15020/metrics`, fetched from inside its pod. */
export async function scrape(pod: Pod): Promise<Sample[]> {
  const text = await pod.exec(process.execPath, ['-e', "fetch('http://127.0.0.1:15020/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"]);
  return parseMetrics(text);
}

/** The sum of the series of `name` whose labels include `labels` (0 when there is none). */
export function total(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>>): number {
  const wanted = Object.entries(labels);
  return samples.filter((s) => s.name === name && wanted.every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}

/** One access-log line (`component: "access"`) as the sidecar wrote it. */
export interface AccessLine {
  readonly type: 'http' | 'tcp';
  readonly reporter: 'source' | 'destination';
  readonly method?: string;
  readonly path?: string;
  readonly status?: number;
  readonly grpc_status?: number | null;
  readonly trace_id: string | null;
  readonly [field: string]: unknown;
}

/** The access-log lines the pod's processes wrote so far. */
export function accessLines(pod: Pod): AccessLine[] {
  const lines: AccessLine[] = [];
  for (const raw of pod.logs) {
    if (!raw.startsWith('{')) continue;
    try {
      const entry = JSON.parse(raw) as { component?: string } & AccessLine;
      if (entry.component === 'access') lines.push(entry);
    } catch {
      // A line of some other process that happens to start with a brace.
    }
  }
  return lines;
}
