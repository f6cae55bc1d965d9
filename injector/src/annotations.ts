// The per-pod knobs of SPEC.md *Injection*: annotation names and their parsers. A bad value is an error
// naming the annotation and the value, never a silent default.
import { isIP } from 'node:net';
import { err, isLogLevel, ok, type Result, type TsmeshError } from '@tsmesh/common';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
import { parseQuantity } from './quantity.js';

export const INJECTION_NAMESPACE_LABEL = 'tsmesh-injection';

export const ANNOTATIONS = {
  inject: 'tsmesh.io/inject',
  status: 'tsmesh.io/status',
  excludeOutboundPorts: 'tsmesh.io/exclude-outbound-ports',
  excludeInboundPorts: 'tsmesh.io/exclude-inbound-ports',
  includeInboundPorts: 'tsmesh.io/include-inbound-ports',
  excludeOutboundIpRanges: 'tsmesh.io/exclude-outbound-ip-ranges',
  includeOutboundIpRanges: 'tsmesh.io/include-outbound-ip-ranges',
  opaquePorts: 'tsmesh.io/opaque-ports',
  proxyCpu: 'tsmesh.io/proxy-cpu',
  proxyMemory: 'tsmesh.io/proxy-memory',
  proxyCpuLimit: 'tsmesh.io/proxy-cpu-limit',
  proxyMemoryLimit: 'tsmesh.io/proxy-memory-limit',
  logLevel: 'tsmesh.io/log-level',
  rewriteAppProbes: 'tsmesh.io/rewrite-app-probes',
  holdApplicationUntilProxyStarts: 'tsmesh.io/hold-application-until-proxy-starts',
} as const;

/** What a pod's annotations ask of the injection; lists are normalised ("80, 443" → "80,443"). */
export interface PodOptions {
  readonly excludeOutboundPorts?: string;
  readonly excludeInboundPorts?: string;
  /** "" when the annotation is present but empty: capture no inbound port. */
  readonly includeInboundPorts?: string;
  readonly excludeOutboundIpRanges?: string;
  /** "" when the annotation is present but empty: capture no outbound address. */
  readonly includeOutboundIpRanges?: string;
  readonly opaquePorts?: string;
  readonly proxyCpu?: string;
  readonly proxyMemory?: string;
  readonly proxyCpuLimit?: string;
  readonly proxyMemoryLimit?: string;
  readonly logLevel?: string;
  readonly rewriteAppProbes: boolean;
  readonly holdApplicationUntilProxyStarts: boolean;
}

type Parser = (value: string) => Result<string, string>;

function badValue(annotation: string, value: string, why: string): TsmeshError {
  return injectorError(
    INJECTOR_ERRORS.BAD_ANNOTATION,
    `annotation ${annotation}: "${value}" is not valid (${why})`,
  );
}

/** Splits a comma-separated list; `*` stands alone; empty entries ("80,,443") are refused. */
function parseList(value: string, item: (entry: string) => string | undefined): Result<string, string> {
  const entries = value.split(',').map((entry) => entry.trim());
  if (entries.length === 1 && entries[0] === '*') return ok('*');
  for (const entry of entries) {
    if (entry === '') return err('empty entry in the list');
    if (entry === '*') return err('"*" must be the only entry');
    const problem = item(entry);
    if (problem !== undefined) return err(problem);
  }
  return ok(entries.join(','));
}

function portProblem(entry: string): string | undefined {
  if (!/^\d+$/.test(entry)) return `"${entry}" is not a port number`;
  const port = Number(entry);
  if (port < 1 || port > 65535) return `port ${entry} is out of range 1-65535`;
  return undefined;
}

