import { describe, expect, it } from '@jest/globals';
import { DEFAULT_SAMPLE_RATE, DEFAULT_TRACING_ENDPOINTS, telemetryConfigFromEnv } from './config.js';

function parse(env: Record<string, string | undefined>) {
  const warnings: string[] = [];
  const config = telemetryConfigFromEnv(env, (message) => warnings.push(message));
  return { config, warnings };
}

describe('telemetryConfigFromEnv', () => {
  it('leaves tracing and the access log off, with sample rate 0.01 (Istio\'s 1 %), when nothing is set', () => {
    expect(DEFAULT_SAMPLE_RATE).toBe(0.01);
    expect(parse({})).toEqual({ config: { tracing: { exporter: 'none', sampleRate: 0.01 }, accessLog: false }, warnings: [] });
  });

  it('reads an exporter, endpoint and rate', () => {
    const { config, warnings } = parse({
      TSMESH_TRACING: 'zipkin',
      TSMESH_TRACING_ENDPOINT: 'http://127.0.0.1:9411/api/v2/spans',
      TSMESH_TRACING_SAMPLE_RATE: '0.25',
    });
    expect(config.tracing).toEqual({ exporter: 'zipkin', endpoint: 'http://127.0.0.1:9411/api/v2/spans', sampleRate: 0.25 });
    expect(warnings).toEqual([]);
  });

  it('uses the default endpoint of the exporter when none is given', () => {
    expect(parse({ TSMESH_TRACING: 'OTLP' }).config.tracing).toEqual({
      exporter: 'otlp',
      endpoint: DEFAULT_TRACING_ENDPOINTS.otlp,
      sampleRate: 0.01,
    });
  });

  it('adds the usual path to an endpoint given without one', () => {
    expect(parse({ TSMESH_TRACING: 'zipkin', TSMESH_TRACING_ENDPOINT: 'http://zipkin:9411' }).config.tracing).toMatchObject({
      endpoint: 'http://zipkin:9411/api/v2/spans',
    });
    expect(parse({ TSMESH_TRACING: 'otlp', TSMESH_TRACING_ENDPOINT: 'https://collector:4318/' }).config.tracing).toMatchObject({
      endpoint: 'https://collector:4318/v1/traces',
    });
  });

  it('warns and turns tracing off for an unknown exporter', () => {
    const { config, warnings } = parse({ TSMESH_TRACING: 'jaeger', TSMESH_TRACING_ENDPOINT: 'http://x:1' });
    expect(config.tracing.exporter).toBe('none');
    expect(warnings).toEqual([expect.stringContaining('TSMESH_TRACING="jaeger"')]);
  });

  it('warns and falls back to the default endpoint for a bad one', () => {
    for (const endpoint of ['not a url', 'ftp://collector/spans']) {
      const { config, warnings } = parse({ TSMESH_TRACING: 'zipkin', TSMESH_TRACING_ENDPOINT: endpoint });
      expect(config.tracing).toMatchObject({ endpoint: DEFAULT_TRACING_ENDPOINTS.zipkin });
      expect(warnings).toEqual([expect.stringContaining('TSMESH_TRACING_ENDPOINT')]);
    }
  });

  it('warns and falls back to the default rate for a rate outside 0..1 or not a number', () => {
    for (const rate of ['1.5', '-0.1', 'half', 'NaN', 'Infinity']) {
      const { config, warnings } = parse({ TSMESH_TRACING: 'otlp', TSMESH_TRACING_SAMPLE_RATE: rate });
      expect(config.tracing.sampleRate).toBe(0.01);
      expect(warnings).toEqual([expect.stringContaining(`TSMESH_TRACING_SAMPLE_RATE="${rate}"`)]);
    }
  });

  it('accepts the rate bounds 0 and 1', () => {
    expect(parse({ TSMESH_TRACING_SAMPLE_RATE: '0' }).config.tracing.sampleRate).toBe(0);
    expect(parse({ TSMESH_TRACING_SAMPLE_RATE: '1' }).config.tracing.sampleRate).toBe(1);
  });

  it('turns the access log on and off with TSMESH_ACCESS_LOG', () => {
    expect(parse({ TSMESH_ACCESS_LOG: 'on' })).toMatchObject({ config: { accessLog: true }, warnings: [] });
    expect(parse({ TSMESH_ACCESS_LOG: ' ON ' }).config.accessLog).toBe(true);
    expect(parse({ TSMESH_ACCESS_LOG: 'off' })).toMatchObject({ config: { accessLog: false }, warnings: [] });
    expect(parse({ TSMESH_ACCESS_LOG: '' })).toMatchObject({ config: { accessLog: false }, warnings: [] });
  });

  it('warns and leaves the access log off for a value other than on or off', () => {
    const { config, warnings } = parse({ TSMESH_ACCESS_LOG: 'yes' });
    expect(config.accessLog).toBe(false);
    expect(warnings).toEqual([expect.stringContaining('TSMESH_ACCESS_LOG="yes"')]);
  });

  it('returns a frozen config', () => {
    const { config } = parse({ TSMESH_TRACING: 'zipkin' });
    expect(Object.isFrozen(config) && Object.isFrozen(config.tracing)).toBe(true);
  });
});
