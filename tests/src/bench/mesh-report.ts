// The mesh benchmarks' tables on stdout: latency and what each proxy pair adds, throughput and
// CPU per request of the two pairs, and a sidecar's memory over time.
import type { MemoryReport } from './memory.js';
import type { MeshLatencyReport } from './mesh-latency.js';
import type { MeshThroughputReport } from './mesh-throughput.js';
import { PROTOCOLS, VARIANTS } from './mesh-wire.js';
import { fixed, table } from './report.js';

const rounds = (n: number): string => (n === 1 ? 'one round' : `medians of ${n} rounds`);
const PROTOCOL_NAMES = { http: 'HTTP/1.1', grpc: 'gRPC unary (grpc-js)' } as const;

export function formatMeshLatency(report: MeshLatencyReport): string {
  const p = report.params;
  const lines = [
    `mesh-latency: client -> client sidecar -> mTLS -> server sidecar -> app; open loop, ${p.rate} req/s over ${p.connections} connections at spread phases,`,
    `   ${p.durationSeconds} s measured after ${p.warmUpSeconds} s warm-up per variant, variants interleaved, ${rounds(p.rounds)}; latency from the scheduled send time`,
  ];
  for (const protocol of PROTOCOLS) {
    const f = report.figures[protocol];
    if (!f) continue;
    const rows = VARIANTS.flatMap((variant) => {
      const v = f.variants[variant];
      if (!v) return [];
      const added = variant === 'direct' ? undefined : f.added[variant];
      const proxies = Object.entries(v.proxies);
      const cpu = proxies.map(([, x]) => fixed(x.cpuPer1k, 3)).join(' / ') || '-';
      const rss = proxies.map(([, x]) => `${fixed(x.peakRssMiB, 1)}/${fixed(x.endRssMiB, 1)}`).join('  ') || '-';
      return [[
        variant,
        fixed(v.requestsPerSecond, 0),
        String(v.failed),
        fixed(v.latency.p50Ms, 3),
        fixed(v.latency.p90Ms, 3),
        fixed(v.latency.p99Ms, 3),
        added ? fixed(added.p50Ms, 3) : '-',
        added ? fixed(added.p90Ms, 3) : '-',
        added ? fixed(added.p99Ms, 3) : '-',
        cpu,
        rss,
        fixed(v.sendLagP99Ms, 3),
        fixed(v.machineBusyCores, 2),
      ]];
    });
    lines.push(
      '',
      `== ${PROTOCOL_NAMES[protocol]}`,
      table([
        ['variant', 'req/s', 'failed', 'p50 ms', 'p90 ms', 'p99 ms', '+p50 ms', '+p90 ms', '+p99 ms', 'CPU s/1k client/server', 'RSS MiB peak/end client  server', 'send lag p99', 'machine busy'],
        ...rows,
      ]),
      `   added p99, tsmesh / HAProxy: ${fixed(f.addedP99TsmeshToHaproxy, 2)}`,
    );
  }
  lines.push(
    '',
    '   +pNN: the percentile minus the direct path\'s. send lag: how late sends left (timers, or the previous answer on the connection',
    '   still awaited; counted in the latency). machine busy: cores in use during the busiest round\'s window, other work included.',
    `   mTLS check: the server sidecar counted ${report.serverSidecarMtlsRequests} requests as mutual_tls`,
    ...warningLines(report.podWarnings),
  );
  return lines.join('\n');
}

function warningLines(warnings: Record<string, Record<string, number>>): string[] {
  return Object.entries(warnings).flatMap(([pod, counts]) => Object.entries(counts).map(([message, n]) => `   ${pod} pod logged ${n}× ${message}`));
}

export function formatMeshThroughput(report: MeshThroughputReport): string {
  const p = report.params;
  const lines = [
    `mesh-throughput: closed loop through the two proxies (mTLS) as the client app; ${p.durationSeconds} s measured after ${p.warmUpSeconds} s warm-up per pair, interleaved, ${rounds(p.rounds)}`,
  ];
  for (const protocol of PROTOCOLS) {
    const f = report.figures[protocol];
    if (!f) continue;
    const rows = (['tsmesh', 'haproxy'] as const).map((pair) => {
      const x = f.pairs[pair];
      return [pair, fixed(x.requestsPerSecond, 0), String(x.failed), fixed(x.p50Ms, 3), fixed(x.p99Ms, 3), fixed(x.cpuPer1k, 3), Object.values(x.cpuPer1kByProxy).map((c) => fixed(c, 3)).join(' / ')];
    });
    lines.push(
      '',
      `== ${PROTOCOL_NAMES[protocol]}: ${p.loads[protocol] ?? ''}`,
      table([['pair', 'req/s', 'failed', 'p50 ms', 'p99 ms', 'CPU s/1k (pair)', 'client / server'], ...rows]),
      `   tsmesh / HAProxy: req/s ${fixed(f.tsmeshToHaproxy.requestsPerSecond, 2)}, CPU per request ${fixed(f.tsmeshToHaproxy.cpuPer1k, 2)}`,
    );
  }
  lines.push(...(Object.values(report.podWarnings).some((c) => Object.keys(c).length > 0) ? ['', '   (pod logs: the whole run so far, mesh-latency included)', ...warningLines(report.podWarnings)] : []));
  return lines.join('\n');
}

export function formatMemory(report: MemoryReport): string {
  const p = report.params;
  const rows = Object.entries(report.sidecars).map(([name, m]) => [name, fixed(m.idleRssMiB, 1), fixed(m.loadPeakRssMiB, 1), fixed(m.loadEndRssMiB, 1), fixed(m.afterRssMiB, 1), fixed(m.hwmMiB, 1)]);
  return [
    `memory: sidecar RSS (MiB) idle (${p.idleSeconds} s after start, no request), during ${p.durationSeconds} s of ${p.rate} req/s ${p.protocol} over ${p.connections} connections, and ${p.settleSeconds} s after it`,
    '',
    table([['sidecar', 'idle', 'load peak', 'load end', `+${p.settleSeconds} s`, 'VmHWM'], ...rows]),
    `   ${report.requests} requests, ${report.failed} failed`,
  ].join('\n');
}
