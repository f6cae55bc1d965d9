// The views of `tsmesh proxy-config`: for each kind, which admin endpoint of the sidecar it reads,
// the data it takes from the answer (printed as is with -o json|yaml) and the table made of it.
// The answers are the sidecar's own JSON, read defensively: a missing field shows as "-".

/** One kind of `tsmesh proxy-config KIND`. */
export interface View {
  /** The admin endpoint read. */
  readonly path: string;
  /** What the kind shows of the endpoint's answer (the -o json|yaml output). */
  select(answer: unknown): unknown;
  /** The table: a header row then one row per item (none: no table), and lines printed after it. */
  table(data: unknown): { rows: string[][]; notes?: string[] };
}

type Json = Record<string, unknown>;

const list = (value: unknown): Json[] => (Array.isArray(value) ? (value.filter((v) => typeof v === 'object' && v !== null) as Json[]) : []);
const obj = (value: unknown): Json => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {});
/**
 * A cell: "-" when missing, objects as JSON, and never a control character (an answer from a
 * hostile address must not drive the terminal: ESC sequences and newlines become "?").
 */
function text(value: unknown): string {
  const raw = value === undefined || value === null || value === '' ? '-' : typeof value === 'object' ? JSON.stringify(value) : String(value);
  // eslint-disable-next-line no-control-regex
  return raw.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}
const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/** HOST:PORT, with an IPv6 host in brackets. */
function hostPort(host: unknown, port: unknown): string {
  const h = text(host);
  return `${h.includes(':') ? `[${h}]` : h}:${text(port)}`;
}

const clusters: View = {
  path: '/clusters',
  select: (answer) => list(answer),
  table: (data) => ({
    rows: [
      ['CLUSTER', 'LOAD BALANCER', 'ENDPOINTS', 'EJECTED', 'IN FLIGHT'],
      ...list(data).map((c) => {
        const eps = list(c.endpoints);
        const ejected = eps.filter((e) => e.ejected === true).length;
        const inFlight = eps.reduce((sum, e) => sum + num(e.inFlight), 0);
        return [text(c.cluster), text(c.loadBalancer), String(eps.length), String(ejected), String(inFlight)];
      }),
    ],
  }),
};

const endpoints: View = {
  path: '/clusters',
  select: (answer) =>
    list(answer).flatMap((c) =>
      list(c.endpoints).map((e) => ({ cluster: c.cluster, address: e.address, port: e.port, ejected: e.ejected, inFlight: e.inFlight, connections: e.connections })),
    ),
  table: (data) => ({
    rows: [
      ['CLUSTER', 'ENDPOINT', 'STATUS', 'IN FLIGHT', 'HTTP/1.1', 'HTTP/2', 'TCP'],
      ...list(data).map((e) => {
        const open = obj(e.connections);
        const status = e.ejected === true ? 'EJECTED' : 'HEALTHY';
        return [text(e.cluster), hostPort(e.address, e.port), status, String(num(e.inFlight)), String(num(open.http1)), String(num(open.http2)), String(num(open.tcp))];
      }),
    ],
  }),
};

const ROUTE_KINDS = new Set(['HTTPRoute', 'GRPCRoute']);

/** One match of a route rule in a few words: `PathPrefix /v2 header x-a=b`, `Greeter/SayHello`. */
function describeMatch(match: Json): string {
  const parts: string[] = [];
  const path = obj(match.path);
  if (path.value !== undefined) parts.push(`${text(path.type ?? 'PathPrefix')} ${text(path.value)}`);
  if (typeof match.method === 'string') parts.push(match.method);
  const grpc = obj(match.method);
  if (grpc.service !== undefined || grpc.method !== undefined) parts.push(`${text(grpc.service)}/${text(grpc.method)}`);
  for (const h of list(match.headers)) parts.push(`header ${text(h.name)}=${text(h.value)}`);
  for (const q of list(match.queryParams)) parts.push(`query ${text(q.name)}=${text(q.value)}`);
  return parts.length === 0 ? '*' : parts.join(' ');
}

function describeRef(ref: Json, defaultKind?: string): string {
  const kind = defaultKind === undefined ? '' : `${text(ref.kind ?? defaultKind)}/`;
  const port = ref.port === undefined ? '' : `:${text(ref.port)}`;
  const weight = ref.weight === undefined ? '' : ` (weight ${text(ref.weight)})`;
  return `${kind}${text(ref.name)}${port}${weight}`;
}

