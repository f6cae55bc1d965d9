// The sidecar's configuration: the only reader of `tsmesh proxy` flags and TSMESH_* variables.
// Parsed once into a frozen object. Bad security or data-path values fail fast; telemetry
// values are handled (warn + fall back) by telemetry/config.ts.
import { availableParallelism } from 'node:os';
import { ADMIN_PORT, durationFlag, HEALTH_PORT, INBOUND_CAPTURE_PORT, isLogLevel, OUTBOUND_CAPTURE_PORT, parseMeshLimits, readFlags, TsmeshError, type FlagSpec, type MeshLimits } from '@tsmesh/common';
import { PROXY_ERRORS } from './errors.js';

export const ENV = {
  POD_NAME: 'TSMESH_POD_NAME',
  POD_NAMESPACE: 'TSMESH_POD_NAMESPACE',
  POD_IP: 'TSMESH_POD_IP',
  SERVICE_ACCOUNT: 'TSMESH_SERVICE_ACCOUNT',
  CA_ADDR: 'TSMESH_CA_ADDR',
  CA_TOKEN_FILE: 'TSMESH_CA_TOKEN_FILE',
  TRUST_BUNDLE_FILE: 'TSMESH_TRUST_BUNDLE_FILE',
  CONTROL_ADDR: 'TSMESH_CONTROL_ADDR',
  CONTROL_IDENTITY: 'TSMESH_CONTROL_IDENTITY',
  LOG_LEVEL: 'TSMESH_LOG_LEVEL',
  OPAQUE_PORTS: 'TSMESH_OPAQUE_PORTS',
  APP_PROBES: 'TSMESH_APP_PROBES',
  TRUST_DOMAIN: 'TSMESH_TRUST_DOMAIN',
  HEAP_TRIM: 'TSMESH_HEAP_TRIM',
  ZONE: 'TSMESH_ZONE',
} as const;

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ProxyConfig {
  /** Mesh file (`--config`); undefined: the control plane supplies the mesh. */
  readonly meshFile: string | undefined;
  /** Size limit of the mesh file and nesting limit of its objects (and of the control plane's snapshots). */
  readonly meshLimits: MeshLimits;
  readonly outbound: ListenAddress;
  readonly inbound: ListenAddress;
  readonly admin: ListenAddress;
  readonly health: ListenAddress;
  readonly detectTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Client HTTP connections (HTTP/1.1 keep-alive, HTTP/2 without open streams) idle this long are closed. */
  readonly httpIdleTimeoutMs: number;
  /** Opaque TCP: a connection with no byte either way for this long is closed (0: never). */
  readonly tcpIdleTimeoutMs: number;
  /** SIGTERM: how long in-flight requests and streams get to finish before the rest is closed. */
  readonly drainDurationMs: number;
  /**
   * Event loops of the data path (`--concurrency`, `0` already resolved to one per core): 1 runs it
   * on the main thread; more run one worker thread each, all listening on the capture ports.
   */
  readonly concurrency: number;
  /**
   * HTTP/1.1 forwarding engine (`--http1-engine`): `relay` (default: the lean llhttp relay of
   * h1/relay.ts) or `node` (node:http server and client).
   */
  readonly http1Engine: Http1Engine;
  /** `TSMESH_HEAP_TRIM` (on | off, default on): give freed malloc memory back while RSS grows (loops/heap-trim.ts). */
  readonly heapTrim: boolean;
  readonly opaquePorts: ReadonlySet<number>;
  readonly podName: string | undefined;
  readonly podNamespace: string;
  readonly podIp: string | undefined;
  /**
   * The sidecar's zone (`--zone`, else `TSMESH_ZONE`); undefined: taken from the mesh (outbound/locality.ts),
   * for balancing that prefers endpoints in the same zone.
   */
  readonly zone: string | undefined;
  readonly serviceAccount: string;
  readonly trustDomain: string;
  readonly logLevel: string;
  readonly caAddr: string | undefined;
  readonly caTokenFile: string | undefined;
  readonly trustBundleFile: string | undefined;
  readonly controlAddr: string | undefined;
  /** The control plane's SPIFFE ID, verified instead of its host name when its certificate comes from the mesh CA. */
  readonly controlIdentity: string | undefined;
  /** `TSMESH_APP_PROBES` as injected: `{"<container>/<livez|readyz|startupz>": probe}`. */
  readonly appProbes: Readonly<Record<string, unknown>>;
  /** Explicit-port local mode: every outbound connection goes to this destination (no SO_ORIGINAL_DST). */
  readonly outboundTarget: { address: string; port: number; family: 4 | 6 } | undefined;
  /** Explicit-port local mode: every inbound connection is for this application port. */
  readonly inboundTarget: { address: string; port: number; family: 4 | 6 } | undefined;
}

