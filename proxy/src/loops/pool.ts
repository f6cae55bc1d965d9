// The main thread's side of `--concurrency N` (N ≥ 2): N worker threads, each an event loop with its
// own listeners on the capture ports (SO_REUSEPORT: the kernel spreads new connections over them)
// and its own pools. Every mesh snapshot and certificate goes to every loop; metrics and /clusters
// are gathered from them; drain and close reach them all. A loop that ends unexpectedly is logged
// and restarted on the same ports (the other loops keep serving meanwhile).
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { logger, SIDECAR_YOUNG_GENERATION_MB, snapshotObjects, type MeshSnapshot } from '@tsmesh/common';
import type { ProxyConfig } from '../config.js';
import type { SharedMaterial } from '../identity/shared.js';
import type { TracingConfig } from '../telemetry/index.js';
import { sharedCountsBuffer } from '../upstream/shared-counts.js';
import { rateBucketsBuffer } from '../policy/rate-buckets.js';
import type { ClusterStats } from './data-plane.js';
import { mergeClusters, mergeMetrics, type MergedClusterStats } from './merge.js';
import type { FromLoop, LoopInit, LoopRequests, MeshMessage, MetricsJson, RequestKind, ToLoop } from './messages.js';

const log = logger('loop.pool');

/** The worker's entry point: beside this module once built; from ts-jest's sources, the build's (build first). */
export function loopWorkerUrl(): URL {
  const here = new URL('./worker.js', import.meta.url);
  return existsSync(here) ? here : new URL('../../dist/loops/worker.js', import.meta.url);
}

export interface LoopPoolOptions {
  readonly config: ProxyConfig;
  /** Event loops to run (config.concurrency unless a test says otherwise). */
  readonly loops: number;
  readonly snapshot: MeshSnapshot;
  /** Whether the sidecar has a workload identity; `material` is its certificate once issued. */
  readonly identity: boolean;
  readonly material: SharedMaterial | undefined;
  readonly tracing: TracingConfig;
  readonly accessLog: boolean;
  readonly logLevel: string;
  /** Called when a loop is started again after it ended unexpectedly (for the restart counter). */
  readonly onRestart?: (loop: number) => void;
  /** How long `/metrics` and `/clusters` wait for a loop. Default 1000 ms. */
  readonly answerTimeoutMs?: number;
  /** First delay before restarting a loop; doubles while it keeps failing soon after start, up to 10 s. Default 250 ms. */
  readonly restartDelayMs?: number;
  readonly workerUrl?: URL;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** One event loop: its current worker (replaced on restart) and what it last said. */
interface Loop {
  readonly index: number;
  worker: Worker | undefined;
  listening: boolean;
  startedAt: number;
  restartDelayMs: number;
  restartTimer: NodeJS.Timeout | undefined;
  readonly pending: Map<number, Pending>;
  /** The last metrics it answered: used when it does not answer in time, retired when it ends. */
  lastMetrics: MetricsJson | undefined;
}

const MAX_RESTART_DELAY_MS = 10_000;
/** A loop that ran this long before it ended is restarted after the first delay again. */
const STABLE_AFTER_MS = 30_000;
/** How long a loop gets to close its connections and its exporter before it is terminated. */
const CLOSE_TIMEOUT_MS = 5000;

export class LoopPool {
  readonly ports: { readonly outbound: number; readonly inbound: number };
  private readonly options: LoopPoolOptions;
  private readonly loops: Loop[];
  private mesh: MeshMessage;
  private material: SharedMaterial | undefined;
  private logLevel: string;
  /** Requests and retries in flight of every loop, so that maxRequests and maxRetries bound the sidecar. */
  private readonly counts: SharedArrayBuffer;
  /** Rate limit buckets: one table for every loop, kept across a loop's restart (its limits do not refill). */
  private readonly rateBuckets: SharedArrayBuffer;
  private nextId = 0;
  /** Draining or closing: a loop that ends is not restarted (new listeners would take connections). */
  private stopping = false;
  /** Metrics of loops that ended, so the merged counters never go back. */
  private retired: Promise<MetricsJson | undefined> = Promise.resolve(undefined);

