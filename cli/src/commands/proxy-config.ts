// `tsmesh proxy-config KIND ADDR`: a sidecar's own view (clusters, endpoints, routes, listeners,
// certificates, log level), read from its admin server by direct address, as a table or JSON/YAML.
import { adminJson, parseAdminAddress, type AdminAddress } from '../admin-client.js';
import { UsageError, type Command } from '../command.js';
import { argumentsOf, durationFlag } from '../flags.js';
import { formatTable, VIEWS } from '../proxy-config/views.js';

const KINDS = Object.keys(VIEWS);
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

const HELP = `tsmesh proxy-config: show a sidecar's configuration, read from its admin server

Usage: tsmesh proxy-config KIND ADDR [-o table|json|yaml]
       tsmesh proxy-config log ADDR [--level LEVEL]

ADDR is the sidecar's admin address, HOST:PORT or a bare PORT on 127.0.0.1 (in a pod:
127.0.0.1:15000; from outside, port-forward it first). Naming a pod (POD[.NAMESPACE]) needs the
Kubernetes API and is not available yet.

Kinds:
  clusters   each cluster (Service port): algorithm, endpoints, ejected ones, requests in flight
  endpoints  each endpoint of each cluster: status, requests in flight, open connections
  routes     the HTTPRoutes and GRPCRoutes in the sidecar's mesh: parents, matches, backends
  listeners  the Service addresses the sidecar routes (cluster IP:port, protocol) and inbound mTLS
  certs      the workload certificate, its chain and trust bundle, the next renewal
  log        the log level; --level LEVEL changes it (${LEVELS.join(', ')})

Flags:
  -o, --output FMT   table (default), json or yaml: the data as the sidecar gave it
  --level LEVEL      with log: set this level first
  --timeout DUR      how long to wait for the sidecar, e.g. 2s or 500ms (default 5s)

Exit codes: 0 shown; 1 the sidecar could not be reached or refused; 2 bad arguments.
`;

type Output = 'table' | 'json' | 'yaml';

interface Flags {
  readonly kind: string;
  readonly address: AdminAddress;
  readonly output: Output;
  readonly level: string | undefined;
  readonly timeoutMs: number;
}

function parse(argv: readonly string[]): Flags {
  const positional: string[] = [];
  let output: Output = 'table';
  let level: string | undefined;
  let timeoutMs = 5000;
  for (const { arg, flag, value } of argumentsOf(argv)) {
    if (flag === '-o' || flag === '--output') {
      const v = value();
      if (v !== 'table' && v !== 'json' && v !== 'yaml') throw new UsageError(`${flag}: "${v ?? ''}" is not an output format (table, json or yaml)`);
      output = v;
    } else if (flag === '--level') {
      const v = value();
      if (v === undefined || !LEVELS.includes(v)) throw new UsageError(`--level: "${v ?? ''}" is not a log level (${LEVELS.join(', ')})`);
      level = v;
    } else if (flag === '--timeout') timeoutMs = durationFlag('--timeout', value());
    else if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown flag "${arg}" (see tsmesh proxy-config --help)`);
    else positional.push(arg);
  }
  const [kind, target, ...extra] = positional;
  if (kind === undefined) throw new UsageError(`which kind? one of ${KINDS.join(', ')}`);
  if (!Object.hasOwn(VIEWS, kind)) throw new UsageError(`unknown kind "${kind}"; the kinds are ${KINDS.join(', ')}`);
  if (target === undefined) throw new UsageError("which sidecar? give its admin address, HOST:PORT or PORT (127.0.0.1:15000 in its pod)");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (level !== undefined && kind !== 'log') throw new UsageError('--level goes with the kind log');
  if (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/.test(target) && !/^\d+$/.test(target)) {
    throw new UsageError(`"${target}" looks like a pod name: reaching a pod through the Kubernetes API is not available yet; port-forward its admin port and give HOST:PORT`);
  }
  return { kind, address: parseAdminAddress('ADDR', target), output, level, timeoutMs };
}

async function render(output: Output, data: unknown, table: () => string): Promise<string> {
  if (output === 'json') return `${JSON.stringify(data, null, 2)}\n`;
  if (output === 'yaml') return (await import('yaml')).stringify(data);
  return table();
}

export const proxyConfigCommand: Command = {
  name: 'proxy-config',
  summary: "show a sidecar's clusters, endpoints, routes, listeners, certificates or log level",
  help: HELP,
  async run(argv) {
    const flags = parse(argv);
    const view = VIEWS[flags.kind]!;
    if (flags.level !== undefined) await adminJson(flags.address, 'POST', `/logging?level=${flags.level}`, { timeoutMs: flags.timeoutMs });
    const data = view.select(await adminJson(flags.address, 'GET', view.path, { timeoutMs: flags.timeoutMs }));
    process.stdout.write(
      await render(flags.output, data, () => {
        const { rows, notes = [] } = view.table(data);
        const table = rows.length === 1 ? `No ${flags.kind}.\n` : formatTable(rows);
        return `${table}${notes.map((note) => `${note}\n`).join('')}`;
      }),
    );
    return 0;
  },
};
