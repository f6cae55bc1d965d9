// The control plane's admin server (`--debug-listen`, 127.0.0.1:15011 by default; plain HTTP):
// `GET /` lists the endpoints, `GET /debug/connections` every sidecar stream (versions sent,
// acknowledged and refused, last seen, certificate expiry: what `tsmesh proxy-status` shows),
// `GET /healthz/ready`, `GET /metrics` (Prometheus text format).
import type { Server, ServerResponse } from 'node:http';
import { nodeHttp } from '@tsmesh/common';
import type { MeshDistributor } from './distribution/distributor.js';
import type { ControlMetrics } from './metrics.js';

export const ADMIN_ENDPOINTS: Readonly<Record<string, string>> = Object.freeze({
  '/debug/connections': 'every connected sidecar: snapshot versions sent, ACKed and NACKed, last seen, certificate expiry',
  '/healthz/ready': '200 once the control plane has a mesh snapshot, else 503',
  '/metrics': 'Prometheus metrics of the control plane',
});

export function createAdminServer(distributor: MeshDistributor, metrics: ControlMetrics): Server {
  return nodeHttp.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, { error: 'only GET' });
    if (path === '/') return send(response, 200, { endpoints: ADMIN_ENDPOINTS });
    if (path === '/debug/connections') return send(response, 200, distributor.status());
    if (path === '/healthz/ready') {
      const ready = distributor.status().sourceVersion !== undefined;
      return send(response, ready ? 200 : 503, ready ? { status: 'ready' } : { status: 'no mesh snapshot yet' });
    }
    if (path === '/metrics') {
      metrics.render().then(
        ({ contentType, body }) => {
          response.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
          response.end(body);
        },
        (error: unknown) => send(response, 500, { error: `cannot render the metrics: ${error instanceof Error ? error.message : String(error)}` }),
      );
      return;
    }
    return send(response, 404, { error: `not found; the endpoints are ${Object.keys(ADMIN_ENDPOINTS).join(', ')}` });
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