  private constructor(options: LoopPoolOptions, ports: LoopPool['ports'], loops: Loop[]) {
    this.options = options;
    this.ports = ports;
    this.loops = loops;
    this.mesh = meshMessage(options.snapshot);
    this.material = options.material;
    this.logLevel = options.logLevel;
    this.counts = sharedCountsBuffer(loops.length);
    this.rateBuckets = rateBucketsBuffer();
  }

  /**
   * Starts every loop and resolves once all listen. With a port 0 configured the first loop binds
   * first (the kernel picks the port) and the others bind the ports it got. Rejects (and ends the loops started)
   * when a loop cannot listen.
   */
  static async start(options: LoopPoolOptions): Promise<LoopPool> {
    if (options.loops < 2) throw new RangeError(`a LoopPool runs 2 loops or more, not ${options.loops}`);
    const loops: Loop[] = Array.from({ length: options.loops }, (_, index) => ({
      index,
      worker: undefined,
      listening: false,
      startedAt: 0,
      restartDelayMs: options.restartDelayMs ?? 250,
      restartTimer: undefined,
      pending: new Map(),
      lastMetrics: undefined,
    }));
    const placeholder = { outbound: options.config.outbound.port, inbound: options.config.inbound.port };
    const pool = new LoopPool(options, placeholder, loops);
    try {
      // Ports to pick (0, tests and local mode) are picked by the first loop alone; fixed ones by all at once.
      const fixed = placeholder.outbound !== 0 && placeholder.inbound !== 0;
      const ports = fixed ? placeholder : await pool.spawn(loops[0] as Loop, undefined);
      (pool as { ports: LoopPool['ports'] }).ports = ports;
      await Promise.all(loops.slice(fixed ? 0 : 1).map((loop) => pool.spawn(loop, ports)));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** Loops listening now (one being restarted is not). */
  listening(): number {
    return this.loops.filter((loop) => loop.listening).length;
  }

  /** The thread of loop `index` (tests end it to see it restarted). */
  worker(index: number): Worker | undefined {
    return this.loops[index]?.worker;
  }

  /** Sends a new snapshot to every loop (and to loops started later). */
  update(snapshot: MeshSnapshot): void {
    this.mesh = meshMessage(snapshot);
    this.broadcast({ type: 'mesh', mesh: this.mesh });
  }

  /** Sends a renewed certificate to every loop (and to loops started later). */
  identityChanged(material: SharedMaterial): void {
    this.material = material;
    this.broadcast({ type: 'tls', material });
  }

  logLevelChanged(level: string): void {
    this.logLevel = level;
    this.broadcast({ type: 'log-level', level });
  }

  /**
   * Every loop's metrics (`getMetricsAsJSON`), plus those of loops that ended. A loop that does not
   * answer in time is counted with its last answer, so counters never go back.
   */
  async metrics(): Promise<MetricsJson[]> {
    const views = await Promise.all(
      this.loops.map(async (loop) => {
        if (!loop.listening) return loop.lastMetrics;
        try {
          loop.lastMetrics = await this.ask(loop, 'metrics', {}, this.options.answerTimeoutMs ?? 1000);
        } catch (error) {
          log.warn({ loop: loop.index, err: (error as Error).message }, 'no metrics from an event loop; its last answer stands in');
        }
        return loop.lastMetrics;
      }),
    );
    const retired = await this.retired;
    return [...(retired === undefined ? [] : [retired]), ...views.filter((v): v is MetricsJson => v !== undefined)];
  }

  /** `/clusters` over every loop that answers (see mergeClusters). */
  async clusters(): Promise<MergedClusterStats[]> {
    const views = await Promise.all(
      this.loops.map(async (loop) => {
        if (!loop.listening) return undefined;
        try {
          return { loop: loop.index, clusters: await this.ask(loop, 'clusters', {}, this.options.answerTimeoutMs ?? 1000) };
        } catch (error) {
          log.warn({ loop: loop.index, err: (error as Error).message }, 'no cluster stats from an event loop');
          return undefined;
        }
      }),
    );
    return mergeClusters(views.filter((v): v is { loop: number; clusters: ClusterStats } => v !== undefined));
  }

  /**
   * Every loop closes its listeners (data-plane.ts `stopAccepting`); resolves once all have, so that a
   * readiness failure reported after it never meets a listener still open (SO_REUSEPORT would have
   * queued a new connection there, only to reset it when the listener closes).
   */
  async stopAccepting(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.loops.map(async (loop) => {
        if (loop.worker === undefined) return;
        try {
          await this.ask(loop, 'stopAccepting', {}, this.options.answerTimeoutMs ?? 1000);
        } catch (error) {
          log.warn({ loop: loop.index, err: (error as Error).message }, 'an event loop did not confirm that it stopped accepting');
        }
      }),
    );
  }

  /** Drains every loop at once (data-plane.ts `drain`); resolves with the connections left over all. */
  async drain(durationMs: number): Promise<{ remaining: number }> {
    this.stopping = true;
    const left = await Promise.all(
      this.loops.map(async (loop) => {
        if (loop.worker === undefined) return 0;
        try {
          return (await this.ask(loop, 'drain', { durationMs }, durationMs + CLOSE_TIMEOUT_MS)).remaining;
        } catch (error) {
          log.warn({ loop: loop.index, err: (error as Error).message }, 'an event loop did not report its drain');
          return 0;
        }
      }),
    );
    return { remaining: left.reduce((a, b) => a + b, 0) };
  }

  /** Closes every loop (connections, pools, exporter) and ends its thread. */
  async close(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.loops.map(async (loop) => {
        if (loop.restartTimer !== undefined) clearTimeout(loop.restartTimer);
        const worker = loop.worker;
        if (worker === undefined) return;
        if (loop.listening) await this.ask(loop, 'close', {}, CLOSE_TIMEOUT_MS).catch(() => undefined);
        loop.listening = false;
        loop.worker = undefined;
        await worker.terminate();
      }),
    );
  }

