// Test helper: a ProxyTracer recording into memory through the real SDK tracer and sampler, without
// registering anything globally.
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { ProxyTracer } from '../tracing.js';

export interface MemoryTracer {
  readonly tracer: ProxyTracer;
  readonly exporter: InMemorySpanExporter;
}

export function memoryTracer(sampleRate = 1): MemoryTracer {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sampleRate) }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return { tracer: new ProxyTracer({ sampleRate, tracer: provider.getTracer('test') }), exporter };
}
