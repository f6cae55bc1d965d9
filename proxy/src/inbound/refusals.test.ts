// What the inbound side refuses, and that each refusal is visible: counted in
// tsmesh_policy_denials_total (reporter, reason) and written to the access log with its flag.
// Also the mesh mTLS tunnel a calling sidecar opened as TCP: HTTP inside it is still parsed, so the
// app gets the verified caller, never one the client wrote. An Inbound on a real listener, with
// real TLS (a throwaway CA) and a captured access log; one check through a whole sidecar.
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { H1Forwarder } from '../http/h1.js';
import { H2Forwarder } from '../http/h2.js';
import { MESH_ALPN, type MeshTlsSource } from '../tls/mesh-tls.js';
import { AccessLog, ProxyMetrics, RequestTelemetry, METRIC_NAMES } from '../telemetry/index.js';
import { captureLog, type CapturedLog } from '../telemetry/testing/log-capture.js';
import { plainDialer } from '../upstream/dial.js';
import { TestMeshFile, testMeshYaml } from '../testing/mesh.js';
import { testMeshCa, type TestMeshCa, type WorkloadCert } from '../testing/mesh-ca.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { FORGED_XFCC, forgedRequest, recordingApp, type RecordingApp } from '../testing/raw-http.js';
import { listenTcp, once, type Listening } from '../testing/servers.js';
import { Inbound, type MtlsMode } from './inbound.js';

interface Harness {
  readonly port: number;
  readonly metrics: ProxyMetrics;
  readonly access: CapturedLog;
}

const running: Array<{ close(): Promise<void> }> = [];

/** An Inbound for `app` (every connection is for its port) behind a listener like the sidecar's. */
async function inboundFor(app: RecordingApp, mode: MtlsMode, meshTls: MeshTlsSource | undefined): Promise<Harness> {
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  const access = captureLog('info', { component: 'access' });
  const telemetry = new RequestTelemetry({ metrics, accessLog: new AccessLog(access.logger) });
  const h1 = new H1Forwarder({ connectTimeoutMs: 1000, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: 5000 }, { telemetry, dial: plainDialer });
  const h2 = new H2Forwarder({ connectTimeoutMs: 1000 }, { telemetry, dial: plainDialer });
  const inbound = new Inbound({
    h1,
    h2,
    telemetry,
    tls: meshTls,
    self: { workload: 'web', namespace: 'default', identity: meshTls?.identity() },
    mtlsMode: () => mode,
    serviceFor: () => 'web.default',
    detectTimeoutMs: 200,
    connectTimeoutMs: 1000,
    tcpIdleTimeoutMs: 0,
    opaquePorts: new Set(),
    podIp: undefined,
    fixedDestination: { address: '127.0.0.1', port: app.listening.port, family: 4 },
  });
  const listening: Listening<net.Server> = await listenTcp((socket) => inbound.handle(socket), { pauseOnConnect: true, allowHalfOpen: true });
  running.push({
    close: async () => {
      h1.close();
      h2.close();
      await listening.close();
    },
  });
  return { port: listening.port, metrics, access };
}

async function denials(metrics: ProxyMetrics): Promise<string[]> {
  const text = await metrics.render();
  return text.split('\n').filter((line) => line.startsWith(`${METRIC_NAMES.policyDenials}{`));
}

/** A TLS client as a calling sidecar would be (mesh ALPN), with `workload`'s certificate or none. */
function meshClient(port: number, ca: TestMeshCa, workload: WorkloadCert | undefined, inner: keyof typeof MESH_ALPN): tls.TLSSocket {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ca: ca.rootPem,
    ...(workload ? { key: workload.key, cert: workload.cert } : {}),
    ALPNProtocols: [MESH_ALPN[inner]],
    minVersion: 'TLSv1.3',
    checkServerIdentity: () => undefined,
  });
  socket.on('error', () => undefined);
  return socket;
}

