// The control plane under benchmark: `startControlPlane` with the flags of `tsmesh control --config`,
// its mesh-file provider instrumented so the moment a changed file is loaded is known. It runs in the
// benchmark's own process (propagation) or in a child (`--role control`) whose memory is measured:
// RSS from /proc, the V8 heap from the child itself after a full GC.
import { fork, type ChildProcess } from 'node:child_process';
import { MeshFileSource, setLogLevel } from '@tsmesh/common';
import { controlPlaneConfig, startControlPlane, type RunningControlPlane } from '@tsmesh/control';
import { quiet } from './control-certs.js';
import { now } from './control-fleet.js';
import { sampleProcess } from './procfs.js';

export interface ServedControl {
  readonly plane: RunningControlPlane;
  /** From the call to the control plane serving (the mesh file read, parsed and indexed), in ms. */
  readonly startMs: number;
  /** Bytes of the snapshot line one sidecar is sent. */
  readonly viewBytes: number;
}

/** `tsmesh control` flags → a running control plane; `onLoaded` is called each time the mesh file is (re)loaded. */
export async function serveControl(args: readonly string[], onLoaded: (at: number) => void): Promise<ServedControl> {
  const started = now();
  const config = controlPlaneConfig(args, {});
  const source = config.discovery.source;
  if (source.kind !== 'file') throw new Error('the benchmark serves a mesh file (--config)');
  const provider = new MeshFileSource(source.path, { log: quiet });
  provider.subscribe(() => onLoaded(now()));
  const plane = await startControlPlane(config, { provider, log: quiet, tlsReloadMs: 0 });
  const view = plane.distributor.viewForNamespace('bench-0');
  const viewBytes = (view?.parts ?? []).reduce((n, part) => n + Buffer.byteLength(part), 0);
  return { plane, startMs: now() - started, viewBytes };
}

export interface MemorySample {
  /** VmRSS and VmHWM (peak) from /proc, in MiB. */
  readonly rssMiB: number;
  readonly peakRssMiB: number;
  /** V8 heap in use after a full GC, and the heap's size, in MiB. */
  readonly heapUsedMiB: number;
  readonly heapTotalMiB: number;
  /** Buffers and strings outside the V8 heap (`external`, includes arrayBuffers), in MiB. */
  readonly externalMiB: number;
}

type ToControl = { type: 'memory' } | { type: 'stop' };
type FromControl =
  | { type: 'listening'; port: number; startMs: number; viewBytes: number }
  | { type: 'loaded'; at: number }
  | { type: 'memory'; heapUsed: number; heapTotal: number; external: number }
  | { type: 'error'; message: string };

const MIB = 1024 * 1024;

/** The child side: `node --expose-gc control-scale.js --role control <tsmesh control flags>`. */
export function runControlChild(args: readonly string[]): void {
  setLogLevel('silent');
  const send = (message: FromControl): void => void process.send?.(message);
  let served: ServedControl | undefined;
  process.on('message', (message: ToControl) => {
    if (message.type === 'memory') {
      (globalThis as { gc?: () => void }).gc?.();
      const usage = process.memoryUsage();
      send({ type: 'memory', heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external });
    } else if (message.type === 'stop') {
      void (served?.plane.close() ?? Promise.resolve()).then(() => process.exit(0));
    }
  });
  serveControl(args, (at) => send({ type: 'loaded', at })).then(
    (s) => {
      served = s;
      send({ type: 'listening', port: s.plane.address.port, startMs: s.startMs, viewBytes: s.viewBytes });
    },
    (error: unknown) => send({ type: 'error', message: (error as Error).message }),
  );
}

/** The parent side of a control plane in a child process. */
export class ControlChild {
  /** Times the child loaded the mesh file (ms since the epoch). */
  readonly loads: number[] = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly startMs: number,
    readonly viewBytes: number,
  ) {
    child.on('message', (m: FromControl) => {
      if (m.type === 'loaded') this.loads.push(m.at);
    });
  }

  static async start(script: string, args: readonly string[]): Promise<ControlChild> {
    const child = fork(script, ['--role', 'control', ...args], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const listening = await nextMessage(child, 'listening', 300_000);
    return new ControlChild(child, listening.port, listening.startMs, listening.viewBytes);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  async memory(): Promise<MemorySample> {
    const answer = nextMessage(this.child, 'memory', 30_000);
    this.child.send({ type: 'memory' } satisfies ToControl);
    const heap = await answer;
    const proc = sampleProcess(this.pid);
    const mib = (n: number): number => Math.round((n / MIB) * 10) / 10;
    return {
      rssMiB: mib(proc.rssKiB * 1024),
      peakRssMiB: mib(proc.peakRssKiB * 1024),
      heapUsedMiB: mib(heap.heapUsed),
      heapTotalMiB: mib(heap.heapTotal),
      externalMiB: mib(heap.external),
    };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'stop' } satisfies ToControl);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

function nextMessage<T extends FromControl['type']>(child: ChildProcess, type: T, timeoutMs: number): Promise<Extract<FromControl, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`the control plane sent no "${type}" within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: FromControl): void => {
      if (message.type === 'error') finish(new Error(`control plane: ${message.message}`));
      else if (message.type === type) finish(undefined, message as Extract<FromControl, { type: T }>);
    };
    const onExit = (code: number | null): void => finish(new Error(`the control plane exited (${code}) before "${type}"`));
    const finish = (error?: Error, message?: Extract<FromControl, { type: T }>): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(message as Extract<FromControl, { type: T }>);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
