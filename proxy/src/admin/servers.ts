// The sidecar's own HTTP endpoints. Admin (127.0.0.1:15000): an index at /, /server_info,
// /config_dump, /clusters, /certs, /authz/check, /logging. Health (:15020): /healthz/ready, /healthz/live, /metrics, /app-health/...
import type * as http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { logger, nodeHttp, setLogLevel } from '@tsmesh/common';
import { runProbe } from './app-health.js';
import { AUTHZ_CHECK_USAGE, authzCheck } from './authz-check.js';
import { BUILD_INFO } from '../telemetry/metrics.js';
import type { WorkloadAuthorization } from '../policy/authorization.js';

const log = logger('admin');

/** One endpoint of the admin server, as its index (`GET /`) lists it. */
export interface AdminEndpoint {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly what: string;
}

/** Every endpoint of the admin server; `GET /` lists them (`/authz/check` only where policies are known). */
export const ADMIN_ENDPOINTS: readonly AdminEndpoint[] = Object.freeze([
  { method: 'GET', path: '/', what: 'this index (JSON with Accept: application/json)' },
  { method: 'GET', path: '/server_info', what: 'the proxy version, its Node.js version and uptime' },
  { method: 'GET', path: '/config_dump', what: 'the mesh in force: its version and source, the identity, the inbound mTLS modes, Services, pods and other objects' },
  { method: 'GET', path: '/clusters', what: 'each cluster (Service port) and its endpoints: requests in flight, ejection, open connections' },
  { method: 'GET', path: '/certs', what: 'the workload certificate, its chain, the trust bundle and the next renewal' },
  { method: 'GET', path: '/authz/check', what: `which AuthorizationPolicy decides a request and why: ${AUTHZ_CHECK_USAGE}` },
  { method: 'GET', path: '/logging', what: 'the log level' },
  { method: 'POST', path: '/logging', what: 'changes the log level: POST /logging?level=<trace|debug|info|warn|error|fatal|silent>' },
] as const);

function index(req: IncomingMessage, url: URL, res: ServerResponse, sources: AdminSources): void {
  const endpoints = ADMIN_ENDPOINTS.filter((e) => e.path !== '/authz/check' || sources.authorization !== undefined);
  if (url.searchParams.get('format') === 'json' || (req.headers.accept ?? '').includes('application/json')) {
    return send(res, 200, { component: BUILD_INFO.component, version: BUILD_INFO.version, endpoints });
  }
  const width = Math.max(...endpoints.map((e) => `${e.method} ${e.path}`.length));
  const lines = endpoints.map((e) => `${`${e.method} ${e.path}`.padEnd(width)}  ${e.what}`);
  send(res, 200, `tsmesh sidecar admin (proxy ${BUILD_INFO.version})\n\n${lines.join('\n')}\n`, 'text/plain; charset=utf-8');
}

export interface AdminSources {
  configDump(): unknown;
  /** Per-cluster endpoint stats; a promise when they are gathered from every event loop. */
  clusters(): unknown;
  certs(): unknown;
  /** The workload's compiled AuthorizationPolicies, for `GET /authz/check`. */
  authorization?(): WorkloadAuthorization;
  /** Called after `POST /logging` changed this thread's level, to pass it on (to every event loop). */
  logLevelChanged?(level: string): void;
}

export interface HealthSources {
  /** Undefined when ready, else the reason it is not. */
  notReadyReason(): string | undefined;
  metrics(): Promise<{ contentType: string; body: string }>;
  readonly appProbes: Readonly<Record<string, unknown>>;
  /** Where the application listens (the pod IP or 127.0.0.1). */
  readonly appHost: string;
}

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function route(handler: (req: IncomingMessage, url: URL, res: ServerResponse) => Promise<void> | void): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    Promise.resolve(handler(req, url, res)).catch((error: unknown) => {
      log.error({ err: (error as Error).message, path: url.pathname }, 'admin handler failed');
      if (!res.headersSent) send(res, 500, { error: (error as Error).message });
    });
  };
}

export function createAdminServer(sources: AdminSources): http.Server {
  return nodeHttp.createServer(
    route((req, url, res) => {
      if (req.method === 'GET' && url.pathname === '/') return index(req, url, res, sources);
      if (req.method === 'GET' && url.pathname === '/server_info') return send(res, 200, { ...BUILD_INFO, uptimeSeconds: Math.floor(process.uptime()) });
      if (req.method === 'GET' && url.pathname === '/config_dump') return send(res, 200, sources.configDump());
      if (req.method === 'GET' && url.pathname === '/clusters') return Promise.resolve(sources.clusters()).then((clusters) => send(res, 200, clusters));
      if (req.method === 'GET' && url.pathname === '/certs') return send(res, 200, sources.certs());
      if (req.method === 'GET' && url.pathname === '/authz/check' && sources.authorization) {
        const answer = authzCheck(sources.authorization(), url.searchParams);
        return send(res, answer.status, answer.body);
      }
      if (req.method === 'GET' && url.pathname === '/logging') return send(res, 200, { level: log.level });
      if (req.method === 'POST' && url.pathname === '/logging') {
        const level = url.searchParams.get('level');
        if (!level) return send(res, 400, { error: 'missing ?level=' });
        try {
          setLogLevel(level);
        } catch (error) {
          return send(res, 400, { error: (error as Error).message });
        }
        sources.logLevelChanged?.(level);
        log.info({ level }, 'log level changed');
        return send(res, 200, { level });
      }
      send(res, 404, { error: `no admin endpoint ${req.method} ${url.pathname}; GET / lists them` });
    }),
  );
}

const PROBE_KINDS = new Set(['livez', 'readyz', 'startupz']);

export function createHealthServer(sources: HealthSources): http.Server {
  return nodeHttp.createServer(
    route(async (req, url, res) => {
      if (req.method !== 'GET') return send(res, 405, { error: 'GET only' });
      if (url.pathname === '/healthz/live') return send(res, 200, 'live\n', 'text/plain');
      if (url.pathname === '/healthz/ready') {
        const reason = sources.notReadyReason();
        return reason === undefined ? send(res, 200, 'ready\n', 'text/plain') : send(res, 503, `not ready: ${reason}\n`, 'text/plain');
      }
      if (url.pathname === '/metrics') {
        const { contentType, body } = await sources.metrics();
        return send(res, 200, body, contentType);
      }
      const m = /^\/app-health\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (m && PROBE_KINDS.has(m[2] ?? '')) {
        const probe = sources.appProbes[`${m[1]}/${m[2]}`];
        if (!probe) return send(res, 404, { error: `no ${m[2]} probe recorded for container ${m[1]}` });
        const result = await runProbe(probe, sources.appHost);
        return send(res, result.ok ? 200 : 503, `${result.detail}\n`, 'text/plain');
      }
      send(res, 404, { error: `no endpoint ${url.pathname}` });
    }),
  );
}
