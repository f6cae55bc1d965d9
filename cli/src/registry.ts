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

/** A specifier the compiler does not follow, so the product build (the image) can leave the demo out. */
const DEMO_MODULE = './commands/demo.js';

/** Why `tsmesh demo` is not in the image (the product build leaves the demo and its dependencies out). */
const DEMO_ABSENT =
  'tsmesh demo is not part of this build: the image carries only what runs in a cluster. Run the demo from a clone of the repository (npm ci && npm run build && sudo npx tsmesh demo), which has its development dependencies (@grpc/grpc-js).';

/**
 * A command whose module may be absent from a build (the demo, from the image): when the module or
 * a package it needs cannot be found, a command that says so and where to run it instead.
 */
export async function loadOrExplain(name: string, summary: string, absent: string, load: () => Promise<Command>): Promise<Command> {
  try {
    return await load();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return {
      name,
      summary,
      help: `${absent}\n`,
      run: () => Promise.reject(new Error(absent)),
    };
  }
}

export const COMMANDS: readonly CommandEntry[] = Object.freeze([
  { name: 'proxy', summary: 'run the sidecar proxy', load: async () => (await import('./commands/proxy.js')).proxyCommand },
  { name: 'iptables', summary: "program the pod's traffic redirection (init container)", load: async () => (await import('./commands/iptables.js')).iptablesCommand },
  { name: 'control', summary: 'run the control plane (discovery and distribution to sidecars)', load: async () => (await import('./commands/control.js')).controlCommand },
  { name: 'gateway', summary: 'run the Gateway API gateway (the mesh front door) from a mesh file', load: async () => (await import('./commands/gateway.js')).gatewayCommand },
  { name: 'ca', summary: 'run the certificate authority', load: async () => (await import('./commands/ca.js')).caCommand },
  { name: 'injector', summary: 'run the sidecar-injector admission webhook', load: async () => (await import('./commands/injector.js')).injectorCommand },
  { name: 'inject', summary: 'print manifests with the sidecar injected', load: async () => (await import('./commands/inject.js')).injectCommand },
  {
    name: 'demo',
    summary: 'run a whole mesh on this machine and show how one gRPC channel spreads over replicas',
    load: () => loadOrExplain('demo', 'run a whole mesh on this machine and show how one gRPC channel spreads over replicas', DEMO_ABSENT, async () => ((await import(DEMO_MODULE)) as { demoCommand: Command }).demoCommand),
  },
  { name: 'proxy-config', summary: "show a sidecar's clusters, endpoints, routes, listeners, certificates or log level", load: async () => (await import('./commands/proxy-config.js')).proxyConfigCommand },
  {
    name: 'check',
    summary: 'check the cluster before installing tsmesh (--pre), or the installation: one ✔/✖ line per check with its fix',
    load: async () => (await import('./commands/check.js')).checkCommand,
  },
  {
    name: 'proxy-status',
    summary: 'list the sidecars connected to the control plane: snapshot sent, ACK/NACK, last seen, certificate expiry',
    load: async () => (await import('./commands/proxy-status.js')).proxyStatusCommand,
  },
  {
    name: 'analyze',
    summary: 'find mistakes in mesh files or a cluster: routes to nothing, competing or unenforced mTLS policies, unknown annotations',
    load: async () => (await import('./commands/analyze.js')).analyzeCommand,
  },
  {
    name: 'dashboard',
    summary: 'serve a live, read-only dashboard of the mesh: topology with rate/success/p99, golden signals, traces',
    load: async () => (await import('./commands/dashboard.js')).dashboardCommand,
  },
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
