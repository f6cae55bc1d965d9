// The outbound chain through a running sidecar (explicit-port mode): declared versus detected
// protocols, server-first fallback, destinations outside the mesh, connect failures, and many
// idle or half-open clients.
import https from 'node:https';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { closedPort, eventually, listenHttp, listenTcp, once, type Listening } from '../testing/servers.js';
import { TEST_CERT_PEM, TEST_KEY_PEM } from '../testing/tls.js';

const proxies: RunningProxy[] = [];
const meshes: TestMeshFile[] = [];
const clients: net.Socket[] = [];

async function proxyFor(mesh: TestMeshFile, args: string[] = [], outboundTarget?: string): Promise<RunningProxy> {
  meshes.push(mesh);
  const proxy = await startTestProxy(mesh.path, { args, ...(outboundTarget ? { outboundTarget } : {}) });
  proxies.push(proxy);
  return proxy;
}

function connect(port: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  clients.push(socket);
  return socket;
}

/** Everything a socket receives until it ends or closes. */
function received(socket: net.Socket): { text: () => string; closed: Promise<unknown> } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return { text: () => Buffer.concat(chunks).toString(), closed: once(socket, 'close', 15_000) };
}

function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

afterEach(async () => {
  for (const socket of clients.splice(0)) socket.destroy();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  for (const mesh of meshes.splice(0)) mesh.remove();
});

