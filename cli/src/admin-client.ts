// Talks to a sidecar's admin server (127.0.0.1:15000 in the pod: /server_info, /config_dump,
// /clusters, /certs, /logging) by direct address, over plain HTTP as the admin server speaks it.
import { createRequire } from 'node:module';
import { UsageError } from './command.js';

// Taken by require: an ES import of node:http reads all its exports, whose lazy WebSocket getters
// load undici (some 10 MiB), which the CLI never uses.
const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export interface AdminAddress {
  readonly host: string;
  readonly port: number;
}

/** `HOST:PORT`, `[IPv6]:PORT` or a bare `PORT` (then 127.0.0.1, where the admin server listens). */
export function parseAdminAddress(flag: string, value: string | undefined): AdminAddress {
  if (value === undefined || value === '') throw new UsageError(`${flag} needs an address, HOST:PORT or PORT`);
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$|^(\d{1,5})$/.exec(value);
  const port = Number(m?.[3] ?? m?.[4]);
  if (!m || !(port >= 1 && port <= 65535)) throw new UsageError(`${flag}: "${value}" is not HOST:PORT or PORT (1-65535)`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

export function formatAddress(address: AdminAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** What a GET answered: its status and body. */
export interface AdminResponse {
  readonly status: number;
  readonly body: string;
}

/** The largest answer read (a /config_dump of a large mesh is some MiB); a larger one is refused. */
export const MAX_ANSWER_BYTES = 128 * 1024 * 1024;

export interface AdminRequestOptions {
  /** How long the sidecar may stay silent (default 5 s). */
  readonly timeoutMs?: number;
  /** Refuse an answer larger than this (default MAX_ANSWER_BYTES). */
  readonly maxBytes?: number;
}

/** Sends `method path` to the admin server; rejects with a one-line reason naming the address. */
export function adminRequest(address: AdminAddress, method: 'GET' | 'POST', path: string, options: AdminRequestOptions = {}): Promise<AdminResponse> {
  const { timeoutMs = 5000, maxBytes = MAX_ANSWER_BYTES } = options;
  const where = `${formatAddress(address)}${path}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: address.host, port: address.port, method, path, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          reject(new Error(`${where}: the answer is larger than ${maxBytes} bytes, refused`));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (error) => reject(new Error(`${where}: ${error.message}`, { cause: error })));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (error) => reject(new Error(`cannot reach the sidecar's admin server at ${where}: ${error.message}`, { cause: error })));
    req.end();
  });
}

/** `text` on one line (whitespace runs made one space, control characters dropped), cut to `max`. */
function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, max);
}

/** Sends `method path` and parses the JSON answered; a non-200 answer or a body that is not JSON rejects. */
export async function adminJson(address: AdminAddress, method: 'GET' | 'POST', path: string, options?: AdminRequestOptions): Promise<unknown> {
  const res = await adminRequest(address, method, path, options);
  const where = `${formatAddress(address)}${path}`;
  if (res.status !== 200) throw new Error(`${where} answered ${res.status}: ${oneLine(res.body, 200)}`);
  try {
    return JSON.parse(res.body) as unknown;
  } catch {
    throw new Error(`${where} answered something that is not JSON: ${oneLine(res.body, 80)}`);
  }
}

/** GETs `path` and parses the JSON answered (see adminJson). */
export function adminGetJson(address: AdminAddress, path: string, options?: AdminRequestOptions): Promise<unknown> {
  return adminJson(address, 'GET', path, options);
}
