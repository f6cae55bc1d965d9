// `npm run bench`: per-stream HTTP/2 balancing over three upstreams. For each case (a request
// shape and an h2load load), the same load is sent directly to one upstream, through HAProxy
// (one thread) and through the tsmesh sidecar, round after round in one run with the same
// processes; requests/s, p50/p99 latency, CPU per request and peak RSS are reported as medians
// over the rounds with the ratios between peers, as a table on stdout and as JSON (--out).
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { CLI_MAIN } from 'tsmesh/demo';
import { methodOf, type BenchCase } from './cases.js';
import { BENCH_HELP, parseBenchConfig, type BenchConfig } from './config.js';
import { measure, warmUp, watch, type Load, type Watched } from './h2load.js';
import { startHaproxy, startSidecar } from './peers.js';
import { findExecutable, freePorts, run, tail, Workspace } from './processes.js';
import { sampleMachine, sampleProcess } from './procfs.js';
import { formatReport, type BenchReport, type CaseReport } from './report.js';
import { notesOf, PEERS, problemsOf, ratios, summarizePeer, type PeerName, type PeerResult } from './summary.js';
import { checkTrailers, type TrailerCheck } from './trailers.js';
import { startUpstreams, type Upstreams } from './upstreams.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const TOOLS = [
  { command: 'h2load', debianPackage: 'nghttp2-client' },
  { command: 'nghttp', debianPackage: 'nghttp2-client' },
  { command: 'haproxy', debianPackage: 'haproxy' },
  { command: 'nginx', debianPackage: 'nginx-light' },
] as const;
type Tools = Record<(typeof TOOLS)[number]['command'], string>;

function requireTools(config: BenchConfig): Tools {
  const found: Partial<Record<string, string>> = {};
  for (const { command, debianPackage } of TOOLS) {
    const path = findExecutable(command, config.path);
    if (!path) throw new Error(`${command} not found: install the Debian package ${debianPackage} (apt-get install ${debianPackage})`);
    found[command] = path;
  }
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: build first (npx tsc -b)`);
  return found as Tools;
}

async function versionOf(workspace: Workspace, command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(workspace, command, args, 5000);
    return (stdout || stderr).trim().split('\n')[0] ?? '';
  } catch (error) {
    return `unknown (${(error as Error).message})`;
  }
}

/** A peer as the load generator sees it: where to send, which process to sample, which log explains a crash. */
interface Target {
  readonly base: string;
  readonly watched: Watched | undefined;
  readonly log: string;
}

/** What every case is measured with: the tools, the running processes and the flags. */
interface Bench {
  readonly config: BenchConfig;
  readonly workspace: Workspace;
  readonly tools: Tools;
  readonly upstreams: Upstreams;
  readonly nginxProcess: Watched;
  readonly targets: Readonly<Record<PeerName, Target>>;
}

interface CaseOutcome {
  readonly report: CaseReport;
  readonly problems: readonly string[];
  readonly notes: readonly string[];
}

/** One measured run of one peer: a warm-up, then the measured h2load run between two counts of the upstreams' logs. */
async function measurePeer(bench: Bench, label: string, name: PeerName, load: Load): Promise<PeerResult> {
  const { workspace, tools, config, upstreams, nginxProcess } = bench;
  const { watched, log } = bench.targets[name];
  process.stderr.write(`${label}: measuring ${load.url} ...\n`);
  try {
    await warmUp(workspace, tools.h2load, load, config.timing);
    const before = await upstreams.counts();
    const result = await measure(workspace, tools.h2load, label.replaceAll(' ', '-'), load, config.timing, { peer: watched, upstreams: nginxProcess });
    const after = await upstreams.counts();
    return { ...result, split: after.map((n, i) => n - (before[i] ?? 0)) };
  } catch (error) {
    const gone = [watched?.pid, nginxProcess.pid].some((pid) => pid !== undefined && !existsSync(`/proc/${pid}`));
    throw new Error(`${label}: ${(error as Error).message}${gone ? `; a server process is gone, last log lines: ${tail(log)}` : ''}`, { cause: error });
  }
}

/** A case: the trailer check when its answers end in trailers, then its rounds, each measuring every peer once. */
async function runCase(bench: Bench, benchCase: BenchCase): Promise<CaseOutcome> {
  const { workspace, tools, config } = bench;
  const { request } = benchCase;
  const bodyFile = request.body ? workspace.path(`${benchCase.name}.body`) : undefined;
  if (bodyFile && request.body) writeFileSync(bodyFile, request.body);
  const loadOf = (name: PeerName): Load => ({
    url: `${bench.targets[name].base}${request.path}`,
    connections: benchCase.connections,
    streams: benchCase.streams,
    headers: request.headers,
    ...(bodyFile ? { bodyFile } : {}),
  });
  const problems: string[] = [];
  const notes: string[] = [];

  let trailers: Record<PeerName, TrailerCheck> | undefined;
  if (request.trailers) {
    const checks: Partial<Record<PeerName, TrailerCheck>> = {};
    for (const name of PEERS) {
      const check = await checkTrailers(workspace, tools.nghttp, loadOf(name), request.trailers);
      if (!check.ok) problems.push(`${benchCase.name} ${name}: the answer's trailers did not arrive intact: ${check.problem ?? ''}`);
      checks[name] = check;
    }
    trailers = checks as Record<PeerName, TrailerCheck>;
  }

  const rounds: Record<PeerName, PeerResult>[] = [];
  for (let r = 1; r <= config.rounds; r++) {
    const round: Partial<Record<PeerName, PeerResult>> = {};
    for (const name of PEERS) {
      const label = `${benchCase.name} round ${r} ${name}`;
      const result = await measurePeer(bench, label, name, loadOf(name));
      problems.push(...problemsOf(label, name, result));
      notes.push(...notesOf(label, result));
      round[name] = result;
    }
    rounds.push(round as Record<PeerName, PeerResult>);
  }

  const medians = Object.fromEntries(PEERS.map((name) => [name, summarizePeer(rounds.map((round) => round[name]))])) as CaseReport['medians'];
  return {
    report: {
      name: benchCase.name,
      summary: benchCase.summary,
      request: { method: methodOf(request), path: request.path, headers: request.headers, bodyBytes: request.body?.length ?? 0 },
      connections: benchCase.connections,
      streams: benchCase.streams,
      ...(trailers ? { trailers } : {}),
      rounds,
      medians,
      ratios: {
        sidecarToDirect: ratios(medians.sidecar, medians.direct),
        sidecarToHaproxy: ratios(medians.sidecar, medians.haproxy),
        haproxyToDirect: ratios(medians.haproxy, medians.direct),
      },
    },
    problems,
    notes,
  };
}

