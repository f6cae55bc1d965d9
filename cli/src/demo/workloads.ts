// The sample applications the demo and the end-to-end tests run inside pods: a gRPC greeter,
// an HTTP echo server, a server-first TCP banner service, and clients that report how their
// requests spread over the replicas. gRPC messages are JSON-encoded (no .proto to ship).
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import net from 'node:net';

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (buf: Buffer): unknown => JSON.parse(buf.toString('utf8')),
};

export const GREETER_SERVICE = {
  sayHello: {
    path: '/tsmesh.demo.Greeter/SayHello',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} satisfies grpc.ServiceDefinition;

export interface HelloReply {
  server: string;
  message: string;
  /** Headers the server saw (identity and tracing headers the mesh added). */
  meta: Record<string, string>;
}

const SHOWN_HEADERS = ['x-forwarded-client-cert', 'traceparent', 'b3', 'x-b3-traceid', 'x-request-id'];

/** The greeter on every address of the pod: IPv6 and IPv4 where the machine has IPv6, else IPv4. */
export async function startGrpcServer(port: number, name: string): Promise<grpc.Server> {
  try {
    return (await listenGrpcServer('[::]', port, name)).server;
  } catch {
    return (await listenGrpcServer('0.0.0.0', port, name)).server;
  }
}

/** The greeter on `host:port` (0: a port the kernel picks), with the port it got. */
export function listenGrpcServer(host: string, port: number, name: string): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(GREETER_SERVICE, {
    sayHello: (call: grpc.ServerUnaryCall<{ name?: string }, HelloReply>, callback: grpc.sendUnaryData<HelloReply>) => {
      const meta: Record<string, string> = {};
      for (const h of SHOWN_HEADERS) {
        const v = call.metadata.get(h);
        if (v.length > 0) meta[h] = String(v[0]);
      }
      callback(null, { server: name, message: `hello ${call.request.name ?? 'world'} from ${name}`, meta });
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error === null) return resolve({ server, port: bound });
      server.forceShutdown();
      reject(error);
    });
  });
}

export function startHttpServer(port: number, name: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const h of SHOWN_HEADERS) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
      const body = JSON.stringify({ server: name, method: req.method, url: req.url, bodyBytes: bytes, headers, remotePort: req.socket.remotePort, localAddress: req.socket.localAddress });
      res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name });
      res.end(body);
    });
  });
  // No host: every address of the pod, IPv6 too where the machine has it (as most servers listen).
  return new Promise((resolve) => server.listen(port, () => resolve(server)));
}

/** Server-first: greets every connection before the client says anything, then echoes. */
export function startBannerServer(port: number, name: string): Promise<net.Server> {
  const server = net.createServer((socket) => {
    // An IPv4 peer of a dual-stack listener shows as ::ffff:a.b.c.d; say it as IPv4.
    const peer = socket.remoteAddress?.replace(/^::ffff:(?=\d+\.)/, '');
    socket.write(`hello from ${name} (you are ${peer}:${socket.remotePort})\n`);
    socket.pipe(socket);
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve) => server.listen(port, () => resolve(server)));
}

export interface SpreadResult {
  counts: Record<string, number>;
  ok: number;
  failed: number;
  errors: string[];
  /** Per call, in order: the server that answered or `!error`. */
  timeline: string[];
  sample?: HelloReply | undefined;
}

export interface GrpcClientOptions {
  readonly target: string;
  readonly calls: number;
  readonly intervalMs?: number;
  /** Called after each call (1-based count) so a driver can act mid-run; the next call waits for what it returns. */
  readonly onProgress?: (done: number) => void | Promise<void>;
}

/** Sends `calls` unary calls over ONE channel (one HTTP/2 connection) and counts who answered. */
export async function runGrpcClient(options: GrpcClientOptions): Promise<SpreadResult> {
  const Client = grpc.makeGenericClientConstructor(GREETER_SERVICE, 'Greeter');
  const client = new Client(options.target, grpc.credentials.createInsecure()) as unknown as {
    sayHello(req: unknown, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: HelloReply) => void): void;
    close(): void;
  };
  const result: SpreadResult = { counts: {}, ok: 0, failed: 0, errors: [], timeline: [] };
  for (let i = 1; i <= options.calls; i++) {
    const reply = await new Promise<HelloReply | Error>((resolve) => {
      client.sayHello({ name: `call-${i}` }, { deadline: Date.now() + 5000 }, (e, r) => resolve(e ?? r ?? new Error('empty reply')));
    });
    if (reply instanceof Error) {
      result.failed++;
      if (result.errors.length < 20) result.errors.push(reply.message);
      result.timeline.push('!error');
    } else {
      result.ok++;
      result.counts[reply.server] = (result.counts[reply.server] ?? 0) + 1;
      result.timeline.push(reply.server);
      result.sample ??= reply;
    }
    await options.onProgress?.(i);
    if (options.intervalMs) await new Promise((r) => setTimeout(r, options.intervalMs));
  }
  client.close();
  return result;
}

/**
 * One GET to a demo HTTP server on `agent`: its JSON answer, or the failure as an Error (a status
 * other than 200, a body that is not JSON, a connection error, no answer within `timeoutMs`). The
 * socket it went over is added to `sockets`, so a caller can count connections.
 */
export function httpGetOnce(
  agent: http.Agent,
  url: string,
  options: { readonly headers?: Record<string, string>; readonly timeoutMs?: number; readonly sockets?: Set<unknown> } = {},
): Promise<{ server: string } | Error> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, headers: options.headers, timeout: options.timeoutMs }, (res) => {
      options.sockets?.add(res.socket);
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(new Error(`HTTP ${res.statusCode}: ${body.slice(0, 200)}`));
        try {
          resolve(JSON.parse(body) as { server: string });
        } catch {
          resolve(new Error(`bad body ${body.slice(0, 100)}`));
        }
      });
      res.on('error', resolve);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 0} ms`)));
    req.on('error', resolve);
  });
}

/** Sends `requests` HTTP/1.1 requests over ONE keep-alive connection and counts who answered. */
export async function runHttpClient(url: string, requests: number): Promise<SpreadResult & { connections: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<unknown>();
  const result: SpreadResult & { connections: number } = { counts: {}, ok: 0, failed: 0, errors: [], timeline: [], connections: 0 };
  for (let i = 0; i < requests; i++) {
    const outcome = await httpGetOnce(agent, url, { sockets });
    if (outcome instanceof Error) {
      result.failed++;
      if (result.errors.length < 20) result.errors.push(outcome.message);
    } else {
      result.ok++;
      result.counts[outcome.server] = (result.counts[outcome.server] ?? 0) + 1;
    }
  }
  result.connections = sockets.size;
  agent.destroy();
  return result;
}

/** Connects, waits for the server's first line without sending anything, and reports it. */
export function readBanner(host: string, port: number, timeoutMs = 5000): Promise<{ banner: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error('no banner before timeout')), timeoutMs);
    let data = '';
    socket.on('data', (c: Buffer) => {
      data += c.toString();
      const nl = data.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        const localPort = socket.localPort ?? 0;
        socket.end();
        resolve({ banner: data.slice(0, nl), localPort });
      }
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
