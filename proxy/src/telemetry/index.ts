// The proxy's telemetry: Prometheus metrics, trace-context propagation, spans and the access log,
// behind one facade (RequestTelemetry) the data path calls at fixed points. The OpenTelemetry SDK
// is loaded only when an entry point starts it (`startTelemetrySdk`), and only if tracing is on.
import type { Logger } from '@tsmesh/common';
import type { TelemetrySdk, TelemetrySdkOptions } from './sdk.js';

export * from './access-log.js';
export { ATTR } from './attributes.js';
export * from './config.js';
export * from './context.js';
export * from './flags.js';
export * from './metrics.js';
export * from './observer.js';
export * from './tracing.js';
export * from './types.js';
export type { BatchOptions, ExportStats, TelemetrySdk, TelemetrySdkOptions } from './sdk.js';

/**
 * For a program's entry point only: starts the OpenTelemetry SDK as `options.tracing` says. The
 * SDK's modules are imported here, on demand, so libraries and `TSMESH_TRACING=none` never load them.
 */
export async function startTelemetrySdk(options: TelemetrySdkOptions, log?: Logger): Promise<TelemetrySdk> {
  if (options.tracing.exporter === 'none') {
    return {
      tracing: false,
      stats: () => ({ attemptedSpans: 0, exportedSpans: 0, failedExports: 0, droppedBatches: 0 }),
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
  }
  const sdk = await import('./sdk.js');
  return sdk.startTelemetrySdk(options, log);
}
