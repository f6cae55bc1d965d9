// The benchmark's flags and environment, read once into a frozen object.
import { parseArgs } from 'node:util';
import { delimiter } from 'node:path';
import { CASE_NAMES, CASES, type BenchCase } from './cases.js';

export interface Timing {
  /** Unmeasured h2load run of the same load before every measured run (JIT, pools, heap sizing). */
  readonly warmUpSeconds: number;
  readonly durationSeconds: number;
}

export interface BenchConfig {
  readonly out: string;
  /** Rounds per case; each round measures every peer once, and the report gives the medians. */
  readonly rounds: number;
  /** The cases to run, in order, with any --connections / --streams override applied. */
  readonly cases: readonly BenchCase[];
  readonly timing: Timing;
  /** PATH, for finding h2load, nghttp, haproxy and nginx and for the sidecar's environment. */
  readonly path: string;
  /** The sidecar's event loops (`tsmesh proxy --concurrency`): 1, like the one HAProxy thread, unless asked. */
  readonly sidecarConcurrency: number;
  readonly help: boolean;
}

export const BENCH_HELP = `h2-balance: per-stream HTTP/2 balancing over three upstreams, measured for
a direct connection, HAProxy (one thread) and the tsmesh sidecar in the same run.

Usage: node tests/dist/bench/h2-balance.js [flags]   (or: npm run bench -- [flags])

  --case NAME         a case to run; repeat for several (default: all, in this order)
${CASES.map((c) => `                        ${c.name.padEnd(10)} ${c.summary}`).join('\n')}
  --rounds N          rounds per case, each measuring every peer once; medians are reported (default 3)
  --duration S        measured seconds per peer and round (default 5)
  --warm-up S         unmeasured seconds of the same load before each measured run (default 2, 0 for none)
  --connections N     override every case's h2load -c
  --streams N         override every case's h2load -m
  --sidecar-concurrency N
                      the sidecar's event loops, tsmesh proxy --concurrency (default 1, as HAProxy's
                      one thread; with more, the main thread column is the control thread's)
  --out FILE          JSON results (default /tmp/tsmesh-bench.json)

Needs h2load and nghttp (Debian: nghttp2-client), haproxy and nginx (nginx-light), and a built tree.
`;

function wholeNumber(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: "${value}" must be a whole number from ${min} to ${max}`);
  return n;
}

function casesOf(names: readonly string[] | undefined, connections: number | undefined, streams: number | undefined): readonly BenchCase[] {
  const chosen = names ?? CASE_NAMES;
  if (chosen.length === 0) throw new Error('--case: at least one case is needed');
  const seen = new Set<string>();
  const cases = chosen.map((name) => {
    const found = CASES.find((c) => c.name === name);
    if (!found) throw new Error(`--case: unknown case "${name}"; the cases are ${CASE_NAMES.join(', ')}`);
    if (seen.has(name)) throw new Error(`--case: "${name}" is given twice`);
    seen.add(name);
    return Object.freeze({ ...found, connections: connections ?? found.connections, streams: streams ?? found.streams });
  });
  return Object.freeze(cases);
}

export function parseBenchConfig(argv: readonly string[], env: Record<string, string | undefined>): BenchConfig {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      out: { type: 'string' },
      case: { type: 'string', multiple: true },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      streams: { type: 'string' },
      duration: { type: 'string' },
      'warm-up': { type: 'string' },
      'sidecar-concurrency': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const connections = values.connections === undefined ? undefined : wholeNumber('connections', values.connections, 0, 1, 256);
  const streams = values.streams === undefined ? undefined : wholeNumber('streams', values.streams, 0, 1, 256);
  return Object.freeze({
    out: values.out ?? '/tmp/tsmesh-bench.json',
    rounds: wholeNumber('rounds', values.rounds, 3, 1, 20),
    cases: casesOf(values.case, connections, streams),
    timing: Object.freeze({
      warmUpSeconds: wholeNumber('warm-up', values['warm-up'], 2, 0, 30),
      durationSeconds: wholeNumber('duration', values.duration, 5, 1, 60),
    }),
    path: env.PATH ?? ['/usr/local/bin', '/usr/bin', '/bin'].join(delimiter),
    sidecarConcurrency: wholeNumber('sidecar-concurrency', values['sidecar-concurrency'], 1, 1, 64),
    help: values.help ?? false,
  });
}
