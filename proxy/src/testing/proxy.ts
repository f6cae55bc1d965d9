// Test fixture: a whole sidecar in explicit-port mode (every outbound connection is "for" one
// Service address, no iptables needed), on kernel-chosen ports, and small clients for its ports.
import http from 'node:http';
import { parseProxyConfig } from '../config.js';
import { startProxy, type RunningProxy } from '../proxy.js';

/** The cluster IP tests give their Service; the proxy treats every outbound connection as addressed to it. */
export const SERVICE_IP = '10.96.0.10';
export const SERVICE_PORT = 80;

export interface TestProxyOptions {
  /** `HOST:PORT` every outbound connection is for; default SERVICE_IP:SERVICE_PORT. */
  readonly outboundTarget?: string;
  readonly inboundTarget?: string;
  readonly env?: Record<string, string>;
  readonly args?: readonly string[];
  /** Event loops (`--concurrency`); default 1: the whole sidecar in the test's thread. */
  readonly concurrency?: number;
}

export function startTestProxy(meshFile: string, options: TestProxyOptions = {}): Promise<RunningProxy> {
  const argv = [
    '--config', meshFile,
    '--outbound-port', '0', '--inbound-port', '0', '--admin-port', '0', '--health-port', '0',
    '--bind', '127.0.0.1',
    '--outbound-target', options.outboundTarget ?? `${SERVICE_IP}:${SERVICE_PORT}`,
    ...(options.inboundTarget ? ['--inbound-target', options.inboundTarget] : []),
    '--concurrency', String(options.concurrency ?? 1),
    ...(options.args ?? []),
  ];
  return startProxy(parseProxyConfig(argv, { TSMESH_LOG_LEVEL: 'silent', ...options.env }));
}

export interface SimpleResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request on a fresh connection (no agent); resolves with the whole response. */
export function fetchText(port: number, path: string, init: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string; agent?: http.Agent } = {}): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: init.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** `GET` on the admin port, parsed as JSON. */
export async function adminJson<T = unknown>(proxy: RunningProxy, path: string): Promise<T> {
  const res = await fetchText(proxy.ports.admin, path);
  if (res.status !== 200) throw new Error(`admin ${path}: HTTP ${res.status} ${res.body}`);
  return JSON.parse(res.body) as T;
}

export interface ClusterStats {
  cluster: string;
  endpoints: Array<{ key: string; port: number; ejected: boolean; inFlight: number }>;
}

/** The admin /clusters entry of the test Service's cluster. */
export async function clusterStats(proxy: RunningProxy, key = `default/svc:${SERVICE_PORT}`): Promise<ClusterStats> {
  const all = await adminJson<ClusterStats[]>(proxy, '/clusters');
  const found = all.find((c) => c.cluster === key);
  if (!found) throw new Error(`no cluster ${key} in /clusters (${all.map((c) => c.cluster).join(', ')})`);
  return found;
}
