// `node tests/dist/bench/control-scale.js`: how the control plane scales.
//  1. Propagation: the control plane in this process serves a mesh file (100 Services × 10 endpoints by
//     default) to N sidecars in a child process, each with its own workload certificate from a real CA;
//     one EndpointSlice is changed in the file, again and again, and the time until the first and until
//     every sidecar has applied it is measured (p50/p99/max): with real ControlPlaneSource clients
//     (default debounce, and none), and with wire receivers that ack on arrival (the fan-out alone).
//  2. Large mesh (1,000 Services × 10 endpoints by default), the control plane in a child process:
//     its RSS (/proc) and V8 heap with an empty mesh, idle, with N wire receivers connected and after
//     changes sent to them, then the propagation to a few real sidecars at that size.
// Prints a summary and writes every figure as JSON (--out).
import { statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setLogLevel } from '@tsmesh/common';
import { CONTROL_IDENTITY, issueBenchCerts, type BenchCerts } from './control-certs.js';
import { Fleet, runFleetChild, type FleetKind } from './control-fleet.js';
import { meshText, namespaceOf, writeMesh, type MeshSize } from './control-mesh.js';
import { ControlChild, runControlChild, serveControl, type MemorySample } from './control-process.js';
import { formatReport, propagationRun, round, type ChangeTiming, type LargeMeshResult, type PropagationRun } from './control-report.js';
import { Workspace } from './processes.js';
import { sampleMachine } from './procfs.js';

const SCRIPT = fileURLToPath(import.meta.url);

const HELP = `control-scale: propagation of a mesh change from the control plane to N sidecars, and the
control plane's memory with a large mesh.

Usage: node tests/dist/bench/control-scale.js [flags]

  --clients N          sidecars (and wire receivers), each with its own certificate (default 100)
  --changes N          EndpointSlice changes measured per run (default 10)
  --services N         Services of the propagation mesh (default 100)
  --endpoints N        endpoints (and pods) per Service (default 10)
  --large-services N   Services of the large mesh (default 1000; 0 skips that phase)
  --large-changes N    changes measured per run on the large mesh (default 5)
  --large-sidecars N   real sidecars for the large mesh's last run (default 10)
  --out FILE           JSON results (default /tmp/tsmesh-control-scale.json)

Needs a built tree (npx tsc -b). Takes about 3 minutes with the defaults on 2 cores.
`;

interface Config {
  readonly clients: number;
  readonly changes: number;
  readonly size: MeshSize;
  readonly large: MeshSize | undefined;
  readonly largeChanges: number;
  readonly largeSidecars: number;
  readonly out: string;
}

