// A program the routing suite runs inside pods (compiled to dist/e2e/routing-probe.js):
//   issue-cert  asks the CA for a workload certificate (the control plane's serving certificate);
//   http-load   sequential HTTP/1.1 requests on ONE keep-alive connection, each answer timestamped,
//               while the sidecar's /config_dump is polled so the moment a route revision is applied
//               is known to the millisecond; runs --requests times or until SIGTERM;
//   grpc-load   sequential unary calls on ONE channel (one HTTP/2 connection), counted by server;
//   config      the sidecar's mesh version, route revisions and control-plane connection, once.
// Each prints one `{"result": ...}` line; the loops print `{"started":true}` once their first answer came.
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type * as Grpc from '@grpc/grpc-js';
import { httpGetOnce, type HelloReply } from 'tsmesh/demo';
import { REVISION_ANNOTATION, type ConfigState, type LoadReport } from './routing-model.js';

const ADMIN = 'http://127.0.0.1:15000';

interface Flags {
  one(name: string): string | undefined;
  num(name: string, fallback: number): number;
  has(name: string): boolean;
}

function parseFlags(argv: readonly string[]): Flags {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) values.set(arg.slice(2), '');
    else values.set(arg.slice(2), argv[++i] ?? '');
  }
  return { one: (n) => values.get(n), num: (n, f) => Number(values.get(n) ?? f), has: (n) => values.has(n) };
}

