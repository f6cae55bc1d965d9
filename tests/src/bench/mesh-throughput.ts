// mesh-throughput: closed-loop h2load, run as the client app, through the tsmesh sidecar pair
// (mTLS) and through the HAProxy pair (mTLS 1.3), the same two hops, interleaved round after
// round: HTTP/1.1 (h2load --h1, 16 connections) and gRPC-shaped unary calls (h2c, 4 × 10 streams).
// Reported: req/s and the pair's CPU per 1,000 requests, and tsmesh / HAProxy of both.
import { chmodSync, writeFileSync } from 'node:fs';
import { grpcRequestBody } from './cases.js';
import type { Timing } from './config.js';
import { measure, warmUp, watch, type Load, type ScenarioResult } from './h2load.js';
import { cpuPer1k, ratioOf, roundOrder } from './mesh-figures.js';
import { podWarnings, proxiesOf } from './mesh-latency.js';
import type { MeshPods } from './mesh-pods.js';
import { PROTOCOLS, targetOf, type Protocol } from './mesh-wire.js';
import type { Workspace } from './processes.js';
import { openWindow, type WindowUsage } from './proc-window.js';
import { median } from './summary.js';

export const PAIRS = ['tsmesh', 'haproxy'] as const;
export type Pair = (typeof PAIRS)[number];

/** h2load's load for a protocol: HTTP/1.1 over 16 connections; gRPC-shaped POSTs over 4 connections × 10 streams. */
export function throughputLoad(protocol: Protocol, url: string, bodyFile: string): Load {
  return protocol === 'http'
    ? { url, connections: 16, streams: 1, headers: [], h1: true }
    : { url, connections: 4, streams: 10, headers: ['content-type: application/grpc', 'te: trailers'], bodyFile };
}

export interface ThroughputRun {
  readonly round: number;
  readonly protocol: Protocol;
  readonly pair: Pair;
  readonly h2load: ScenarioResult['h2load'];
  readonly latency: ScenarioResult['latency'];
  readonly statuses: ScenarioResult['statuses'];
  readonly otherBusyCores: number;
  readonly usage: Record<string, WindowUsage>;
}

export interface PairThroughput {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Sum over the rounds. */
  readonly failed: number;
  /** CPU seconds per 1,000 requests of the two proxies together, and of each (medians). */
  readonly cpuPer1k: number;
  readonly cpuPer1kByProxy: Record<string, number>;
}

export interface MeshThroughputReport {
  readonly benchmark: 'mesh-throughput';
  readonly params: Timing & { readonly rounds: number; readonly protocols: readonly Protocol[]; readonly loads: Record<string, string> };
  readonly runs: readonly ThroughputRun[];
  /** What each pod's processes logged at warn level or above during the whole run so far, by message. */
  readonly podWarnings: Record<string, Record<string, number>>;
  readonly figures: Partial<Record<Protocol, { readonly pairs: Record<Pair, PairThroughput>; readonly tsmeshToHaproxy: { readonly requestsPerSecond: number; readonly cpuPer1k: number } }>>;
  readonly problems: readonly string[];
}

export function pairThroughput(runs: readonly ThroughputRun[]): PairThroughput {
  const names = Object.keys(runs[0]?.usage ?? {}).filter((n) => n !== 'server app');
  const perRun = (name: string): number[] => runs.map((r) => cpuPer1k(r.usage[name]?.cpuSeconds ?? Number.NaN, r.h2load.total));
  return {
    requestsPerSecond: median(runs.map((r) => r.h2load.requestsPerSecond)),
    p50Ms: median(runs.map((r) => r.latency.p50Ms)),
    p99Ms: median(runs.map((r) => r.latency.p99Ms)),
    failed: runs.reduce((a, r) => a + r.h2load.total - r.h2load.succeeded, 0),
    cpuPer1k: median(runs.map((r) => cpuPer1k(names.reduce((a, n) => a + (r.usage[n]?.cpuSeconds ?? Number.NaN), 0), r.h2load.total))),
    cpuPer1kByProxy: Object.fromEntries(names.map((n) => [n, median(perRun(n))])),
  };
}

export async function runMeshThroughput(
  pods: MeshPods,
  workspace: Workspace,
  h2load: string,
  timing: Timing,
  rounds: number,
  protocols: readonly Protocol[],
): Promise<MeshThroughputReport> {
  if (!pods.haproxy) throw new Error('mesh-throughput needs the HAProxy pair');
  // h2load runs as the client app: in the client pod, as root, so the sidecar captures its connections.
  const inClient = workspace.path('h2load-in-client');
  writeFileSync(inClient, `#!/bin/sh\nexec ip netns exec ${pods.client.netns} ${h2load} "$@"\n`);
  chmodSync(inClient, 0o755);
  const bodyFile = workspace.path('grpc.body');
  writeFileSync(bodyFile, grpcRequestBody());
  const app = watch(pods.app.pid);
  const runs: ThroughputRun[] = [];
  const problems: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const protocol of protocols) {
      for (const pair of roundOrder(PAIRS, round - 1)) {
        const label = `mesh-throughput round ${round} ${protocol} ${pair}`;
        const load = throughputLoad(protocol, targetOf(pair, protocol, pods.server.ip).url, bodyFile);
        process.stderr.write(`${label}: h2load ${load.h1 ? '--h1 ' : ''}-c ${load.connections} -m ${load.streams} ${load.url} ...\n`);
        await warmUp(workspace, inClient, load, timing);
        const window = openWindow(Object.fromEntries([...proxiesOf(pods, pair), pods.app].map((p) => [p.name, p.pid])));
        const result = await measure(workspace, inClient, label.replaceAll(' ', '-'), load, timing, { peer: undefined, upstreams: app });
        const usage = window.stop();
        const { total, succeeded } = result.h2load;
        if (total === 0 || succeeded < total) problems.push(`${label}: ${total - succeeded} of ${total} requests failed`);
        const non200 = Object.keys(result.statuses).filter((s) => s !== '200');
        if (non200.length > 0) problems.push(`${label}: answers other than 200: ${non200.map((s) => `${result.statuses[s]}×${s}`).join(', ')}`);
        runs.push({ round, protocol, pair, h2load: result.h2load, latency: result.latency, statuses: result.statuses, otherBusyCores: result.otherBusyCores, usage });
      }
    }
  }
  const figures: MeshThroughputReport['figures'] = {};
  for (const protocol of PROTOCOLS.filter((p) => protocols.includes(p))) {
    const pairs = Object.fromEntries(PAIRS.map((pair) => [pair, pairThroughput(runs.filter((r) => r.protocol === protocol && r.pair === pair))])) as Record<Pair, PairThroughput>;
    figures[protocol] = {
      pairs,
      tsmeshToHaproxy: {
        requestsPerSecond: ratioOf(pairs.tsmesh.requestsPerSecond, pairs.haproxy.requestsPerSecond),
        cpuPer1k: ratioOf(pairs.tsmesh.cpuPer1k, pairs.haproxy.cpuPer1k),
      },
    };
  }
  const describe = (p: Protocol): string => {
    const l = throughputLoad(p, '', '');
    return `h2load ${l.h1 ? '--h1 ' : ''}-c ${l.connections} -m ${l.streams}${l.bodyFile !== undefined ? ' (105-byte gRPC-framed POST)' : ''}`;
  };
  return {
    benchmark: 'mesh-throughput',
    params: { ...timing, rounds, protocols, loads: Object.fromEntries(protocols.map((p) => [p, describe(p)])) },
    runs,
    figures,
    podWarnings: podWarnings(pods),
    problems,
  };
}
