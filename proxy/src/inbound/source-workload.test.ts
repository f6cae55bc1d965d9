// Who called, as the destination's telemetry names it: the namespace from the caller's verified
// SPIFFE ID, and its workload from the name of the pod the mesh knows at the caller's address
// (docs/observability.md), the service account only when no such pod is known. A pod of another
// namespace at that address names nothing: the certificate, not the address, says who called.
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { H1Forwarder } from '../http/h1.js';
import { H2Forwarder } from '../http/h2.js';
import { MESH_ALPN } from '../tls/mesh-tls.js';
import { find, parseExposition } from '../telemetry/testing/prometheus-text.js';
import { ProxyMetrics, RequestTelemetry } from '../telemetry/index.js';
import { plainDialer } from '../upstream/dial.js';
import { testMeshCa, type TestMeshCa, type WorkloadCert } from '../testing/mesh-ca.js';
import { listenHttp, listenTcp, once, type Listening } from '../testing/servers.js';
import { Inbound } from './inbound.js';

describe('inbound telemetry names the verified caller', () => {
  let ca: TestMeshCa;
  let backend: WorkloadCert;
  let frontend: WorkloadCert;
  let app: Awaited<ReturnType<typeof listenHttp>>;

  beforeAll(async () => {
    setLogLevel('silent');
    ca = testMeshCa();
    backend = ca.issue('shop', 'backend');
    frontend = ca.issue('shop', 'frontend-sa');
    app = await listenHttp((_req, res) => res.end('ok'));
  });

  afterAll(async () => {
    await app.close();
    ca.remove();
  });

  async function sourceWorkloadWith(
    podAt: ((ip: string) => { name: string; namespace: string; labels?: Record<string, string> } | undefined) | undefined,
    istio?: (labels: Record<string, string>) => void,
  ): Promise<string | undefined> {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    const telemetry = new RequestTelemetry({ metrics });
    const h1 = new H1Forwarder({ connectTimeoutMs: 1000, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: 5000 }, { telemetry, dial: plainDialer });
    const h2 = new H2Forwarder({ connectTimeoutMs: 1000 }, { telemetry, dial: plainDialer });
    const inbound = new Inbound({
      h1,
      h2,
      telemetry,
      tls: ca.source(backend),
      self: { workload: 'backend', namespace: 'shop', identity: backend.spiffeId, app: 'backend', version: 'v3' },
      mtlsMode: () => 'STRICT',
      serviceFor: () => 'backend.shop',
      ...(podAt ? { podAt } : {}),
      detectTimeoutMs: 200,
      connectTimeoutMs: 1000,
      tcpIdleTimeoutMs: 0,
      opaquePorts: new Set(),
      podIp: undefined,
      fixedDestination: { address: '127.0.0.1', port: app.port, family: 4 },
    });
    const listening: Listening<net.Server> = await listenTcp((socket) => inbound.handle(socket), { pauseOnConnect: true, allowHalfOpen: true });
    try {
      const socket = tls.connect({ host: '127.0.0.1', port: listening.port, ca: ca.rootPem, key: frontend.key, cert: frontend.cert, ALPNProtocols: [MESH_ALPN.http1], minVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
      socket.on('error', () => undefined);
      await once(socket, 'secureConnect');
      socket.resume();
      socket.write('GET / HTTP/1.1\r\nhost: backend.shop\r\nconnection: close\r\n\r\n');
      await once(socket, 'close');
      const series = find(parseExposition(await metrics.render()), 'tsmesh_requests_total');
      expect(series).toHaveLength(1);
      expect(series[0]?.labels.source_namespace).toBe('shop');
      istio?.(find(parseExposition(await metrics.render()), 'istio_requests_total')[0]?.labels ?? {});
      return series[0]?.labels.source_workload;
    } finally {
      h1.close();
      h2.close();
      await listening.close();
    }
  }

  test("Istio's source app and version from the labels of the caller's pod, the destination's from this pod", async () => {
    const pods = new Map([['127.0.0.1', { name: 'frontend-v1-7d9f8c6b5-x2kqz', namespace: 'shop', labels: { 'app.kubernetes.io/name': 'frontend', version: 'v1' } }]]);
    let labels: Record<string, string> = {};
    await sourceWorkloadWith((ip) => pods.get(ip), (seen) => (labels = seen));
    expect(labels).toMatchObject({
      reporter: 'destination',
      source_workload: 'frontend-v1',
      source_app: 'frontend',
      source_version: 'v1',
      source_principal: frontend.spiffeId,
      destination_app: 'backend',
      destination_version: 'v3',
      destination_principal: backend.spiffeId,
      destination_service: 'backend.shop.svc.cluster.local',
      connection_security_policy: 'mutual_tls',
    });
  });

  test("the workload of the caller's pod, guessed from its name, when the mesh knows a pod of its namespace at its address", async () => {
    const pods = new Map([['127.0.0.1', { name: 'frontend-v1-7d9f8c6b5-x2kqz', namespace: 'shop' }]]);
    expect(await sourceWorkloadWith((ip) => pods.get(ip))).toBe('frontend-v1');
  });

  test('the service account when no pod is known there, or the pod there is of another namespace', async () => {
    expect(await sourceWorkloadWith(undefined)).toBe('frontend-sa');
    expect(await sourceWorkloadWith(() => ({ name: 'impostor-5d4f9c7b8-abcde', namespace: 'evil' }))).toBe('frontend-sa');
  });
});
