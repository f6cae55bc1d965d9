// Test helper: a ProxyTracer recording into memory through the real SDK tracer and the sampler
// sdk.ts uses (the ProxyTracer decides at its rate; the SDK records what it is given), without
// registering anything globally.
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { ProxyTracer } from '../tracing.js';

export interface MemoryTracer {
  readonly tracer: ProxyTracer;
  readonly exporter: InMemorySpanExporter;
}

export function memoryTracer(sampleRate = 1): MemoryTracer {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return { tracer: new ProxyTracer({ sampleRate, tracer: provider.getTracer('test') }), exporter };
}
