// The shape of one `tsmesh` subcommand. Each lives in commands/<name>.ts and is listed, with its
// summary, in registry.ts (a static table: `tsmesh --help` loads no command).

export interface Command {
  readonly name: string;
  /** One line for `tsmesh --help`. */
  readonly summary: string;
  /** Full text for `tsmesh <name> --help`. */
  readonly help: string;
  /**
   * Runs the command with the arguments after its name. Resolves to the exit code; a long-running
   * server resolves only when it has shut down. Throws UsageError for bad flags.
   */
  run(argv: readonly string[]): Promise<number>;
}

/** A bad flag or argument: printed as one line on stderr, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** For subcommands whose issue has not landed: says so plainly, never pretends to work. */
export function notAvailable(name: string, summary: string): Command {
  return {
    name,
    summary: `${summary} (not available yet)`,
    help: `tsmesh ${name}: ${summary}\n\nThis command is not available yet in this build of tsmesh.\n`,
    async run() {
      process.stderr.write(`tsmesh ${name}: not available yet in this build\n`);
      return 3;
    },
  };
}

/** Resolves on the first SIGINT or SIGTERM: long-running commands serve until then, then close. */
/** Resolves with the first SIGINT or SIGTERM received. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Runs a package's flag parser, turning its bad-flag error (by code) into a UsageError (exit 2). */
export function parseFlags<T>(parse: () => T, badFlagCode: string): T {
  try {
    return parse();
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code === badFlagCode) throw new UsageError((error as Error).message);
    throw error;
  }
}
