// `tsmesh proxy-status`: every sidecar connected to the control plane, with the snapshot version it
// was sent, whether it acknowledged or refused it, when it was last heard from and when its
// certificate expires. Read from the control plane's admin server (GET /debug/connections): by
// direct address, or in a cluster through a port-forward to each control-plane pod.
import { adminJson, parseAdminAddress, type AdminAddress } from '../admin-client.js';
import { UsageError, type Command } from '../command.js';
import { argumentsOf, controlNamespaceFlag, durationFlag, kubeconfigFlag } from '../flags.js';
import { formatTable } from '../proxy-config/views.js';

export const CONTROL_NAMESPACE = 'tsmesh-system';
/** The labels the chart puts on the control-plane pods. */
export const CONTROL_SELECTOR = 'app.kubernetes.io/name=tsmesh,app.kubernetes.io/component=control';
/** Where the control plane's admin server listens in its pod (loopback only). */
export const CONTROL_ADMIN_PORT = 15011;
const CONNECTIONS_PATH = '/debug/connections';

const HELP = `tsmesh proxy-status: list the sidecars connected to the control plane

Usage: tsmesh proxy-status [--control HOST:PORT] [-o table|json]
       tsmesh proxy-status [--kubeconfig FILE] [--control-namespace NS] [-o table|json]

With --control, asks the control plane's admin server at that address (--debug-listen of
tsmesh control, 127.0.0.1:${CONTROL_ADMIN_PORT} by default). Without it, finds the control-plane pods
(${CONTROL_SELECTOR}) in the control-plane namespace through the Kubernetes API
and asks each one through a port-forward to its port ${CONTROL_ADMIN_PORT}.

Columns:
  NAME         the sidecar's pod (as it says) and namespace, else its service account
  SNAPSHOT     the mesh snapshot version last sent to it
  STATUS       SYNCED (it acknowledged that version), NACKED (it refused it and keeps its last good
               one; the reason follows), STALE (sent, not answered yet), NOT SENT
  LAST SEEN    when it last acknowledged or refused anything, else when it connected
  CERT EXPIRES when the certificate it connected with expires
  CONTROL      the control-plane pod or address it is connected to

Flags:
  --control HOST:PORT       the control plane's admin address (a bare PORT means 127.0.0.1)
  --kubeconfig FILE         the cluster (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --control-namespace NS    where the control plane runs (default ${CONTROL_NAMESPACE})
  -o, --output FMT          table (default) or json
  --timeout DUR             how long to wait for each control plane, e.g. 2s or 500ms (default 5s)

Exit codes: 0 listed (even none); 1 the control plane could not be found or reached; 2 bad arguments.
`;

interface Mark {
  readonly version: string;
  readonly at: string;
}

/** One stream as the control plane's GET /debug/connections gives it (fields tsmesh proxy-status reads). */
export interface ConnectionRecord {
  readonly spiffeId: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly pod?: string;
  readonly connectedAt: string;
  readonly lastSeen?: string;
  readonly certificateExpiresAt?: string;
  readonly lastSent?: Mark;
  readonly lastAcked?: Mark;
  readonly lastNacked?: Mark & { readonly error: string };
}

export type SyncStatus = 'SYNCED' | 'NACKED' | 'STALE' | 'NOT SENT';

/** One row of the output (and one object of -o json). */
export interface ProxyStatus {
  readonly name: string;
  readonly namespace: string;
  readonly pod: string | undefined;
  readonly serviceAccount: string;
  readonly spiffeId: string;
  readonly control: string;
  readonly snapshot: string | undefined;
  readonly status: SyncStatus;
  readonly acked: string | undefined;
  readonly nacked: { readonly version: string; readonly error: string } | undefined;
  readonly lastSeen: string;
  readonly connectedAt: string;
  readonly certificateExpiresAt: string | undefined;
}

export function syncStatus(connection: ConnectionRecord): SyncStatus {
  const sent = connection.lastSent?.version;
  if (sent === undefined) return 'NOT SENT';
  if (connection.lastNacked?.version === sent) return 'NACKED';
  if (connection.lastAcked?.version === sent) return 'SYNCED';
  return 'STALE';
}

