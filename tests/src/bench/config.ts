// The benchmark's flags and environment, read once into a frozen object.
import { parseArgs } from 'node:util';
import { delimiter } from 'node:path';
import type { LoadParams } from './h2load.js';

export interface BenchConfig {
  readonly out: string;
  readonly load: LoadParams;
  /** PATH, for finding h2load, haproxy and nginx and for the sidecar's environment. */
  readonly path: string;
  readonly help: boolean;
}

export const BENCH_HELP = `h2-balance: per-stream HTTP/2 balancing over three upstreams, measured for
a direct connection, HAProxy (one thread) and the tsmesh sidecar in the same run.

Usage: node tests/dist/bench/h2-balance.js [flags]   (or: npm run bench)

  --out FILE          JSON results (default /tmp/tsmesh-bench.json)
  --connections N     h2load -c, client connections (default 4)
  --streams N         h2load -m, concurrent streams per connection (default 10)
  --duration S        measured seconds per peer (default 8)
  --warm-up S         warm-up seconds per peer before it is measured (default 2)

Needs h2load (Debian: nghttp2-client), haproxy and nginx (nginx-light), and a built tree.
`;

function positive(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name}: "${value}" must be a whole number from 1 to ${max}`);
  return n;
}

export function parseBenchConfig(argv: readonly string[], env: Record<string, string | undefined>): BenchConfig {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      out: { type: 'string' },
      connections: { type: 'string' },
      streams: { type: 'string' },
      duration: { type: 'string' },
      'warm-up': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const warmUp = values['warm-up'] === '0' ? 0 : positive('warm-up', values['warm-up'], 2, 30);
  return Object.freeze({
    out: values.out ?? '/tmp/tsmesh-bench.json',
    load: Object.freeze({
      connections: positive('connections', values.connections, 4, 256),
      streams: positive('streams', values.streams, 10, 256),
      durationSeconds: positive('duration', values.duration, 8, 60),
      warmUpSeconds: warmUp,
    }),
    path: env.PATH ?? ['/usr/local/bin', '/usr/bin', '/bin'].join(delimiter),
    help: values.help ?? false,
  });
}