describe('Inbound refusals and the mesh mTLS tunnel', () => {
  let app: RecordingApp;
  let ca: TestMeshCa;
  let web: WorkloadCert;
  let caller: WorkloadCert;

  beforeAll(async () => {
    setLogLevel('silent');
    app = await recordingApp('app');
    ca = testMeshCa();
    web = ca.issue('default', 'web');
    caller = ca.issue('shop', 'shopper');
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.close()));
  });

  afterAll(async () => {
    await app.listening.close();
    ca.remove();
  });

  test('a plaintext connection to a STRICT port is refused, counted and logged with RBAC', async () => {
    const { port, metrics, access } = await inboundFor(app, 'STRICT', undefined);
    const received = app.received().length;
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write(forgedRequest('GET'));
    await once(client, 'close');
    expect(app.received().length).toBe(received);
    expect(await denials(metrics)).toEqual([`${METRIC_NAMES.policyDenials}{reporter="destination",reason="mtls_required"} 1`]);
    expect(access.lines()).toEqual([
      expect.objectContaining({ component: 'access', type: 'tcp', reporter: 'destination', direction: 'inbound', flags: 'RBAC', reason: 'mtls_required', destination_service: 'web.default', mtls: false, bytes_sent: 0 }),
    ]);
  });

  test('a silent plaintext connection to a STRICT port is refused at the detection timeout, counted and logged', async () => {
    const { port, metrics, access } = await inboundFor(app, 'STRICT', undefined);
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    await once(client, 'close');
    expect(await denials(metrics)).toEqual([`${METRIC_NAMES.policyDenials}{reporter="destination",reason="mtls_required"} 1`]);
    expect(access.lines()[0]).toMatchObject({ flags: 'RBAC', reason: 'mtls_required' });
  });

  test('a mesh mTLS handshake without a client certificate is refused, counted and logged with RBAC', async () => {
    const { port, metrics, access } = await inboundFor(app, 'PERMISSIVE', ca.source(web));
    const client = meshClient(port, ca, undefined, 'http1');
    await once(client, 'close');
    expect(await denials(metrics)).toEqual([`${METRIC_NAMES.policyDenials}{reporter="destination",reason="mtls_handshake"} 1`]);
    expect(access.lines()[0]).toMatchObject({ type: 'tcp', flags: 'RBAC', reason: 'mtls_handshake', downstream: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
  });

  test('HTTP inside a mesh mTLS tunnel opened as TCP reaches the app with the verified caller, never the forged one', async () => {
    const { port } = await inboundFor(app, 'STRICT', ca.source(web));
    const client = meshClient(port, ca, caller, 'tcp');
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    await once(client, 'secureConnect');
    const before = app.heads().length;
    client.write(forgedRequest('GET'));
    await once(client, 'close');
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 200 /);
    const head = app.heads()[before] ?? '';
    expect(head).not.toContain('kube-system/sa/admin');
    expect(head).toContain(`x-forwarded-client-cert: By=${web.spiffeId};URI=${caller.spiffeId}`);
  });

  test('a server-first protocol inside a mesh mTLS tunnel opened as TCP still works both ways', async () => {
    const banner = await recordingBanner();
    try {
      const { port } = await inboundFor(banner.app, 'STRICT', ca.source(web));
      const client = meshClient(port, ca, caller, 'tcp');
      const greeting = await once<Buffer>(client, 'data');
      expect(greeting.toString()).toBe('220 ready\r\n');
      client.write('HELO mesh\r\n');
      expect((await once<Buffer>(client, 'data')).toString()).toBe('250 HELO mesh\r\n');
      client.destroy();
    } finally {
      await banner.app.listening.close();
    }
  });

  test('through a whole sidecar, a STRICT refusal shows in /metrics', async () => {
    const mesh = new TestMeshFile([]);
    mesh.writeText(
      `${testMeshYaml([{ name: 'web', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [app.listening.port] }])}---\n` +
        'apiVersion: security.tsmesh.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: strict\n  namespace: tsmesh-system\nspec:\n  mtls:\n    mode: STRICT\n',
    );
    const proxy = await startTestProxy(mesh.path, { inboundTarget: `127.0.0.1:${app.listening.port}`, args: ['--detect-timeout', '200ms'] });
    try {
      await expect(fetchText(proxy.ports.inbound, '/', { headers: { 'x-forwarded-client-cert': FORGED_XFCC } })).rejects.toThrow();
      const metrics = await fetchText(proxy.ports.health, '/metrics');
      expect(metrics.body).toContain(`${METRIC_NAMES.policyDenials}{reporter="destination",reason="mtls_required"} 1`);
    } finally {
      await proxy.close();
      mesh.remove();
    }
  });
});

/** A server-first app (an SMTP-like banner, then an echo of each line) wearing the RecordingApp shape. */
async function recordingBanner(): Promise<{ app: RecordingApp }> {
  const listening = await listenTcp((socket) => {
    socket.on('error', () => undefined);
    socket.write('220 ready\r\n');
    socket.on('data', (c: Buffer) => socket.write(`250 ${c.toString()}`));
    socket.on('end', () => socket.end());
  });
  return { app: { listening, received: () => '', heads: () => [] } };
}
