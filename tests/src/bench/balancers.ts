// `npm run bench -- --only balancers`: which balancing algorithm copes best with a slow replica.
// The sidecar (explicit-port local mode, telemetry as shipped) balances h2load's HTTP/2 streams
// (closed loop) or open-loop-client.js's HTTP/1.1 requests (a fixed rate) over REPLICAS h2c
// replicas (slow-upstreams.js); for each load, each scenario (no slow replica, replica 1
// slow throughout, replica 1 turning slow halfway) and each algorithm, a fresh sidecar whose
// Service names the algorithm by its `tsmesh.io/load-balancer` annotation is warmed up and
// measured: req/s, p50/p99 and the share of requests that reached the slow replica, as medians
// over the rounds, with the verdict on peak-ewma against the default (balancer-figures.ts).
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { delimiter } from 'node:path';
import { CLI_MAIN } from 'tsmesh/demo';
import { ALGORITHMS, formatTable, LOADS, medianRun, overallVerdict, SCENARIOS, slowShare, type Algorithm, type BalancerRun, type LoadName, type Medians, type Scenario } from './balancer-figures.js';
import { measure, warmUp, watch, type Load, type Watched } from './h2load.js';
import type { OpenLoopResult } from './open-loop-client.js';
import { roundOrder } from './mesh-figures.js';
import { startSidecar } from './peers.js';
import { findExecutable, freePorts, run, tail, waitForPort, Workspace } from './processes.js';
import { sampleMachine } from './procfs.js';

