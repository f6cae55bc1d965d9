// The inbound chain through a running sidecar (explicit-port mode: every inbound connection is
// for one application port): detection, delivery to the application, and its source address.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { listenH2, listenHttp, listenTcp, once, type Listening } from '../testing/servers.js';

describe('Inbound', () => {
  let h1App: Listening<http.Server>;
  let h2App: Listening<http2.Http2Server>;
  let tcpApp: Listening<net.Server>;
  let mesh: TestMeshFile;
  const proxies: RunningProxy[] = [];

  const inboundProxy = async (appPort: number, env: Record<string, string> = {}): Promise<RunningProxy> => {
    const proxy = await startTestProxy(mesh.path, { inboundTarget: `127.0.0.1:${appPort}`, env, args: ['--detect-timeout', '200ms'] });
    proxies.push(proxy);
    return proxy;
  };

  beforeAll(async () => {
    h1App = await listenHttp((req, res) => {
      req.resume();
      res.setHeader('x-peer', req.socket.remoteAddress ?? '');
      res.end(`h1 ${req.url}`);
    });
    h2App = await listenH2((stream, headers) => {
      stream.resume();
      stream.respond({ ':status': 200 });
      stream.end(`h2 ${headers[':path']}`);
    });
    tcpApp = await listenTcp((socket) => {
      socket.write('hello from tcp\n');
      socket.on('end', () => socket.end());
    });
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [h1App.port] }]);
  });

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all([h1App.close(), h2App.close(), tcpApp.close()]);
    mesh.remove();
  });

  test('delivers detected HTTP/1 requests to the application port', async () => {
    const proxy = await inboundProxy(h1App.port);
    const res = await fetchText(proxy.ports.inbound, '/orders?id=1');
    expect(res.status).toBe(200);
    expect(res.body).toBe('h1 /orders?id=1');
  });

  test('delivers detected HTTP/2 streams to the application port', async () => {
    const proxy = await inboundProxy(h2App.port);
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.inbound}`);
    session.on('error', () => undefined);
    try {
      const req = session.request({ ':path': '/cart' });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      await once(req, 'end');
      expect(Buffer.concat(chunks).toString()).toBe('h2 /cart');
    } finally {
      session.destroy();
    }
  });

  test('delivers a server-first protocol as TCP after the detection timeout', async () => {
    const proxy = await inboundProxy(tcpApp.port);
    const client = net.connect(proxy.ports.inbound, '127.0.0.1');
    client.on('error', () => undefined);
    try {
      const greeting = await once<Buffer>(client, 'data');
      expect(greeting.toString()).toBe('hello from tcp\n');
    } finally {
      client.destroy();
    }
  });

  test('delivers a port listed in TSMESH_OPAQUE_PORTS as TCP at once, without detection', async () => {
    const proxy = await startTestProxy(mesh.path, { inboundTarget: `127.0.0.1:${tcpApp.port}`, env: { TSMESH_OPAQUE_PORTS: String(tcpApp.port) }, args: ['--detect-timeout', '10s'] });
    proxies.push(proxy);
    const client = net.connect(proxy.ports.inbound, '127.0.0.1');
    client.on('error', () => undefined);
    try {
      const started = Date.now();
      expect((await once<Buffer>(client, 'data')).toString()).toBe('hello from tcp\n');
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      client.destroy();
    }
  });

  test('with a pod IP, delivers from 127.0.0.6 (the source the iptables rules let through)', async () => {
    const proxy = await inboundProxy(h1App.port, { TSMESH_POD_IP: '127.0.0.1' });
    const res = await fetchText(proxy.ports.inbound, '/');
    expect(res.status).toBe(200);
    expect(res.headers['x-peer']).toBe('127.0.0.6');
  });
});
