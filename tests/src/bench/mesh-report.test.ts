import { describe, expect, it } from '@jest/globals';
import type { MemoryReport } from './memory.js';
import { protocolFigures, type MeshLatencyReport, type VariantFigures } from './mesh-latency.js';
import { formatMemory, formatMeshLatency, formatMeshThroughput } from './mesh-report.js';
import type { MeshThroughputReport } from './mesh-throughput.js';

const latency = (p50Ms: number, p90Ms: number, p99Ms: number) => ({ p50Ms, p90Ms, p99Ms, p999Ms: p99Ms, maxMs: p99Ms, meanMs: p50Ms });
const proxy = (cpuPer1k: number, peakRssMiB: number) => ({ cpuPer1k, peakRssMiB, endRssMiB: peakRssMiB - 1 });
const variant = (l: VariantFigures['latency'], proxies: VariantFigures['proxies'] = {}): VariantFigures => ({
  latency: l,
  requestsPerSecond: 1000,
  requests: 60_000,
  failed: 0,
  sendLagP99Ms: 0.9,
  proxies,
  machineBusyCores: 1.25,
});

describe('formatMeshLatency', () => {
  const figures = protocolFigures({
    direct: variant(latency(0.4, 0.6, 1.2)),
    tsmesh: variant(latency(1.4, 2.1, 5.2), { 'client sidecar': proxy(0.25, 90), 'server sidecar': proxy(0.2, 88) }),
    haproxy: variant(latency(0.6, 0.9, 3.2), { 'client haproxy': proxy(0.05, 15), 'server haproxy': proxy(0.04, 20) }),
  });
  const report: MeshLatencyReport = {
    benchmark: 'mesh-latency',
    params: { rate: 1000, connections: 16, warmUpSeconds: 5, durationSeconds: 20, rounds: 3, protocols: ['http'], variants: ['direct', 'tsmesh', 'haproxy'] },
    runs: [],
    figures: { http: figures },
    serverSidecarMtlsRequests: 180_000,
    podWarnings: { client: { 'upstream reset': 2 }, server: {} },
    problems: [],
  };

  it('computes what each pair adds to the direct path and the ratio of the added p99', () => {
    expect(figures.added.tsmesh).toEqual({ p50Ms: 1, p90Ms: 1.5, p99Ms: 4 });
    expect(figures.added.haproxy).toEqual({ p50Ms: 0.2, p90Ms: 0.3, p99Ms: 2 });
    expect(figures.addedP99TsmeshToHaproxy).toBe(2);
  });

  it('prints a row per variant with the percentiles, the added latency, CPU per 1k and RSS of each proxy', () => {
    const lines = formatMeshLatency(report).split('\n');
    expect(lines[0]).toContain('1000 req/s over 16 connections');
    expect(lines.find((l) => l.startsWith('direct'))?.split(/\s+/)).toEqual(['direct', '1000', '0', '0.400', '0.600', '1.200', '-', '-', '-', '-', '-', '0.900', '1.25']);
    expect(lines.find((l) => l.startsWith('tsmesh'))?.split(/\s+/)).toEqual(['tsmesh', '1000', '0', '1.400', '2.100', '5.200', '1.000', '1.500', '4.000', '0.250', '/', '0.200', '90.0/89.0', '88.0/87.0', '0.900', '1.25']);
    expect(lines).toContain('   added p99, tsmesh / HAProxy: 2.00');
    expect(lines.at(-2)).toBe('   mTLS check: the server sidecar counted 180000 requests as mutual_tls');
    expect(lines.at(-1)).toBe('   client pod logged 2× upstream reset');
  });
});

describe('formatMeshThroughput', () => {
  it('prints req/s and the CPU per 1k of each pair with the tsmesh / HAProxy ratios', () => {
    const pair = (requestsPerSecond: number, client: number, server: number) => ({
      requestsPerSecond,
      p50Ms: 2,
      p99Ms: 9,
      failed: 0,
      cpuPer1k: client + server,
      cpuPer1kByProxy: { client, server },
    });
    const report: MeshThroughputReport = {
      benchmark: 'mesh-throughput',
      params: { warmUpSeconds: 2, durationSeconds: 10, rounds: 3, protocols: ['grpc'], loads: { grpc: 'h2load -c 4 -m 10' } },
      runs: [],
      podWarnings: { client: {}, server: {} },
      figures: { grpc: { pairs: { tsmesh: pair(5000, 0.05, 0.05), haproxy: pair(10_000, 0.02, 0.03) }, tsmeshToHaproxy: { requestsPerSecond: 0.5, cpuPer1k: 2 } } },
      problems: [],
    };
    const lines = formatMeshThroughput(report).split('\n');
    expect(lines.find((l) => l.startsWith('tsmesh'))?.split(/\s+/)).toEqual(['tsmesh', '5000', '0', '2.000', '9.000', '0.100', '0.050', '/', '0.050']);
    expect(lines.at(-1)).toBe('   tsmesh / HAProxy: req/s 0.50, CPU per request 2.00');
  });
});

describe('formatMemory', () => {
  it('prints each sidecar idle, under load, and after the pause', () => {
    const report: MemoryReport = {
      benchmark: 'memory',
      params: { rate: 1000, connections: 16, warmUpSeconds: 0, durationSeconds: 60, protocol: 'http', idleSeconds: 5, settleSeconds: 30 },
      sidecars: { 'client sidecar': { idleRssMiB: 80.5, loadPeakRssMiB: 120, loadEndRssMiB: 110, afterRssMiB: 95.25, hwmMiB: 121 } },
      requests: 60_000,
      failed: 0,
      problems: [],
    };
    const lines = formatMemory(report).split('\n');
    expect(lines[0]).toContain('during 60 s of 1000 req/s http over 16 connections, and 30 s after it');
    expect(lines.find((l) => l.startsWith('client sidecar'))?.split(/\s{2,}/)).toEqual(['client sidecar', '80.5', '120.0', '110.0', '95.3', '121.0']);
  });
});