const REPLICAS_MAIN = fileURLToPath(new URL('./slow-upstreams.js', import.meta.url));
const OPEN_LOOP_MAIN = fileURLToPath(new URL('./open-loop-client.js', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The incumbent default and the challenger the issue asks about. */
const INCUMBENT: Algorithm = 'least-request';
const CHALLENGER: Algorithm = 'peak-ewma';

export const BALANCERS_HELP = `balancers: round-robin, least-request and peak-ewma in front of replicas of
which one is slow, through the tsmesh sidecar, HTTP/2 streams from h2load.

Usage: node tests/dist/bench/balancers.js [flags]   (or: npm run bench -- --only balancers)

  --rounds N          rounds, each measuring every scenario and algorithm once; medians (default 3)
  --duration S        measured seconds per run (default 10)
  --warm-up S         unmeasured seconds of the same load before each run (default 3)
  --replicas N        replicas behind the Service (default 3)
  --delay-ms N        what the slow replica adds to every answer (default 50)
  --load NAME         h2load (closed-loop HTTP/2 streams, saturating) or open-loop (HTTP/1.1 at a
                      fixed rate, latency from the scheduled send time); repeat for both (default both)
  --connections N     h2load -c (default 4)
  --streams N         h2load -m, concurrent streams per connection (default 8)
  --rate N            open-loop requests per second in all (default 500)
  --open-connections N  open-loop generators, one keep-alive connection each (default 16)
  --sidecar-concurrency N  tsmesh proxy --concurrency (default 1)
  --out FILE          JSON results (default /tmp/tsmesh-bench-balancers.json)

Needs h2load (Debian: nghttp2-client) and a built tree.
`;

interface Config {
  readonly rounds: number;
  readonly durationSeconds: number;
  readonly warmUpSeconds: number;
  readonly replicas: number;
  readonly delayMs: number;
  readonly loads: readonly LoadName[];
  readonly connections: number;
  readonly streams: number;
  readonly rate: number;
  readonly openConnections: number;
  readonly sidecarConcurrency: number;
  readonly out: string;
  readonly path: string;
  readonly help: boolean;
}

function whole(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: "${value}" must be a whole number from ${min} to ${max}`);
  return n;
}

function parseConfig(argv: readonly string[], env: Record<string, string | undefined>): Config {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      'warm-up': { type: 'string' },
      replicas: { type: 'string' },
      'delay-ms': { type: 'string' },
      load: { type: 'string', multiple: true },
      connections: { type: 'string' },
      streams: { type: 'string' },
      rate: { type: 'string' },
      'open-connections': { type: 'string' },
      'sidecar-concurrency': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  for (const load of values.load ?? []) if (!(LOADS as readonly string[]).includes(load)) throw new Error(`--load: unknown "${load}"; choose from ${LOADS.join(', ')}`);
  return Object.freeze({
    loads: LOADS.filter((load) => values.load === undefined || values.load.includes(load)),
    rate: whole('rate', values.rate, 500, 1, 100_000),
    openConnections: whole('open-connections', values['open-connections'], 16, 1, 1024),
    rounds: whole('rounds', values.rounds, 3, 1, 20),
    durationSeconds: whole('duration', values.duration, 10, 2, 600),
    warmUpSeconds: whole('warm-up', values['warm-up'], 3, 0, 60),
    replicas: whole('replicas', values.replicas, 3, 2, 16),
    delayMs: whole('delay-ms', values['delay-ms'], 50, 1, 10_000),
    connections: whole('connections', values.connections, 4, 1, 256),
    streams: whole('streams', values.streams, 8, 1, 256),
    sidecarConcurrency: whole('sidecar-concurrency', values['sidecar-concurrency'], 1, 1, 16),
    out: values.out ?? '/tmp/tsmesh-bench-balancers.json',
    path: env.PATH ?? ['/usr/local/bin', '/usr/bin', '/bin'].join(delimiter),
    help: values.help ?? false,
  });
}

/** The replicas' process and its control port. */
interface Replicas {
  /** HTTP/2 (prior knowledge) ports, and HTTP/1.1 ports, of replicas 1..N. */
  readonly ports: readonly number[];
  readonly h1Ports: readonly number[];
  readonly watched: Watched;
  counts(): Promise<number[]>;
  delay(replica: number, ms: number): Promise<void>;
}

async function startReplicas(workspace: Workspace, count: number): Promise<Replicas> {
  const [control, ...all] = (await freePorts(2 * count + 1)) as [number, ...number[]];
  const ports = all.slice(0, count);
  const h1Ports = all.slice(count);
  const log = workspace.path('replicas.log');
  const child = workspace.spawn(process.execPath, [REPLICAS_MAIN, '--ports', ports.join(','), '--h1-ports', h1Ports.join(','), '--control', String(control)], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (const port of [control, ...all]) await waitForPort(child, port, 'slow-upstreams', log);
  const base = `http://127.0.0.1:${control}`;
  return {
    ports,
    h1Ports,
    watched: watch(child.pid as number),
    counts: async () => (await (await fetch(`${base}/counts`)).json()) as number[],
    async delay(replica, ms) {
      const res = await fetch(`${base}/delay?replica=${replica}&ms=${ms}`, { method: 'POST' });
      if (!res.ok) throw new Error(`slow-upstreams: delay refused: ${await res.text()}`);
    },
  };
}

/** The slow replica (replica 1, index 0). */
const SLOW = 0;

/** Makes the slow replica slow; the counters at that moment. */
async function turnSlow(config: Config, replicas: Replicas): Promise<number[]> {
  await replicas.delay(SLOW, config.delayMs);
  return replicas.counts();
}

/**
 * The open-loop run: open-loop-client.js sends at its schedule for the warm-up and the measured
 * time; the counters are read when it says the measurement starts (and, in turns-slow, when the
 * replica turns slow halfway through), and at its end.
 */
async function openLoopRun(config: Config, workspace: Workspace, replicas: Replicas, scenario: Scenario, url: string, onTimer: (timer: NodeJS.Timeout) => void): Promise<BalancerRun> {
  const args = [OPEN_LOOP_MAIN, '--protocol', 'http', '--target', url, '--rate', String(config.rate), '--connections', String(config.openConnections), '--warm-up', String(config.warmUpSeconds), '--duration', String(config.durationSeconds)];
  const child = workspace.spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let before: Promise<number[]> | undefined;
  let result: OpenLoopResult | undefined;
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let message: { measuring?: boolean; result?: OpenLoopResult };
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        continue;
      }
      if (message.measuring) {
        before = replicas.counts();
        if (scenario === 'turns-slow') onTimer(setTimeout(() => (before = turnSlow(config, replicas)), (config.durationSeconds * 1000) / 2));
      }
      if (message.result) result = message.result;
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0 || result === undefined || before === undefined) throw new Error(`open-loop-client exited ${code} without a result`);
  const after = await replicas.counts();
  if (result.failed > 0) process.stderr.write(`  ${result.failed} failed, e.g. ${result.errors.slice(0, 3).join('; ')}\n`);
  return {
    requestsPerSecond: result.requestsPerSecond,
    p50Ms: result.latency.p50Ms,
    p99Ms: result.latency.p99Ms,
    failed: result.failed,
    slowShare: slowShare(await before, after, SLOW),
  };
}