function parseConfig(argv: readonly string[]): Config | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      clients: { type: 'string' },
      changes: { type: 'string' },
      services: { type: 'string' },
      endpoints: { type: 'string' },
      'large-services': { type: 'string' },
      'large-changes': { type: 'string' },
      'large-sidecars': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const whole = (name: Exclude<keyof typeof values, 'help'>, fallback: number, min: number, max: number): number => {
    const text = values[name];
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: "${text}" must be a whole number from ${min} to ${max}`);
    return n;
  };
  const endpoints = whole('endpoints', 10, 1, 1000);
  const clients = whole('clients', 100, 1, 2000);
  const largeServices = whole('large-services', 1000, 0, 20_000);
  return Object.freeze({
    clients,
    changes: whole('changes', 10, 1, 1000),
    size: { services: whole('services', 100, 1, 20_000), endpoints, namespaces: 10 },
    large: largeServices === 0 ? undefined : { services: largeServices, endpoints, namespaces: 10 },
    largeChanges: whole('large-changes', 5, 1, 100),
    largeSidecars: Math.min(clients, whole('large-sidecars', 10, 1, 2000)),
    out: values.out ?? '/tmp/tsmesh-control-scale.json',
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `changes` EndpointSlice changes, each measured once every client applied it. `loads`: the times the
 * control plane loaded the mesh file (ms since the epoch), appended as it happens.
 */
async function measureChanges(fleet: Fleet, loads: readonly number[], meshFile: string, size: MeshSize, changes: number): Promise<ChangeTiming[]> {
  const timings: ChangeTiming[] = [];
  for (let k = 0; k < changes; k++) {
    const text = meshText(size, k % size.endpoints);
    const { seen } = await fleet.expectChange(300_000);
    const writtenAt = writeMesh(meshFile, text);
    const s = await seen;
    const loadedAt = loads.find((t) => t >= writtenAt) ?? Number.NaN;
    timings.push({ loadedMs: round(loadedAt - writtenAt), firstAppliedMs: round(s.firstAt - writtenAt), allAppliedMs: round(s.lastAt - writtenAt), fleetBusyMs: round(s.fleetBusyMs) });
    process.stderr.write(`  change ${k + 1}/${changes}: first after ${round(s.firstAt - writtenAt)} ms, every one after ${round(s.lastAt - writtenAt)} ms\n`);
    await sleep(300);
  }
  return timings;
}

function controlFlags(certs: BenchCerts, meshFile: string, debounceMs?: number): string[] {
  const f = certs.controlFiles;
  return [
    '--config', meshFile,
    '--tls-cert', f.cert,
    '--tls-key', f.key,
    '--trust-bundle', f.trustBundle,
    '--listen', '127.0.0.1:0',
    '--debug-listen', 'off',
    ...(debounceMs === undefined ? [] : ['--debounce', `${debounceMs}ms`]),
  ];
}

/** Connects `clients` clients of `kind` to the control plane at `port`; every client holds its own snapshot. */
function startFleet(certs: BenchCerts, kind: FleetKind, clients: number, port: number, size: MeshSize): Promise<Fleet> {
  const heapMiB = kind === 'wire' ? 1024 : Math.min(16_384, Math.max(2048, Math.ceil((size.services * size.endpoints * clients) / 1000) * 64));
  const options = { kind, controlAddr: `127.0.0.1:${port}`, serverIdentity: CONTROL_IDENTITY, trustBundlePem: certs.trustBundlePem, sidecars: certs.sidecars.slice(0, clients) };
  return Fleet.start(SCRIPT, options, heapMiB);
}

interface Measured {
  readonly fleet: Fleet;
  readonly run: PropagationRun;
}

/** Starts a fleet and measures `changes` changes with it; the fleet is left running for the caller. */
async function measureRun(
  label: string,
  certs: BenchCerts,
  target: { port: number; loads: readonly number[]; viewBytes: number; debounceMs: number },
  meshFile: string,
  size: MeshSize,
  kind: FleetKind,
  clients: number,
  changes: number,
  /** Called once every client holds its first snapshot, before the first change. */
  connected: () => Promise<void> = () => Promise.resolve(),
): Promise<Measured> {
  process.stderr.write(`${label}: ${size.services} Services × ${size.endpoints} endpoints, ${clients} ${kind === 'wire' ? 'wire receivers' : 'sidecars'}, debounce ${target.debounceMs} ms\n`);
  const fleet = await startFleet(certs, kind, clients, target.port, size);
  try {
    await connected();
    const timings = await measureChanges(fleet, target.loads, meshFile, size, changes);
    return { fleet, run: propagationRun({ label, size, kind, clients, debounceMs: target.debounceMs, viewBytes: target.viewBytes, fleetStartMs: round(fleet.startMs), changes: timings }) };
  } catch (error) {
    await fleet.stop();
    throw error;
  }
}

/** Phase 1: the control plane in this process. */
async function propagation(ws: Workspace, certs: BenchCerts, config: Config): Promise<PropagationRun[]> {
  const { size } = config;
  const runs: PropagationRun[] = [];
  const plan: Array<[string, FleetKind, number]> = [
    ['sidecars', 'sidecar', 100],
    ['sidecars, no debounce', 'sidecar', 0],
    ['fan-out only', 'wire', 0],
  ];
  for (const [label, kind, debounceMs] of plan) {
    const meshFile = ws.path(`mesh-${size.services}x${size.endpoints}.yaml`);
    writeMesh(meshFile, meshText(size));
    const loads: number[] = [];
    const served = await serveControl(controlFlags(certs, meshFile, debounceMs), (at) => loads.push(at));
    try {
      const target = { port: served.plane.address.port, loads, viewBytes: served.viewBytes, debounceMs };
      const { fleet, run } = await measureRun(label, certs, target, meshFile, size, kind, config.clients, config.changes);
      await fleet.stop();
      runs.push(run);
    } finally {
      await served.plane.close();
    }
  }
  return runs;
}

/** The control plane's memory with a mesh of namespaces only. */
async function emptyMeshMemory(ws: Workspace, certs: BenchCerts): Promise<MemorySample> {
  const meshFile = ws.path('mesh-empty.yaml');
  writeMesh(meshFile, meshText({ services: 0, endpoints: 0, namespaces: 10 }));
  const control = await ControlChild.start(SCRIPT, controlFlags(certs, meshFile));
  try {
    await sleep(1000);
    return await control.memory();
  } finally {
    await control.stop();
  }
}

/** Phase 2: the control plane in a child process, with the large mesh. */
async function largeMesh(ws: Workspace, certs: BenchCerts, config: Config, size: MeshSize): Promise<LargeMeshResult> {
  const emptyMesh = await emptyMeshMemory(ws, certs);
  const meshFile = ws.path(`mesh-${size.services}x${size.endpoints}.yaml`);
  writeMesh(meshFile, meshText(size));
  process.stderr.write(`large mesh: ${size.services} Services × ${size.endpoints} endpoints (${statSync(meshFile).size} bytes), control plane in a child process\n`);
  const control = await ControlChild.start(SCRIPT, controlFlags(certs, meshFile));
  try {
    await sleep(1000);
    const idle = await control.memory();
    const target = { port: control.port, loads: control.loads, viewBytes: control.viewBytes, debounceMs: 100 };
    let wireConnected: MemorySample | undefined;
    const wire = await measureRun('fan-out only', certs, target, meshFile, size, 'wire', config.clients, config.largeChanges, async () => {
      await sleep(1000);
      wireConnected = await control.memory();
    });
    await sleep(1000);
    const afterWireChanges = await control.memory();
    await wire.fleet.stop();
    const sidecars = await measureRun('sidecars', certs, target, meshFile, size, 'sidecar', config.largeSidecars, Math.min(3, config.largeChanges));
    await sidecars.fleet.stop();
    const afterSidecarChanges = await control.memory();
    return {
      size,
      meshFileBytes: statSync(meshFile).size,
      controlStartMs: round(control.startMs),
      emptyMesh,
      idle,
      wireConnected: wireConnected as MemorySample,
      afterWireChanges,
      afterSidecarChanges,
      runs: [wire.run, sidecars.run],
    };
  } finally {
    await control.stop();
  }
}

/** The share of all CPUs busy over one second: other work on the machine skews every figure. */
async function backgroundBusy(): Promise<number> {
  const before = sampleMachine();
  await sleep(1000);
  const after = sampleMachine();
  return Math.round(((after.busy - before.busy) / Math.max(1, after.total - before.total)) * 100);
}

function machine(busyBefore: number): string {
  const cpus = os.cpus();
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  return `${cpus.length} cores (${cpus[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, Linux ${os.release()}; CPUs ${busyBefore}% busy before the run, load average at the end ${load}`;
}

async function main(): Promise<number> {
  const config = parseConfig(process.argv.slice(2));
  if (config === undefined) {
    process.stdout.write(HELP);
    return 0;
  }
  setLogLevel('silent');
  const ws = new Workspace();
  const release = (): void => void ws.release().then(() => process.exit(130));
  process.once('SIGINT', release);
  process.once('SIGTERM', release);
  try {
    const busyBefore = await backgroundBusy();
    const identities = Array.from({ length: config.clients }, (_, i) => ({ namespace: namespaceOf(i, config.size), serviceAccount: `sidecar-${i}` }));
    process.stderr.write(`issuing ${identities.length + 1} certificates from a tsmesh CA ...\n`);
    const certs = await issueBenchCerts(ws.dir, identities);
    const runs = await propagation(ws, certs, config);
    const large = config.large === undefined ? undefined : await largeMesh(ws, certs, config, config.large);
    const report = { startedAt: new Date().toISOString(), machine: machine(busyBefore), config, runs, large };
    writeFileSync(config.out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${formatReport(runs, large, report.machine)}\nJSON: ${config.out}\n`);
    return 0;
  } finally {
    await ws.release();
  }
}

const roleAt = process.argv.indexOf('--role');
const role = roleAt >= 0 ? process.argv[roleAt + 1] : undefined;
if (role === 'fleet') runFleetChild();
else if (role === 'control') runControlChild(process.argv.slice(roleAt + 2));
else {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`control-scale: ${(error as Error).stack ?? String(error)}`);
      process.exit(1);
    },
  );
}
