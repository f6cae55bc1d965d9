// The dashboard's HTTP server: read-only. It serves the page (a fixed list of static files: the
// page's own and the graph and chart libraries from node_modules) and one JSON document, the
// current view (/api/state). Every answer carries a strict Content-Security-Policy; a request
// whose Host is not the dashboard's own is refused (a DNS-rebinding page cannot read it).
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScrapeView } from './scraper.js';
import type { TraceSummary } from './traces.js';

/**
 * The page's own files, next to this module: src/dashboard/static, which the build copies to
 * dist/dashboard/static (so the image, which carries dist only, has them too).
 */
export const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** What the page reads at /api/state. */
export interface DashboardState extends ScrapeView {
  readonly traces: { readonly source: string | undefined; readonly error?: string; readonly list: readonly TraceSummary[] };
}

export interface DashboardSources {
  state(): DashboardState;
}

/** URL path → file on disk, for every file the server will ever send. */
export function staticFiles(staticDir = STATIC_DIR): Map<string, string> {
  const require = createRequire(import.meta.url);
  const cytoscape = dirname(require.resolve('cytoscape'));
  const uplot = dirname(require.resolve('uplot'));
  return new Map([
    ['/', join(staticDir, 'index.html')],
    ['/app.js', join(staticDir, 'app.js')],
    ['/app.css', join(staticDir, 'app.css')],
    ['/vendor/cytoscape.esm.min.mjs', join(cytoscape, 'cytoscape.esm.min.mjs')],
    ['/vendor/uPlot.esm.js', join(uplot, 'uPlot.esm.js')],
    ['/vendor/uPlot.min.css', join(uplot, 'uPlot.min.css')],
  ]);
}

/** Reads every static file once; throws naming the first one missing (a build without the page). */
function loadStatic(files: Map<string, string>): Map<string, { type: string; body: Buffer }> {
  const loaded = new Map<string, { type: string; body: Buffer }>();
  for (const [path, file] of files) {
    if (!existsSync(file)) throw new Error(`the dashboard's page is not part of this build (${file} is missing): run tsmesh dashboard from a clone of the repository`);
    const ext = /\.[a-z]+$/.exec(file)?.[0] ?? '';
    loaded.set(path, { type: TYPES[ext] ?? 'application/octet-stream', body: readFileSync(file) });
  }
  return loaded;
}

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
} as const;

/** Whether a Host header names this server: a loopback name or address, or the address it was told it listens on. */
export function hostAllowed(host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (host === undefined) return false;
  const name = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return name === 'localhost' || name === '127.0.0.1' || name === '::1' || allowed.has(name);
}

export interface ServerOptions {
  /** Host names besides loopback the page may be reached by (the --listen host). */
  readonly hosts?: readonly string[];
  readonly staticDir?: string;
}

export function createDashboardServer(sources: DashboardSources, options: ServerOptions = {}): http.Server {
  const files = loadStatic(staticFiles(options.staticDir));
  const hosts = new Set((options.hosts ?? []).map((h) => h.toLowerCase()));
  return http.createServer((req, res) => {
    const send = (status: number, type: string, body: string | Buffer, cache = 'no-store'): void => {
      res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': cache });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain; charset=utf-8', 'read-only: GET only\n');
    if (!hostAllowed(req.headers.host, hosts)) return send(421, 'text/plain; charset=utf-8', 'unknown Host\n');
    const path = new URL(req.url ?? '/', 'http://dashboard').pathname;
    if (path === '/api/state') return send(200, 'application/json; charset=utf-8', JSON.stringify(sources.state()));
    const file = files.get(path);
    if (file) return send(200, file.type, file.body, path.startsWith('/vendor/') ? 'max-age=3600' : 'no-store');
    send(404, 'text/plain; charset=utf-8', 'not found\n');
  });
}
