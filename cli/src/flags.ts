// The flags several `tsmesh` commands share, read the same way everywhere: the argument loop
// (`--flag value` or `--flag=value`), --timeout, --kubeconfig and --control-namespace.
import { UsageError } from './command.js';

/** One argument of a command line. */
export interface Argument {
  /** As given, e.g. `--timeout=2s`. */
  readonly arg: string;
  /** The flag's name without an `=value` part, e.g. `--timeout`; a positional argument as given. */
  readonly flag: string;
  /** Whether the value came with the flag (`--flag=value`). */
  readonly inline: boolean;
  /** The flag's value: after `=`, or else the next argument (which the loop then skips). */
  value(): string | undefined;
}

/** The arguments in order; `value()` takes the next one as the flag's value when none came inline. */
export function* argumentsOf(argv: readonly string[]): Generator<Argument> {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const inline = eq > 0;
    yield { arg, flag: inline ? arg.slice(0, eq) : arg, inline, value: () => (inline ? arg.slice(eq + 1) : argv[++i]) };
  }
}

/** A duration flag such as --timeout: `2s` or `500ms`, from 1ms to 600s, in milliseconds. */
export function durationFlag(flag: string, value: string | undefined): number {
  const m = /^(\d{1,6})(ms|s)$/.exec(value ?? '');
  const ms = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : NaN;
  if (!(ms >= 1 && ms <= 600_000)) throw new UsageError(`${flag}: "${value ?? ''}" is not a duration from 1ms to 600s (e.g. 2s, 500ms)`);
  return ms;
}

/** --kubeconfig FILE. */
export function kubeconfigFlag(value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError('--kubeconfig needs a file');
  return value;
}

/** --control-namespace NS: a Kubernetes namespace name. */
export function controlNamespaceFlag(value: string | undefined): string {
  if (value === undefined || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value)) throw new UsageError(`--control-namespace: "${value ?? ''}" is not a namespace name`);
  return value;
}