function cidrProblem(entry: string): string | undefined {
  const [address = '', prefix, extra] = entry.split('/');
  const family = address.includes('%') ? 0 : isIP(address); // a zone index has no place in a route
  if (family === 0 || extra !== undefined) return `"${entry}" is not an IP address or CIDR`;
  if (prefix === undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  if (!/^\d+$/.test(prefix) || Number(prefix) > max) return `"${entry}" has a prefix length outside 0-${max}`;
  return undefined;
}

const ports: Parser = (value) => parseList(value, portProblem);
const cidrs: Parser = (value) => parseList(value, cidrProblem);

const quantity: Parser = (value) =>
  parseQuantity(value) === undefined ? err('not a Kubernetes resource quantity such as 100m or 128Mi') : ok(value);

const logLevel: Parser = (value) =>
  isLogLevel(value) ? ok(value) : err('expected one of fatal, error, warn, info, debug, trace, silent');

/** Parses the "true" | "false" of a label or annotation; anything else is an error message. */
export function parseBoolean(value: string): Result<boolean, string> {
  if (value === 'true') return ok(true);
  if (value === 'false') return ok(false);
  return err('expected "true" or "false"');
}

/**
 * Reads every injection annotation of a pod. All bad values are reported together, so one denial
 * tells the pod's author everything to fix.
 */
export function readPodOptions(annotations: Readonly<Record<string, string>>): Result<PodOptions> {
  const problems: TsmeshError[] = [];
  const read = (name: string, parse: Parser, emptyMeans: 'unset' | 'none' = 'unset'): string | undefined => {
    const raw = annotations[name];
    if (raw === undefined) return undefined;
    const value = raw.trim();
    if (value === '') return emptyMeans === 'none' ? '' : undefined;
    const parsed = parse(value);
    if (parsed.ok) return parsed.value;
    problems.push(badValue(name, raw, parsed.error));
    return undefined;
  };
  const flag = (name: string, fallback: boolean): boolean => {
    const raw = annotations[name];
    if (raw === undefined) return fallback;
    const parsed = parseBoolean(raw.trim());
    if (parsed.ok) return parsed.value;
    problems.push(badValue(name, raw, parsed.error));
    return fallback;
  };

  const options: PodOptions = {
    excludeOutboundPorts: read(ANNOTATIONS.excludeOutboundPorts, ports),
    excludeInboundPorts: read(ANNOTATIONS.excludeInboundPorts, ports),
    includeInboundPorts: read(ANNOTATIONS.includeInboundPorts, ports, 'none'),
    excludeOutboundIpRanges: read(ANNOTATIONS.excludeOutboundIpRanges, cidrs),
    includeOutboundIpRanges: read(ANNOTATIONS.includeOutboundIpRanges, cidrs, 'none'),
    opaquePorts: read(ANNOTATIONS.opaquePorts, ports),
    proxyCpu: read(ANNOTATIONS.proxyCpu, quantity),
    proxyMemory: read(ANNOTATIONS.proxyMemory, quantity),
    proxyCpuLimit: read(ANNOTATIONS.proxyCpuLimit, quantity),
    proxyMemoryLimit: read(ANNOTATIONS.proxyMemoryLimit, quantity),
    logLevel: read(ANNOTATIONS.logLevel, logLevel),
    rewriteAppProbes: flag(ANNOTATIONS.rewriteAppProbes, true),
    holdApplicationUntilProxyStarts: flag(ANNOTATIONS.holdApplicationUntilProxyStarts, true),
  };
  const limitProblem = (request: string | undefined, limit: string | undefined, requestName: string, limitName: string) => {
    if (request === undefined || limit === undefined) return;
    if ((parseQuantity(request) ?? 0) > (parseQuantity(limit) ?? Infinity)) {
      problems.push(
        injectorError(
          INJECTOR_ERRORS.BAD_ANNOTATION,
          `annotation ${requestName}: "${request}" is more than ${limitName}: "${limit}"`,
        ),
      );
    }
  };
  limitProblem(options.proxyCpu, options.proxyCpuLimit, ANNOTATIONS.proxyCpu, ANNOTATIONS.proxyCpuLimit);
  limitProblem(options.proxyMemory, options.proxyMemoryLimit, ANNOTATIONS.proxyMemory, ANNOTATIONS.proxyMemoryLimit);

  if (problems.length === 0) return ok(options);
  const [first] = problems;
  if (problems.length === 1 && first) return err(first);
  return err(
    injectorError(
      INJECTOR_ERRORS.BAD_ANNOTATION,
      problems.map((problem) => problem.message).join('; '),
      problems,
    ),
  );
}
