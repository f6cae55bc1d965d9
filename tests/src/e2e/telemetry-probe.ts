// A client for the telemetry suite that sends requests with the trace headers an application
// chose (the sample clients send none): `node telemetry-probe.ts '<ProbeRequest JSON>'` in a pod
// (Node strips the types) prints one `{"result": ProbeReply[]}` line. The suite calls `probe()`.
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { GREETER_SERVICE, type HelloReply, type Pod } from 'tsmesh/demo';

export interface ProbeRequest {
  readonly protocol: 'http1' | 'grpc';
  /** `ip:port`: a Service's cluster IP, so the pod's sidecar captures it. */
  readonly target: string;
  /** HTTP/1.1 only; default `/`. */
  readonly path?: string;
  /** Sent with every request (gRPC: as metadata). */
  readonly headers?: Readonly<Record<string, string>>;
  /** How many requests, one after the other on one connection. Default 1. */
  readonly count?: number;
}

export interface ProbeReply {
  /** HTTP status, or the gRPC status code. */
  readonly status: number;
  /** The server that answered, `''` on failure. */
  readonly server: string;
  /** The trace headers the server application received (the sample servers echo them). */
  readonly seen: Readonly<Record<string, string>>;
  readonly error?: string;
}

const PROBE_MAIN = fileURLToPath(import.meta.url);

/** Runs the probe in `pod` and returns one reply per request. */
export async function probe(pod: Pod, request: ProbeRequest): Promise<ProbeReply[]> {
  const out = await pod.exec(process.execPath, [PROBE_MAIN, JSON.stringify(request)]);
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{"result"'));
  if (!line) throw new Error(`the probe in ${pod.name} printed no result: ${out.slice(-500)}`);
  return (JSON.parse(line) as { result: ProbeReply[] }).result;
}

async function httpRequests(request: ProbeRequest): Promise<ProbeReply[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const replies: ProbeReply[] = [];
  for (let i = 0; i < (request.count ?? 1); i++) {
    replies.push(
      await new Promise<ProbeReply>((resolve) => {
        const req = http.get(`http://${request.target}${request.path ?? '/'}`, { agent, headers: { ...request.headers } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString('utf8')));
          res.on('end', () => {
            try {
              const parsed = JSON.parse(body) as { server: string; headers: Record<string, string> };
              resolve({ status: res.statusCode ?? 0, server: parsed.server, seen: parsed.headers });
            } catch {
              resolve({ status: res.statusCode ?? 0, server: '', seen: {}, error: body.slice(0, 200) });
            }
          });
        });
        req.on('error', (error) => resolve({ status: 0, server: '', seen: {}, error: error.message }));
      }),
    );
  }
  agent.destroy();
  return replies;
}

async function grpcCalls(request: ProbeRequest): Promise<ProbeReply[]> {
  const Client = grpc.makeGenericClientConstructor(GREETER_SERVICE, 'Greeter');
  const client = new Client(request.target, grpc.credentials.createInsecure()) as unknown as {
    sayHello(req: unknown, metadata: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: HelloReply) => void): void;
    close(): void;
  };
  const replies: ProbeReply[] = [];
  for (let i = 0; i < (request.count ?? 1); i++) {
    const metadata = new grpc.Metadata();
    for (const [name, value] of Object.entries(request.headers ?? {})) metadata.set(name, value);
    replies.push(
      await new Promise<ProbeReply>((resolve) => {
        client.sayHello({ name: 'probe' }, metadata, { deadline: Date.now() + 5000 }, (error, reply) => {
          if (error) resolve({ status: error.code, server: '', seen: {}, error: error.message });
          else resolve({ status: grpc.status.OK, server: reply?.server ?? '', seen: reply?.meta ?? {} });
        });
      }),
    );
  }
  client.close();
  return replies;
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as ProbeRequest;
  const result = request.protocol === 'grpc' ? await grpcCalls(request) : await httpRequests(request);
  console.log(JSON.stringify({ result }));
}

if (process.argv[1] === PROBE_MAIN) {
  main().catch((error: unknown) => {
    console.error(`probe: ${(error as Error).message}`);
    process.exit(1);
  });
}
