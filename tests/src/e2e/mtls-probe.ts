// A client the mTLS suite runs inside pods (compiled to dist/e2e/mtls-probe.js): single HTTP and
// gRPC calls that can send any header (a forged x-forwarded-client-cert), continuous gRPC load on
// one channel, and a loop of short TCP connections (every one a new mTLS handshake between the
// sidecars). Prints one `{"result": ...}` line; the loops run until SIGTERM or --duration-ms.
// gRPC and the demo are loaded only by the gRPC probes: admin and HTTP calls start fast.
import http from 'node:http';
import net from 'node:net';
import type * as Grpc from '@grpc/grpc-js';
import type { HelloReply } from 'tsmesh/demo';

export interface LoadResult {
  ok: number;
  failed: number;
  /** The first errors, each `<ms since start> <message>`. */
  errors: string[];
  counts: Record<string, number>;
  durationMs: number;
}

export interface GrpcCallResult {
  ok: boolean;
  code?: number;
  message?: string;
  reply?: HelloReply;
}

/** An open-loop HTTP load: responses by status, per whole second since the start (by arrival). */
export interface RateResult {
  sent: number;
  statuses: Record<string, number>;
  perSecond: Array<Record<string, number>>;
  /** The `retry-after` values of the 429s, counted (`none` when absent). */
  retryAfter: Record<string, number>;
  /** When (epoch ms, this host's clock) the first and the last response of each status arrived. */
  firstAt: Record<string, number>;
  lastAt: Record<string, number>;
  /**
   * When the first and the last request answered with each status had been written out whole
   * (epoch ms): what a policy saw at that moment, without the time the answer then took to come back.
   */
  firstSentAt: Record<string, number>;
  lastSentAt: Record<string, number>;
  errors: string[];
  durationMs: number;
}

/** Sequential gRPC calls on one channel: each status code, and each failure's `retry-after` metadata. */
export interface GrpcBurstResult {
  codes: number[];
  retryAfter: string[];
}

interface Flags {
  one(name: string): string | undefined;
  all(name: string): string[];
  num(name: string, fallback: number): number;
}

function parseFlags(argv: readonly string[]): Flags {
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i += 2) {
    const name = (argv[i] ?? '').replace(/^--/, '');
    values.set(name, [...(values.get(name) ?? []), argv[i + 1] ?? '']);
  }
  return {
    one: (name) => values.get(name)?.[0],
    all: (name) => values.get(name) ?? [],
    num: (name, fallback) => Number(values.get(name)?.[0] ?? fallback),
  };
}

/** `name: value` pairs. */
function headerPairs(flags: Flags): Array<[string, string]> {
  return flags.all('header').map((h) => {
    const colon = h.indexOf(':');
    return [h.slice(0, colon).trim().toLowerCase(), h.slice(colon + 1).trim()];
  });
}

function print(result: unknown): void {
  console.log(JSON.stringify({ result }));
}

let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

/** Resolves after `ms` or as soon as SIGTERM arrives. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    const poll = setInterval(() => stopping && done(), 20);
    function done(): void {
      clearTimeout(timer);
      clearInterval(poll);
      resolve();
    }
  });
}

async function httpCall(flags: Flags): Promise<void> {
  try {
    const res = await fetch(flags.one('url') ?? '', { headers: headerPairs(flags), signal: AbortSignal.timeout(flags.num('timeout-ms', 5000)) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    print({ status: res.status, body });
  } catch (error) {
    const e = error as Error & { cause?: { code?: string; message?: string } };
    print({ status: 0, error: `${e.message}${e.cause ? `: ${e.cause.code ?? ''} ${e.cause.message ?? ''}` : ''}` });
  }
}

type GreeterClient = Grpc.Client & {
  sayHello(req: unknown, md: Grpc.Metadata, opts: Grpc.CallOptions, cb: (e: Grpc.ServiceError | null, r?: HelloReply) => void): void;
};

async function greeter(target: string): Promise<{ client: GreeterClient; grpc: typeof Grpc }> {
  const grpc = await import('@grpc/grpc-js');
  const { GREETER_SERVICE } = await import('tsmesh/demo');
  const Client = grpc.makeGenericClientConstructor(GREETER_SERVICE, 'Greeter');
  return { client: new Client(target, grpc.credentials.createInsecure()) as unknown as GreeterClient, grpc };
}

function sayHello(client: GreeterClient, metadata: Grpc.Metadata, deadlineMs: number): Promise<HelloReply | Grpc.ServiceError> {
  return new Promise((resolve) => {
    client.sayHello({ name: 'probe' }, metadata, { deadline: Date.now() + deadlineMs }, (e, r) =>
      resolve(e ?? r ?? (Object.assign(new Error('empty reply'), { code: 2 }) as Grpc.ServiceError)),
    );
  });
}

async function grpcCall(flags: Flags): Promise<void> {
  const { client, grpc } = await greeter(flags.one('target') ?? '');
  const metadata = new grpc.Metadata();
  for (const [name, value] of headerPairs(flags)) metadata.add(name, value);
  const reply = await sayHello(client, metadata, flags.num('timeout-ms', 5000));
  client.close();
  if (reply instanceof Error) print({ ok: false, code: reply.code, message: reply.message } satisfies GrpcCallResult);
  else print({ ok: true, reply } satisfies GrpcCallResult);
}

function newLoadResult(): LoadResult {
  return { ok: 0, failed: 0, errors: [], counts: {}, durationMs: 0 };
}

function recordFailure(result: LoadResult, started: number, message: string): void {
  result.failed++;
  if (result.errors.length < 20) result.errors.push(`${Date.now() - started} ${message}`);
}

/** Sequential unary calls over ONE channel until SIGTERM or --duration-ms. */
async function grpcLoad(flags: Flags): Promise<void> {
  const { client, grpc } = await greeter(flags.one('target') ?? '');
  const interval = flags.num('interval-ms', 20);
  const started = Date.now();
  const until = started + flags.num('duration-ms', 3_600_000);
  const result = newLoadResult();
  console.log(JSON.stringify({ started: true }));
  while (!stopping && Date.now() < until) {
    const reply = await sayHello(client, new grpc.Metadata(), 5000);
    if (reply instanceof Error) recordFailure(result, started, reply.message);
    else {
      result.ok++;
      result.counts[reply.server] = (result.counts[reply.server] ?? 0) + 1;
    }
    await pause(interval);
  }
  client.close();
  result.durationMs = Date.now() - started;
  print(result);
}

