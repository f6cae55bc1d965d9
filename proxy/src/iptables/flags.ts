// The flags of `tsmesh iptables`: the only reader of its command line. Every value is validated
// here, before anything touches iptables, and a bad one is reported naming the flag and the value.
import { isIPv4, isIPv6 } from 'node:net';
import { err, ok, readFlags, TsmeshError, type Result } from '@tsmesh/common';
import { DEFAULT_REDIRECT, type AllOr, type Cidr, type IptablesOptions, type Ipv6Mode, type RedirectConfig } from './config.js';
import { IPTABLES_ERRORS } from '../errors.js';

/** One value parser: the parsed value, or why the raw text is not acceptable (without the flag name). */
type Parse<T> = (raw: string) => Result<T, string>;

interface FlagSpec {
  /** Name without the leading `--`. */
  readonly name: string;
  /** Placeholder shown in the help; absent for switches (flags without a value). */
  readonly placeholder?: string;
  readonly help: string;
}

/** Every flag, in the order the help lists them. */
export const IPTABLES_FLAGS: readonly FlagSpec[] = [
  { name: 'proxy-uid', placeholder: 'UID', help: `uid of the proxy; its traffic is never captured (default ${DEFAULT_REDIRECT.proxyUid})` },
  { name: 'proxy-gid', placeholder: 'GID', help: `gid of the proxy; its traffic is never captured (default ${DEFAULT_REDIRECT.proxyGid})` },
  { name: 'outbound-port', placeholder: 'PORT', help: `port that captured outgoing TCP is redirected to (default ${DEFAULT_REDIRECT.outboundPort})` },
  { name: 'inbound-port', placeholder: 'PORT', help: `port that captured incoming TCP is redirected to (default ${DEFAULT_REDIRECT.inboundPort})` },
  { name: 'exclude-outbound-ports', placeholder: 'PORTS', help: 'destination ports whose outgoing TCP is not captured; * = all (default none)' },
  { name: 'exclude-inbound-ports', placeholder: 'PORTS', help: 'ports whose incoming TCP is not captured; * = all (default none)' },
  { name: 'include-inbound-ports', placeholder: 'PORTS', help: 'only these ports\' incoming TCP is captured; * = all, empty = none (default *)' },
  { name: 'exclude-outbound-ip-ranges', placeholder: 'CIDRS', help: 'destinations whose outgoing TCP is not captured; * = all (default none)' },
  { name: 'include-outbound-ip-ranges', placeholder: 'CIDRS', help: 'only outgoing TCP to these destinations is captured; * = all, empty = none (default *)' },
  { name: 'ipv6', placeholder: 'auto|on|off', help: 'also program ip6tables: on, off, or auto = when the network namespace has a global IPv6 address (default auto)' },
  { name: 'dry-run', help: 'print the exact iptables-restore input instead of applying it' },
  { name: 'cleanup', help: 'remove every chain and jump this command added, then exit' },
  { name: 'help', help: 'show this help' },
];

const HELP_WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

/** The full `tsmesh iptables --help` text. */
export function iptablesHelp(): string {
  const left = IPTABLES_FLAGS.map((f) => `--${f.name}${f.placeholder ? ` ${f.placeholder}` : ''}`);
  const width = Math.max(...left.map((l) => l.length));
  const indent = ' '.repeat(width + 4);
  const lines = IPTABLES_FLAGS.map((f, i) => `  ${(left[i] ?? '').padEnd(width)}  ${wrap(f.help, HELP_WIDTH - indent.length).join(`\n${indent}`)}`);
  return [
    'Usage: tsmesh iptables [flags]',
    '',
    "Programs the pod's traffic redirection (run by the init container, as root): incoming TCP goes to",
    'the inbound port, outgoing TCP to the outbound port, except the proxy\'s own traffic, loopback,',
    'the mesh-reserved ports 15000-15099 and whatever the flags exclude. The rules live in the nat',
    'table, in chains named TSMESH_*, and are applied with one atomic `iptables-restore --noflush`.',
    'Running it again replaces the rules: each rule exists once. When it programs ip6tables it also',
    "adds ::6/128 to lo, the inbound proxy's IPv6 source address; --cleanup removes that too.",
    '',
    'Flags (--flag VALUE or --flag=VALUE; lists are comma-separated):',
    ...lines,
    '',
    'PORTS are numbers 1-65535. CIDRS are IPv4 or IPv6 blocks (10.0.0.0/8, fd00::/8, or a single',
    'address); IPv4 blocks go only to the iptables rules and IPv6 blocks only to the ip6tables rules.',
    '',
  ].join('\n');
}

const PORT_RANGE = '1-65535';
const MAX_ID = 4294967294; // (uid_t)-1 is "no id" to the kernel

const parsePort: Parse<number> = (raw) => {
  const text = raw.trim();
  if (!/^\d+$/.test(text)) return err(`"${text}" is not a port number (${PORT_RANGE})`);
  const port = Number(text);
  if (port < 1 || port > 65535) return err(`${text} is out of the port range (${PORT_RANGE})`);
  return ok(port);
};

const parseId: Parse<number> = (raw) => {
  const text = raw.trim();
  if (!/^\d+$/.test(text) || Number(text) > MAX_ID) return err(`"${text}" is not a numeric id (0-${MAX_ID})`);
  return ok(Number(text));
};

