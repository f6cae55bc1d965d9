// Test fixture: uniquely named network namespaces, created as root and always deleted, plus
// helpers to read their nat tables and run short Node scripts inside them.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Root with `ip netns` and iptables available: the real-namespace tests can run. */
export function canUseNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    execFileSync('iptables-save', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A fresh namespace `tsm-ipt-<random>` with lo up. Delete it with `deleteNetns` in a finally/afterAll. */
export function createNetns(tag = 'ipt'): string {
  const name = `tsm-${tag}-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Deletes a namespace if it exists; never throws (cleanup must not mask the test's own failure). */
export function deleteNetns(name: string | undefined): void {
  if (name === undefined) return;
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

/** Runs a command inside the namespace; resolves its stdout, rejects on a non-zero exit. */
export async function inNetns(name: string, command: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', name, command, ...args]);
  return stdout;
}

/** The `-A` lines and the `:CHAIN` names of the namespace's nat table. */
export async function savedNat(name: string, family: 4 | 6 = 4): Promise<{ rules: string[]; chains: string[] }> {
  const text = await inNetns(name, family === 4 ? 'iptables-save' : 'ip6tables-save', '-t', 'nat');
  const lines = text.split('\n');
  return {
    rules: lines.filter((l) => l.startsWith('-A ')),
    chains: lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0] ?? ''),
  };
}

/**
 * Starts `node -e script args...` inside the namespace as a long-running process and resolves
 * once it prints `ready` on stdout. Kill it with `child.kill()`.
 */
export function startInNetns(name: string, script: string, args: readonly string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', name, process.execPath, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`helper in ${name} exited (${code}): ${stderr}`)));
    child.on('error', reject);
  });
}

/** Runs `node -e script args...` inside the namespace to completion; resolves its trimmed stdout. */
export async function runNodeInNetns(name: string, script: string, args: readonly string[]): Promise<string> {
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', name, process.execPath, '-e', script, ...args], { timeout: 15000 });
  return stdout.trim();
}
