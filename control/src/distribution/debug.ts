// The control plane's local debug server: `GET /debug/connections` (every sidecar stream with the
// versions sent, acknowledged and refused), `GET /healthz/ready`. Plain HTTP, for 127.0.0.1 only.
import type { Server, ServerResponse } from 'node:http';
import { nodeHttp } from '@tsmesh/common';
import type { MeshDistributor } from './distributor.js';

export function createDebugServer(distributor: MeshDistributor): Server {
  return nodeHttp.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, { error: 'only GET' });
    if (path === '/debug/connections') return send(response, 200, distributor.status());
    if (path === '/healthz/ready') {
      const ready = distributor.status().sourceVersion !== undefined;
      return send(response, ready ? 200 : 503, ready ? { status: 'ready' } : { status: 'no mesh snapshot yet' });
    }
    return send(response, 404, { error: 'not found; try GET /debug/connections' });
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
