// `npm run bench`: per-stream HTTP/2 balancing over three upstreams. The same h2load load is
// sent directly to one upstream, through HAProxy (one thread) and through the tsmesh sidecar,
// in one run; requests/s, p50/p99 latency, CPU per request and peak RSS are reported with the
// ratios between peers, as a table on stdout and as JSON (--out).
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { CLI_MAIN } from 'tsmesh/demo';
import { BENCH_HELP, parseBenchConfig, type BenchConfig } from './config.js';
import { measure, warmUp, watch, type Watched } from './h2load.js';
import { startHaproxy, startSidecar } from './peers.js';
import { findExecutable, freePorts, run, tail, Workspace } from './processes.js';
import { sampleMachine } from './procfs.js';
import { formatReport, notesOf, PEERS, problemsOf, ratios, type BenchReport, type PeerName, type PeerResult } from './report.js';
import { startUpstreams } from './upstreams.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const TOOLS = [
  { command: 'h2load', debianPackage: 'nghttp2-client' },
  { command: 'haproxy', debianPackage: 'haproxy' },
  { command: 'nginx', debianPackage: 'nginx-light' },
] as const;

function requireTools(config: BenchConfig): Record<(typeof TOOLS)[number]['command'], string> {
  const found: Partial<Record<string, string>> = {};
  for (const { command, debianPackage } of TOOLS) {
    const path = findExecutable(command, config.path);
    if (!path) throw new Error(`${command} not found: install the Debian package ${debianPackage} (apt-get install ${debianPackage})`);
    found[command] = path;
  }
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: build first (npx tsc -b)`);
  return found as Record<(typeof TOOLS)[number]['command'], string>;
}

async function versionOf(workspace: Workspace, command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(workspace, command, args, 5000);
    return (stdout || stderr).trim().split('\n')[0] ?? '';
  } catch (error) {
    return `unknown (${(error as Error).message})`;
  }
}

async function bench(config: BenchConfig, workspace: Workspace): Promise<BenchReport> {
  const tools = requireTools(config);
  const startedAt = new Date().toISOString();
  // What is measured: the commit, and whether the working tree had local changes (read before the run).
  const revision = await versionOf(workspace, 'git', ['-C', REPO_ROOT, 'describe', '--always', '--dirty']);
  // Other work on the machine skews every figure; how busy it was before we started is recorded.
  const idleBefore = sampleMachine();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idleAfter = sampleMachine();
  const backgroundBusy = Math.round(((idleAfter.busy - idleBefore.busy) / Math.max(1, idleAfter.total - idleBefore.total)) * 100) / 100;
  const [u1, u2, u3, haproxyPort, outbound, inbound, admin, health] = (await freePorts(8)) as [number, number, number, number, number, number, number, number];
  const upstreamPorts = [u1, u2, u3];

  const upstreams = await startUpstreams(workspace, tools.nginx, upstreamPorts);
  const haproxy = await startHaproxy(workspace, tools.haproxy, haproxyPort, upstreamPorts);
  const sidecar = await startSidecar(workspace, CLI_MAIN, { outbound, inbound, admin, health }, upstreamPorts, config.path);
  const nginxProcess = watch(upstreams.process.pid as number);

  const targets: Record<PeerName, { url: string; watched: Watched | undefined; log: string }> = {
    direct: { url: `http://127.0.0.1:${u1}/`, watched: undefined, log: workspace.path('nginx-error.log') },
    haproxy: { url: `http://127.0.0.1:${haproxyPort}/`, watched: watch(haproxy.pid as number), log: workspace.path('haproxy.log') },
    sidecar: { url: `http://127.0.0.1:${outbound}/`, watched: watch(sidecar.process.pid as number), log: sidecar.logFile },
  };
  const peers: Partial<Record<PeerName, PeerResult>> = {};
  for (const name of PEERS) {
    const { url, watched, log } = targets[name];
    process.stderr.write(`measuring ${name} (${url}) ...\n`);
    try {
      await warmUp(workspace, tools.h2load, url, config.load);
      const before = await upstreams.counts();
      const result = await measure(workspace, tools.h2load, name, url, config.load, { peer: watched, upstreams: nginxProcess });
      const after = await upstreams.counts();
      peers[name] = { ...result, split: after.map((n, i) => n - (before[i] ?? 0)) };
    } catch (error) {
      const gone = [watched?.pid, nginxProcess.pid].some((pid) => pid !== undefined && !existsSync(`/proc/${pid}`));
      throw new Error(`measuring ${name}: ${(error as Error).message}${gone ? `; a server process is gone, last log lines: ${tail(log)}` : ''}`, { cause: error });
    }
  }
  const measured = peers as Record<PeerName, PeerResult>;
  const problems = PEERS.flatMap((name) => problemsOf(name, measured[name]));
  const clusters = await sidecar.clusters().catch((error: Error) => ({ error: error.message }));

  return {
    benchmark: 'h2-balance',
    startedAt,
    machine: {
      cpus: os.availableParallelism(),
      backgroundBusy,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      kernel: `${os.type()} ${os.release()}`,
      node: process.versions.node,
      revision,
      h2load: await versionOf(workspace, tools.h2load, ['--version']),
      haproxy: await versionOf(workspace, tools.haproxy, ['-v']),
      nginx: await versionOf(workspace, tools.nginx, ['-v']),
    },
    params: config.load,
    peers: measured,
    ratios: {
      sidecarToDirect: ratios(measured.sidecar, measured.direct),
      sidecarToHaproxy: ratios(measured.sidecar, measured.haproxy),
      haproxyToDirect: ratios(measured.haproxy, measured.direct),
    },
    sidecarClusters: clusters,
    sidecarWarnings: sidecar.warnings(),
    problems,
    notes: PEERS.flatMap((name) => notesOf(name, measured[name])),
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
