// A program the traffic-policy suite runs inside pods (compiled to dist/e2e/traffic-policy-probe.js):
//   serve        HTTP/1.1, HTTP/2 (h2c) and gRPC servers with a fault each (`--http`, `--h2`, `--grpc PORT:MODE`),
//                every answer naming the replica (`x-served-by`, reply.server), and a stats server on
//                127.0.0.1:9901 giving what each port received (the suite reads it from inside the pod);
//   grpc-calls   sequential unary calls on ONE @grpc/grpc-js channel: per call the code and duration;
//   http-timeline sequential GETs on ONE keep-alive connection, each answer timestamped, while the
//                sidecar's /clusters is polled: which endpoints it holds ejected, and when.
// Each client prints one `{"result": ...}` line; `serve` prints `ready` once every port listens.
import http from 'node:http';
import http2 from 'node:http2';
import type * as Grpc from '@grpc/grpc-js';
import type { HelloReply } from 'tsmesh/demo';

import { STATS_PORT, type GrpcCall, type PortStats, type ServerStats, type TimelineAnswer, type TimelineReport } from './traffic-policy-model.js';

interface Flags {
  all(name: string): string[];
  one(name: string): string | undefined;
  num(name: string, fallback: number): number;
}

function parseFlags(argv: readonly string[]): Flags {
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) continue;
    const next = argv[i + 1];
    const value = next === undefined || next.startsWith('--') ? '' : (argv[++i] ?? '');
    values.set(arg.slice(2), [...(values.get(arg.slice(2)) ?? []), value]);
  }
  return { all: (n) => values.get(n) ?? [], one: (n) => values.get(n)?.[0], num: (n, f) => Number(values.get(n)?.[0] ?? f) };
}