/** One run: a fresh sidecar for `algorithm`, the scenario's delay, a warm-up, the measured run. */
async function measureRun(
  config: Config,
  workspace: Workspace,
  h2load: string,
  replicas: Replicas,
  loadName: LoadName,
  scenario: Scenario,
  algorithm: Algorithm,
  label: string,
): Promise<BalancerRun> {
  const [outbound, inbound, admin, health] = (await freePorts(4)) as [number, number, number, number];
  const name = label.replaceAll(' ', '-');
  const sidecar = await startSidecar(workspace, CLI_MAIN, { outbound, inbound, admin, health }, loadName === 'open-loop' ? replicas.h1Ports : replicas.ports, config.path, config.sidecarConcurrency, { name, loadBalancer: algorithm, portName: loadName === 'open-loop' ? 'http' : 'http2' });
  const load: Load = { url: `http://127.0.0.1:${outbound}/`, connections: config.connections, streams: config.streams, headers: [] };
  const timing = { warmUpSeconds: config.warmUpSeconds, durationSeconds: config.durationSeconds };
  let switchTimer: NodeJS.Timeout | undefined;
  try {
    await replicas.delay(SLOW, scenario === 'one-slow' ? config.delayMs : 0);
    process.stderr.write(`${label}: warming up and measuring ...\n`);
    if (loadName === 'open-loop') return await openLoopRun(config, workspace, replicas, scenario, `http://127.0.0.1:${outbound}/`, (timer) => (switchTimer = timer));
    await warmUp(workspace, h2load, load, timing);
    let before = await replicas.counts();
    let switched: Promise<void> = Promise.resolve();
    if (scenario === 'turns-slow') {
      switched = new Promise((resolve, reject) => {
        switchTimer = setTimeout(() => {
          turnSlow(config, replicas).then((at) => {
            before = at;
            resolve();
          }, reject);
        }, (config.durationSeconds * 1000) / 2);
      });
    }
    const result = await measure(workspace, h2load, name, load, timing, { peer: watch(sidecar.process.pid as number), upstreams: replicas.watched });
    await switched;
    const after = await replicas.counts();
    const non200 = Object.entries(result.statuses).reduce((sum, [status, n]) => (status === '200' ? sum : sum + n), 0);
    return {
      requestsPerSecond: result.h2load.requestsPerSecond,
      p50Ms: result.latency.p50Ms,
      p99Ms: result.latency.p99Ms,
      failed: result.h2load.failed + result.h2load.errored + non200,
      slowShare: slowShare(before, after, SLOW),
    };
  } catch (error) {
    throw new Error(`${label}: ${(error as Error).message}; sidecar log: ${tail(sidecar.logFile)}`, { cause: error });
  } finally {
    clearTimeout(switchTimer);
    await workspace.stop(sidecar.process);
    await replicas.delay(SLOW, 0);
  }
}

