// CPU time and memory of one process (all its threads) from /proc, sampled around a run.
import { readFileSync } from 'node:fs';

export interface ProcessSample {
  /** utime + stime of the whole thread group, in seconds. */
  readonly cpuSeconds: number;
  /** utime + stime of the main thread alone (an event loop or HAProxy's one thread), in seconds. */
  readonly mainThreadCpuSeconds: number;
  /** Resident set now (VmRSS) and its peak since the process started (VmHWM), in KiB. */
  readonly rssKiB: number;
  readonly peakRssKiB: number;
}

/** utime + stime (fields 14 and 15 of /proc/PID/stat) in seconds. */
export function parseStatCpuSeconds(stat: string, ticksPerSecond: number): number {
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // `rest` starts at field 3 (state): utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected /proc stat line: ${stat.slice(0, 120)}`);
  return (utime + stime) / ticksPerSecond;
}

/** VmRSS and VmHWM (KiB) from /proc/PID/status. */
export function parseStatusMemory(status: string): { rssKiB: number; peakRssKiB: number } {
  const kib = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`/proc status has no ${name}`);
    return Number(m[1]);
  };
  return { rssKiB: kib('VmRSS'), peakRssKiB: kib('VmHWM') };
}

export interface MachineTicks {
  readonly busy: number;
  readonly total: number;
  /** Of `busy`: interrupts and softirqs (loopback TCP is processed there), charged to no process. */
  readonly interrupts: number;
}

/** Busy and total clock ticks of all CPUs together, from the first line of /proc/stat. */
export function parseMachineTicks(stat: string): MachineTicks {
  const fields = /^cpu\s+([\d ]+)$/m.exec(stat)?.[1]?.trim().split(/\s+/).map(Number);
  if (!fields || fields.length < 4) throw new Error('/proc/stat has no cpu line');
  // user nice system idle iowait irq softirq steal [guest guest_nice: already counted in user]
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total, interrupts: (fields[5] ?? 0) + (fields[6] ?? 0) };
}

export function sampleMachine(): MachineTicks {
  return parseMachineTicks(readFileSync('/proc/stat', 'utf8'));
}

/** Clock ticks per second of /proc times: USER_HZ, 100 on every Linux architecture Node runs on. */
export const USER_HZ = 100;

export function sampleProcess(pid: number): ProcessSample {
  const cpuSeconds = parseStatCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'), USER_HZ);
  const mainThreadCpuSeconds = parseStatCpuSeconds(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'), USER_HZ);
  return { cpuSeconds, mainThreadCpuSeconds, ...parseStatusMemory(readFileSync(`/proc/${pid}/status`, 'utf8')) };
}