export const PROXY_HELP = `tsmesh proxy: run the sidecar proxy

Usage: tsmesh proxy [--config FILE] [flags]

  --config FILE            read the mesh from a mesh file (Kubernetes-format YAML) and watch it;
                           without it the sidecar gets the mesh from the control plane
                           (TSMESH_CONTROL_ADDR, over mTLS: needs TSMESH_CA_ADDR)
  --mesh-max-bytes SIZE    a larger mesh file is refused unread, e.g. 512Ki (default 16Mi)
  --mesh-max-depth N       objects nested deeper are refused before parsing, in the mesh file
                           and in control-plane snapshots (default 64)
  --outbound-port N        outbound capture port (default 15001)
  --inbound-port N         inbound capture port (default 15006)
  --admin-port N           admin port on 127.0.0.1 (default 15000)
  --health-port N          health and metrics port (default 15020)
  --bind ADDRESS           address of the capture and health listeners (default 0.0.0.0)
  --detect-timeout DUR     protocol detection timeout, e.g. 300ms (default 300ms)
  --connect-timeout DUR    upstream connect timeout (default 1s)
  --http-idle-timeout DUR  client HTTP connections with no request in flight for this long are
                           closed: HTTP/1.1 keep-alive and HTTP/2 (GOAWAY) (default 5m)
  --tcp-idle-timeout DUR   opaque TCP connections with no byte either way for this long are
                           closed on both sides (default 1h, as Envoy and Istio; 0: never)
  --drain-duration DUR     on SIGTERM: not ready at once, no new connections, GOAWAY and
                           Connection: close; in-flight requests get this long (default 5s; 0: none)
  --concurrency N          event loops of the data path, each with its own listeners on the
                           capture ports (SO_REUSEPORT) and its own connection pools (default 2;
                           0: one per core; 1: all in the main thread)
  --http1-engine ENGINE    HTTP/1.1 forwarding: relay (default: a lean relay on Node's own
                           parser, llhttp, without node:http's objects) or node (node:http)
  --outbound-target H:P    local mode without iptables: send every outbound connection to H:P
  --inbound-target H:P     local mode without iptables: deliver every inbound connection to port P
  --zone ZONE              this sidecar's zone, for zone-preferring balancing (default: TSMESH_ZONE,
                           else the pod's topology.kubernetes.io/zone label or its EndpointSlice zone)

Environment: TSMESH_POD_NAME, TSMESH_POD_NAMESPACE, TSMESH_POD_IP, TSMESH_SERVICE_ACCOUNT,
TSMESH_CA_ADDR, TSMESH_CA_TOKEN_FILE, TSMESH_TRUST_BUNDLE_FILE, TSMESH_CONTROL_ADDR, TSMESH_CONTROL_IDENTITY,
TSMESH_LOG_LEVEL, TSMESH_OPAQUE_PORTS, TSMESH_APP_PROBES, TSMESH_TRACING (zipkin | otlp | none, default none),
TSMESH_TRACING_ENDPOINT, TSMESH_TRACING_SAMPLE_RATE (0 to 1, default 0.01), TSMESH_ACCESS_LOG (on | off,
default off: one JSON line per request or connection at level info), TSMESH_HEAP_TRIM (on | off,
default on: give memory freed by malloc back to the kernel while RSS grows, glibc only), TSMESH_ZONE
(as --zone).
`;

export const PROXY_CONFIG_ERROR = PROXY_ERRORS.CONFIG;

export class ConfigError extends TsmeshError {
  constructor(message: string) {
    super(PROXY_CONFIG_ERROR, message);
  }
}