export function proxyStatus(connection: ConnectionRecord, control: string): ProxyStatus {
  return {
    name: connection.pod ?? connection.serviceAccount,
    namespace: connection.namespace,
    pod: connection.pod,
    serviceAccount: connection.serviceAccount,
    spiffeId: connection.spiffeId,
    control,
    snapshot: connection.lastSent?.version,
    status: syncStatus(connection),
    acked: connection.lastAcked?.version,
    nacked: connection.lastNacked === undefined ? undefined : { version: connection.lastNacked.version, error: connection.lastNacked.error },
    lastSeen: connection.lastSeen ?? connection.connectedAt,
    connectedAt: connection.connectedAt,
    certificateExpiresAt: connection.certificateExpiresAt,
  };
}

/** `3s ago`, `in 23h`: the distance from `now`, in its largest unit. */
export function relative(iso: string | undefined, now: number): string {
  if (iso === undefined) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return '-';
  const seconds = Math.round((at - now) / 1000);
  const size = Math.abs(seconds);
  const text = size < 60 ? `${size}s` : size < 3600 ? `${Math.floor(size / 60)}m` : size < 172_800 ? `${Math.floor(size / 3600)}h` : `${Math.floor(size / 86_400)}d`;
  return seconds <= 0 ? (size === 0 ? 'now' : `${text} ago`) : `in ${text}`;
}

export function statusTable(rows: readonly ProxyStatus[], now: number): string {
  if (rows.length === 0) return 'No sidecars connected.\n';
  const status = (row: ProxyStatus): string => (row.status === 'NACKED' && row.nacked !== undefined ? `NACKED: ${oneLine(row.nacked.error, 60)}` : row.status);
  const expiry = (row: ProxyStatus): string => {
    if (row.certificateExpiresAt === undefined) return '-';
    const left = relative(row.certificateExpiresAt, now);
    return left.endsWith(' ago') ? `EXPIRED ${left}` : left;
  };
  return formatTable([
    ['NAME', 'SNAPSHOT', 'STATUS', 'LAST SEEN', 'CERT EXPIRES', 'CONTROL'],
    ...rows.map((row) => [`${row.name}.${row.namespace}`, row.snapshot ?? '-', status(row), relative(row.lastSeen, now), expiry(row), row.control]),
  ]);
}

function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

interface Flags {
  readonly control: AdminAddress | undefined;
  readonly kubeconfig: string | undefined;
  readonly namespace: string;
  readonly output: 'table' | 'json';
  readonly timeoutMs: number;
}

function parse(argv: readonly string[]): Flags {
  let control: AdminAddress | undefined;
  let kubeconfig: string | undefined;
  let namespace = CONTROL_NAMESPACE;
  let output: Flags['output'] = 'table';
  let timeoutMs = 5000;
  for (const { arg, flag, value } of argumentsOf(argv)) {
    if (flag === '--control') control = parseAdminAddress('--control', value());
    else if (flag === '--kubeconfig') kubeconfig = kubeconfigFlag(value());
    else if (flag === '--control-namespace') namespace = controlNamespaceFlag(value());
    else if (flag === '-o' || flag === '--output') {
      const v = value();
      if (v !== 'table' && v !== 'json') throw new UsageError(`${flag}: "${v ?? ''}" is not an output format (table or json)`);
      output = v;
    } else if (flag === '--timeout') timeoutMs = durationFlag('--timeout', value());
    else throw new UsageError(`unexpected argument "${arg}" (see tsmesh proxy-status --help)`);
  }
  if (control !== undefined && kubeconfig !== undefined) throw new UsageError('--control and --kubeconfig exclude each other: ask one address, or find the control plane in a cluster');
  return { control, kubeconfig, namespace, output, timeoutMs };
}

