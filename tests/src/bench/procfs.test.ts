import { describe, expect, it } from '@jest/globals';
import { parseMachineTicks, parseStatCpuSeconds, parseStatusMemory } from './procfs.js';

describe('procfs parsing', () => {
  it('adds utime and stime even when the command name holds spaces and parentheses', () => {
    const stat = '1380 (node (a) b) R 1378 1378 25496 0 -1 4194304 102 0 0 0 250 75 0 0 20 0 11 0 191965 3133440 402';
    expect(parseStatCpuSeconds(stat, 100)).toBe(3.25);
  });

  it('reads VmRSS and VmHWM in KiB', () => {
    const status = 'Name:\tnode\nVmHWM:\t  422812 kB\nVmRSS:\t  401000 kB\nThreads:\t11\n';
    expect(parseStatusMemory(status)).toEqual({ rssKiB: 401000, peakRssKiB: 422812 });
  });

  it('counts idle and iowait as not busy, and interrupts apart', () => {
    expect(parseMachineTicks('cpu  100 0 50 800 40 4 6 0 0 0\ncpu0 1 2 3 4\n')).toEqual({ busy: 160, total: 1000, interrupts: 10 });
  });
});