/** Writes the result line and resolves once it is flushed: a large line to a pipe is written asynchronously, and exiting earlier would cut it. */
function print(result: unknown): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify({ result })}\n`, () => resolve()));
}

let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `name: value` → [name, value]. */
function header(text: string | undefined): [string, string] | undefined {
  if (!text) return undefined;
  const colon = text.indexOf(':');
  return [text.slice(0, colon).trim().toLowerCase(), text.slice(colon + 1).trim()];
}

async function configState(): Promise<ConfigState> {
  const res = await fetch(`${ADMIN}/config_dump`, { signal: AbortSignal.timeout(2000) });
  const dump = (await res.json()) as {
    version: string;
    source?: { connected?: boolean };
    others?: Array<{ kind: string; metadata: { name?: string; namespace?: string; annotations?: Record<string, string> } }>;
  };
  const revisions: Record<string, string> = {};
  for (const o of dump.others ?? []) {
    const revision = o.metadata.annotations?.[REVISION_ANNOTATION];
    if ((o.kind === 'HTTPRoute' || o.kind === 'GRPCRoute') && revision !== undefined) revisions[`${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`] = revision;
  }
  return { at: Date.now(), version: dump.version, revisions, connected: dump.source?.connected };
}

const sameState = (a: ConfigState | undefined, b: ConfigState): boolean =>
  a !== undefined && a.version === b.version && a.connected === b.connected && JSON.stringify(a.revisions) === JSON.stringify(b.revisions);

/** Polls /config_dump every `everyMs` until `done()`, keeping each change. */
async function watchConfig(states: ConfigState[], everyMs: number, done: () => boolean): Promise<void> {
  while (!done()) {
    try {
      const state = await configState();
      if (!sameState(states[states.length - 1], state)) states.push(state);
    } catch {
      // the admin port answers again on the next poll
    }
    await sleep(everyMs);
  }
}

function record(report: LoadReport, canary: 0 | 1, outcome: { server: string } | Error): void {
  const at = Date.now();
  if (outcome instanceof Error) {
    report.failed++;
    if (report.errors.length < 20) report.errors.push(`${at} ${outcome.message}`);
    report.answers.push([at, '!error', canary]);
  } else {
    report.ok++;
    report.counts[outcome.server] = (report.counts[outcome.server] ?? 0) + 1;
    report.answers.push([at, outcome.server, canary]);
  }
}

/**
 * --url U [--requests N] [--header "name: value"] [--alternate] [--interval-ms N] [--watch-ms N].
 * With --alternate only every other request (the 2nd, 4th...) carries the header.
 */
async function httpLoad(flags: Flags): Promise<void> {
  const url = flags.one('url') ?? '';
  const limit = flags.num('requests', Number.POSITIVE_INFINITY);
  const interval = flags.num('interval-ms', 0);
  const canaryHeader = header(flags.one('header'));
  const alternate = flags.has('alternate');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<unknown>();
  const report: LoadReport = { ok: 0, failed: 0, errors: [], counts: {}, connections: 0, answers: [], config: [] };
  let finished = false;
  const watchMs = flags.num('watch-ms', 0);
  const watching = watchMs > 0 ? watchConfig(report.config, watchMs, () => finished) : Promise.resolve();
  for (let i = 0; i < limit && !stopping; i++) {
    const canary: 0 | 1 = canaryHeader !== undefined && (!alternate || i % 2 === 1) ? 1 : 0;
    const headers = canary && canaryHeader ? { [canaryHeader[0]]: canaryHeader[1] } : {};
    record(report, canary, await httpGetOnce(agent, url, { headers, timeoutMs: 5000, sockets }));
    if (i === 0) console.log(JSON.stringify({ started: true }));
    if (interval > 0) await sleep(interval);
  }
  finished = true;
  await watching;
  report.connections = sockets.size;
  agent.destroy();
  await print(report);
}

type GreeterClient = Grpc.Client & {
  sayHello(req: unknown, md: Grpc.Metadata, opts: Grpc.CallOptions, cb: (e: Grpc.ServiceError | null, r?: HelloReply) => void): void;
};

/** --target HOST:PORT --calls N [--header "name: value"] [--alternate]. */
async function grpcLoad(flags: Flags): Promise<void> {
  const grpc = await import('@grpc/grpc-js');
  const { GREETER_SERVICE } = await import('tsmesh/demo');
  const Client = grpc.makeGenericClientConstructor(GREETER_SERVICE, 'Greeter');
  const client = new Client(flags.one('target') ?? '', grpc.credentials.createInsecure()) as unknown as GreeterClient;
  const canaryHeader = header(flags.one('header'));
  const alternate = flags.has('alternate');
  const report: LoadReport = { ok: 0, failed: 0, errors: [], counts: {}, connections: 1, answers: [], config: [] };
  const calls = flags.num('calls', 100);
  for (let i = 0; i < calls && !stopping; i++) {
    const canary: 0 | 1 = canaryHeader !== undefined && (!alternate || i % 2 === 1) ? 1 : 0;
    const metadata = new grpc.Metadata();
    if (canary && canaryHeader) metadata.add(canaryHeader[0], canaryHeader[1]);
    const reply = await new Promise<HelloReply | Error>((resolve) => {
      client.sayHello({ name: `call-${i}` }, metadata, { deadline: Date.now() + 5000 }, (e, r) => resolve(e ?? r ?? new Error('empty reply')));
    });
    record(report, canary, reply);
  }
  client.close();
  await print(report);
}

/** --ca HOST:PORT --token-file F --trust-bundle F --spiffe-id ID --cert F --key F. */
async function issueCert(flags: Flags): Promise<void> {
  const { generateWorkloadCsr, requestCertificate } = await import('@tsmesh/ca');
  const required = (name: string): string => {
    const value = flags.one(name);
    if (!value) throw new Error(`--${name} is required`);
    return value;
  };
  const { keyPem, csrPem } = generateWorkloadCsr(required('spiffe-id'));
  const answer = await requestCertificate({
    caAddr: required('ca'),
    token: (await readFile(required('token-file'), 'utf8')).trim(),
    trustBundlePem: await readFile(required('trust-bundle'), 'utf8'),
    csrPem,
  });
  if (!answer.ok) throw answer.error;
  writeFileSync(required('cert'), answer.value.certChain.join(''));
  writeFileSync(required('key'), keyPem, { mode: 0o600 });
  await print({ expiresAt: answer.value.expiresAt });
}

async function main(): Promise<void> {
  const [kind, ...rest] = process.argv.slice(2);
  const flags = parseFlags(rest);
  switch (kind) {
    case 'http-load':
      return httpLoad(flags);
    case 'grpc-load':
      return grpcLoad(flags);
    case 'issue-cert':
      return issueCert(flags);
    case 'config':
      return print(await configState());
    default:
      throw new Error(`unknown probe "${kind}"`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`routing probe: ${(error as Error).message}`);
    process.exit(1);
  },
);