  /** Starts `loop`'s thread; resolves with its ports once it listens, rejects if it cannot. */
  private spawn(loop: Loop, ports: LoopPool['ports'] | undefined): Promise<LoopPool['ports']> {
    const init: LoopInit = {
      loop: loop.index,
      logBindings: { loop: loop.index },
      config: this.options.config,
      ports,
      logLevel: this.logLevel,
      tracing: this.options.tracing,
      accessLog: this.options.accessLog,
      mesh: this.mesh,
      identity: this.options.identity,
      material: this.material,
      counts: this.counts,
      rateBuckets: this.rateBuckets,
    };
    const worker = new Worker(this.options.workerUrl ?? loopWorkerUrl(), {
      workerData: init,
      name: `tsmesh-loop-${loop.index}`,
      // The semi-spaces of SIDECAR_NODE_FLAGS, whatever flags this process was started with.
      resourceLimits: { maxYoungGenerationSizeMb: SIDECAR_YOUNG_GENERATION_MB },
    });
    loop.worker = worker;
    loop.startedAt = Date.now();
    return new Promise((resolve, reject) => {
      let started = false;
      worker.on('message', (message: FromLoop) => {
        if (message.type === 'listening') {
          started = true;
          loop.listening = true;
          // A snapshot or certificate that changed while it started: send the latest.
          if (this.mesh !== init.mesh) worker.postMessage({ type: 'mesh', mesh: this.mesh } satisfies ToLoop);
          if (this.material !== init.material && this.material !== undefined) worker.postMessage({ type: 'tls', material: this.material } satisfies ToLoop);
          if (this.logLevel !== init.logLevel) worker.postMessage({ type: 'log-level', level: this.logLevel } satisfies ToLoop);
          resolve(message.ports);
        } else if (message.type === 'failed') {
          started = true;
          reject(Object.assign(new Error(`event loop ${loop.index}: ${message.message}`), { code: message.code }));
          loop.worker = undefined;
          void worker.terminate();
        } else if (message.type === 'answer') {
          const pending = loop.pending.get(message.id);
          if (pending === undefined) return;
          loop.pending.delete(message.id);
          clearTimeout(pending.timer);
          if (message.ok) pending.resolve(message.value);
          else pending.reject(new Error(message.message));
        }
      });
      worker.on('error', (error) => log.error({ loop: loop.index, err: error }, 'event loop failed'));
      worker.once('exit', (code) => {
        const current = loop.worker === worker;
        if (current) {
          loop.worker = undefined;
          loop.listening = false;
        }
        for (const [id, pending] of loop.pending) {
          clearTimeout(pending.timer);
          pending.reject(new Error(`event loop ${loop.index} ended (exit code ${code})`));
          loop.pending.delete(id);
        }
        if (!started) {
          started = true;
          reject(new Error(`event loop ${loop.index} ended before it listened (exit code ${code})`));
          return;
        }
        if (!current || this.stopping) return;
        this.retire(loop);
        this.scheduleRestart(loop, code);
      });
    });
  }

