// mesh-latency: Istio's latency benchmark shape. The client app sends 1,000 req/s over 16
// connections at spread phases (open loop) to the server app: directly, through the tsmesh
// sidecar pair (mTLS) and through the HAProxy pair (mTLS 1.3), interleaved round after round.
// Reported: p50/p90/p99 and what each pair adds to the direct path, and each proxy's CPU per
// 1,000 requests and RSS (peak in the window and at its end), as medians over the rounds.
import { counterSum, metricsOf } from '../e2e/mtls-helpers.js';
import { addedLatency, cpuPer1k, medianFigures, ratioOf, roundOrder, type LatencyFigures, type Percentiles } from './mesh-figures.js';
import { OPEN_LOOP_MAIN, type MeshPods, type PodProcess } from './mesh-pods.js';
import { PROTOCOLS, targetOf, VARIANTS, type Protocol, type Variant } from './mesh-wire.js';
import type { OpenLoopResult } from './open-loop-client.js';
import { countWarnings } from './peers.js';
import { openWindow, type WindowUsage } from './proc-window.js';
import { sampleMachine, USER_HZ, type MachineTicks } from './procfs.js';
import { median } from './summary.js';

export interface OpenLoopLoad {
  readonly rate: number;
  readonly connections: number;
  readonly warmUpSeconds: number;
  readonly durationSeconds: number;
}

export interface OpenLoopRun {
  readonly result: OpenLoopResult;
  /** Each watched process over the measured window, by name. */
  readonly usage: Record<string, WindowUsage>;
  /** Cores the whole machine kept busy in the window (this benchmark and everything else on it; of 2 on a 2-core machine). */
  readonly machineBusyCores: number;
}

/** The proxies a variant's requests cross (none for the direct path). */
export function proxiesOf(pods: MeshPods, variant: Variant): PodProcess[] {
  if (variant === 'tsmesh') return [pods.sidecars.client, pods.sidecars.server];
  if (variant === 'haproxy') return pods.haproxy ? [pods.haproxy.client, pods.haproxy.server] : [];
  return [];
}

/** Runs the open-loop generator as the client app; `watched` are sampled over its measured window. */
export async function runOpenLoop(pods: MeshPods, variant: Variant, protocol: Protocol, load: OpenLoopLoad, watched: readonly PodProcess[]): Promise<OpenLoopRun> {
  const target = targetOf(variant, protocol, pods.server.ip);
  const child = pods.client.spawn(process.execPath, [
    OPEN_LOOP_MAIN,
    '--protocol', protocol,
    '--target', protocol === 'grpc' ? target.grpcTarget : target.url,
    '--rate', String(load.rate),
    '--connections', String(load.connections),
    '--warm-up', String(load.warmUpSeconds),
    '--duration', String(load.durationSeconds),
  ]);
  const pids = Object.fromEntries(watched.map((p) => [p.name, p.pid]));
  let window: ReturnType<typeof openWindow> | undefined;
  let machine: { ticks: MachineTicks; at: number } | undefined;
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
    if (!window && stdout.includes('{"measuring":true}')) {
      window = openWindow(pids);
      machine = { ticks: sampleMachine(), at: performance.now() };
    }
  });
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const limit = (load.warmUpSeconds + load.durationSeconds + 60) * 1000;
  const timer = setTimeout(() => child.kill('SIGKILL'), limit);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  const usage = (window ?? openWindow(pids)).stop();
  const ticks = sampleMachine();
  const machineBusyCores = machine ? Math.round(((ticks.busy - machine.ticks.busy) / USER_HZ / ((performance.now() - machine.at) / 1000)) * 100) / 100 : Number.NaN;
  const line = stdout.split('\n').find((l) => l.startsWith('{"result"'));
  if (code !== 0 || !line) throw new Error(`open-loop client (${variant} ${protocol}) exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return { result: (JSON.parse(line) as { result: OpenLoopResult }).result, usage, machineBusyCores };
}

/** Sends a little of the load down every path until it all succeeds (the proxies and app are up). */
export async function checkPaths(pods: MeshPods, variants: readonly Variant[], protocols: readonly Protocol[]): Promise<void> {
  for (const protocol of protocols) {
    for (const variant of variants) {
      for (let attempt = 1; ; attempt++) {
        const { result } = await runOpenLoop(pods, variant, protocol, { rate: 50, connections: 2, warmUpSeconds: 0, durationSeconds: 1 }, []);
        if (result.failed === 0 && result.requests > 0) break;
        if (attempt === 5) throw new Error(`${variant} ${protocol}: requests fail before measuring: ${result.errors.join('; ') || 'no request completed'}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}

export interface ProxyFigures {
  /** CPU seconds per 1,000 requests (= cores busy at 1,000 req/s), median over the rounds. */
  readonly cpuPer1k: number;
  /** The highest RSS seen in any round's window, and the median at the windows' ends, MiB. */
  readonly peakRssMiB: number;
  readonly endRssMiB: number;
}

export interface VariantFigures {
  readonly latency: LatencyFigures;
  readonly requestsPerSecond: number;
  /** Sum over the rounds. */
  readonly requests: number;
  readonly failed: number;
  /** How late sends went out (timers, or the previous answer on the connection still awaited): median of the rounds' p99. */
  readonly sendLagP99Ms: number;
  /** By proxy name (client side, server side). */
  readonly proxies: Record<string, ProxyFigures>;
  /** The busiest round's machine: cores busy during its window, everything on the machine included. */
  readonly machineBusyCores: number;
}

