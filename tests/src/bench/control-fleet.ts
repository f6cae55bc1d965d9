// The benchmark's sidecars, in one child process so they do not share the control plane's event loop:
// N ControlPlaneSource clients (the sidecar's own discovery client: parses, checks and indexes every
// snapshot) or N wire receivers (ack on arrival, see control-wire.ts), each with its own workload
// certificate. The parent marks the versions in force before a change and is told
// when every client has applied a newer one: the first and last application and the fleet's CPU.
import { fork, type ChildProcess } from 'node:child_process';
import { createSecureContext, type SecureContext } from 'node:tls';
import { setLogLevel } from '@tsmesh/common';
import { ControlPlaneSource } from '@tsmesh/proxy';
import { quiet, type IssuedCert } from './control-certs.js';
import { WireReceiver } from './control-wire.js';

/** ms since the epoch with sub-ms precision, comparable across processes of this machine. */
export const now = (): number => performance.timeOrigin + performance.now();

export type FleetKind = 'sidecar' | 'wire';

export interface FleetOptions {
  readonly kind: FleetKind;
  readonly controlAddr: string;
  readonly serverIdentity: string;
  readonly trustBundlePem: string;
  readonly sidecars: readonly IssuedCert[];
}

export interface ChangeSeen {
  /** When the first and the last client applied the change (ms since the epoch). */
  readonly firstAt: number;
  readonly lastAt: number;
  /** Time the fleet's event loop was busy between the mark and the last application, in ms. */
  readonly fleetBusyMs: number;
}

type ToFleet = { type: 'start'; options: FleetOptions } | { type: 'mark' } | { type: 'stop' };
type FromFleet =
  | { type: 'started'; ms: number; failures: string[] }
  | { type: 'marked' }
  | { type: 'applied'; seen: ChangeSeen }
  | { type: 'error'; message: string };

/** What the fleet needs of one client. */
interface Client {
  /** Resolves once the first snapshot arrived (and, for a sidecar, was applied); an error message otherwise. */
  start(): Promise<string | undefined>;
  current(): string | undefined;
  onApplied(listener: (version: string) => void): void;
  close(): Promise<void>;
}

function sidecarClient(options: FleetOptions, context: SecureContext, i: number): Client {
  const source = new ControlPlaneSource({
    controlAddr: options.controlAddr,
    tlsSource: { clientContext: () => context },
    serverIdentity: options.serverIdentity,
    podName: `bench-${i}`,
    startTimeoutMs: 300_000,
    log: quiet,
  });
  return {
    start: async () => {
      const started = await source.start();
      return started.ok ? undefined : started.error.message;
    },
    current: () => source.current()?.version,
    onApplied: (listener) => void source.subscribe((snapshot) => listener(snapshot.version)),
    close: () => source.close(),
  };
}

function wireClient(options: FleetOptions, context: SecureContext, i: number): Client {
  const [host = '', port = ''] = options.controlAddr.split(':');
  const receiver = new WireReceiver({ host, port: Number(port) }, context, `bench-${i}`);
  return {
    start: () => receiver.start().then(() => undefined, (error: unknown) => (error as Error).message),
    current: () => receiver.current(),
    onApplied: (listener) => receiver.subscribe(listener),
    close: () => receiver.close(),
  };
}

/** The child side: `node control-scale.js --role fleet`. */
export function runFleetChild(): void {
  setLogLevel('silent');
  let sources: Client[] = [];
  let marks: Array<string | undefined> = [];
  const applied: Array<{ version: string; at: number } | undefined> = [];
  let markedAt = 0;
  let elu: EventLoopUtilization | undefined;
  const send = (message: FromFleet): void => void process.send?.(message);

  const check = (): void => {
    if (elu === undefined) return;
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    for (let i = 0; i < sources.length; i++) {
      const a = applied[i];
      if (a === undefined || a.at < markedAt || a.version === marks[i]) return;
      first = Math.min(first, a.at);
      last = Math.max(last, a.at);
    }
    const busy = performance.eventLoopUtilization(elu);
    elu = undefined;
    send({ type: 'applied', seen: { firstAt: first, lastAt: last, fleetBusyMs: busy.active } });
  };

  const start = async (options: FleetOptions): Promise<void> => {
    const started = now();
    sources = options.sidecars.map((cert, i) => {
      const context = createSecureContext({ key: cert.keyPem, cert: cert.certPem, ca: options.trustBundlePem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
      const client = options.kind === 'sidecar' ? sidecarClient(options, context, i) : wireClient(options, context, i);
      client.onApplied((version) => {
        applied[i] = { version, at: now() };
        check();
      });
      return client;
    });
    const results = await Promise.all(sources.map((s) => s.start()));
    const failures = results.filter((r) => r !== undefined).slice(0, 5);
    send({ type: 'started', ms: now() - started, failures });
  };

  process.on('message', (message: ToFleet) => {
    switch (message.type) {
      case 'start':
        start(message.options).catch((error: unknown) => send({ type: 'error', message: (error as Error).message }));
        break;
      case 'mark':
        marks = sources.map((s) => s.current());
        markedAt = now();
        elu = performance.eventLoopUtilization();
        send({ type: 'marked' });
        break;
      case 'stop':
        void Promise.all(sources.map((s) => s.close())).then(() => process.exit(0));
        break;
    }
  });
}

type EventLoopUtilization = ReturnType<typeof performance.eventLoopUtilization>;

/** The parent side of a fleet. */
export class Fleet {
  private constructor(
    private readonly child: ChildProcess,
    /** How long the clients took to connect and apply their first snapshot, in ms. */
    readonly startMs: number,
  ) {}

  /** Forks `script --role fleet` and connects every client; fails if one did not get its first snapshot. */
  static async start(script: string, options: FleetOptions, heapMiB: number): Promise<Fleet> {
    const child = fork(script, ['--role', 'fleet'], { execArgv: [`--max-old-space-size=${heapMiB}`], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.send({ type: 'start', options } satisfies ToFleet);
    const started = await next(child, 'started', 180_000);
    if (started.failures.length > 0) {
      child.kill('SIGKILL');
      throw new Error(`sidecars could not start: ${started.failures.join('; ')}`);
    }
    return new Fleet(child, started.ms);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Marks the versions in force now; the returned promise settles once every client has applied a
   * newer one (or fails after `timeoutMs`). Make the change after this resolves.
   */
  async expectChange(timeoutMs: number): Promise<{ seen: Promise<ChangeSeen> }> {
    const seen = next(this.child, 'applied', timeoutMs).then((m) => m.seen);
    seen.catch(() => undefined);
    this.child.send({ type: 'mark' } satisfies ToFleet);
    await next(this.child, 'marked', 10_000);
    return { seen };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'stop' } satisfies ToFleet);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** The next message of `type` from the child; rejects on an error message, its exit, or the timeout. */
function next<T extends FromFleet['type']>(child: ChildProcess, type: T, timeoutMs: number): Promise<Extract<FromFleet, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`the sidecar fleet sent no "${type}" within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: FromFleet): void => {
      if (message.type === 'error') finish(new Error(`sidecar fleet: ${message.message}`));
      else if (message.type === type) finish(undefined, message as Extract<FromFleet, { type: T }>);
    };
    const onExit = (code: number | null): void => finish(new Error(`the sidecar fleet exited (${code}) before "${type}"`));
    const finish = (error?: Error, message?: Extract<FromFleet, { type: T }>): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(message as Extract<FromFleet, { type: T }>);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