describe('Outbound', () => {
  let banner: Listening<net.Server>;
  let web: Listening<import('node:http').Server>;

  beforeAll(async () => {
    // A server-first protocol: the server speaks as soon as the connection opens.
    banner = await listenTcp((socket) => {
      socket.write('220 ready\r\n');
      socket.on('data', (c: Buffer) => socket.write(`echo ${c.toString()}`));
      socket.on('end', () => socket.end());
    });
    web = await listenHttp((req, res) => {
      req.resume();
      res.end('web');
    });
  });

  afterAll(async () => {
    await banner.close();
    await web.close();
  });

  test('a port declared as TCP is forwarded at once, without waiting for detection', async () => {
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName: 'tcp-banner', endpoints: [banner.port] }]);
    const proxy = await proxyFor(mesh, ['--detect-timeout', '10s']);
    const client = connect(proxy.ports.outbound);
    const started = Date.now();
    await once(client, 'data');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('a port listed in TSMESH_OPAQUE_PORTS is forwarded at once, without detection', async () => {
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [banner.port] }]);
    meshes.push(mesh);
    const proxy = await startTestProxy(mesh.path, { args: ['--detect-timeout', '10s'], env: { TSMESH_OPAQUE_PORTS: `3306,${SERVICE_PORT}` } });
    proxies.push(proxy);
    const client = connect(proxy.ports.outbound);
    const started = Date.now();
    await once(client, 'data');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('an undeclared port with a server-first protocol falls back to TCP after the detection timeout', async () => {
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [banner.port] }]);
    const proxy = await proxyFor(mesh, ['--detect-timeout', '200ms']);
    const client = connect(proxy.ports.outbound);
    const got = received(client);
    const started = Date.now();
    await eventually(() => got.text().startsWith('220 ready'), 'the banner');
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
    client.write('hi');
    await eventually(() => got.text() === '220 ready\r\necho hi', 'the echo');
  });

  test('TLS from the application is detected and passed through untouched (SNI and certificate end to end)', async () => {
    const app = https.createServer({ key: TEST_KEY_PEM, cert: TEST_CERT_PEM }, (req, res) => {
      req.resume();
      res.end(`sni=${(req.socket as TLSSocket).servername}`);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    try {
      const port = (app.address() as net.AddressInfo).port;
      const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [port] }]);
      const proxy = await proxyFor(mesh, ['--detect-timeout', '10s']);
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/', servername: 'svc.default.svc.cluster.local', ca: TEST_CERT_PEM, checkServerIdentity: () => undefined, agent: false }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(Buffer.concat(chunks).toString()));
          })
          .on('error', reject);
      });
      expect(body).toBe('sni=svc.default.svc.cluster.local');
    } finally {
      app.closeAllConnections();
      await new Promise((resolve) => app.close(resolve));
    }
  });

  test('a destination outside the mesh Services is passed through to itself', async () => {
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [web.port] }]);
    const proxy = await proxyFor(mesh, ['--detect-timeout', '10s'], `127.0.0.1:${banner.port}`);
    const client = connect(proxy.ports.outbound);
    const started = Date.now();
    await once(client, 'data');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('a TCP Service whose endpoints all refuse resets the client', async () => {
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName: 'tcp', endpoints: [await closedPort(), await closedPort()] }]);
    const proxy = await proxyFor(mesh);
    const client = connect(proxy.ports.outbound);
    const error = await once<NodeJS.ErrnoException>(client, 'error');
    expect(error.code).toBe('ECONNRESET');
  });

  test('500 idle connections do not stop a normal request from being served', async () => {
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [web.port] }]);
    const proxy = await proxyFor(mesh, ['--detect-timeout', '3s']);
    const idle = Array.from({ length: 500 }, () => connect(proxy.ports.outbound));
    await Promise.all(idle.map((s) => once(s, 'connect')));
    const started = Date.now();
    const res = await fetchText(proxy.ports.outbound, '/');
    expect(res.status).toBe(200);
    expect(res.body).toBe('web');
    expect(Date.now() - started).toBeLessThan(1000);
    for (const s of idle) s.destroy();
  }, 30_000);

  test('clients that hang up without a byte are cleaned up on both sides', async () => {
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [web.port] }]);
    const proxy = await proxyFor(mesh, ['--detect-timeout', '300ms']);
    const baseline = tcpSockets();
    const acceptedBefore = web.accepted;
    const halfOpen = Array.from({ length: 50 }, () => connect(proxy.ports.outbound));
    await Promise.all(halfOpen.map((s) => once(s, 'connect')));
    const closed = halfOpen.map((s) => once(s, 'close', 15_000));
    for (const s of halfOpen) s.end();
    await Promise.all(closed);
    // Each went to the endpoint as opaque TCP (the client's FIN settles detection), then closed.
    await eventually(() => web.accepted - acceptedBefore === 50, 'every connection to reach the endpoint');
    await eventually(() => web.open === 0, 'the endpoint connections to close');
    await eventually(() => tcpSockets() <= baseline, `open TCP sockets to return to ${baseline}`);
  }, 30_000);

  test('clients that send a partial method and hang up are settled at the detection timeout and cleaned up', async () => {
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [web.port] }]);
    const proxy = await proxyFor(mesh, ['--detect-timeout', '300ms']);
    const baseline = tcpSockets();
    const started = Date.now();
    const partial = Array.from({ length: 20 }, () => connect(proxy.ports.outbound));
    const closed = partial.map((s) => once(s, 'close', 15_000));
    for (const s of partial) {
      s.resume(); // the endpoint answers (400); reading it lets the client see the close
      s.end('GE');
    }
    await Promise.all(closed);
    // The bytes sitting in the socket hide the FIN from a peek: only the timeout can settle them.
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    await eventually(() => web.open === 0, 'the endpoint connections to close');
    await eventually(() => tcpSockets() <= baseline, `open TCP sockets to return to ${baseline}`);
  }, 30_000);

  test('silent clients go to the endpoint as TCP after the detection timeout, and close with it', async () => {
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [web.port] }]);
    const proxy = await proxyFor(mesh, ['--detect-timeout', '200ms']);
    const baseline = tcpSockets();
    const acceptedBefore = web.accepted;
    const silent = Array.from({ length: 50 }, () => connect(proxy.ports.outbound));
    await eventually(() => web.accepted - acceptedBefore === 50, 'the timed-out connections to reach the endpoint');
    for (const s of silent) s.destroy();
    await eventually(() => web.open === 0, 'the endpoint connections to close');
    await eventually(() => tcpSockets() <= baseline, `open TCP sockets to return to ${baseline}`);
  }, 30_000);
});
