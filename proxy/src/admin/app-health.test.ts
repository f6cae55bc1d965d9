import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { afterEach, describe, expect, test } from '@jest/globals';
import { runProbe } from './app-health.js';
import { closedPort, listenH2, listenHttp, listenTcp, type Listening } from '../testing/servers.js';
import { TEST_CERT_PEM, TEST_KEY_PEM } from '../testing/tls.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function app(handler: http.RequestListener): Promise<Listening<http.Server>> {
  const listening = await listenHttp(handler);
  closers.push(() => listening.close());
  return listening;
}

describe('runProbe', () => {
  test('httpGet: 2xx and 3xx pass, 4xx and 5xx fail, with the path and headers the probe recorded', async () => {
    let seen: http.IncomingMessage | undefined;
    let status = 200;
    const server = await app((req, res) => {
      seen = req;
      res.writeHead(status).end();
    });
    const probe = { httpGet: { path: '/ready?deep=1', port: server.port, httpHeaders: [{ name: 'X-Probe', value: 'kubelet' }] } };
    expect(await runProbe(probe, '127.0.0.1')).toEqual({ ok: true, detail: 'HTTP 200' });
    expect(seen?.url).toBe('/ready?deep=1');
    expect(seen?.headers['x-probe']).toBe('kubelet');
    status = 302;
    expect((await runProbe(probe, '127.0.0.1')).ok).toBe(true);
    status = 404;
    expect(await runProbe(probe, '127.0.0.1')).toEqual({ ok: false, detail: 'HTTP 404' });
    status = 503;
    expect((await runProbe(probe, '127.0.0.1')).ok).toBe(false);
  });

  test('httpGet: nothing listening fails with the connect error', async () => {
    const result = await runProbe({ httpGet: { port: await closedPort() } }, '127.0.0.1');
    expect(result.ok).toBe(false);
    expect(result.detail).toContain('ECONNREFUSED');
  });

  test('httpGet: an application that never answers fails after timeoutSeconds', async () => {
    const server = await app(() => undefined); // accepts, never answers
    const started = Date.now();
    const result = await runProbe({ httpGet: { port: server.port }, timeoutSeconds: 1 }, '127.0.0.1');
    expect(result).toEqual({ ok: false, detail: 'timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  test('httpGet with scheme HTTPS probes over TLS without verifying the certificate, as the kubelet does', async () => {
    const server = https.createServer({ key: TEST_KEY_PEM, cert: TEST_CERT_PEM }, (req, res) => {
      req.resume();
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
    const port = (server.address() as net.AddressInfo).port;
    expect(await runProbe({ httpGet: { port, path: '/', scheme: 'HTTPS' } }, '127.0.0.1')).toEqual({ ok: true, detail: 'HTTP 204' });
  });

  test('tcpSocket: passes when the port accepts, fails when nothing listens', async () => {
    const server = await listenTcp((socket) => socket.end());
    closers.push(() => server.close());
    expect(await runProbe({ tcpSocket: { port: server.port } }, '127.0.0.1')).toEqual({ ok: true, detail: 'connected' });
    const down = await runProbe({ tcpSocket: { port: await closedPort() } }, '127.0.0.1');
    expect(down.ok).toBe(false);
    expect(down.detail).toContain('ECONNREFUSED');
  });

  test('grpc: asks grpc.health.v1.Health/Check for the service and passes only on SERVING', async () => {
    let servingStatus = 1;
    let asked = '';
    const server = await listenH2((stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const frame = Buffer.concat(chunks);
        asked = `${headers[':path']} ${frame.subarray(7).toString()}`;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, servingStatus]));
      });
    });
    closers.push(() => server.close());
    const probe = { grpc: { port: server.port, service: 'shop.Cart' } };
    expect(await runProbe(probe, '127.0.0.1')).toEqual({ ok: true, detail: 'grpc-status 0 SERVING' });
    expect(asked).toBe('/grpc.health.v1.Health/Check shop.Cart');
    servingStatus = 2; // NOT_SERVING
    expect(await runProbe(probe, '127.0.0.1')).toEqual({ ok: false, detail: 'grpc-status 0' });
  });

  test('grpc: an UNIMPLEMENTED health service fails', async () => {
    const server = await listenH2((stream) => {
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
    });
    closers.push(() => server.close());
    expect(await runProbe({ grpc: { port: server.port } }, '127.0.0.1')).toEqual({ ok: false, detail: 'grpc-status 12' });
  });

  test('a probe of an unknown shape fails instead of throwing', async () => {
    expect(await runProbe({ exec: { command: ['true'] } }, '127.0.0.1')).toEqual({ ok: false, detail: 'unsupported probe' });
  });
});