function connectionsOf(body: unknown, where: string): ConnectionRecord[] {
  const list = (body as { connections?: unknown } | null)?.connections;
  if (!Array.isArray(list)) throw new Error(`${where} answered without a "connections" list: is it a tsmesh control plane's admin server?`);
  return list as ConnectionRecord[];
}

/** Every control-plane pod's connections, through port-forwards. */
async function fromCluster(flags: Flags): Promise<ProxyStatus[]> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const { loadKubeConfig, podGet, serverOf } = await import('../kube.js');
  const config = loadKubeConfig(flags.kubeconfig);
  const core = config.makeApiClient(CoreV1Api);
  let pods;
  try {
    pods = await core.listNamespacedPod({ namespace: flags.namespace, labelSelector: CONTROL_SELECTOR });
  } catch (error) {
    throw new Error(`cannot list the control-plane pods in ${flags.namespace} at ${serverOf(config)}: ${describeKubeError(error)}`, { cause: error });
  }
  const running = pods.items.filter((pod) => pod.status?.phase === 'Running' && pod.metadata?.name !== undefined);
  if (running.length === 0) {
    throw new Error(`no running control-plane pod (${CONTROL_SELECTOR}) in namespace ${flags.namespace}: is tsmesh installed? (tsmesh check)`);
  }
  const rows: ProxyStatus[] = [];
  for (const pod of running) {
    const name = pod.metadata?.name as string;
    const answer = await podGet(config, flags.namespace, name, CONTROL_ADMIN_PORT, CONNECTIONS_PATH, flags.timeoutMs);
    const where = `pod ${flags.namespace}/${name}${CONNECTIONS_PATH}`;
    if (answer.status !== 200) throw new Error(`${where} answered ${answer.status}`);
    let body: unknown;
    try {
      body = JSON.parse(answer.body);
    } catch {
      throw new Error(`${where} answered something that is not JSON`);
    }
    rows.push(...connectionsOf(body, where).map((c) => proxyStatus(c, name)));
  }
  return rows;
}

/** A client-node error in one line: its HTTP status and the API server's message when it gave one. */
export function describeKubeError(error: unknown): string {
  const e = error as { code?: unknown; body?: unknown; message?: unknown };
  let message: string | undefined;
  try {
    const body = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: unknown }) : (e.body as { message?: unknown } | undefined);
    if (typeof body?.message === 'string') message = body.message;
  } catch {
    // not JSON: fall back to the error's own message
  }
  const status = typeof e.code === 'number' ? `HTTP ${e.code}` : undefined;
  let text = message ?? (typeof e.message === 'string' ? e.message.split('\n')[0] : String(error));
  // fetch() says only "fetch failed"; the reason (ECONNREFUSED, a certificate error) is its cause.
  const cause = (error as { cause?: { message?: unknown } } | null)?.cause;
  if (message === undefined && typeof cause?.message === 'string') text = `${text ?? ''}: ${cause.message.split('\n')[0] ?? ''}`;
  return status === undefined ? (text ?? 'unknown error') : `${status}: ${text ?? ''}`;
}

export const proxyStatusCommand: Command = {
  name: 'proxy-status',
  summary: 'list the sidecars connected to the control plane: snapshot sent, ACK/NACK, last seen, certificate expiry',
  help: HELP,
  async run(argv) {
    const flags = parse(argv);
    let rows: ProxyStatus[];
    if (flags.control !== undefined) {
      const address = flags.control;
      const where = `${address.host}:${address.port}`;
      const body = await adminJson(address, 'GET', CONNECTIONS_PATH, { timeoutMs: flags.timeoutMs }).catch((error: unknown) => {
        throw new Error(`cannot reach the control plane's admin server: ${(error as Error).message.replace("the sidecar's admin server", 'it')}`, { cause: error });
      });
      rows = connectionsOf(body, `${where}${CONNECTIONS_PATH}`).map((c) => proxyStatus(c, where));
    } else {
      rows = await fromCluster(flags);
    }
    rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    process.stdout.write(flags.output === 'json' ? `${JSON.stringify(rows, null, 2)}\n` : statusTable(rows, Date.now()));
    return 0;
  },
};
