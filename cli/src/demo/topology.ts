// Pods on one machine: each a network namespace with a veth on a private bridge that lives
// in its own namespace (so nothing routes off the machine), running real processes. Used by
// `tsmesh demo` and the end-to-end tests. Everything created is removed by destroy().
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PROXY_UID = 1337;

export interface PodOptions {
  readonly name: string;
  /** Last octet of the pod's address in the topology's /24. */
  readonly hostId: number;
}

export interface SpawnOptions {
  readonly env?: Record<string, string>;
  /** Run as this uid/gid (the sidecar runs as 1337). */
  readonly uid?: number;
  readonly cwd?: string;
}

const MAX_LOG_LINES = 5000;

export class Pod {
  readonly processes: ChildProcess[] = [];
  /** The last lines every process of the pod wrote (stdout and stderr), drained so no pipe fills up. */
  readonly logs: string[] = [];

  constructor(
    readonly name: string,
    readonly netns: string,
    readonly ip: string,
    /** The pod's IPv6 address, in a dual-stack topology. */
    readonly ip6?: string,
  ) {}

  /** Runs a command in the pod and resolves its stdout; rejects with its stderr on failure. */
  async exec(command: string, args: readonly string[], options: SpawnOptions = {}): Promise<string> {
    const argv = ['netns', 'exec', this.netns, ...asUser(options.uid), command, ...args];
    try {
      const { stdout } = await run('ip', argv, { env: { ...process.env, ...options.env }, cwd: options.cwd, maxBuffer: 64 << 20 });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`${command} ${args.join(' ')} in ${this.name} failed: ${e.stderr?.trim() || e.message}`, { cause: error });
    }
  }

  /** Starts a long-running process in the pod; killed by kill() or the topology's destroy(). */
  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.netns, ...asUser(options.uid), command, ...args], {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.processes.push(child);
    const keep = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        this.logs.push(line);
        if (this.logs.length > MAX_LOG_LINES) this.logs.splice(0, this.logs.length - MAX_LOG_LINES);
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    return child;
  }

  /** Kills every process of the pod (SIGKILL: the pod dies, as when a node loses it). */
  async kill(): Promise<void> {
    await Promise.all(this.processes.map((p) => killAndWait(p)));
    this.processes.length = 0;
  }
}

function asUser(uid: number | undefined): string[] {
  return uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
}

export function killAndWait(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/** Resolves with the first stdout line matching `test`; rejects if the process exits first or time runs out. */
export function waitForLine(child: ChildProcess, test: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let stderr = '';
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (test(line)) return finish(undefined, line);
      }
    };
    const onErr = (chunk: Buffer): void => {
      stderr += chunk.toString('utf8');
    };
    const onExit = (code: number | null): void => finish(new Error(`${what}: process exited (${code}) first; stderr: ${stderr.slice(-2000)}`));
    const finish = (error?: Error, line?: string): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(line ?? '');
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** Whether this process may build topologies (root with `ip netns` and iptables). */
export async function canUseNetns(): Promise<{ ok: boolean; reason?: string }> {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not running as root' };
  try {
    await run('ip', ['netns', 'list']);
    await run('iptables-restore', ['--version']);
    await run('setpriv', ['--version']);
  } catch (error) {
    return { ok: false, reason: `missing tool: ${(error as Error).message.split('\n')[0]}` };
  }
  return { ok: true };
}

export class Topology {
  readonly pods = new Map<string, Pod>();
  private readonly bridgeNs: string;
  private readonly id: string;
  private vethCount = 0;

  private constructor(
    readonly prefix: string,
    /** The /24's first three octets, e.g. `10.233.0`. */
    readonly subnet: string,
    /** Dual stack: the /64 every pod also gets an address in, e.g. `fd00:233::` (pod `fd00:233::<hostId>`). */
    readonly ipv6Prefix?: string,
  ) {
    this.id = randomBytes(3).toString('hex');
    this.bridgeNs = `${prefix}-${this.id}-net`;
  }

  /** Creates the bridge namespace. Call destroy() in a finally block. */
  static async create(prefix = 'tsm', subnet = '10.233.0', options: { readonly ipv6Prefix?: string } = {}): Promise<Topology> {
    const topology = new Topology(prefix, subnet, options.ipv6Prefix);
    try {
      await run('ip', ['netns', 'add', topology.bridgeNs]);
      await run('ip', ['-n', topology.bridgeNs, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', topology.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
      await run('ip', ['-n', topology.bridgeNs, 'link', 'set', 'br0', 'up']);
    } catch (error) {
      await topology.destroy();
      throw error;
    }
    return topology;
  }

  async addPod(options: PodOptions): Promise<Pod> {
    const netns = `${this.prefix}-${this.id}-${options.name}`;
    const ip = `${this.subnet}.${options.hostId}`;
    const ip6 = this.ipv6Prefix === undefined ? undefined : `${this.ipv6Prefix}${options.hostId}`;
    const hostSide = `tv${this.id}${this.vethCount++}`.slice(0, 15);
    await run('ip', ['netns', 'add', netns]);
    const pod = new Pod(options.name, netns, ip, ip6);
    this.pods.set(options.name, pod);
    await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', hostSide, 'netns', this.bridgeNs]);
    await run('ip', ['-n', this.bridgeNs, 'link', 'set', hostSide, 'master', 'br0']);
    await run('ip', ['-n', this.bridgeNs, 'link', 'set', hostSide, 'up']);
    await run('ip', ['-n', netns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
    // Service cluster IPs exist only in the mesh: a default route lets the kernel accept the
    // connect() so iptables can redirect it; without capture the packets die on the bridge.
    await run('ip', ['-n', netns, 'route', 'add', 'default', 'dev', 'eth0']);
    if (ip6 !== undefined) {
      // nodad: usable at once (duplicate address detection would hold it tentative for a second or two).
      await run('ip', ['-n', netns, '-6', 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
      await run('ip', ['-n', netns, '-6', 'route', 'add', 'default', 'dev', 'eth0']);
    }
    return pod;
  }

  pod(name: string): Pod {
    const pod = this.pods.get(name);
    if (!pod) throw new Error(`no pod ${name} in the topology`);
    return pod;
  }

  /** Kills every process and deletes every namespace; never throws. */
  async destroy(): Promise<void> {
    await Promise.all([...this.pods.values()].map((p) => p.kill().catch(() => undefined)));
    for (const pod of this.pods.values()) await run('ip', ['netns', 'del', pod.netns]).catch(() => undefined);
    await run('ip', ['netns', 'del', this.bridgeNs]).catch(() => undefined);
    this.pods.clear();
  }
}
