import { describe, expect, it } from '@jest/globals';
import type { ProcessUsage } from './h2load.js';
import { median, ratios, summarizePeer, type PeerResult } from './summary.js';

function run(requestsPerSecond: number, p99Ms: number, cpu: number, peakRssMiB: number, split: number[]): PeerResult {
  const usage: ProcessUsage = { cpuSeconds: 1, cpuSecondsPer10kRequests: cpu, mainThreadUtilization: 0.9, startRssMiB: 80, idleRssMiB: 85, peakRssMiB };
  return {
    h2load: { total: 1000, succeeded: 999, failed: 1, errored: 1, timeout: 0, requestsPerSecond },
    latency: { p50Ms: p99Ms / 4, p99Ms, meanMs: p99Ms / 3, maxMs: p99Ms * 2 },
    statuses: { 200: 999 },
    peer: usage,
    upstreams: { ...usage, cpuSecondsPer10kRequests: 0.2 },
    machineUtilization: 0.8,
    wallSeconds: 5,
    loadGeneratorCpuSeconds: 1,
    softirqCores: 0.1,
    otherBusyCores: requestsPerSecond / 100_000,
    split,
  };
}

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones, ignoring NaN', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 7])).toBe(7);
    expect(median([])).toBeNaN();
  });
});

describe('summarizePeer', () => {
  it('gives each figure its own median over the rounds, with sums, the highest peak RSS and the highest other load', () => {
    const s = summarizePeer([run(10_000, 9, 0.9, 100, [1, 2, 3]), run(12_000, 6, 1.1, 104, [4, 5, 6]), run(11_000, 12, 0.8, 102, [7, 8, 9])]);
    expect(s.requestsPerSecond).toBe(11_000);
    expect(s.requestsPerSecondByRound).toEqual([10_000, 12_000, 11_000]);
    expect(s.p99Ms).toBe(9);
    expect(s.peer?.cpuSecondsPer10kRequests).toBe(0.9);
    expect(s.peer?.peakRssMiB).toBe(104);
    expect(s.failed).toBe(3);
    expect(s.split).toEqual([12, 15, 18]);
    expect(s.otherBusyCores).toBe(0.12);
    expect(s.loadGeneratorUtilization).toBe(0.2);
  });
});

describe('ratios', () => {
  it('divides the medians of two peers', () => {
    const a = summarizePeer([run(5000, 12, 2, 90, [1, 1, 1])]);
    const b = summarizePeer([run(10_000, 4, 0.5, 15, [1, 1, 1])]);
    expect(ratios(a, b)).toEqual({ requestsPerSecond: 0.5, p50: 3, p99: 3, cpuPer10kRequests: 4, peakRss: 6 });
  });
});