const parseCidr: Parse<Cidr> = (raw) => {
  const text = raw.trim();
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIPv4(address) ? 4 : isIPv6(address) && !address.includes('%') ? 6 : undefined;
  if (family === undefined) return err(`"${address}" is not an IPv4 or IPv6 address`);
  const max = family === 4 ? 32 : 128;
  if (slash === -1) return ok({ family, text: `${address.toLowerCase()}/${max}` });
  const prefix = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
    return err(`"/${prefix}" is not a prefix length for IPv${family} (0-${max})`);
  }
  return ok({ family, text: `${address.toLowerCase()}/${Number(prefix)}` });
};

/** A comma-separated list: `*` alone means all, an empty string means none, items are deduplicated. */
function listOf<T>(item: Parse<T>, key: (value: T) => string): Parse<AllOr<T>> {
  return (raw) => {
    const text = raw.trim();
    if (text === '*') return ok('*');
    if (text === '') return ok([]);
    const seen = new Set<string>();
    const values: T[] = [];
    for (const part of text.split(',')) {
      if (part.trim() === '') return err('the list has an empty item');
      if (part.trim() === '*') return err('* must stand alone, not inside a list');
      const parsed = item(part);
      if (!parsed.ok) return parsed;
      if (seen.has(key(parsed.value))) continue;
      seen.add(key(parsed.value));
      values.push(parsed.value);
    }
    return ok(values);
  };
}

const parsePorts = listOf(parsePort, String);
const parseCidrs = listOf(parseCidr, (c) => c.text);

const parseIpv6: Parse<Ipv6Mode> = (raw) =>
  raw === 'auto' || raw === 'on' || raw === 'off' ? ok(raw) : err('expected auto, on or off');

const parseSwitch: Parse<boolean> = (raw) =>
  raw === 'true' ? ok(true) : raw === 'false' ? ok(false) : err('expected true or false (or no value)');

function badFlag(message: string): Result<never, TsmeshError> {
  return err(new TsmeshError(IPTABLES_ERRORS.BAD_FLAG, message));
}

// `--help` is the caller's business: not a flag here.
const SWITCH_FLAGS = IPTABLES_FLAGS.filter((f) => f.placeholder === undefined && f.name !== 'help').map((f) => f.name);
const VALUE_FLAGS = IPTABLES_FLAGS.filter((f) => f.placeholder !== undefined).map((f) => f.name);
// Lists: `--flag=` (empty) means none.
const LIST_FLAGS = VALUE_FLAGS.filter((name) => /ports|ranges/.test(name));

/**
 * Parses the arguments after `tsmesh iptables` into frozen options. Accepts `--flag value` and
 * `--flag=value`; switches take no value (or `=true|false`). Fails, changing nothing, on an
 * unknown flag, a repeated flag, a missing value or a bad value; the message names the flag and value.
 * `--help` is the caller's business and is rejected here.
 */
export function parseIptablesFlags(argv: readonly string[]): Result<IptablesOptions, TsmeshError> {
  const read = readFlags(argv, { values: VALUE_FLAGS, switches: SWITCH_FLAGS, emptyAllowed: LIST_FLAGS });
  if (!read.ok) {
    const hint = read.error.startsWith('unknown flag') ? "; see 'tsmesh iptables --help'" : read.error.startsWith('unexpected argument') ? ' (all settings are --flags)' : '';
    return badFlag(`${read.error}${hint}`);
  }
  const raw = new Map([...read.value].map(([name, values]) => [name, values[0] ?? ''] as const));

  const failures: string[] = [];
  function value<T>(name: string, parse: Parse<T>, fallback: T): T {
    const given = raw.get(name);
    if (given === undefined) return fallback;
    const parsed = parse(given);
    if (parsed.ok) return parsed.value;
    failures.push(`invalid --${name} value "${String(given)}": ${parsed.error}`);
    return fallback;
  }

  const d = DEFAULT_REDIRECT;
  const redirect: RedirectConfig = Object.freeze({
    proxyUid: value('proxy-uid', parseId, d.proxyUid),
    proxyGid: value('proxy-gid', parseId, d.proxyGid),
    outboundPort: value('outbound-port', parsePort, d.outboundPort),
    inboundPort: value('inbound-port', parsePort, d.inboundPort),
    excludeOutboundPorts: value('exclude-outbound-ports', parsePorts, d.excludeOutboundPorts),
    excludeInboundPorts: value('exclude-inbound-ports', parsePorts, d.excludeInboundPorts),
    includeInboundPorts: value('include-inbound-ports', parsePorts, d.includeInboundPorts),
    excludeOutboundIpRanges: value('exclude-outbound-ip-ranges', parseCidrs, d.excludeOutboundIpRanges),
    includeOutboundIpRanges: value('include-outbound-ip-ranges', parseCidrs, d.includeOutboundIpRanges),
  });
  const options: IptablesOptions = Object.freeze({
    mode: value('cleanup', parseSwitch, false) ? 'cleanup' : 'apply',
    dryRun: value('dry-run', parseSwitch, false),
    ipv6: value('ipv6', parseIpv6, 'auto'),
    redirect,
  });
  if (failures.length === 0 && redirect.inboundPort === redirect.outboundPort) {
    failures.push(`--inbound-port and --outbound-port must differ (both are ${redirect.inboundPort})`);
  }
  if (failures.length > 0) return badFlag(failures.join('; '));
  return ok(options);
}
