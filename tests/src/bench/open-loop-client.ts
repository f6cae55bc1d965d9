// The mesh-latency load generator (dist/bench/open-loop-client.js, run as the app in the client
// pod): `--connections` one-connection generators at evenly spread phases (open-loop.ts), each
// sending at its scheduled times. A request's latency runs from its SCHEDULED send time to the end
// of its answer, so a late answer that holds the next send back is counted (no coordinated
// omission). Prints `{"measuring":true}` when the warm-up ends and one `{"result":...}` line.
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { latencyFigures, type LatencyFigures } from './mesh-figures.js';
import { ECHO_SERVICE, GRPC_MESSAGE } from './mesh-wire.js';
import { sendTimeNs, spreadSchedule } from './open-loop.js';

export interface OpenLoopResult {
  /** Answers in the measured window, and failures (errors, non-200) there. */
  readonly requests: number;
  readonly failed: number;
  readonly errors: readonly string[];
  readonly latency: LatencyFigures;
  /**
   * How late requests were sent (actual minus scheduled send time): the generator's timers plus the
   * wait for the previous answer on the same connection. Counted in the latency.
   */
  readonly sendLag: { readonly p50Ms: number; readonly p99Ms: number };
  /** Measured window, seconds, and the rate achieved in it. */
  readonly seconds: number;
  readonly requestsPerSecond: number;
}

type Send = () => Promise<string | undefined>;

function httpSender(url: string): Send {
  // One keep-alive connection per generator.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return () =>
    new Promise((resolve) => {
      const req = http.get(url, { agent }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}`));
        res.once('error', (e) => resolve(e.message));
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.once('error', (e) => resolve(e.message));
    });
}

type EchoClient = grpc.Client & { call(req: Buffer, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void };
const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');

function grpcSender(target: string): Send {
  // A channel of its own (local subchannel pool), so each generator has its own connection.
  const client = new EchoClient(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as EchoClient;
  return () =>
    new Promise((resolve) => client.call(GRPC_MESSAGE, { deadline: Date.now() + 10_000 }, (e) => resolve(e ? `gRPC ${e.code} ${e.details}` : undefined)));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      protocol: { type: 'string' },
      target: { type: 'string' },
      rate: { type: 'string' },
      connections: { type: 'string' },
      'warm-up': { type: 'string' },
      duration: { type: 'string' },
    },
  });
  const protocol = values.protocol;
  if (protocol !== 'http' && protocol !== 'grpc') throw new Error(`--protocol: "${protocol}" is not http or grpc`);
  const target = values.target ?? '';
  const connections = Number(values.connections ?? 16);
  const schedule = spreadSchedule(Number(values.rate ?? 1000), connections);
  const warmNs = BigInt(Math.round(Number(values['warm-up'] ?? 0) * 1e9));
  const endNs = warmNs + BigInt(Math.round(Number(values.duration ?? 10) * 1e9));
  const senders = Array.from({ length: connections }, () => (protocol === 'http' ? httpSender(target) : grpcSender(target)));

  const latencies: number[] = [];
  const lags: number[] = [];
  const errors: string[] = [];
  let failed = 0;
  let lastAnswerNs = 0n;
  const t0 = process.hrtime.bigint() + 50_000_000n;
  const measuring = setTimeout(() => console.log(JSON.stringify({ measuring: true })), Number((t0 + warmNs - process.hrtime.bigint()) / 1_000_000n));

  async function generator(c: number): Promise<void> {
    const send = senders[c] as Send;
    for (let n = 0; ; n++) {
      const at = sendTimeNs(schedule, c, n);
      if (at >= endNs) return;
      // Timers run on the event loop's millisecond clock and may fire a little early: never send early.
      for (let waitMs = Number(t0 + at - process.hrtime.bigint()) / 1e6; waitMs > 0; waitMs = Number(t0 + at - process.hrtime.bigint()) / 1e6) {
        await sleep(Math.max(1, Math.floor(waitMs)));
      }
      const sentNs = process.hrtime.bigint();
      const error = await send();
      const doneNs = process.hrtime.bigint();
      if (at < warmNs) continue;
      lastAnswerNs = doneNs;
      if (error) {
        failed++;
        if (errors.length < 10) errors.push(error);
        continue;
      }
      latencies.push(Number(doneNs - (t0 + at)) / 1000);
      lags.push(Number(sentNs - (t0 + at)) / 1000);
    }
  }

  await Promise.all(senders.map((_, c) => generator(c)));
  clearTimeout(measuring);
  const seconds = Number(lastAnswerNs - (t0 + warmNs)) / 1e9;
  const sortedLags = Float64Array.from(lags).sort();
  const lag = latencyFigures(sortedLags);
  const result: OpenLoopResult = {
    requests: latencies.length + failed,
    failed,
    errors,
    latency: latencyFigures(Float64Array.from(latencies).sort()),
    sendLag: { p50Ms: lag.p50Ms, p99Ms: lag.p99Ms },
    seconds: Math.round(seconds * 1000) / 1000,
    requestsPerSecond: Math.round((latencies.length + failed) / seconds),
  };
  console.log(JSON.stringify({ result }));
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(`open-loop-client: ${(error as Error).message}`);
  process.exit(1);
});
