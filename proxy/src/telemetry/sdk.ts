// Starts the OpenTelemetry trace SDK for a program's entry point (never for a library): a basic
// tracer provider with the exporter TSMESH_TRACING names behind a bounded batch processor, and the
// workload's resource, registered as the API's global tracer provider. Only the trace SDK and the
// two exporters are loaded (not sdk-node, which brings every exporter, metrics and logs). No
// context manager is registered: the proxy hands each span its parent context explicitly.
// An unreachable collector costs bounded memory and a log line per interval; it never fails or
// slows a request.
import { DiagLogLevel, diag, trace, type DiagLogger } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { defaultResource, detectResources, hostDetector, processDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { logger, type Logger } from '@tsmesh/common';
import type { TracingConfig } from './config.js';
import { RateLimitedLog } from './log-limit.js';

/** How spans are batched. The defaults bound memory to about `maxQueueSize` + 2 batches of spans. */
export interface BatchOptions {
  /** Spans waiting for export; more are dropped. Default 2048. */
  readonly maxQueueSize?: number;
  /** Spans per export request. Default 512. */
  readonly maxExportBatchSize?: number;
  /** How long a span waits for a batch to fill. Default 2000 ms. */
  readonly scheduledDelayMillis?: number;
  /** How long one export may take before the next batch goes. Default 10000 ms. */
  readonly exportTimeoutMillis?: number;
}

export interface TelemetrySdkOptions {
  readonly tracing: TracingConfig;
  /** The resource the spans describe: `service.name` is the workload. */
  readonly service: {
    readonly name: string;
    /** Kubernetes namespace (`k8s.namespace.name`). */
    readonly namespace?: string | undefined;
    /** Pod name (`k8s.pod.name` and `service.instance.id`). */
    readonly podName?: string | undefined;
  };
  /** More resource attributes (override the detected ones, not `service.name`). */
  readonly resourceAttributes?: Readonly<Record<string, string>>;
  readonly batch?: BatchOptions;
  /** At most one export-failure log line per this many ms. Default 30000. */
  readonly errorLogIntervalMs?: number;
  /** How long `shutdown` waits for the last export. Default 5000 ms. */
  readonly shutdownTimeoutMs?: number;
}

/** Counters of the export pipeline, for tests and `/config_dump`-style introspection. */
export interface ExportStats {
  /** Spans handed to the exporter. */
  readonly attemptedSpans: number;
  readonly exportedSpans: number;
  readonly failedExports: number;
  /** Batches dropped because earlier exports were still in flight. */
  readonly droppedBatches: number;
}

export interface TelemetrySdk {
  /** Whether an exporter runs (TSMESH_TRACING is not `none`). */
  readonly tracing: boolean;
  stats(): ExportStats;
  /** Exports what is queued now. Never rejects. */
  forceFlush(): Promise<void>;
  /** Exports what is queued (waiting at most the shutdown timeout) and unregisters the SDK. Never rejects. */
  shutdown(): Promise<void>;
}

/** The exporters TSMESH_TRACING can name, by name: one line per exporter. */
const EXPORTERS: Record<Exclude<TracingConfig['exporter'], 'none'>, (endpoint: string) => SpanExporter> = {
  zipkin: (url) => new ZipkinExporter({ url }),
  otlp: (url) => new OTLPTraceExporter({ url, timeoutMillis: 10_000 }),
};

const MAX_EXPORTS_IN_FLIGHT = 2;

/**
 * Bounds and reports the exporter: at most two exports in flight (a collector that accepts but
 * never answers holds two batches, not an ever-growing list), failures logged at most once per
 * interval, and no throw escapes.
 */
class GuardedExporter implements SpanExporter {
  private inFlight = 0;
  private counts = { attemptedSpans: 0, exportedSpans: 0, failedExports: 0, droppedBatches: 0 };

  constructor(
    private readonly inner: SpanExporter,
    private readonly endpoint: string,
    private readonly failures: RateLimitedLog,
  ) {}

  stats(): ExportStats {
    return { ...this.counts };
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    if (this.inFlight >= MAX_EXPORTS_IN_FLIGHT) {
      this.counts.droppedBatches++;
      this.failures.warn(
        { endpoint: this.endpoint, spans: spans.length },
        'trace collector is not answering; dropping spans',
      );
      done({ code: ExportResultCode.FAILED, error: new Error('earlier exports still in flight') });
      return;
    }
    this.inFlight++;
    this.counts.attemptedSpans += spans.length;
    let settled = false;
    const finish = (result: ExportResult): void => {
      if (settled) return;
      settled = true;
      this.inFlight--;
      if (result.code === ExportResultCode.SUCCESS) {
        this.counts.exportedSpans += spans.length;
      } else {
        this.counts.failedExports++;
        this.failures.warn(
          { endpoint: this.endpoint, spans: spans.length, err: result.error },
          'exporting spans failed; they are dropped',
        );
      }
      done(result);
    };
    try {
      this.inner.export(spans, finish);
    } catch (error) {
      finish({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Routes the SDK's own warnings (dropped spans, failed flushes) into the rate-limited log. */
function diagLogger(failures: RateLimitedLog): DiagLogger {
  const ignore = (): void => undefined;
  return {
    error: (message, ...args) => failures.error({ args }, `opentelemetry: ${message}`),
    warn: (message, ...args) => failures.warn({ args }, `opentelemetry: ${message}`),
    info: ignore,
    debug: ignore,
    verbose: ignore,
  };
}

const DISABLED: TelemetrySdk = Object.freeze({
  tracing: false,
  stats: () => ({ attemptedSpans: 0, exportedSpans: 0, failedExports: 0, droppedBatches: 0 }),
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
});

let running = false;

function withTimeout(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts the trace SDK and registers it with @opentelemetry/api, so every ProxyTracer records
 * through it. With `exporter: 'none'` nothing starts. Only one SDK runs per process: a second start while
 * one runs is logged and does nothing. Never throws: a failure to start leaves tracing off.
 */
export function startTelemetrySdk(options: TelemetrySdkOptions, log: Logger = logger('telemetry.export')): TelemetrySdk {
  const tracing = options.tracing;
  if (tracing.exporter === 'none') return DISABLED;
  if (running) {
    log.warn('the telemetry SDK is already running; not starting another');
    return DISABLED;
  }
  try {
    const failures = new RateLimitedLog(log, options.errorLogIntervalMs ?? 30_000);
    const exporter = new GuardedExporter(EXPORTERS[tracing.exporter](tracing.endpoint), tracing.endpoint, failures);
    const processor = new BatchSpanProcessor(exporter, {
      maxQueueSize: options.batch?.maxQueueSize ?? 2048,
      maxExportBatchSize: options.batch?.maxExportBatchSize ?? 512,
      scheduledDelayMillis: options.batch?.scheduledDelayMillis ?? 2000,
      exportTimeoutMillis: options.batch?.exportTimeoutMillis ?? 10_000,
    });
    const service = options.service;
    const resourceAttributes: Record<string, string> = {
      ...(service.namespace !== undefined ? { 'k8s.namespace.name': service.namespace } : {}),
      ...(service.podName !== undefined ? { 'k8s.pod.name': service.podName, 'service.instance.id': service.podName } : {}),
      ...options.resourceAttributes,
    };
    diag.setLogger(diagLogger(failures), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
    const provider = new BasicTracerProvider({
      resource: defaultResource()
        .merge(detectResources({ detectors: [hostDetector, processDetector] }))
        .merge(resourceFromAttributes({ ...resourceAttributes, 'service.name': service.name })),
      // ProxyTracer (tracing.ts) samples at TSMESH_TRACING_SAMPLE_RATE before it starts a span, and
      // starts spans only for sampled requests: the SDK records what it is given. Parent-based, so
      // that a span under an unsampled parent (never started by the proxy) would still not record.
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
      spanProcessors: [processor],
    });
    if (!trace.setGlobalTracerProvider(provider)) {
      log.warn('a tracer provider is already registered; not starting another');
      void provider.shutdown().catch(() => undefined);
      return DISABLED;
    }
    running = true;
    log.info({ exporter: tracing.exporter, endpoint: tracing.endpoint, sampleRate: tracing.sampleRate }, 'tracing on');
    let stopped: Promise<void> | undefined;
    return {
      tracing: true,
      stats: () => exporter.stats(),
      forceFlush: () => processor.forceFlush().catch(() => undefined),
      shutdown: () => {
        stopped ??= withTimeout(
          provider.shutdown().catch((error: unknown) => log.warn({ err: error }, 'stopping the telemetry SDK failed')),
          options.shutdownTimeoutMs ?? 5000,
        ).finally(() => {
          trace.disable();
          diag.disable();
          running = false;
        });
        return stopped;
      },
    };
  } catch (error) {
    log.error({ err: error }, 'starting the telemetry SDK failed; tracing is off');
    return DISABLED;
  }
}
