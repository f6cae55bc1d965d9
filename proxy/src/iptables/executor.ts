// How the iptables tools are run: in the current network namespace (the init container) or in a
// named one (`ip netns exec`, for tests and the local demo). Fakes implement the same interface.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface CommandResult {
  /** Exit status; 127 when the command could not be found. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The command is not installed (or not on PATH). */
  readonly notFound: boolean;
}

export interface Executor {
  /** Where commands run, for messages: e.g. `this network namespace`, `netns tsm-ipt-1`. */
  readonly where: string;
  /**
   * Runs `command args`, writing `input` (if any) to its standard input. Never rejects for a
   * command failure: resolves with its status and output, `notFound` set when it is not installed.
   */
  run(command: string, args: readonly string[], input?: string): Promise<CommandResult>;
  /** Reads a file as seen from the target network namespace (e.g. /proc/net/if_inet6); undefined if absent. */
  readFile(path: string): Promise<string | undefined>;
}

function spawnCollect(command: string, args: readonly string[], input: string | undefined): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => errOut.push(chunk));
    // A command that exits before reading its input must not crash us with EPIPE.
    child.stdin.on('error', () => undefined);
    child.on('error', (error: NodeJS.ErrnoException) => {
      const notFound = error.code === 'ENOENT';
      resolve({ code: notFound ? 127 : 126, stdout: '', stderr: error.message, notFound });
    });
    child.on('close', (code, signal) => {
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(errOut).toString('utf8') + (signal ? `killed by ${signal}` : ''),
        notFound: false,
      });
    });
    child.stdin.end(input ?? '');
  });
}

/** Runs commands directly, in the network namespace of this process. */
export function localExecutor(): Executor {
  return {
    where: 'this network namespace',
    run: spawnCollect,
    async readFile(path) {
      try {
        return await readFile(path, 'utf8');
      } catch {
        return undefined;
      }
    },
  };
}

/** Runs commands inside network namespace `name` through `ip netns exec` (needs root). */
export function netnsExecutor(name: string): Executor {
  return {
    where: `netns ${name}`,
    async run(command, args, input) {
      const result = await spawnCollect('ip', ['netns', 'exec', name, command, ...args], input);
      // `ip netns exec` reports an uninstalled command as a failed exec rather than ENOENT.
      const notFound = result.notFound || (result.code !== 0 && /exec of ".*" failed: No such file/.test(result.stderr));
      return { ...result, notFound };
    },
    async readFile(path) {
      const result = await spawnCollect('ip', ['netns', 'exec', name, 'cat', path], undefined);
      return result.code === 0 ? result.stdout : undefined;
    },
  };
}