async function machineOf(workspace: Workspace, tools: Tools, revision: string, backgroundBusy: number): Promise<Record<string, string | number>> {
  return {
    cpus: os.availableParallelism(),
    backgroundBusy,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.versions.node,
    revision,
    h2load: await versionOf(workspace, tools.h2load, ['--version']),
    nghttp: await versionOf(workspace, tools.nghttp, ['--version']),
    haproxy: await versionOf(workspace, tools.haproxy, ['-v']),
    nginx: await versionOf(workspace, tools.nginx, ['-v']),
  };
}

async function bench(config: BenchConfig, workspace: Workspace): Promise<BenchReport> {
  const tools = requireTools(config);
  const startedAt = new Date().toISOString();
  const started = performance.now();
  // What is measured: the commit, and whether the working tree had local changes (read before the run).
  const revision = await versionOf(workspace, 'git', ['-C', REPO_ROOT, 'describe', '--always', '--dirty']);
  // Other work on the machine skews every figure; how busy it was before we started is recorded.
  const idleBefore = sampleMachine();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idleAfter = sampleMachine();
  const backgroundBusy = Math.round(((idleAfter.busy - idleBefore.busy) / Math.max(1, idleAfter.total - idleBefore.total)) * 100) / 100;
  const [u1, u2, u3, haproxyPort, outbound, inbound, admin, health] = (await freePorts(8)) as [number, number, number, number, number, number, number, number];
  const upstreamPorts = [u1, u2, u3];

  // The same processes serve every case and round, so peak RSS is the highest of the whole run.
  const upstreams = await startUpstreams(workspace, tools.nginx, upstreamPorts);
  const haproxy = await startHaproxy(workspace, tools.haproxy, haproxyPort, upstreamPorts);
  const sidecar = await startSidecar(workspace, CLI_MAIN, { outbound, inbound, admin, health }, upstreamPorts, config.path, config.sidecarConcurrency);
  const setup: Bench = {
    config,
    workspace,
    tools,
    upstreams,
    nginxProcess: watch(upstreams.process.pid as number),
    targets: {
      direct: { base: `http://127.0.0.1:${u1}`, watched: undefined, log: workspace.path('nginx-error.log') },
      haproxy: { base: `http://127.0.0.1:${haproxyPort}`, watched: watch(haproxy.pid as number), log: workspace.path('haproxy.log') },
      sidecar: { base: `http://127.0.0.1:${outbound}`, watched: watch(sidecar.process.pid as number), log: sidecar.logFile },
    },
  };

  const outcomes: CaseOutcome[] = [];
  for (const benchCase of config.cases) outcomes.push(await runCase(setup, benchCase));
  const peakRssMiB = (pid: number | undefined): number => (pid === undefined ? Number.NaN : Math.round((sampleProcess(pid).peakRssKiB / 1024) * 10) / 10);
  const clusters = await sidecar.clusters().catch((error: Error) => ({ error: error.message }));

  return {
    benchmark: 'h2-balance',
    startedAt,
    wallSeconds: Math.round((performance.now() - started) / 100) / 10,
    machine: await machineOf(workspace, tools, revision, backgroundBusy),
    params: { rounds: config.rounds, ...config.timing, cases: config.cases.map((c) => c.name) },
    cases: outcomes.map((o) => o.report),
    peakRssMiB: { haproxy: peakRssMiB(haproxy.pid), sidecar: peakRssMiB(sidecar.process.pid) },
    sidecarClusters: clusters,
    sidecarWarnings: sidecar.warnings(),
    problems: outcomes.flatMap((o) => o.problems),
    notes: outcomes.flatMap((o) => o.notes),
  };
}

async function main(): Promise<number> {
  let config: BenchConfig;
  try {
    config = parseBenchConfig(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`h2-balance: ${(error as Error).message}`);
    return 2;
  }
  if (config.help) {
    process.stdout.write(BENCH_HELP);
    return 0;
  }
  const workspace = new Workspace();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true;
    process.stderr.write(`h2-balance: ${signal}, stopping\n`);
    void workspace.release().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const report = await bench(config, workspace);
    writeFileSync(config.out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(formatReport(report));
    console.log(`\nresults: ${config.out}`);
    return report.problems.length === 0 ? 0 : 1;
  } catch (error) {
    // After a signal, the failure is only the children being stopped.
    if (!interrupted) console.error(`h2-balance: ${(error as Error).message}`);
    return 1;
  } finally {
    await workspace.release();
  }
}

process.exitCode = await main();
