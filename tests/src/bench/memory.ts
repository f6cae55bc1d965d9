// memory: one sidecar pair's resident set idle (started, holding its certificate, no request
// yet), during and at the end of the mesh-latency load through it, and some time after the load.
import { runOpenLoop, checkPaths, type OpenLoopLoad } from './mesh-latency.js';
import type { MeshPods } from './mesh-pods.js';
import type { Protocol } from './mesh-wire.js';
import { mib } from './proc-window.js';
import { sampleProcess } from './procfs.js';

export interface SidecarMemory {
  /** VmRSS before any request, MiB. */
  readonly idleRssMiB: number;
  /** The highest VmRSS seen during the load, and VmRSS as it ends. */
  readonly loadPeakRssMiB: number;
  readonly loadEndRssMiB: number;
  /** VmRSS `settleSeconds` after the load, and VmHWM then. */
  readonly afterRssMiB: number;
  readonly hwmMiB: number;
}

export interface MemoryReport {
  readonly benchmark: 'memory';
  readonly params: OpenLoopLoad & { readonly protocol: Protocol; readonly idleSeconds: number; readonly settleSeconds: number };
  readonly sidecars: Record<string, SidecarMemory>;
  readonly requests: number;
  readonly failed: number;
  readonly problems: readonly string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs on freshly started pods: nothing may have crossed the sidecars before. */
export async function runMemory(pods: MeshPods, load: OpenLoopLoad, protocol: Protocol, settleSeconds: number, idleSeconds = 5): Promise<MemoryReport> {
  const sidecars = [pods.sidecars.client, pods.sidecars.server];
  await sleep(idleSeconds * 1000);
  const idle = Object.fromEntries(sidecars.map((s) => [s.name, sampleProcess(s.pid).rssKiB]));
  process.stderr.write(`memory: idle ${sidecars.map((s) => `${s.name} ${mib(idle[s.name] as number)} MiB`).join(', ')}; ${load.durationSeconds} s of ${load.rate} req/s ${protocol} ...\n`);
  await checkPaths(pods, ['tsmesh'], [protocol]);
  const { result, usage } = await runOpenLoop(pods, 'tsmesh', protocol, load, sidecars);
  process.stderr.write(`memory: load done; ${settleSeconds} s without requests ...\n`);
  await sleep(settleSeconds * 1000);
  const after = Object.fromEntries(sidecars.map((s) => [s.name, sampleProcess(s.pid)]));
  const problems = result.failed > 0 ? [`memory: ${result.failed} of ${result.requests} requests failed: ${result.errors.slice(0, 3).join('; ')}`] : [];
  return {
    benchmark: 'memory',
    params: { ...load, protocol, idleSeconds, settleSeconds },
    sidecars: Object.fromEntries(
      sidecars.map((s) => [
        s.name,
        {
          idleRssMiB: mib(idle[s.name] as number),
          loadPeakRssMiB: usage[s.name]?.peakRssMiB ?? Number.NaN,
          loadEndRssMiB: usage[s.name]?.endRssMiB ?? Number.NaN,
          afterRssMiB: mib(after[s.name]?.rssKiB ?? Number.NaN),
          hwmMiB: mib(after[s.name]?.peakRssKiB ?? Number.NaN),
        },
      ]),
    ),
    requests: result.requests,
    failed: result.failed,
    problems,
  };
}
