import { describe, expect, it } from '@jest/globals';
import { CASE_NAMES } from './cases.js';
import { parseBenchConfig } from './config.js';

const parse = (...argv: string[]) => parseBenchConfig(argv, { PATH: '/usr/bin' });

describe('parseBenchConfig', () => {
  it('runs every case for three rounds of 5 s after a 2 s warm-up by default', () => {
    const config = parse();
    expect(config.rounds).toBe(3);
    expect(config.cases.map((c) => c.name)).toEqual(['get', 'get-1conn', 'grpc']);
    expect(config.cases.map((c) => [c.connections, c.streams])).toEqual([[4, 10], [1, 40], [4, 10]]);
    expect(config.timing).toEqual({ warmUpSeconds: 2, durationSeconds: 5 });
    expect(config.sidecarConcurrency).toBe(1);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('takes --rounds and repeated --case in the order given', () => {
    const config = parse('--rounds', '5', '--case', 'grpc', '--case', 'get');
    expect(config.rounds).toBe(5);
    expect(config.cases.map((c) => c.name)).toEqual(['grpc', 'get']);
  });

  it('applies --connections and --streams to every case chosen', () => {
    const config = parse('--case', 'get-1conn', '--case', 'grpc', '--connections', '2', '--streams', '8');
    expect(config.cases.map((c) => [c.name, c.connections, c.streams])).toEqual([['get-1conn', 2, 8], ['grpc', 2, 8]]);
  });

  it('runs the sidecar with --sidecar-concurrency event loops, 1 to 64', () => {
    expect(parse('--sidecar-concurrency', '2').sidecarConcurrency).toBe(2);
    expect(() => parse('--sidecar-concurrency', '0')).toThrow('--sidecar-concurrency: "0" must be a whole number from 1 to 64');
  });

  it('allows no warm-up', () => {
    expect(parse('--warm-up', '0').timing.warmUpSeconds).toBe(0);
  });

  it('refuses a round count that is not a whole number from 1 to 20', () => {
    for (const bad of ['0', '-1', '2.5', 'three', '', '21']) {
      expect(() => parse(`--rounds=${bad}`)).toThrow(`--rounds: "${bad}" must be a whole number from 1 to 20`);
    }
  });

  it('names the known cases when a case is unknown, and refuses one given twice', () => {
    expect(() => parse('--case', 'post')).toThrow(`--case: unknown case "post"; the cases are ${CASE_NAMES.join(', ')}`);
    expect(() => parse('--case', 'get', '--case', 'get')).toThrow('--case: "get" is given twice');
  });

  it('refuses a zero duration and an unknown flag', () => {
    expect(() => parse('--duration', '0')).toThrow('--duration: "0" must be a whole number from 1 to 60');
    expect(() => parse('--round', '3')).toThrow(/Unknown option '--round'/);
  });
});