async function bench(config: Config, workspace: Workspace): Promise<Record<string, unknown>> {
  const h2load = findExecutable('h2load', config.path);
  if (!h2load) throw new Error('h2load not found: install the Debian package nghttp2-client');
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: build first (npx turbo run build)`);
  const startedAt = new Date().toISOString();
  const revision = await run(workspace, 'git', ['-C', REPO_ROOT, 'describe', '--always', '--dirty'], 5000).then((r) => r.stdout.trim(), () => 'unknown');
  const idleBefore = sampleMachine();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idleAfter = sampleMachine();
  const backgroundBusy = Math.round(((idleAfter.busy - idleBefore.busy) / Math.max(1, idleAfter.total - idleBefore.total)) * 100) / 100;
  const replicas = await startReplicas(workspace, config.replicas);

  type Runs = Record<string, Record<string, BalancerRun[]>>;
  const runs: Record<string, Runs> = Object.fromEntries(config.loads.map((l) => [l, Object.fromEntries(SCENARIOS.map((s) => [s, Object.fromEntries(ALGORITHMS.map((a) => [a, [] as BalancerRun[]]))]))]));
  for (let r = 0; r < config.rounds; r++) {
    for (const load of config.loads) {
      for (const scenario of SCENARIOS) {
        // Rotated every round, so no algorithm always runs first (or last) in a scenario.
        for (const algorithm of roundOrder(ALGORITHMS, r)) {
          runs[load]![scenario]![algorithm]!.push(await measureRun(config, workspace, h2load, replicas, load, scenario, algorithm, `round ${r + 1} ${load} ${scenario} ${algorithm}`));
        }
      }
    }
  }
  const medians: Partial<Record<LoadName, Medians>> = Object.fromEntries(
    config.loads.map((l) => [l, Object.fromEntries(SCENARIOS.map((s) => [s, Object.fromEntries(ALGORITHMS.map((a) => [a, medianRun(runs[l]![s]![a]!)]))]))]),
  );
  const problems = config.loads.flatMap((l) =>
    SCENARIOS.flatMap((s) => ALGORITHMS.filter((a) => (medians[l] as Medians)[s][a].failed > 0).map((a) => `${l} ${s} ${a}: ${(medians[l] as Medians)[s][a].failed} requests failed`)),
  );
  return {
    benchmark: 'balancers',
    startedAt,
    machine: { cpus: os.availableParallelism(), backgroundBusy, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.versions.node, revision },
    params: { ...config, path: undefined, slowReplica: SLOW + 1 },
    runs,
    medians,
    verdict: overallVerdict(medians, CHALLENGER, INCUMBENT),
    problems,
  };
}

async function main(): Promise<number> {
  let config: Config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`balancers: ${(error as Error).message}`);
    return 2;
  }
  if (config.help) {
    process.stdout.write(BALANCERS_HELP);
    return 0;
  }
  const workspace = new Workspace();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true;
    process.stderr.write(`balancers: ${signal}, stopping\n`);
    void workspace.release().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const report = await bench(config, workspace);
    writeFileSync(config.out, `${JSON.stringify(report, null, 2)}\n`);
    const v = report['verdict'] as ReturnType<typeof overallVerdict>;
    const medians = report['medians'] as Partial<Record<LoadName, Medians>>;
    const machine = report['machine'] as { backgroundBusy: number; revision: string };
    console.log(
      [
        `balancers: ${config.replicas} replicas, replica ${SLOW + 1} +${config.delayMs} ms when slow; ${config.warmUpSeconds} s warm-up + ${config.durationSeconds} s per run, ` +
          `medians of ${config.rounds} round(s); ${machine.revision}, machine ${Math.round(machine.backgroundBusy * 100)}% busy before`,
        ...config.loads.flatMap((l) => [
          '',
          l === 'h2load' ? `h2load (HTTP/2, closed loop, -c ${config.connections} -m ${config.streams}):` : `open-loop (HTTP/1.1, ${config.rate} req/s over ${config.openConnections} connections):`,
          '',
          formatTable(medians[l] as Medians, config.delayMs),
        ]),
        '',
        `${CHALLENGER} as the default instead of ${INCUMBENT}: ${v.better ? 'yes' : 'no'}`,
        ...v.reasons.map((r) => `  ${r}`),
        ...(report['problems'] as string[]).map((p) => `PROBLEM: ${p}`),
        '',
        `results: ${config.out}`,
      ].join('\n'),
    );
    return (report['problems'] as string[]).length === 0 ? 0 : 1;
  } catch (error) {
    if (!interrupted) console.error(`balancers: ${(error as Error).message}`);
    return 1;
  } finally {
    await workspace.release();
  }
}

process.exitCode = await main();
