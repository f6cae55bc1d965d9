// Rewritten application probes (SPEC: /app-health/<container>/<livez|readyz|startupz>): the
// kubelet asks the sidecar, which runs the application's original probe locally, so probes
// keep working under STRICT mTLS. Probe shapes are the Kubernetes ones the injector recorded.
import type * as http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import net from 'node:net';
import { nodeHttp } from '@tsmesh/common';

/** node:http2 costs 6 MiB of RSS once loaded: only a gRPC probe loads it. */
const require = createRequire(import.meta.url);

export interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
}

interface HttpGetProbe {
  httpGet: { path?: string; port: number; host?: string; scheme?: string; httpHeaders?: Array<{ name: string; value: string }> };
  timeoutSeconds?: number;
}
interface TcpProbe {
  tcpSocket: { port: number; host?: string };
  timeoutSeconds?: number;
}
interface GrpcProbe {
  grpc: { port: number; service?: string };
  timeoutSeconds?: number;
}

type Probe = HttpGetProbe | TcpProbe | GrpcProbe;

/** Runs one recorded probe against the application on `host` (the pod IP or 127.0.0.1). */
export async function runProbe(probe: unknown, host: string): Promise<ProbeResult> {
  const p = probe as Probe;
  const timeoutMs = Math.max(1, (p as { timeoutSeconds?: number }).timeoutSeconds ?? 1) * 1000;
  if ('httpGet' in p && p.httpGet) return httpProbe(p.httpGet, host, timeoutMs);
  if ('tcpSocket' in p && p.tcpSocket) return tcpProbe(p.tcpSocket.port, p.tcpSocket.host ?? host, timeoutMs);
  if ('grpc' in p && p.grpc) return grpcProbe(p.grpc.port, p.grpc.service ?? '', host, timeoutMs);
  return { ok: false, detail: 'unsupported probe' };
}

function httpProbe(get: HttpGetProbe['httpGet'], host: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'user-agent': 'tsmesh-probe' };
    for (const h of get.httpHeaders ?? []) headers[h.name] = h.value;
    const options = { host: get.host ?? host, port: get.port, path: get.path ?? '/', headers, timeout: timeoutMs };
    const onResponse = (res: http.IncomingMessage): void => {
      res.resume();
      const status = res.statusCode ?? 0;
      // Kubernetes counts 200..399 as success.
      resolve({ ok: status >= 200 && status < 400, detail: `HTTP ${status}` });
    };
    // scheme HTTPS: TLS without certificate verification, as the kubelet does.
    const req = get.scheme?.toUpperCase() === 'HTTPS' ? https.get({ ...options, rejectUnauthorized: false }, onResponse) : nodeHttp.get(options, onResponse);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ ok: false, detail: e.message }));
  });
}

function tcpProbe(port: number, host: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve({ ok: true, detail: 'connected' });
    });
    socket.once('timeout', () => socket.destroy(new Error('timeout')));
    socket.once('error', (e) => resolve({ ok: false, detail: e.message }));
  });
}

/** grpc.health.v1.Health/Check with a hand-encoded request (field 1: service name). */
function grpcProbe(port: number, service: string, host: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const name = Buffer.from(service, 'utf8');
    const message = name.length > 0 ? Buffer.concat([Buffer.from([0x0a, name.length]), name]) : Buffer.alloc(0);
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    const http2 = require('node:http2') as typeof import('node:http2');
    const session = http2.connect(`http://${host.includes(':') ? `[${host}]` : host}:${port}`);
    const done = (r: ProbeResult): void => {
      clearTimeout(timer);
      session.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, detail: 'timeout' }), timeoutMs);
    session.on('error', (e) => done({ ok: false, detail: e.message }));
    const req = session.request({ ':method': 'POST', ':path': '/grpc.health.v1.Health/Check', 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      grpcStatus = String(t['grpc-status'] ?? grpcStatus);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // Response: field 1 (status) varint; 1 = SERVING.
      const serving = body.length >= 7 && body[5] === 0x08 && body[6] === 0x01;
      done({ ok: grpcStatus === '0' && serving, detail: `grpc-status ${grpcStatus ?? 'none'}${serving ? ' SERVING' : ''}` });
    });
    req.on('error', (e) => done({ ok: false, detail: e.message }));
    req.end(frame);
  });
}
