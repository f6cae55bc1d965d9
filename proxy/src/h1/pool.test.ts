// The relay's upstream pool over mesh mTLS: keep-alive connections are reused only for the same
// endpoint and expected identity, and an endpoint that presents another identity gets nothing.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ok } from '@tsmesh/common';
import { attachHttpContext } from '../http/context.js';
import { MESH_ALPN } from '../tls/mesh-tls.js';
import { AccessLog, ProxyMetrics, RequestTelemetry } from '../telemetry/index.js';
import { captureLog } from '../telemetry/testing/log-capture.js';
import { testMeshCa, type TestMeshCa, type WorkloadCert } from '../testing/mesh-ca.js';
import { listenTcp, type Listening } from '../testing/servers.js';
import { dialerFor } from '../upstream/dial.js';
import { fixedSelector, type UpstreamEndpoint } from '../upstream/selector.js';
import { H1Relay } from './relay.js';

describe('H1Relay upstream pool over mesh mTLS', () => {
  let ca: TestMeshCa;
  let serverCert: WorkloadCert;
  let app: https.Server;
  let appPort = 0;
  let handshakes = 0;
  let connections = 0;
  let requests = 0;
  let relay: H1Relay;
  let front: Listening<net.Server>;
  let expectedIdentity = '';

  beforeAll(async () => {
    ca = testMeshCa();
    serverCert = ca.issue('default', 'web');
    const clientCert = ca.issue('default', 'client');
    // The called sidecar's side: mesh ALPN, client certificate required, answers with the caller's SAN.
    app = https.createServer(
      { key: serverCert.key, cert: serverCert.cert, ca: ca.rootPem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: [MESH_ALPN.http1], minVersion: 'TLSv1.3' },
      (req, res) => {
        requests++;
        req.resume();
        const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
        res.end(peer.subjectaltname ?? 'none');
      },
    );
    app.on('connection', () => connections++);
    app.on('secureConnection', () => handshakes++);
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appPort = (app.address() as net.AddressInfo).port;
    const telemetry = new RequestTelemetry({ metrics: new ProxyMetrics({ defaultMetrics: false }), accessLog: new AccessLog(captureLog('info').logger) });
    relay = new H1Relay({ connectTimeoutMs: 1000, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: 5000 }, { telemetry, dial: dialerFor(ca.source(clientCert)) });
    front = await listenTcp(
      (socket) => {
        const endpoint: UpstreamEndpoint = { key: `127.0.0.1:${appPort}`, address: '127.0.0.1', port: appPort, identity: expectedIdentity };
        attachHttpContext(socket, { direction: 'outbound', route: () => ok({ selector: fixedSelector('web', endpoint) }), source: {}, destination: {}, mtls: false });
        relay.accept(socket);
      },
      { pauseOnConnect: true, allowHalfOpen: true },
    );
  });

  afterAll(async () => {
    relay?.close();
    await front?.close();
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
    ca?.remove();
  });

  function get(agent: http.Agent): Promise<{ status: number; body: string; error: string | undefined }> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: front.port, path: '/', agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, error: res.headers['x-tsmesh-proxy-error'] as string | undefined }));
      });
      req.on('error', reject);
    });
  }

  test('reuses one mTLS connection for successive requests, presenting the workload certificate', async () => {
    expectedIdentity = serverCert.spiffeId;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await get(agent);
        expect(res.status).toBe(200);
        expect(res.body).toBe('URI:spiffe://cluster.local/ns/default/sa/client');
      }
    } finally {
      agent.destroy();
    }
    expect(handshakes).toBe(1);
  });

  test('does not reuse that connection for another expected identity, and the endpoint that is not it gets no request', async () => {
    expectedIdentity = 'spiffe://cluster.local/ns/default/sa/someone-else';
    const before = { connections, requests };
    const agent = new http.Agent({ keepAlive: false });
    const res = await get(agent);
    agent.destroy();
    // A new connection was dialled (the pooled one is keyed to the other identity), its peer refused
    // by the caller before any request went out: the relay answers as h1.ts does, a reset.
    expect(connections).toBe(before.connections + 1);
    expect(requests).toBe(before.requests);
    expect(res.status).toBe(502);
    expect(res.error).toBe('reset');
    expect(res.body).toContain('TSMESH_ERR_PEER_IDENTITY');
  });
});
