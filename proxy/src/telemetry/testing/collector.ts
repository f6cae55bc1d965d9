// Test helper: a local HTTP trace collector on 127.0.0.1:0 that keeps every JSON body it receives
// (Zipkin v2 and OTLP/HTTP JSON both arrive as JSON), or one that never answers.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Collector {
  /** `http://127.0.0.1:<port><path>`. */
  url(path: string): string;
  /** The parsed bodies received so far, with their path and content type. */
  readonly received: { path: string; contentType: string | undefined; body: unknown }[];
  /** Resolves once `predicate` holds for what was received (polling), rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startCollector(options: { answer?: boolean } = {}): Promise<Collector> {
  const answer = options.answer ?? true;
  const received: Collector['received'] = [];
  const server: Server = createServer((req, res) => {
    if (!answer) return; // Accepts the request and never answers: a black hole.
    void readBody(req).then((text) => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(text) as unknown });
      res.writeHead(req.url?.includes('v1/traces') ? 200 : 202, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    waitFor: async (predicate, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error('timed out waiting for the collector');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export { closedPort } from '../../testing/servers.js';
