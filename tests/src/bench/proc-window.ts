// CPU and memory of a few processes over a measured window, from /proc (procfs.ts): CPU as the
// difference of utime+stime, RSS sampled every 100 ms for its peak in the window, and at the end.
import { sampleProcess, type ProcessSample } from './procfs.js';

export interface WindowUsage {
  readonly cpuSeconds: number;
  /** The highest VmRSS seen during the window (sampled), and VmRSS at its end, MiB. */
  readonly peakRssMiB: number;
  readonly endRssMiB: number;
}

export const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;

export interface Window {
  /** Ends the window: each process's usage, by name. */
  stop(): Record<string, WindowUsage>;
}

/** Starts a window over `pids` (by name); a process that has exited reads as NaN. */
export function openWindow(pids: Readonly<Record<string, number>>): Window {
  const sample = (pid: number): ProcessSample | undefined => {
    try {
      return sampleProcess(pid);
    } catch {
      return undefined;
    }
  };
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, sample(pid)]));
  const peak: Record<string, number> = Object.fromEntries(Object.entries(start).map(([name, s]) => [name, s?.rssKiB ?? Number.NaN]));
  const timer = setInterval(() => {
    for (const [name, pid] of Object.entries(pids)) {
      const rss = sample(pid)?.rssKiB;
      if (rss !== undefined && !(rss <= (peak[name] as number))) peak[name] = rss;
    }
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return Object.fromEntries(
        Object.entries(pids).map(([name, pid]) => {
          const end = sample(pid);
          const before = start[name];
          const endRss = end?.rssKiB ?? Number.NaN;
          return [
            name,
            {
              cpuSeconds: end && before ? Math.round((end.cpuSeconds - before.cpuSeconds) * 100) / 100 : Number.NaN,
              peakRssMiB: mib(Math.max(peak[name] as number, endRss)),
              endRssMiB: mib(endRss),
            },
          ];
        }),
      );
    },
  };
}
