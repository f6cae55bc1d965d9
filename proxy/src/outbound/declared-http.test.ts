// A Service port declared HTTP (`http`, `http-*`, appProtocol `http`) also serves clients that
// speak HTTP/2 without TLS by prior knowledge (h2c: h2load, curl --http2-prior-knowledge, a gRPC
// client): they are told apart by the HTTP/2 preface, as on the inbound side. Before, the preface
// went to the HTTP/1.1 parser and the client got its connection closed without an answer.
import http from 'node:http';
import http2 from 'node:http2';
import { afterEach, describe, expect, test } from '@jest/globals';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile } from '../testing/mesh.js';
import { SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { listenH2, listenHttp } from '../testing/servers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function proxyFor(portName: string, endpoint: number): Promise<RunningProxy> {
  const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName, endpoints: [endpoint] }]);
  cleanups.push(() => mesh.remove());
  const proxy = await startTestProxy(mesh.path, {});
  cleanups.push(() => proxy.close());
  return proxy;
}

function h2Get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':path': '/hello' });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    req.on('error', reject);
  });
}

function h1Get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/hello', agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('outbound on a port declared HTTP', () => {
  test('an h2c client with prior knowledge is served over HTTP/2', async () => {
    const server = await listenH2((stream) => {
      stream.respond({ ':status': 200 });
      stream.end('h2 upstream');
    });
    cleanups.push(() => server.close());
    const proxy = await proxyFor('http', server.port);
    expect(await h2Get(proxy.ports.outbound)).toEqual({ status: 200, body: 'h2 upstream' });
  });

  test('an HTTP/1.1 client is still served over HTTP/1.1', async () => {
    const server = await listenHttp((req, res) => {
      req.resume();
      res.end(`h1 upstream ${req.httpVersion}`);
    });
    cleanups.push(() => server.close());
    const proxy = await proxyFor('http-web', server.port);
    expect(await h1Get(proxy.ports.outbound)).toEqual({ status: 200, body: 'h1 upstream 1.1' });
  });
});