  private retire(loop: Loop): void {
    const last = loop.lastMetrics;
    loop.lastMetrics = undefined;
    if (last === undefined) return;
    this.retired = this.retired.then(async (retired) => (retired === undefined ? last : await mergeMetrics([retired, last]).getMetricsAsJSON()));
  }

  private scheduleRestart(loop: Loop, code: number): void {
    const ranMs = Date.now() - loop.startedAt;
    if (ranMs >= STABLE_AFTER_MS) loop.restartDelayMs = this.options.restartDelayMs ?? 250;
    const delay = loop.restartDelayMs;
    loop.restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, delay * 2);
    log.error({ loop: loop.index, code, ranMs, restartInMs: delay }, 'event loop ended unexpectedly; restarting it (the other loops keep serving)');
    loop.restartTimer = setTimeout(() => {
      loop.restartTimer = undefined;
      if (this.stopping) return;
      this.options.onRestart?.(loop.index);
      this.spawn(loop, this.ports).then(
        () => log.info({ loop: loop.index }, 'event loop restarted'),
        (error: unknown) => {
          if (this.stopping) return;
          log.error({ loop: loop.index, err: (error as Error).message }, 'event loop could not be restarted');
          if (loop.worker === undefined) this.scheduleRestart(loop, -1);
        },
      );
    }, delay);
    loop.restartTimer.unref();
  }

  private broadcast(message: ToLoop): void {
    for (const loop of this.loops) if (loop.listening) loop.worker?.postMessage(message);
  }

  private ask<K extends RequestKind>(loop: Loop, kind: K, ask: LoopRequests[K]['ask'], timeoutMs: number): Promise<LoopRequests[K]['answer']> {
    const worker = loop.worker;
    if (worker === undefined) return Promise.reject(new Error(`event loop ${loop.index} is not running`));
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        loop.pending.delete(id);
        reject(new Error(`event loop ${loop.index} did not answer "${kind}" within ${timeoutMs} ms`));
      }, timeoutMs);
      loop.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      worker.postMessage({ type: 'request', id, kind, ask } satisfies ToLoop);
    });
  }
}

function meshMessage(snapshot: MeshSnapshot): MeshMessage {
  const objects = snapshotObjects(snapshot);
  if (objects === undefined) throw new TypeError('a mesh snapshot for several event loops must come from buildSnapshot or buildSnapshotFrom');
  return { version: snapshot.version, objects };
}
