// The sidecar's telemetry settings, parsed from an environment object the program's config hands
// over (this module never reads process.env). Telemetry must not stop a sidecar: a bad value is
// reported through `warn` and replaced by its default.

export const TELEMETRY_ENV = {
  TRACING: 'TSMESH_TRACING',
  TRACING_ENDPOINT: 'TSMESH_TRACING_ENDPOINT',
  TRACING_SAMPLE_RATE: 'TSMESH_TRACING_SAMPLE_RATE',
  ACCESS_LOG: 'TSMESH_ACCESS_LOG',
} as const;

export const TRACING_EXPORTERS = ['zipkin', 'otlp', 'none'] as const;
export type TracingExporter = (typeof TRACING_EXPORTERS)[number];

/** Where spans go when TSMESH_TRACING_ENDPOINT is unset: collectors in the control-plane namespace. */
export const DEFAULT_TRACING_ENDPOINTS = {
  zipkin: 'http://zipkin.tsmesh-system:9411/api/v2/spans',
  otlp: 'http://otel-collector.tsmesh-system:4318/v1/traces',
} as const;

/** The path appended to an endpoint given without one (`http://zipkin:9411`). */
const DEFAULT_PATHS = { zipkin: '/api/v2/spans', otlp: '/v1/traces' } as const;

/**
 * One new trace in a hundred, as Istio samples by default: a recorded span costs far more than an
 * unrecorded one, so tracing every request would cost most of the sidecar's CPU. A caller's
 * decision (a sampled `traceparent`, B3 debug) is always kept, whatever the rate.
 */
export const DEFAULT_SAMPLE_RATE = 0.01;

export const ACCESS_LOG_SWITCH = ['on', 'off'] as const;
/** The access log costs a JSON line per request; like Istio's, it is off until asked for. */
export const DEFAULT_ACCESS_LOG = false;

export type TracingConfig =
  | { readonly exporter: 'none'; readonly sampleRate: number }
  | { readonly exporter: 'zipkin' | 'otlp'; readonly endpoint: string; readonly sampleRate: number };

export interface TelemetryConfig {
  readonly tracing: TracingConfig;
  /** Whether the access log is written (TSMESH_ACCESS_LOG=on); its lines also need the info level. */
  readonly accessLog: boolean;
}

export type Env = Readonly<Record<string, string | undefined>>;

function parseExporter(raw: string | undefined, warn: (message: string) => void): TracingExporter {
  if (raw === undefined || raw.trim() === '') return 'none';
  const value = raw.trim().toLowerCase();
  if ((TRACING_EXPORTERS as readonly string[]).includes(value)) return value as TracingExporter;
  warn(`${TELEMETRY_ENV.TRACING}="${raw}" is not one of ${TRACING_EXPORTERS.join(', ')}; tracing is off`);
  return 'none';
}

function parseEndpoint(raw: string | undefined, exporter: 'zipkin' | 'otlp', warn: (message: string) => void): string {
  const fallback = DEFAULT_TRACING_ENDPOINTS[exporter];
  if (raw === undefined || raw.trim() === '') return fallback;
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    warn(`${TELEMETRY_ENV.TRACING_ENDPOINT}="${raw}" is not a URL; using ${fallback}`);
    return fallback;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    warn(`${TELEMETRY_ENV.TRACING_ENDPOINT}="${raw}" is not an http(s) URL; using ${fallback}`);
    return fallback;
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = DEFAULT_PATHS[exporter];
  return url.toString();
}

function parseSampleRate(raw: string | undefined, warn: (message: string) => void): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_SAMPLE_RATE;
  const rate = Number(raw.trim());
  if (Number.isFinite(rate) && rate >= 0 && rate <= 1) return rate;
  warn(`${TELEMETRY_ENV.TRACING_SAMPLE_RATE}="${raw}" is not a number from 0 to 1; using ${DEFAULT_SAMPLE_RATE}`);
  return DEFAULT_SAMPLE_RATE;
}

function parseAccessLog(raw: string | undefined, warn: (message: string) => void): boolean {
  if (raw === undefined || raw.trim() === '') return DEFAULT_ACCESS_LOG;
  const value = raw.trim().toLowerCase();
  if (value === 'on') return true;
  if (value === 'off') return false;
  const fallback = DEFAULT_ACCESS_LOG ? 'on' : 'off';
  warn(`${TELEMETRY_ENV.ACCESS_LOG}="${raw}" is not one of ${ACCESS_LOG_SWITCH.join(', ')}; the access log is ${fallback}`);
  return DEFAULT_ACCESS_LOG;
}

/**
 * Reads TSMESH_TRACING (`zipkin | otlp | none`, default none), TSMESH_TRACING_ENDPOINT (an
 * http(s) URL; without a path the exporter's usual one is added), TSMESH_TRACING_SAMPLE_RATE
 * (0..1, default 0.01) and TSMESH_ACCESS_LOG (`on | off`, default off). Never throws: each bad
 * value is passed to `warn` and its default used.
 */
export function telemetryConfigFromEnv(env: Env, warn: (message: string) => void): TelemetryConfig {
  const exporter = parseExporter(env[TELEMETRY_ENV.TRACING], warn);
  const sampleRate = parseSampleRate(env[TELEMETRY_ENV.TRACING_SAMPLE_RATE], warn);
  const tracing: TracingConfig =
    exporter === 'none'
      ? { exporter, sampleRate }
      : { exporter, endpoint: parseEndpoint(env[TELEMETRY_ENV.TRACING_ENDPOINT], exporter, warn), sampleRate };
  const accessLog = parseAccessLog(env[TELEMETRY_ENV.ACCESS_LOG], warn);
  return Object.freeze({ tracing: Object.freeze(tracing), accessLog });
}

/** The workload of a pod, guessed from its name: common's (mesh/workload.ts). */
export { workloadFromPodName } from '@tsmesh/common';