export interface ProtocolFigures {
  readonly variants: Partial<Record<Variant, VariantFigures>>;
  readonly added: Partial<Record<'tsmesh' | 'haproxy', Percentiles>>;
  /** tsmesh's added p99 over HAProxy's. */
  readonly addedP99TsmeshToHaproxy: number;
}

export interface MeshLatencyReport {
  readonly benchmark: 'mesh-latency';
  readonly params: OpenLoopLoad & { readonly rounds: number; readonly protocols: readonly Protocol[]; readonly variants: readonly Variant[] };
  readonly runs: ReadonlyArray<{ readonly round: number; readonly protocol: Protocol; readonly variant: Variant } & OpenLoopRun>;
  readonly figures: Partial<Record<Protocol, ProtocolFigures>>;
  /** What each pod's processes logged at warn level or above (pino), or as plain lines, by message. */
  readonly podWarnings: Record<string, Record<string, number>>;
  /** Requests the server sidecar counted as mutual_tls (proof the tsmesh path was mTLS). */
  readonly serverSidecarMtlsRequests: number;
  readonly problems: readonly string[];
}

/** Warnings and errors each pod's processes logged so far, counted by message. */
export function podWarnings(pods: MeshPods): Record<string, Record<string, number>> {
  // The server app's `ready` is its start signal, not a warning.
  const of = (lines: readonly string[]): Record<string, number> => countWarnings(lines.filter((l) => l !== 'ready').join('\n'));
  return { client: of(pods.client.logs), server: of(pods.server.logs) };
}

/** Medians over a variant's rounds. */
export function variantFigures(runs: readonly OpenLoopRun[], proxies: readonly string[]): VariantFigures {
  const results = runs.map((r) => r.result);
  const requests = results.reduce((a, r) => a + r.requests, 0);
  return {
    latency: medianFigures(results.map((r) => ({ ...r.latency }))),
    requestsPerSecond: median(results.map((r) => r.requestsPerSecond)),
    requests,
    failed: results.reduce((a, r) => a + r.failed, 0),
    sendLagP99Ms: median(results.map((r) => r.sendLag.p99Ms)),
    machineBusyCores: Math.max(...runs.map((r) => r.machineBusyCores)),
    proxies: Object.fromEntries(
      proxies.map((name) => {
        const usages = runs.map((r) => ({ usage: r.usage[name], requests: r.result.requests }));
        return [
          name,
          {
            cpuPer1k: median(usages.map((u) => cpuPer1k(u.usage?.cpuSeconds ?? Number.NaN, u.requests))),
            peakRssMiB: Math.max(...usages.map((u) => u.usage?.peakRssMiB ?? Number.NaN)),
            endRssMiB: median(usages.map((u) => u.usage?.endRssMiB ?? Number.NaN)),
          },
        ];
      }),
    ),
  };
}

export function protocolFigures(variants: Partial<Record<Variant, VariantFigures>>): ProtocolFigures {
  const direct = variants.direct?.latency;
  const added: ProtocolFigures['added'] = {};
  if (direct && variants.tsmesh) added.tsmesh = addedLatency(variants.tsmesh.latency, direct);
  if (direct && variants.haproxy) added.haproxy = addedLatency(variants.haproxy.latency, direct);
  return { variants, added, addedP99TsmeshToHaproxy: ratioOf(added.tsmesh?.p99Ms ?? Number.NaN, added.haproxy?.p99Ms ?? Number.NaN) };
}

export async function runMeshLatency(pods: MeshPods, load: OpenLoopLoad, rounds: number, protocols: readonly Protocol[]): Promise<MeshLatencyReport> {
  const variants = VARIANTS.filter((v) => v !== 'haproxy' || pods.haproxy);
  await checkPaths(pods, variants, protocols);
  const runs: Array<{ round: number; protocol: Protocol; variant: Variant } & OpenLoopRun> = [];
  const problems: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const protocol of protocols) {
      for (const variant of roundOrder(variants, round - 1)) {
        process.stderr.write(`mesh-latency round ${round} ${protocol} ${variant}: ${load.rate} req/s over ${load.connections} connections for ${load.durationSeconds} s ...\n`);
        const run = await runOpenLoop(pods, variant, protocol, load, [...proxiesOf(pods, variant), pods.app]);
        if (run.result.failed > 0) problems.push(`mesh-latency round ${round} ${protocol} ${variant}: ${run.result.failed} of ${run.result.requests} requests failed: ${run.result.errors.slice(0, 3).join('; ')}`);
        runs.push({ round, protocol, variant, ...run });
      }
    }
  }
  const figures: MeshLatencyReport['figures'] = {};
  for (const protocol of PROTOCOLS.filter((p) => protocols.includes(p))) {
    const byVariant: Partial<Record<Variant, VariantFigures>> = {};
    for (const variant of variants) {
      const mine = runs.filter((r) => r.protocol === protocol && r.variant === variant);
      byVariant[variant] = variantFigures(mine, proxiesOf(pods, variant).map((p) => p.name));
    }
    figures[protocol] = protocolFigures(byVariant);
  }
  const serverSidecarMtlsRequests = counterSum(await metricsOf(pods.server), 'tsmesh_requests_total', { reporter: 'destination', connection_security_policy: 'mutual_tls' });
  if (!(serverSidecarMtlsRequests > 0)) problems.push('mesh-latency: the server sidecar counted no mutual_tls request');
  return {
    benchmark: 'mesh-latency',
    params: { ...load, rounds, protocols, variants },
    runs,
    figures,
    serverSidecarMtlsRequests,
    podWarnings: podWarnings(pods),
    problems,
  };
}