function print(result: unknown): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify({ result })}\n`, () => resolve()));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function portSpec(spec: string): [number, string] {
  const [port, mode] = spec.split(':');
  return [Number(port), mode ?? 'ok'];
}

/** What node:http and node:http2's compatibility API have in common for the handler below. */
interface FaultyRequest {
  resume(): unknown;
  on(event: 'end', listener: () => void): unknown;
}
interface FaultyResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/**
 * A request handler with the fault `mode` (ok, hang, fail, flaky, down, slow) that counts into `s`,
 * the same for HTTP/1.1 and HTTP/2: every answer names the replica.
 */
function faultyHandler(name: string, s: PortStats, mode: string, slowMs: number): (req: FaultyRequest, res: FaultyResponse) => void {
  let inFlight = 0;
  return (req, res) => {
    s.received++;
    inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, inFlight);
    let done = false;
    const answer = (status: number): void => {
      if (done) return;
      done = true;
      inFlight--;
      s.statuses[String(status)] = (s.statuses[String(status)] ?? 0) + 1;
      res.writeHead(status, { 'content-type': 'application/json', 'x-served-by': name });
      res.end(JSON.stringify({ server: name, status }));
    };
    // A request given up (a hung one the proxy cut) leaves the in-flight count.
    res.on('close', () => {
      if (!done) {
        done = true;
        inFlight--;
      }
    });
    req.resume();
    req.on('end', () => {
      if (mode === 'hang') return;
      if (mode === 'fail') return answer(500);
      if (mode === 'flaky') return answer(s.received % 2 === 1 ? 503 : 200);
      if (mode === 'flaky30') return answer([1, 4, 7].includes(s.received % 10) ? 500 : 200);
      if (mode === 'down') return answer(503);
      if (mode === 'slow') return void setTimeout(() => answer(200), slowMs);
      answer(200);
    });
  };
}

/** Counts the connections of `server` into `s`: accepted, open now, most open at once. */
function countConnections(server: http.Server, s: PortStats): void {
  Object.assign(s, { connections: 0, open: 0, maxOpen: 0 });
  server.on('connection', (socket: import('node:net').Socket) => {
    s.connections = (s.connections ?? 0) + 1;
    s.open = (s.open ?? 0) + 1;
    s.maxOpen = Math.max(s.maxOpen ?? 0, s.open);
    socket.on('close', () => (s.open = (s.open ?? 1) - 1));
  });
}

async function serve(flags: Flags): Promise<void> {
  const name = flags.one('name') ?? 'unnamed';
  const slowMs = flags.num('slow-ms', 300);
  const stats: ServerStats = {};
  const track = (port: number, mode: string): PortStats => (stats[String(port)] = { mode, received: 0, statuses: {}, maxInFlight: 0 });
  const listening: Array<Promise<void>> = [];

  for (const spec of flags.all('http')) {
    const [port, mode] = portSpec(spec);
    const s = track(port, mode);
    const server = http.createServer(faultyHandler(name, s, mode, slowMs));
    countConnections(server, s);
    server.keepAliveTimeout = 60_000;
    listening.push(new Promise((resolve) => server.listen(port, '0.0.0.0', () => resolve())));
  }
  // HTTP/2 without TLS (prior knowledge), as h2load and `curl --http2-prior-knowledge` speak it.
  for (const spec of flags.all('h2')) {
    const [port, mode] = portSpec(spec);
    const server = http2.createServer(faultyHandler(name, track(port, mode), mode, slowMs));
    listening.push(new Promise((resolve) => server.listen(port, '0.0.0.0', () => resolve())));
  }

  const grpcSpecs = flags.all('grpc');
  if (grpcSpecs.length > 0) {
    const grpc = await import('@grpc/grpc-js');
    const { GREETER_SERVICE } = await import('tsmesh/demo');
    for (const spec of grpcSpecs) {
      const [port, mode] = portSpec(spec);
      const s = track(port, mode);
      const server = new grpc.Server();
      server.addService(GREETER_SERVICE, {
        sayHello: (call: Grpc.ServerUnaryCall<{ name?: string }, HelloReply>, callback: Grpc.sendUnaryData<HelloReply>) => {
          s.received++;
          const code = mode === 'unavailable' ? grpc.status.UNAVAILABLE : mode === 'hang' ? undefined : grpc.status.OK;
          if (code === undefined) return; // never answers
          s.statuses[String(code)] = (s.statuses[String(code)] ?? 0) + 1;
          if (code === grpc.status.OK) callback(null, { server: name, message: `hello ${call.request.name ?? ''} from ${name}`, meta: {} });
          else callback({ code, details: `${name} is unavailable` });
        },
      });
      listening.push(
        new Promise((resolve, reject) =>
          server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
        ),
      );
    }
  }

  const statsServer = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
  });
  listening.push(new Promise((resolve) => statsServer.listen(STATS_PORT, '127.0.0.1', () => resolve())));
  await Promise.all(listening);
  console.log('ready');
}

type GreeterClient = Grpc.Client & {
  sayHello(req: unknown, md: Grpc.Metadata, opts: Grpc.CallOptions, cb: (e: Grpc.ServiceError | null, r?: HelloReply) => void): void;
};

/** --target HOST:PORT --calls N --deadline-ms N */
async function grpcCalls(flags: Flags): Promise<void> {
  const grpc = await import('@grpc/grpc-js');
  const { GREETER_SERVICE } = await import('tsmesh/demo');
  const Client = grpc.makeGenericClientConstructor(GREETER_SERVICE, 'Greeter');
  // No retry or hedging policy of its own: what is retried, the sidecar retried.
  const client = new Client(flags.one('target') ?? '', grpc.credentials.createInsecure(), { 'grpc.enable_retries': 0 }) as unknown as GreeterClient;
  const deadlineMs = flags.num('deadline-ms', 5000);
  const calls: GrpcCall[] = [];
  for (let i = 0; i < flags.num('calls', 100); i++) {
    const started = performance.now();
    const call = await new Promise<GrpcCall>((resolve) => {
      client.sayHello({ name: `call-${i}` }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (e, r) => {
        const ms = performance.now() - started;
        resolve(e ? { code: e.code, details: e.details, ms } : { code: 0, details: '', server: r?.server, ms });
      });
    });
    calls.push(call);
  }
  client.close();
  await print(calls);
}

/** --url U --duration-ms N --interval-ms N --cluster NAME (as /clusters names it) */
async function httpTimeline(flags: Flags): Promise<void> {
  const url = flags.one('url') ?? '';
  const durationMs = flags.num('duration-ms', 3000);
  const interval = flags.num('interval-ms', 10);
  const cluster = flags.one('cluster') ?? '';
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const report: TimelineReport = { answers: [], errors: [], ejections: [] };
  const end = Date.now() + durationMs;
  const polling = (async () => {
    while (Date.now() < end) {
      try {
        const res = await fetch('http://127.0.0.1:15000/clusters', { signal: AbortSignal.timeout(1000) });
        const text = await res.text();
        const at = Date.now();
        const endpoints = endpointsOf(JSON.parse(text), cluster);
        report.ejections.push({ at, ejected: endpoints.filter((e) => e.ejected).map((e) => e.key), endpoints: endpoints.length });
      } catch (error) {
        if (report.errors.length < 20) report.errors.push(`clusters: ${(error as Error).message}`);
      }
      await sleep(25);
    }
  })();
  while (Date.now() < end) {
    const answer = await new Promise<TimelineAnswer | Error>((resolve) => {
      const req = http.get(url, { agent, timeout: 2000 }, (res) => {
        res.resume();
        res.on('end', () => resolve({ at: Date.now(), status: res.statusCode ?? 0, server: String(res.headers['x-served-by'] ?? '?') }));
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
      req.on('error', resolve);
    });
    if (answer instanceof Error) {
      if (report.errors.length < 20) report.errors.push(answer.message);
    } else report.answers.push(answer);
    await sleep(interval);
  }
  await polling;
  agent.destroy();
  await print(report);
}

interface ClusterEntryView {
  cluster: string;
  endpoints: Array<{ key: string; ejected: boolean }>;
}

/** The endpoints of the cluster named `cluster` in a /clusters answer (one entry per cluster). */
function endpointsOf(clusters: unknown, cluster: string): Array<{ key: string; ejected: boolean }> {
  const list = (Array.isArray(clusters) ? clusters : ((clusters as { clusters?: unknown }).clusters ?? [])) as ClusterEntryView[];
  return list.find((c) => c.cluster === cluster)?.endpoints.map((e) => ({ key: e.key, ejected: e.ejected })) ?? [];
}

async function main(): Promise<void> {
  const [kind, ...rest] = process.argv.slice(2);
  const flags = parseFlags(rest);
  switch (kind) {
    case 'serve':
      return serve(flags);
    case 'grpc-calls':
      return grpcCalls(flags);
    case 'http-timeline':
      return httpTimeline(flags);
    default:
      throw new Error(`unknown probe "${kind}"`);
  }
}

main().then(
  () => {
    if (process.argv[2] !== 'serve') process.exit(0);
  },
  (error: unknown) => {
    console.error(`traffic-policy probe: ${(error as Error).message}`);
    process.exit(1);
  },
);
