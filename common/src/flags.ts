// Command-line flags, read the same way by every tsmesh program: `--name value` or `--name=value`,
// switches as `--name` (or `--name=true|false`), nothing positional, each flag once unless it is
// repeatable. Errors name the flag; callers add where to look (`see tsmesh proxy --help`). Node's
// util.parseArgs is close but refuses `--switch=false` and words its errors for developers.
// Durations in flags have one format too: `300ms`, `1.5s`, `5m`, `24h`, `7d`, `1h30m` (and `0`).
import { err, ok, type Result } from './errors.js';

export interface FlagSpec {
  /** Flags that take a value (names without `--`). */
  readonly values: readonly string[];
  /** Flags that take none: present means `true`; `=true` or `=false` may be written. */
  readonly switches?: readonly string[];
  /** Value flags that may be given more than once (each value kept, in order). */
  readonly repeatable?: readonly string[];
  /** Value flags for which `--name=` (an empty value) means something, e.g. an empty list. */
  readonly emptyAllowed?: readonly string[];
}

/** The flags given, by name (without `--`), each with its values in order (`'true'`/`'false'` for switches). */
export type Flags = ReadonlyMap<string, readonly string[]>;

export function readFlags(argv: readonly string[], spec: FlagSpec): Result<Flags, string> {
  const values = new Set(spec.values);
  const switches = new Set(spec.switches ?? []);
  const repeatable = new Set(spec.repeatable ?? []);
  const emptyAllowed = new Set(spec.emptyAllowed ?? []);
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--') || arg === '--') return err(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (!values.has(name) && !switches.has(name)) return err(`unknown flag "--${name}"`);
    if (flags.has(name) && !repeatable.has(name)) return err(`--${name} given more than once`);
    let value: string;
    if (switches.has(name)) {
      value = eq === -1 ? 'true' : arg.slice(eq + 1);
      if (value !== 'true' && value !== 'false') return err(`--${name} takes no value (or =true, =false), not ${JSON.stringify(value)}`);
    } else if (eq !== -1) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) return err(`--${name} needs a value`);
      value = next;
      i++;
    }
    if (value === '' && !emptyAllowed.has(name)) return err(`--${name} needs a value`);
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return ok(flags);
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const COMPONENT = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** A flag's duration in milliseconds (`300ms`, `1.5s`, `5m`, `24h`, `7d`, `1h30m`, and `0`), or undefined. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(COMPONENT)) ms += Number(amount) * (UNIT_MS[unit ?? ''] ?? 0);
  return ms;
}

/** The shortest way to write a whole number of milliseconds in that format (`10m`, `24h`, `1500ms`). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit] ?? 1;
    // Days from two on: a day reads better as 24h.
    if (ms >= (unit === 'd' ? 2 * size : size) && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A duration flag between `minMs` and `maxMs`, or the error naming the flag, the value and the range. */
export function durationFlag(flag: string, text: string, range: { readonly minMs: number; readonly maxMs: number }): Result<number, string> {
  const ms = parseDuration(text.trim());
  if (ms === undefined) return err(`${flag}: ${JSON.stringify(text)} is not a duration (e.g. 300ms, 1s, 5m, 1h30m)`);
  if (ms < range.minMs || ms > range.maxMs) return err(`${flag}: ${JSON.stringify(text)} must be between ${formatDuration(range.minMs)} and ${formatDuration(range.maxMs)}`);
  return ok(ms);
}
