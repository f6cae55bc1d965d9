import { describe, expect, it } from '@jest/globals';
import { parseSuiteConfig } from './suite-config.js';

const parse = (...argv: string[]) => parseSuiteConfig(argv, { PATH: '/usr/bin' });

describe('parseSuiteConfig', () => {
  it('runs every benchmark, 3 rounds, 1,000 req/s over 16 connections, 60 s of memory load and 30 s after, by default', () => {
    const config = parse();
    expect(config.only).toEqual(['h2-balance', 'balancers', 'mesh-latency', 'mesh-throughput', 'memory']);
    expect(config.rounds).toBe(3);
    expect(config.protocols).toEqual(['http', 'grpc']);
    expect(config.latency).toEqual({ rate: 1000, connections: 16, warmUpSeconds: 5, durationSeconds: 20 });
    expect(config.throughput).toEqual({ warmUpSeconds: 2, durationSeconds: 10 });
    expect(config.memory).toEqual({ loadSeconds: 60, settleSeconds: 30 });
    expect(config.sidecarConcurrency).toBe(1);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('selects benchmarks with --only, keeping the suite order and each once', () => {
    expect(parse('--only', 'mesh-latency').only).toEqual(['mesh-latency']);
    expect(parse('--only', 'mesh-latency', '--only', 'balancers').only).toEqual(['balancers', 'mesh-latency']);
    expect(parse('--sidecar-concurrency', '2').sidecarConcurrency).toBe(2);
    expect(() => parse('--sidecar-concurrency', '0')).toThrow('--sidecar-concurrency: "0" must be a whole number from 1 to 16');
    expect(parse('--only', 'memory', '--only', 'h2-balance', '--only', 'memory').only).toEqual(['h2-balance', 'memory']);
  });

  it('names the benchmarks when --only is unknown', () => {
    expect(() => parse('--only', 'latency')).toThrow('--only: unknown "latency"; choose from h2-balance, balancers, mesh-latency, mesh-throughput, memory');
  });

  it('takes short durations for a quick check', () => {
    const config = parse('--latency-duration', '3', '--latency-warm-up', '0', '--memory-load', '5', '--memory-settle', '2', '--protocol', 'grpc');
    expect(config.latency.durationSeconds).toBe(3);
    expect(config.latency.warmUpSeconds).toBe(0);
    expect(config.memory).toEqual({ loadSeconds: 5, settleSeconds: 2 });
    expect(config.protocols).toEqual(['grpc']);
  });

  it('refuses a rate that is not a positive whole number and an unknown flag', () => {
    expect(() => parse('--rate', '0')).toThrow('--rate: "0" must be a whole number from 1 to 100000');
    expect(() => parse('--rate', '1.5')).toThrow('--rate: "1.5" must be a whole number from 1 to 100000');
    expect(() => parse('--case', 'get')).toThrow(/Unknown option '--case'/);
  });
});
