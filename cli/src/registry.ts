// The list of `tsmesh` subcommands: a static table of names and one-line summaries, so that
// `tsmesh --help` prints it without loading any command. Each command's module (and the packages
// it pulls in: the sidecar, the CA server, the control plane, the webhook) is loaded only when
// that command runs or its own usage is asked for.
import type { Command } from './command.js';

export interface CommandEntry {
  readonly name: string;
  /** One line for `tsmesh --help`; the command's module says the same (a test keeps them equal). */
  readonly summary: string;
  /** Loads the command's module. */
  load(): Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = Object.freeze([
  { name: 'proxy', summary: 'run the sidecar proxy', load: async () => (await import('./commands/proxy.js')).proxyCommand },
  { name: 'iptables', summary: "program the pod's traffic redirection (init container)", load: async () => (await import('./commands/iptables.js')).iptablesCommand },
  { name: 'control', summary: 'run the control plane (discovery and distribution to sidecars)', load: async () => (await import('./commands/control.js')).controlCommand },
  { name: 'ca', summary: 'run the certificate authority', load: async () => (await import('./commands/ca.js')).caCommand },
  { name: 'injector', summary: 'run the sidecar-injector admission webhook', load: async () => (await import('./commands/injector.js')).injectorCommand },
  { name: 'inject', summary: 'print manifests with the sidecar injected', load: async () => (await import('./commands/inject.js')).injectCommand },
  { name: 'demo', summary: 'run a whole mesh on this machine and show how one gRPC channel spreads over replicas', load: async () => (await import('./commands/demo.js')).demoCommand },
  { name: 'proxy-config', summary: "show a sidecar's clusters, endpoints, routes, listeners, certificates or log level", load: async () => (await import('./commands/proxy-config.js')).proxyConfigCommand },
  { name: 'version', summary: "print tsmesh's version (and a sidecar's with --proxy)", load: async () => (await import('./commands/version.js')).versionCommand },
]);

/** The entry for `name`, or undefined when there is no such command. */
export function findCommand(name: string): CommandEntry | undefined {
  return COMMANDS.find((entry) => entry.name === name);
}

/** Where the full reference lives: in every clone and release of the repository. */
export const REFERENCE = 'docs/reference.md in the tsmesh repository';

/** The top-level usage: every command and its summary, from the table alone. */
export function usage(): string {
  const rows = [...COMMANDS.map((c) => [c.name, c.summary] as const), ['help', "print a command's usage: tsmesh help <command>"] as const];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, summary]) => `  ${name.padEnd(width)}  ${summary}`);
  return `Usage: tsmesh <command> [flags]

Commands:
${lines.join('\n')}

Run 'tsmesh help <command>' or 'tsmesh <command> --help' for a command's flags,
'tsmesh --version' for the version. Reference (commands, flags, annotations, ports,
environment variables, CRDs, metrics): ${REFERENCE}
`;
}
