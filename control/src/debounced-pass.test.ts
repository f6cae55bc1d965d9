import { describe, expect, it } from '@jest/globals';
import { DebouncedPass } from './debounced-pass.js';
import { pause } from './testing/eventually.js';

/** A pass that records its runs and can be held open until released. */
function recorder(): { runs: number; concurrent: number; maxConcurrent: number; hold: boolean; release(): void; pass: () => Promise<void> } {
  let releases: Array<() => void> = [];
  const state = {
    runs: 0,
    concurrent: 0,
    maxConcurrent: 0,
    hold: false,
    release() {
      const waiting = releases;
      releases = [];
      for (const release of waiting) release();
    },
    async pass() {
      state.runs++;
      state.concurrent++;
      state.maxConcurrent = Math.max(state.maxConcurrent, state.concurrent);
      if (state.hold) await new Promise<void>((resolve) => releases.push(resolve));
      state.concurrent--;
    },
  };
  return state;
}

describe('DebouncedPass', () => {
  it('collapses a burst of requests into one pass after the quiet period', async () => {
    const r = recorder();
    const passes = new DebouncedPass(r.pass, 20);
    for (let i = 0; i < 10; i++) passes.schedule();
    expect(r.runs).toBe(0);
    await passes.idle();
    expect(r.runs).toBe(1);
  });

  it('never runs two passes at once; requests during a pass give exactly one more after it', async () => {
    const r = recorder();
    r.hold = true;
    const passes = new DebouncedPass(r.pass, 5);
    passes.schedule();
    await pause(30);
    expect(r.runs).toBe(1);
    for (let i = 0; i < 5; i++) passes.schedule();
    await pause(30);
    expect(r.runs).toBe(1);
    r.hold = false;
    r.release();
    await passes.idle();
    expect(r.runs).toBe(2);
    expect(r.maxConcurrent).toBe(1);
  });

  it('takes a shorter delay when asked', async () => {
    const r = recorder();
    const passes = new DebouncedPass(r.pass, 10_000);
    passes.schedule(0);
    await pause(20);
    expect(r.runs).toBe(1);
  });

  it('starts nothing after close(), which waits for the pass under way', async () => {
    const r = recorder();
    r.hold = true;
    const passes = new DebouncedPass(r.pass, 5);
    passes.schedule();
    await pause(20);
    passes.schedule();
    let closed = false;
    const closing = passes.close().then(() => (closed = true));
    await pause(20);
    expect(closed).toBe(false);
    r.hold = false;
    r.release();
    await closing;
    passes.schedule(0);
    await pause(20);
    expect(r.runs).toBe(1);
  });
});
