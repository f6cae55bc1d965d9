// `npm run bench`: every benchmark (or those --only names), one report. h2-balance and balancers
// run as their own programs (their tables are kept as printed); mesh-latency and mesh-throughput share one pair of pods
// with both proxy pairs; memory starts fresh pods so its idle reading is a sidecar that never
// carried a request. The mesh benchmarks need root and say so, and why, when skipped.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { canUseNetns } from 'tsmesh/demo';
import { runMemory } from './memory.js';
import { runMeshLatency } from './mesh-latency.js';
import { startMeshPods, type MeshPods } from './mesh-pods.js';
import { formatMemory, formatMeshLatency, formatMeshThroughput } from './mesh-report.js';
import { runMeshThroughput } from './mesh-throughput.js';
import { findExecutable, Workspace } from './processes.js';
import { sampleMachine } from './procfs.js';
import { parseSuiteConfig, SUITE_HELP, type Benchmark, type SuiteConfig } from './suite-config.js';

/** The benchmarks that are programs of their own, run with the suite's rounds. */
const PROGRAMS = {
  'h2-balance': fileURLToPath(new URL('./h2-balance.js', import.meta.url)),
  balancers: fileURLToPath(new URL('./balancers.js', import.meta.url)),
} as const;
type ProgramBenchmark = keyof typeof PROGRAMS;
const isProgram = (name: Benchmark): name is ProgramBenchmark => name in PROGRAMS;

interface Section {
  readonly name: Benchmark;
  readonly text: string;
  readonly result?: unknown;
  readonly problems: readonly string[];
}

/** A benchmark that is its own program: its table as printed, its JSON as written. */
async function program(config: SuiteConfig, name: ProgramBenchmark): Promise<Section> {
  const out = `${config.out}.${name}.json`;
  const child = spawn(process.execPath, [PROGRAMS[name], '--rounds', String(config.rounds), '--out', out], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const text = stdout.replace(/\n\nresults: .*\n?$/, '').trimEnd();
  let result: unknown;
  try {
    result = JSON.parse(readFileSync(out, 'utf8'));
  } catch {
    result = undefined;
  }
  return { name, text: text || '(no output)', result, problems: code === 0 ? [] : [`${name} exited ${code}`] };
}

function tool(config: SuiteConfig, command: string, debianPackage: string): string {
  const path = findExecutable(command, config.path);
  if (!path) throw new Error(`${command} not found: install the Debian package ${debianPackage}`);
  return path;
}

/** Starts pods in a fresh workspace, runs `body`, and removes everything even when it fails. */
async function withPods<T>(config: SuiteConfig, haproxy: boolean, cleanups: Set<() => Promise<void>>, body: (pods: MeshPods, workspace: Workspace) => Promise<T>): Promise<T> {
  const workspace = new Workspace();
  let pods: MeshPods | undefined;
  const cleanup = async (): Promise<void> => {
    await pods?.destroy();
    await workspace.release();
  };
  cleanups.add(cleanup);
  try {
    pods = await startMeshPods({ workspace, sidecarConcurrency: config.sidecarConcurrency, ...(haproxy ? { haproxy: { haproxy: tool(config, 'haproxy', 'haproxy'), openssl: tool(config, 'openssl', 'openssl') } } : {}) });
    return await body(pods, workspace);
  } finally {
    await cleanup();
    cleanups.delete(cleanup);
  }
}

async function meshSections(config: SuiteConfig, cleanups: Set<() => Promise<void>>): Promise<Section[]> {
  const wanted = config.only.filter((b) => !isProgram(b));
  if (wanted.length === 0) return [];
  const netns = await canUseNetns();
  if (!netns.ok) return wanted.map((name) => ({ name, text: `${name}: skipped: ${netns.reason} (it builds network namespaces and runs tsmesh iptables: run as root)`, problems: [] }));
  const sections: Section[] = [];
  const load = { rate: config.latency.rate, connections: config.latency.connections, warmUpSeconds: config.latency.warmUpSeconds, durationSeconds: config.latency.durationSeconds };
  if (wanted.includes('mesh-latency') || wanted.includes('mesh-throughput')) {
    const h2load = wanted.includes('mesh-throughput') ? tool(config, 'h2load', 'nghttp2-client') : '';
    await withPods(config, true, cleanups, async (pods, workspace) => {
      if (wanted.includes('mesh-latency')) {
        const report = await runMeshLatency(pods, load, config.rounds, config.protocols);
        sections.push({ name: 'mesh-latency', text: formatMeshLatency(report), result: report, problems: report.problems });
      }
      if (wanted.includes('mesh-throughput')) {
        const report = await runMeshThroughput(pods, workspace, h2load, config.throughput, config.rounds, config.protocols);
        sections.push({ name: 'mesh-throughput', text: formatMeshThroughput(report), result: report, problems: report.problems });
      }
    });
  }
  if (wanted.includes('memory')) {
    const protocol = config.protocols[0] ?? 'http';
    const report = await withPods(config, false, cleanups, (pods) =>
      runMemory(pods, { ...load, warmUpSeconds: 0, durationSeconds: config.memory.loadSeconds }, protocol, config.memory.settleSeconds),
    );
    sections.push({ name: 'memory', text: formatMemory(report), result: report, problems: report.problems });
  }
  return sections;
}

function busyShare(): Promise<number> {
  const before = sampleMachine();
  return new Promise((resolve) =>
    setTimeout(() => {
      const after = sampleMachine();
      resolve(Math.round(((after.busy - before.busy) / Math.max(1, after.total - before.total)) * 100) / 100);
    }, 1000),
  );
}

async function main(): Promise<number> {
  let config: SuiteConfig;
  try {
    config = parseSuiteConfig(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    return 2;
  }
  if (config.help) {
    process.stdout.write(SUITE_HELP);
    return 0;
  }
  const cleanups = new Set<() => Promise<void>>();
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`bench: ${signal}, cleaning up\n`);
    void Promise.all([...cleanups].map((c) => c().catch(() => undefined))).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const startedAt = new Date().toISOString();
  const busyBefore = await busyShare();
  const sections: Section[] = [];
  try {
    for (const name of config.only.filter(isProgram)) sections.push(await program(config, name));
    sections.push(...(await meshSections(config, cleanups)));
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    return 1;
  }
  const problems = sections.flatMap((s) => s.problems);
  writeFileSync(config.out, `${JSON.stringify({ startedAt, machineBusyBefore: busyBefore, config, results: Object.fromEntries(sections.map((s) => [s.name, s.result ?? null])), problems }, null, 2)}\n`);
  console.log(
    [
      `tsmesh benchmarks (${config.only.join(', ')}), started ${startedAt}; the machine was ${Math.round(busyBefore * 100)}% busy before the run`,
      ...sections.flatMap((s) => ['', s.text]),
      ...(problems.length ? ['', ...problems.map((m) => `PROBLEM: ${m}`)] : []),
      '',
      `results: ${config.out}`,
    ].join('\n'),
  );
  return problems.length === 0 ? 0 : 1;
}

process.exitCode = await main();
