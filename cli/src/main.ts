#!/usr/bin/env node
// `tsmesh`: one binary, one subcommand per component (see ../shared/SPEC.md, Command line).
import { UsageError, type Command } from './command.js';

// Each command's module is loaded only when it runs: the sidecar (`tsmesh proxy`) must not carry
// the CA server, the control plane or the webhook in its memory.
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  iptables: async () => (await import('./commands/iptables.js')).iptablesCommand,
  proxy: async () => (await import('./commands/proxy.js')).proxyCommand,
  control: async () => (await import('./commands/control.js')).controlCommand,
  ca: async () => (await import('./commands/ca.js')).caCommand,
  injector: async () => (await import('./commands/injector.js')).injectorCommand,
  inject: async () => (await import('./commands/inject.js')).injectCommand,
  demo: async () => (await import('./commands/demo.js')).demoCommand,
};

async function usage(): Promise<string> {
  const commands = await Promise.all(Object.values(COMMANDS).map((load) => load()));
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `Usage: tsmesh <command> [flags]\n\nCommands:\n${lines.join('\n')}\n\nRun 'tsmesh <command> --help' for a command's flags.\n`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(await usage());
    return name === undefined ? 2 : 0;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    process.stderr.write(`tsmesh: unknown command "${name}"; run 'tsmesh --help' for the list\n`);
    return 2;
  }
  const command = await load();
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
