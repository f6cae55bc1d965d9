// Istio's standard metrics as a running sidecar exposes them at /metrics: a whole sidecar (mesh
// file, explicit ports) calls a local application through its outbound port and through its inbound
// port, then its exposition is read as Prometheus would read it.
import type http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile, testMeshYaml } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { listenHttp, type Listening } from '../testing/servers.js';
import { ISTIO_BUCKETS, ISTIO_REQUEST_LABELS } from './metrics.js';
import { find, parseExposition, type Exposition } from './testing/prometheus-text.js';

const NS = 'bookinfo';
const OWN_POD = 'productpage-v1-6b746f74dc-9stvs';

function pod(name: string, ip: string, serviceAccount: string, labels: Record<string, string>): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels, annotations: { 'tsmesh.io/status': '{}' } },
    spec: { serviceAccountName: serviceAccount, containers: [{ name: 'app', image: 'app' }] },
    status: { podIP: ip, podIPs: [{ ip }] },
  });
}

describe("a running sidecar's Istio metrics", () => {
  let app: Listening<http.Server>;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let exposition: Exposition;

  beforeAll(async () => {
    app = await listenHttp((req, res) => {
      req.resume();
      req.on('end', () => res.end(req.url === '/missing' ? '' : 'hello', () => undefined));
      if (req.url === '/missing') res.statusCode = 404;
    });
    mesh = new TestMeshFile([]);
    mesh.writeText(
      [
        testMeshYaml([{ name: 'reviews', namespace: NS, clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [app.port] }]),
        pod('reviews-v2-7f6dbf8b8d-k2x8q', '127.0.0.1', 'reviews', { app: 'reviews', version: 'v2' }),
        pod(OWN_POD, '10.1.0.5', 'productpage', { 'app.kubernetes.io/name': 'productpage', 'app.kubernetes.io/version': 'v1' }),
      ].join('---\n'),
    );
    proxy = await startTestProxy(mesh.path, {
      inboundTarget: `127.0.0.1:${app.port}`,
      env: { TSMESH_POD_NAME: OWN_POD, TSMESH_POD_NAMESPACE: NS, TSMESH_SERVICE_ACCOUNT: 'productpage' },
    });
    const body = 'x'.repeat(300);
    const call = (port: number, path: string) => fetchText(port, path, { method: 'POST', headers: { host: `reviews.${NS}:${SERVICE_PORT}`, 'content-length': body.length }, body });
    expect((await call(proxy.ports.outbound, '/reviews/1')).status).toBe(200);
    expect((await call(proxy.ports.outbound, '/reviews/2')).status).toBe(200);
    expect((await call(proxy.ports.outbound, '/missing')).status).toBe(404);
    // A request through the inbound port, from a plaintext caller (raw, so the client closes it).
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(proxy.ports.inbound, '127.0.0.1', () => socket.end(`GET / HTTP/1.1\r\nhost: reviews\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`));
      socket.on('error', reject);
      socket.resume();
      socket.on('close', () => resolve());
    });
    const res = await fetchText(proxy.ports.health, '/metrics');
    expect(res.status).toBe(200);
    exposition = parseExposition(res.body);
  }, 20_000);

  afterAll(async () => {
    await proxy?.close();
    await app?.close();
    mesh?.remove();
  });

  test("counts the outbound requests in istio_requests_total with Istio's labels and this mesh's values", () => {
    const ok = find(exposition, 'istio_requests_total', { reporter: 'source', response_code: '200' });
    expect(ok).toHaveLength(1);
    expect(ok[0]?.value).toBe(2);
    expect(ok[0]?.labels).toEqual({
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: NS,
      source_principal: 'unknown', // plaintext: this sidecar has no CA
      source_app: 'productpage',
      source_version: 'v1',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: NS,
      destination_principal: 'unknown',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_service: `reviews.${NS}.svc.cluster.local`,
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_service_name: 'reviews',
      destination_service_namespace: NS,
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'none',
    });
    expect(Object.keys(ok[0]?.labels ?? {})).toEqual([...ISTIO_REQUEST_LABELS]);
    expect(find(exposition, 'istio_requests_total', { reporter: 'source', response_code: '404' })[0]?.value).toBe(1);
    // tsmesh's own family counts the same requests.
    expect(find(exposition, 'tsmesh_requests_total', { reporter: 'source' }).reduce((n, s) => n + s.value, 0)).toBe(3);
  });

  test('observes their durations in milliseconds and their body sizes in bytes', () => {
    const where = { reporter: 'source', response_code: '200' };
    expect(exposition.types.get('istio_request_duration_milliseconds')).toBe('histogram');
    const buckets = find(exposition, 'istio_request_duration_milliseconds_bucket', where);
    expect(buckets.map((b) => b.labels.le)).toEqual([...ISTIO_BUCKETS.map(String), '+Inf']);
    expect(buckets.at(-1)?.value).toBe(2);
    expect(find(exposition, 'istio_request_duration_milliseconds_count', where)[0]?.value).toBe(2);
    const seconds = find(exposition, 'tsmesh_request_duration_seconds_sum', { reporter: 'source', response_code: '200' })[0]?.value ?? 0;
    expect(find(exposition, 'istio_request_duration_milliseconds_sum', where)[0]?.value).toBeCloseTo(seconds * 1000, 6);
    // Two requests of 300 body bytes, answered with 5.
    expect(find(exposition, 'istio_request_bytes_sum', where)[0]?.value).toBe(600);
    expect(find(exposition, 'istio_request_bytes_bucket', { ...where, le: '250' })[0]?.value).toBe(0);
    expect(find(exposition, 'istio_request_bytes_bucket', { ...where, le: '500' })[0]?.value).toBe(2);
    expect(find(exposition, 'istio_response_bytes_sum', where)[0]?.value).toBe(10);
    expect(find(exposition, 'istio_response_bytes_bucket', { ...where, le: '5' })[0]?.value).toBe(2);
    expect(find(exposition, 'istio_response_bytes_sum', { reporter: 'source', response_code: '404' })[0]?.value).toBe(0);
  });

  test('counts what came in on the inbound port as reported by the destination, this pod being the destination', () => {
    const inbound = find(exposition, 'istio_requests_total', { reporter: 'destination' });
    expect(inbound.map((s) => s.value)).toEqual([1]);
    expect(inbound[0]?.labels).toMatchObject({
      destination_workload: 'productpage-v1',
      destination_app: 'productpage',
      destination_version: 'v1',
      destination_workload_namespace: NS,
      source_workload: 'unknown', // a plaintext caller is not known
      request_protocol: 'http',
      response_code: '200',
    });
  });
});
