// Runs the built `tsmesh` (dist/main.js) as a child process for the CLI's tests and collects its
// exit code and output. With `recordModules`, a resolve hook in the child lists every module it
// loaded, so a test can say what a command did not load.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

const HOOK = `import { registerHooks } from 'node:module';
import { writeSync } from 'node:fs';
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    writeSync(2, 'tsmesh-loaded ' + resolved.url + '\\n');
    return resolved;
  },
});
`;

let hookFile: string | undefined;
function hook(): string {
  if (hookFile === undefined) {
    hookFile = join(mkdtempSync(join(tmpdir(), 'tsmesh-cli-hook-')), 'hook.mjs');
    writeFileSync(hookFile, HOOK);
  }
  return hookFile;
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  /** Standard error without the hook's lines. */
  readonly stderr: string;
  /** With `recordModules`: the URL of every module the process loaded (node: built-ins aside). */
  readonly modules: string[];
}

/** Runs `node <script> ...args` (the built CLI unless `script` says otherwise) to its end. */
export function runCli(args: readonly string[], options: { recordModules?: boolean; script?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  const nodeArgs = options.recordModules ? ['--import', pathToFileURL(hook()).href] : [];
  const child = spawn(process.execPath, [...nodeArgs, options.script ?? MAIN, ...args], {
    env: { PATH: process.env.PATH, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      const modules = [...stderr.matchAll(/^tsmesh-loaded (\S+)$/gm)].map((m) => m[1] ?? '').filter((url) => !url.startsWith('node:'));
      resolve({ code, stdout, stderr: stderr.replace(/^tsmesh-loaded \S+\n/gm, ''), modules });
    });
  });
}
