#!/usr/bin/env node
// `tsmesh`: one binary, one subcommand per component. The command list is a static table
// (registry.ts): `tsmesh --help` loads no command, and a command's module is loaded only to run
// it or print its usage, so the sidecar (`tsmesh proxy`) does not carry the CA server, the
// control plane or the webhook in its memory.
import { UsageError } from './command.js';
import { COMMANDS, findCommand, usage } from './registry.js';

function unknown(name: string): number {
  process.stderr.write(`tsmesh: unknown command "${name}"; the commands are ${COMMANDS.map((c) => c.name).join(', ')} (tsmesh --help)\n`);
  return 2;
}

/** `tsmesh help [CMD]`: the top-level usage, or CMD's. */
async function help(args: readonly string[]): Promise<number> {
  if (args.length === 0) {
    process.stdout.write(usage());
    return 0;
  }
  if (args.length > 1) {
    process.stderr.write(`tsmesh help: one command at a time, not "${args.join(' ')}"\n`);
    return 2;
  }
  if (args[0] === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  const entry = findCommand(args[0] ?? '');
  if (!entry) return unknown(args[0] ?? '');
  process.stdout.write((await entry.load()).help);
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(usage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') return help(rest);
  if (name === '--version') return main(['version', ...rest]);
  const entry = findCommand(name);
  if (!entry) return unknown(name);
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`tsmesh ${name}: ${error.message}\n`);
      return 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`tsmesh ${name}: ${message}\n`);
    return 1;
  }
}

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`tsmesh: Node.js ${process.versions.node} is too old; tsmesh needs Node.js 24 (npm scripts of this repo use the pinned one: npm run demo)\n`);
  process.exit(1);
}

main(process.argv.slice(2)).then(
  (code) => {
    // A failed command may leave a watcher or a socket open: exit instead of lingering. A
    // successful one ends when its work is done (stdout may still be draining into a pipe).
    if (code !== 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`tsmesh: ${String(error)}\n`);
    process.exit(1);
  },
);
