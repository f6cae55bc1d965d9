// Reads a sidecar's admin endpoints (127.0.0.1:15000 in the pod: /server_info, /config_dump,
// /clusters, /certs) by direct address, over plain HTTP as the admin server speaks it.
import http from 'node:http';
import { UsageError } from './command.js';

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

/** GETs `path` from the admin server; rejects with a one-line reason naming the address. */
export function adminGet(address: AdminAddress, path: string, timeoutMs = 5000): Promise<AdminResponse> {
  const where = `${formatAddress(address)}${path}`;
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address.host, port: address.port, path, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (error) => reject(new Error(`${where}: ${error.message}`, { cause: error })));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (error) => reject(new Error(`cannot reach the sidecar's admin server at ${where}: ${error.message}`, { cause: error })));
  });
}

/** GETs `path` and parses the JSON it answered; a non-200 answer or a body that is not JSON rejects. */
export async function adminGetJson(address: AdminAddress, path: string, timeoutMs?: number): Promise<unknown> {
  const res = await adminGet(address, path, timeoutMs);
  const where = `${formatAddress(address)}${path}`;
  if (res.status !== 200) throw new Error(`${where} answered ${res.status}: ${res.body.trim().slice(0, 200)}`);
  try {
    return JSON.parse(res.body) as unknown;
  } catch {
    throw new Error(`${where} answered something that is not JSON: ${res.body.trim().slice(0, 80)}`);
  }
}