export function parsePort(name: string, value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new ConfigError(`${name}: "${value}" is not a port (1-65535)`);
  }
  return Number(value);
}

/** A port to listen on: 0 asks the kernel for a free one (tests, local mode). */
export function parseListenPort(name: string, value: string): number {
  return value === '0' ? 0 : parsePort(name, value);
}

/** The most event loops a sidecar runs: each is a V8 isolate (some 10 MiB idle). */
export const MAX_CONCURRENCY = 64;
export const DEFAULT_CONCURRENCY = 2;

/** `--concurrency`: 1..MAX_CONCURRENCY, or 0 for one loop per core (`cores`, default the machine's). */
export function parseConcurrency(value: string, cores: number = availableParallelism()): number {
  if (!/^\d{1,3}$/.test(value) || Number(value) > MAX_CONCURRENCY) {
    throw new ConfigError(`--concurrency: "${value}" is not a number of event loops (0-${MAX_CONCURRENCY}; 0: one per core)`);
  }
  const n = Number(value);
  return n === 0 ? Math.max(1, Math.min(cores, MAX_CONCURRENCY)) : n;
}

export type Http1Engine = 'node' | 'relay';
export const HTTP1_ENGINES: readonly Http1Engine[] = ['node', 'relay'];

/** `--http1-engine`: `node` or `relay`. */
export function parseHttp1Engine(value: string): Http1Engine {
  if (!(HTTP1_ENGINES as readonly string[]).includes(value)) throw new ConfigError(`--http1-engine: "${value}" is not an engine (node | relay)`);
  return value as Http1Engine;
}

/** `TSMESH_HEAP_TRIM`: `on` (default) or `off`. */
export function parseHeapTrim(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === 'on') return true;
  if (value === 'off') return false;
  throw new ConfigError(`${ENV.HEAP_TRIM}: "${value}" is not on or off`);
}

/** A zone name as Kubernetes writes it in `topology.kubernetes.io/zone`: a label value. */
const ZONE_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** `--zone` / `TSMESH_ZONE`: a label value, or undefined when not set. */
export function parseZone(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!ZONE_NAME.test(value)) {
    throw new ConfigError(`${name}: "${value}" is not a zone name (a label value: up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)`);
  }
  return value;
}

/** A duration flag (common's format: `300ms`, `1.5s`, `5m`, `1h`), between 1 ms and `maxMs` (10 min unless given). */
export function parseDurationMs(name: string, value: string, maxMs = 600_000): number {
  const parsed = durationFlag(name, value, { minMs: 1, maxMs });
  if (!parsed.ok) throw new ConfigError(parsed.error);
  return Math.round(parsed.value);
}

export function parsePortList(name: string, value: string | undefined): Set<number> {
  const out = new Set<number>();
  for (const part of (value ?? '').split(',').map((p) => p.trim()).filter(Boolean)) out.add(parsePort(name, part));
  return out;
}

function parseHostPort(name: string, value: string): { address: string; port: number; family: 4 | 6 } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value);
  if (!m) throw new ConfigError(`${name}: "${value}" is not HOST:PORT`);
  const address = m[1] ?? '';
  return { address, port: parsePort(name, m[2] ?? ''), family: address.includes(':') ? 6 : 4 };
}

const FLAGS: FlagSpec = {
  values: [
    'config', 'outbound-port', 'inbound-port', 'admin-port', 'health-port', 'bind',
    'detect-timeout', 'connect-timeout', 'drain-duration', 'tcp-idle-timeout', 'http-idle-timeout', 'outbound-target', 'inbound-target',
    'mesh-max-bytes', 'mesh-max-depth', 'concurrency', 'http1-engine', 'zone',
  ],
};