/**
 * Open-loop GETs of --url at --rate per second for --duration-ms, over --connections keep-alive
 * HTTP/1.1 connections (requests wait for a free one, so the offered rate holds while answers are fast).
 */
async function httpRate(flags: Flags): Promise<void> {
  const url = new URL(flags.one('url') ?? '');
  const rate = flags.num('rate', 10);
  const duration = flags.num('duration-ms', 3000);
  const agent = new http.Agent({ keepAlive: true, maxSockets: flags.num('connections', 4) });
  const result: RateResult = { sent: 0, statuses: {}, perSecond: [], retryAfter: {}, firstAt: {}, lastAt: {}, firstSentAt: {}, lastSentAt: {}, errors: [], durationMs: 0 };
  const started = performance.now();
  const count = (record: Record<string, number>, key: string): void => void (record[key] = (record[key] ?? 0) + 1);
  const pending = new Set<Promise<void>>();
  const one = (): Promise<void> =>
    new Promise<void>((resolve) => {
      let sentAt = 0;
      const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          const status = String(res.statusCode ?? 0);
          count(result.statuses, status);
          const now = Date.now();
          result.firstAt[status] ??= now;
          result.lastAt[status] = now;
          result.firstSentAt[status] = Math.min(result.firstSentAt[status] ?? Infinity, sentAt);
          result.lastSentAt[status] = Math.max(result.lastSentAt[status] ?? 0, sentAt);
          const second = Math.floor((performance.now() - started) / 1000);
          while (result.perSecond.length <= second) result.perSecond.push({});
          count(result.perSecond[second] as Record<string, number>, status);
          if (status === '429') count(result.retryAfter, String(res.headers['retry-after'] ?? 'none'));
          resolve();
        });
      });
      // 'finish': the request is written to a socket (it may have waited for a free connection first).
      req.on('finish', () => (sentAt = Date.now()));
      req.on('error', (e) => {
        if (result.errors.length < 20) result.errors.push(e.message);
        resolve();
      });
    });
  while (performance.now() - started < duration) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (result.sent < due) {
      result.sent++;
      const p = one();
      pending.add(p);
      void p.then(() => pending.delete(p));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(pending);
  agent.destroy();
  result.durationMs = Math.round(performance.now() - started);
  print(result);
}

/** --count sequential calls on one channel. */
async function grpcBurst(flags: Flags): Promise<void> {
  const { client, grpc } = await greeter(flags.one('target') ?? '');
  const result: GrpcBurstResult = { codes: [], retryAfter: [] };
  for (let i = 0; i < flags.num('count', 3); i++) {
    const reply = await sayHello(client, new grpc.Metadata(), 5000);
    if (reply instanceof Error) {
      result.codes.push(reply.code);
      result.retryAfter.push(String(reply.metadata?.get('retry-after')[0] ?? 'none'));
    } else result.codes.push(0);
  }
  client.close();
  print(result);
}

/** Connects, reads the server's first line, closes. */
function bannerOnce(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error('no banner before timeout')), timeoutMs);
    let data = '';
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString();
      const nl = data.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(data.slice(0, nl));
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`closed before a banner (got "${data}")`));
    });
  });
}

/** One new TCP connection after another until SIGTERM or --duration-ms; counts banners by server. */
async function tcpLoop(flags: Flags): Promise<void> {
  const host = flags.one('host') ?? '';
  const port = flags.num('port', 7000);
  const interval = flags.num('interval-ms', 50);
  const started = Date.now();
  const until = started + flags.num('duration-ms', 3_600_000);
  const result = newLoadResult();
  console.log(JSON.stringify({ started: true }));
  while (!stopping && Date.now() < until) {
    try {
      const banner = await bannerOnce(host, port, 5000);
      const server = /^hello from (\S+)/.exec(banner)?.[1] ?? banner;
      result.ok++;
      result.counts[server] = (result.counts[server] ?? 0) + 1;
    } catch (error) {
      recordFailure(result, started, (error as Error).message);
    }
    await pause(interval);
  }
  result.durationMs = Date.now() - started;
  print(result);
}

async function main(): Promise<void> {
  const [kind, ...rest] = process.argv.slice(2);
  const flags = parseFlags(rest);
  switch (kind) {
    case 'http':
      return httpCall(flags);
    case 'grpc-call':
      return grpcCall(flags);
    case 'grpc-load':
      return grpcLoad(flags);
    case 'tcp-loop':
      return tcpLoop(flags);
    case 'http-rate':
      return httpRate(flags);
    case 'grpc-burst':
      return grpcBurst(flags);
    default:
      throw new Error(`unknown probe "${kind}"`);
  }
}

main().then(
  // Exit once stdout is flushed: to a pipe it is written asynchronously, and a result of a few
  // hundred KiB (a sidecar's /metrics) would otherwise be cut short by the exit.
  () => process.stdout.write('', () => process.exit(0)),
  (error: unknown) => {
    console.error(`probe: ${(error as Error).message}`);
    process.exit(1);
  },
);
