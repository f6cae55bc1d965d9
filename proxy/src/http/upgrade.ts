// HTTP/1.1 upgrades (WebSocket and the like), for both HTTP/1.1 engines: after the request head,
// the client's connection becomes a plain tunnel to one endpoint of the routed cluster. The
// request head goes on with its Connection/Upgrade headers (they are the point of the request);
// mesh-owned headers, and those the sidecar adds itself, are replaced as on any request.
import type { Duplex } from 'node:stream';
import type { CallFactory } from '../upstream/call.js';
import { armConnectTimeout, type Dialer } from '../upstream/dial.js';
import type { HttpConnectionContext, HttpRequestInfo } from './context.js';
import { isConnectFailure } from '../upstream/connect-failure.js';
import { MESH_OWNED } from './headers.js';

const UNAVAILABLE = 'HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';

/** The upgrade request as read from the client. */
export interface UpgradeRequest {
  readonly info: HttpRequestInfo;
  /** e.g. `1.1`. */
  readonly httpVersion: string;
  /** Header names and values, alternating, as received. */
  readonly rawHeaders: readonly string[];
  /** Bytes the client sent after the head, known when the tunnel opens. */
  readonly pending: () => readonly Buffer[];
}

export interface UpgradeDeps {
  readonly calls: CallFactory;
  readonly dial: Dialer;
  readonly connectTimeoutMs: number;
}

/**
 * Routes the request, dials one endpoint and pipes both ways once connected. A request that
 * cannot be routed or connected gets 503 (nothing went upstream); once the tunnel is up, either
 * side closing closes both.
 */
export function tunnelUpgrade(client: Duplex, ctx: HttpConnectionContext | undefined, request: UpgradeRequest, deps: UpgradeDeps, onConnected?: () => void): void {
  const { info } = request;
  const routed = ctx?.route(info);
  if (!ctx || !routed?.ok || info.method === 'CONNECT') {
    client.end(UNAVAILABLE);
    return;
  }
  const target = routed.value;
  const call = deps.calls(target.selector, 'http1');
  const selected = call.next();
  if (!selected.ok) {
    client.end(UNAVAILABLE);
    return;
  }
  const dialed = deps.dial(selected.value.endpoint, 'tcp');
  armConnectTimeout(dialed, deps.connectTimeoutMs);
  const upstream = dialed.socket;
  let connected = false;
  upstream.once(dialed.readyEvent, () => {
    connected = true;
    call.succeeded();
    upstream.write(upgradeHead(request, target.path, ctx.addHeaders), 'latin1');
    for (const chunk of request.pending()) upstream.write(chunk);
    upstream.pipe(client);
    client.pipe(upstream);
    onConnected?.();
  });
  const close = (): void => {
    call.release();
    upstream.destroy();
    // Not connected (refused, timed out): nothing went upstream, so the client gets an answer.
    if (connected || client.destroyed) client.destroy();
    else if (!client.writableEnded) client.end(UNAVAILABLE);
  };
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    if (isConnectFailure(error)) call.failed('connect');
    close();
  });
  client.on('error', close);
  upstream.on('close', close);
  client.on('close', close);
}

/** The request head as the endpoint gets it; `path` is the routed target when routing changed it. */
export function upgradeHead(request: UpgradeRequest, path: string | undefined, addHeaders: ReadonlyArray<readonly [string, string]> | undefined): string {
  const lines = [`${request.info.method} ${path ?? request.info.url} HTTP/${request.httpVersion}`];
  const added = new Set((addHeaders ?? []).map(([n]) => n.toLowerCase()));
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (MESH_OWNED.has(name.toLowerCase()) || added.has(name.toLowerCase())) continue;
    lines.push(`${name}: ${raw[i + 1]}`);
  }
  for (const [n, v] of addHeaders ?? []) lines.push(`${n}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