export function parseProxyConfig(argv: readonly string[], env: Record<string, string | undefined>): ProxyConfig {
  const read = readFlags(argv, FLAGS);
  if (!read.ok) throw new ConfigError(`${read.error} (see tsmesh proxy --help)`);
  const flags = { get: (name: string): string | undefined => read.value.get(name.slice(2))?.[0] };
  const bind = flags.get('--bind') ?? '0.0.0.0';
  const logLevel = env[ENV.LOG_LEVEL] ?? 'info';
  if (!isLogLevel(logLevel)) throw new ConfigError(`${ENV.LOG_LEVEL}: "${logLevel}" is not a log level`);
  let appProbes: Record<string, unknown> = {};
  const probesText = env[ENV.APP_PROBES];
  if (probesText) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(probesText);
    } catch {
      throw new ConfigError(`${ENV.APP_PROBES}: not valid JSON`);
    }
    // An object keyed "<container>/<kind>"; anything else would only fail later, at probe time.
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`${ENV.APP_PROBES}: must be a JSON object keyed "<container>/<livez|readyz|startupz>"`);
    }
    appProbes = parsed as Record<string, unknown>;
  }
  const meshLimits = parseMeshLimits(flags.get('--mesh-max-bytes'), flags.get('--mesh-max-depth'));
  if (!meshLimits.ok) throw new ConfigError(`${meshLimits.error.which === 'maxBytes' ? '--mesh-max-bytes' : '--mesh-max-depth'}: ${meshLimits.error.message}`);
  const target = (flag: string) => {
    const v = flags.get(flag);
    return v === undefined ? undefined : parseHostPort(flag, v);
  };
  return Object.freeze({
    meshFile: flags.get('--config'),
    meshLimits: meshLimits.value,
    outbound: { host: bind, port: parseListenPort('--outbound-port', flags.get('--outbound-port') ?? String(OUTBOUND_CAPTURE_PORT)) },
    inbound: { host: bind, port: parseListenPort('--inbound-port', flags.get('--inbound-port') ?? String(INBOUND_CAPTURE_PORT)) },
    admin: { host: '127.0.0.1', port: parseListenPort('--admin-port', flags.get('--admin-port') ?? String(ADMIN_PORT)) },
    health: { host: bind, port: parseListenPort('--health-port', flags.get('--health-port') ?? String(HEALTH_PORT)) },
    detectTimeoutMs: parseDurationMs('--detect-timeout', flags.get('--detect-timeout') ?? '300ms'),
    connectTimeoutMs: parseDurationMs('--connect-timeout', flags.get('--connect-timeout') ?? '1s'),
    httpIdleTimeoutMs: parseDurationMs('--http-idle-timeout', flags.get('--http-idle-timeout') ?? '5m', 24 * 3_600_000),
    tcpIdleTimeoutMs: flags.get('--tcp-idle-timeout') === '0' ? 0 : parseDurationMs('--tcp-idle-timeout', flags.get('--tcp-idle-timeout') ?? '1h', 24 * 3_600_000),
    drainDurationMs: flags.get('--drain-duration') === '0' ? 0 : parseDurationMs('--drain-duration', flags.get('--drain-duration') ?? '5s'),
    concurrency: parseConcurrency(flags.get('--concurrency') ?? String(DEFAULT_CONCURRENCY)),
    http1Engine: parseHttp1Engine(flags.get('--http1-engine') ?? 'relay'),
    heapTrim: parseHeapTrim(env[ENV.HEAP_TRIM]),
    opaquePorts: parsePortList(ENV.OPAQUE_PORTS, env[ENV.OPAQUE_PORTS]),
    podName: env[ENV.POD_NAME],
    podNamespace: env[ENV.POD_NAMESPACE] ?? 'default',
    podIp: env[ENV.POD_IP] || undefined,
    zone: parseZone(flags.get('--zone') === undefined ? ENV.ZONE : '--zone', flags.get('--zone') ?? (env[ENV.ZONE] || undefined)),
    serviceAccount: env[ENV.SERVICE_ACCOUNT] ?? 'default',
    trustDomain: env[ENV.TRUST_DOMAIN] ?? 'cluster.local',
    logLevel,
    caAddr: env[ENV.CA_ADDR] || undefined,
    caTokenFile: env[ENV.CA_TOKEN_FILE] || undefined,
    trustBundleFile: env[ENV.TRUST_BUNDLE_FILE] || undefined,
    controlAddr: env[ENV.CONTROL_ADDR] || undefined,
    controlIdentity: env[ENV.CONTROL_IDENTITY] || undefined,
    appProbes,
    outboundTarget: target('--outbound-target'),
    inboundTarget: target('--inbound-target'),
  });
}
