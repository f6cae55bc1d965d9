// The benchmark's own processes and scratch directory, released together: every child is
// stopped (SIGTERM, then SIGKILL) and the directory removed, on success, failure or a signal.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export class Workspace {
  readonly dir: string;
  private readonly children = new Set<ChildProcess>();
  private released = false;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'tsmesh-bench-'));
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Spawns a child that release() will stop. */
  spawn(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
    if (this.released) throw new Error('workspace already released');
    const child = spawn(command, args, options);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  /** Stops one child and waits for it to exit. */
  async stop(child: ChildProcess, graceMs = 2000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await Promise.all([...this.children].map((c) => this.stop(c)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Ports the kernel reports free right now (bound to 127.0.0.1:0 together, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<net.Server>((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port: 0 }, () => resolve(server));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** The absolute path of `command` on PATH (plus the sbin folders, where Debian puts daemons), or undefined. */
export function findExecutable(command: string, searchPath: string): string | undefined {
  const dirs = [...searchPath.split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Runs a command to completion; rejects with its stderr tail on a non-zero exit. */
export function run(
  workspace: Workspace,
  command: string,
  args: readonly string[],
  timeoutMs: number,
  onSpawn?: (child: ChildProcess) => void,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = workspace.spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}: ${(stderr || stdout).trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

export const START_TIMEOUT_MS = 15_000;

export function tail(file: string | undefined): string {
  if (!file || !existsSync(file)) return '';
  return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
}

export function exitedEarly(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Waits until `port` on 127.0.0.1 accepts connections; fails if `child` exits first. */
export async function waitForPort(child: ChildProcess, port: number, what: string, logFile?: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exitedEarly(child)) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) during start: ${tail(logFile)}`);
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms: ${tail(logFile)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