const routes: View = {
  path: '/config_dump',
  select: (answer) => list(obj(answer).others).filter((o) => ROUTE_KINDS.has(String(o.kind))),
  table: (data) => ({
    rows: [
      ['NAME', 'KIND', 'PARENTS', 'MATCHES', 'BACKENDS'],
      ...list(data).map((route) => {
        const meta = obj(route.metadata);
        const spec = obj(route.spec);
        const rules = list(spec.rules);
        const parents = list(spec.parentRefs).map((p) => describeRef(p, 'Gateway'));
        const matches = rules.flatMap((r) => (list(r.matches).length === 0 ? ['*'] : list(r.matches).map(describeMatch)));
        const backends = rules.flatMap((r) => list(r.backendRefs).map((b) => describeRef(b)));
        return [`${text(meta.namespace)}/${text(meta.name)}`, text(route.kind), parents.join(', ') || '-', [...new Set(matches)].join(', ') || '*', [...new Set(backends)].join(', ') || '-'];
      }),
    ],
  }),
};

const listeners: View = {
  path: '/config_dump',
  select: (answer) => {
    const dump = obj(answer);
    const outbound = list(dump.services).flatMap((s) =>
      (Array.isArray(s.clusterIPs) ? (s.clusterIPs as unknown[]) : []).flatMap((ip) =>
        list(s.ports).map((p) => ({ address: ip, port: p.port, service: `${text(s.namespace)}/${text(s.name)}`, protocol: p.declaredProtocol ?? 'detect', loadBalancer: s.loadBalancer })),
      ),
    );
    return { outbound, inboundMtls: dump.inboundMtls ?? null };
  },
  table: (data) => {
    const view = obj(data);
    const mtls = obj(view.inboundMtls);
    const ports = Object.entries(obj(mtls.portModes)).map(([port, mode]) => `port ${text(port)}: ${text(mode)}`);
    return {
      rows: [
        ['ADDRESS', 'SERVICE', 'PROTOCOL', 'LOAD BALANCER'],
        ...list(view.outbound).map((l) => [hostPort(l.address, l.port), text(l.service), text(l.protocol), text(l.loadBalancer)]),
      ],
      notes: [`Inbound mTLS: ${text(mtls.defaultMode)}${ports.length > 0 ? ` (${ports.join(', ')})` : ''}`],
    };
  },
};

const certs: View = {
  path: '/certs',
  select: (answer) => answer,
  table: (data) => {
    const d = obj(data);
    if (d.spiffeId === undefined) return { rows: [], notes: [`No workload identity${d.reason === undefined ? '' : `: ${text(d.reason)}`}`] };
    const row = (role: string, c: Json): string[] => [role, text(c.subjectAltName ?? c.subject), text(c.serialNumber), text(c.notBefore), text(c.notAfter)];
    const chain = list(d.chain);
    const failures = num(d.consecutiveFailures);
    const renewal = d.renewAt === undefined ? 'not scheduled' : `at ${text(d.renewAt)}`;
    return {
      rows: [
        ['CERTIFICATE', 'SUBJECT', 'SERIAL', 'NOT BEFORE', 'NOT AFTER'],
        ...chain.map((c, i) => row(i === 0 ? 'workload' : 'intermediate', c)),
        ...list(d.trustBundle).map((c) => row('root', c)),
      ],
      notes: [`Identity: ${text(d.spiffeId)} (${text(d.state)}); renewal ${renewal}${failures > 0 ? `; ${failures} failed attempts, last: ${text(obj(d.lastError).message)}` : ''}`],
    };
  },
};

const log: View = {
  path: '/logging',
  select: (answer) => answer,
  table: (data) => ({ rows: [['LEVEL'], [text(obj(data).level)]] }),
};

/** Every kind, by name. */
export const VIEWS: Readonly<Record<string, View>> = Object.freeze({ clusters, endpoints, routes, listeners, certs, log });

/** Columns padded to their widest cell, two spaces apart (as kubectl prints); the last column unpadded. */
export function formatTable(rows: readonly string[][]): string {
  if (rows.length === 0) return '';
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n')}\n`;
}
