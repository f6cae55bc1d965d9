// `npm run bench`'s flags, read once into a frozen object: which benchmarks to run (all by
// default) and the durations and loads of the mesh benchmarks.
import { delimiter } from 'node:path';
import { parseArgs } from 'node:util';
import { PROTOCOLS, type Protocol } from './mesh-wire.js';

export const BENCHMARKS = ['h2-balance', 'balancers', 'mesh-latency', 'mesh-throughput', 'memory'] as const;
export type Benchmark = (typeof BENCHMARKS)[number];

export interface SuiteConfig {
  /** The benchmarks to run, in the suite's order. */
  readonly only: readonly Benchmark[];
  /** Rounds of every benchmark that has rounds; medians are reported. */
  readonly rounds: number;
  readonly protocols: readonly Protocol[];
  readonly latency: {
    readonly rate: number;
    readonly connections: number;
    readonly warmUpSeconds: number;
    readonly durationSeconds: number;
  };
  readonly throughput: { readonly warmUpSeconds: number; readonly durationSeconds: number };
  readonly memory: { readonly loadSeconds: number; readonly settleSeconds: number };
  /** `tsmesh proxy --concurrency` of the mesh benchmarks' sidecars. */
  readonly sidecarConcurrency: number;
  readonly out: string;
  readonly path: string;
  readonly help: boolean;
}

export const SUITE_HELP = `npm run bench: every benchmark, one report.

Usage: npm run bench -- [flags]   (or: node tests/dist/bench/bench.js [flags])

  --only NAME            run only this benchmark; repeat for several (default: all, in this order)
                           h2-balance       per-stream HTTP/2 balancing vs HAProxy (see h2-balance.js --help)
                           balancers        round-robin, least-request and peak-ewma with a slow replica
                                            (see balancers.js --help)
                           mesh-latency     open-loop latency, client -> sidecar -> mTLS -> sidecar -> app,
                                            direct vs tsmesh pair vs HAProxy pair (needs root)
                           mesh-throughput  closed-loop h2load through the same pairs (needs root)
                           memory           a sidecar's RSS idle, after the latency load, and after a pause (needs root)
  --rounds N             rounds, each measuring every variant once; medians are reported (default 3)
  --protocol P           http or grpc; repeat for both (default both)
  --rate N               mesh-latency and memory load, requests per second in all (default 1000)
  --connections N        mesh-latency generators, one connection each, at spread phases (default 16)
  --latency-duration S   measured seconds per variant and round (default 20)
  --latency-warm-up S    unmeasured seconds before them (default 5)
  --throughput-duration S  measured h2load seconds per variant and round (default 10)
  --throughput-warm-up S   unmeasured h2load seconds before them (default 2)
  --memory-load S        seconds of the latency load in memory (default 60)
  --memory-settle S      seconds after the load before the last reading (default 30)
  --sidecar-concurrency N  event loops of the mesh benchmarks' sidecars (default 1: what the injector
                           gives a sidecar without a CPU limit, the chart's default)
  --out FILE             JSON results of every benchmark (default /tmp/tsmesh-bench-all.json)

Needs h2load, haproxy, nginx, openssl, and (for the mesh benchmarks) root: ip netns, iptables, setpriv.
`;

function whole(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: "${value}" must be a whole number from ${min} to ${max}`);
  return n;
}

function chosen<T extends string>(flag: string, given: readonly string[] | undefined, all: readonly T[]): readonly T[] {
  if (given === undefined) return all;
  for (const name of given) if (!all.includes(name as T)) throw new Error(`--${flag}: unknown "${name}"; choose from ${all.join(', ')}`);
  // In the suite's order, each once.
  return Object.freeze(all.filter((name) => given.includes(name)));
}

export function parseSuiteConfig(argv: readonly string[], env: Record<string, string | undefined>): SuiteConfig {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string', multiple: true },
      rounds: { type: 'string' },
      protocol: { type: 'string', multiple: true },
      rate: { type: 'string' },
      connections: { type: 'string' },
      'latency-duration': { type: 'string' },
      'latency-warm-up': { type: 'string' },
      'throughput-duration': { type: 'string' },
      'throughput-warm-up': { type: 'string' },
      'memory-load': { type: 'string' },
      'memory-settle': { type: 'string' },
      'sidecar-concurrency': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  return Object.freeze({
    only: chosen('only', values.only, BENCHMARKS),
    rounds: whole('rounds', values.rounds, 3, 1, 20),
    protocols: chosen('protocol', values.protocol, PROTOCOLS),
    latency: Object.freeze({
      rate: whole('rate', values.rate, 1000, 1, 100_000),
      connections: whole('connections', values.connections, 16, 1, 1024),
      warmUpSeconds: whole('latency-warm-up', values['latency-warm-up'], 5, 0, 600),
      durationSeconds: whole('latency-duration', values['latency-duration'], 20, 1, 3600),
    }),
    throughput: Object.freeze({
      warmUpSeconds: whole('throughput-warm-up', values['throughput-warm-up'], 2, 0, 600),
      durationSeconds: whole('throughput-duration', values['throughput-duration'], 10, 1, 3600),
    }),
    memory: Object.freeze({
      loadSeconds: whole('memory-load', values['memory-load'], 60, 1, 3600),
      settleSeconds: whole('memory-settle', values['memory-settle'], 30, 0, 3600),
    }),
    sidecarConcurrency: whole('sidecar-concurrency', values['sidecar-concurrency'], 1, 1, 16),
    out: values.out ?? '/tmp/tsmesh-bench-all.json',
    path: env.PATH ?? ['/usr/local/bin', '/usr/bin', '/bin'].join(delimiter),
    help: values.help ?? false,
  });
}
