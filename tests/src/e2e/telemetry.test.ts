// End-to-end proof of observability (SPEC: Telemetry): client and server pods with sidecars in
// network namespaces, and a collector pod without one. Three client→server pairs differ only in
// their sidecars' tracing settings: Zipkin at rate 1, OTLP/HTTP at the default rate, Zipkin at
// rate 0. Spans are read back from the collector's file, metrics scraped from inside the pods,
// access-log lines from the sidecars' output.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  killAndWait,
  meshYaml,
  readCollectedSpans,
  runClient,
  startSidecar,
  startWorkload,
  Topology,
  type CollectedSpan,
  type MeshPodSpec,
  type Pod,
  type SpreadResult,
} from 'tsmesh/demo';
import { requireNetns } from './netns.js';
import { accessLines, eventually, parseTraceparent, scrape, total, traceSpans, type Sample } from './telemetry-helpers.js';
import { probe, type ProbeReply } from './telemetry-probe.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;

const NS = 'telemetry';
const GREETER = '10.96.0.10';
const WEB = '10.96.0.11';
const BANNER = '10.96.0.12';
const GRPC_PATH = '/tsmesh.demo.Greeter/SayHello';
const ZIPKIN_PORT = 9411;
const OTLP_PORT = 4318;

type PairName = 'zipkin' | 'otlp' | 'rate0';

interface Pair {
  readonly client: Pod;
  readonly server: Pod;
}

const hex = (digits: number): string => Array.from({ length: digits }, () => Math.floor(Math.random() * 16).toString(16)).join('');
const newTraceId = (): string => `${hex(31)}1`;
const newSpanId = (): string => `${hex(15)}1`;

function one<T>(items: readonly T[], what: string): T {
  if (items.length !== 1) throw new Error(`expected exactly one ${what}, got ${items.length}: ${JSON.stringify(items).slice(0, 1500)}`);
  return items[0] as T;
}

/** The one reply of a probe, checked to be a success (HTTP 200, gRPC OK). */
function ok(replies: readonly ProbeReply[]): ProbeReply {
  const reply = one(replies, 'reply');
  expect(reply.error).toBeUndefined();
  expect([0, 200]).toContain(reply.status);
  return reply;
}

/** The client span and server span of one request, checked to form the tree the mesh promises. */
function requestTree(spans: readonly CollectedSpan[], pair: PairName): { client: CollectedSpan; server: CollectedSpan } {
  const client = one(spans.filter((s) => s.kind === 'CLIENT'), 'client span');
  const server = one(spans.filter((s) => s.kind === 'SERVER'), 'server span');
  expect(spans).toHaveLength(2);
  expect(client.service).toBe(`${pair}-client`);
  expect(server.service).toBe(`${pair}-server`);
  expect(server.traceId).toBe(client.traceId);
  expect(server.parentId).toBe(client.id);
  return { client, server };
}

suite('telemetry in network namespaces', () => {
  let topology: Topology;
  let dir: string;
  const pairs = {} as Record<PairName, Pair>;
  let collectorPod: Pod;
  let zipkinCollector: ChildProcess;
  const zipkinFile = (): string => join(dir, 'zipkin.jsonl');
  const otlpFile = (): string => join(dir, 'otlp.jsonl');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-telemetry-'));
    chmodSync(dir, 0o755); // sidecars run as uid 1337 and read the mesh files
    topology = await Topology.create('tsm-tel', '10.235.0');
    collectorPod = await topology.addPod({ name: 'collector', hostId: 20 });
    zipkinCollector = await startWorkload(collectorPod, 'collector', ['--port', String(ZIPKIN_PORT), '--out', zipkinFile()]);
    await startWorkload(collectorPod, 'collector', ['--port', String(OTLP_PORT), '--out', otlpFile()]);
    // Every request traced (the sidecar's default rate is 0.01) and the access log on (off by default).
    const tracing: Record<PairName, Record<string, string>> = {
      zipkin: { TSMESH_TRACING: 'zipkin', TSMESH_TRACING_ENDPOINT: `http://${collectorPod.ip}:${ZIPKIN_PORT}/api/v2/spans`, TSMESH_TRACING_SAMPLE_RATE: '1', TSMESH_ACCESS_LOG: 'on' },
      otlp: { TSMESH_TRACING: 'otlp', TSMESH_TRACING_ENDPOINT: `http://${collectorPod.ip}:${OTLP_PORT}/v1/traces`, TSMESH_TRACING_SAMPLE_RATE: '1', TSMESH_ACCESS_LOG: 'on' },
      rate0: { TSMESH_TRACING: 'zipkin', TSMESH_TRACING_ENDPOINT: `http://${collectorPod.ip}:${ZIPKIN_PORT}/api/v2/spans`, TSMESH_TRACING_SAMPLE_RATE: '0', TSMESH_ACCESS_LOG: 'on' },
    };
    const names: PairName[] = ['zipkin', 'otlp', 'rate0'];
    const pods = await Promise.all(
      names.map(async (name, i) => ({
        name,
        client: await topology.addPod({ name: `${name}-client`, hostId: 10 + 2 * i }),
        server: await topology.addPod({ name: `${name}-server`, hostId: 11 + 2 * i }),
      })),
    );
    await Promise.all(
      pods.map(async ({ name, client, server }) => {
        // Each pair has its own mesh file: the same Services, backed by its own server.
        const meshFile = join(dir, `mesh-${name}.yaml`);
        const meshPods: MeshPodSpec[] = [
          { name: client.name, namespace: NS, serviceAccount: 'client', ip: client.ip, labels: { app: client.name }, meshed: true },
          { name: server.name, namespace: NS, serviceAccount: 'greeter', ip: server.ip, labels: { app: server.name }, meshed: true },
        ];
        const backends = [{ pod: server.name }];
        writeFileSync(
          meshFile,
          meshYaml(meshPods, [
            { name: 'greeter', namespace: NS, clusterIP: GREETER, ports: [{ name: 'grpc', port: 50051, targetPort: 50051 }], backends },
            { name: 'web', namespace: NS, clusterIP: WEB, ports: [{ name: 'http', port: 8080, targetPort: 8080 }], backends },
            { name: 'banner', namespace: NS, clusterIP: BANNER, ports: [{ name: 'banner', port: 7000, targetPort: 7000 }], backends },
          ]),
        );
        await startWorkload(server, 'grpc-server', ['--port', '50051', '--name', server.name]);
        await startWorkload(server, 'http-server', ['--port', '8080', '--name', server.name]);
        await startWorkload(server, 'banner-server', ['--port', '7000', '--name', server.name]);
        await startSidecar(server, { meshFile, namespace: NS, serviceAccount: 'greeter', env: tracing[name] });
        await startSidecar(client, { meshFile, namespace: NS, serviceAccount: 'client', env: tracing[name] });
        pairs[name] = { client, server };
      }),
    );
  }, 90_000);

  afterAll(async () => {
    await topology?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  // ---- Zipkin: the tree of one request -------------------------------------------------------

  test('a gRPC call without trace context gives one client span and one server span in one new trace (Zipkin)', async () => {
    const { client } = pairs.zipkin;
    const result = await runClient<SpreadResult>(client, 'grpc-client', ['--target', `${GREETER}:50051`, '--calls', '1']);
    expect(result.ok).toBe(1);
    // The server application received the server sidecar's span as its parent.
    const seen = parseTraceparent(result.sample?.meta.traceparent);
    expect(seen.sampled).toBe(true);
    const tree = requestTree(await traceSpans(zipkinFile(), seen.traceId, 2), 'zipkin');
    expect(tree.server.id).toBe(seen.spanId);
    expect(tree.client.parentId).toBeUndefined();
    expect(result.sample?.meta.b3).toBe(`${seen.traceId}-${seen.spanId}-1-${tree.client.id}`);
    const common = {
      'http.request.method': 'POST',
      'url.path': GRPC_PATH,
      'rpc.system.name': 'grpc',
      'rpc.method': 'tsmesh.demo.Greeter/SayHello',
      'http.response.status_code': '200',
      'rpc.status_code': 'OK',
      'network.protocol.version': '2',
      'tsmesh.destination.identity': `spiffe://cluster.local/ns/${NS}/sa/greeter`,
      'tsmesh.mtls': 'false',
    };
    expect(tree.client).toMatchObject({ name: 'tsmesh.demo.Greeter/SayHello', tags: { ...common, 'tsmesh.source.identity': `spiffe://cluster.local/ns/${NS}/sa/client`, 'tsmesh.destination.service': `greeter.${NS}`, 'network.peer.address': pairs.zipkin.server.ip, 'network.peer.port': '50051', 'k8s.pod.name': 'zipkin-client' } });
    expect(tree.server).toMatchObject({ name: 'tsmesh.demo.Greeter/SayHello', tags: { ...common, 'network.peer.address': client.ip, 'k8s.pod.name': 'zipkin-server' } });
    // Plaintext between the sidecars: the server side cannot know who called.
    expect(tree.server.tags).not.toHaveProperty(['tsmesh.source.identity']);
  }, 30_000);

  test('an HTTP/1.1 request without trace context gives one client span and one server span in one new trace (Zipkin)', async () => {
    const { client, server } = pairs.zipkin;
    const reply = ok(await probe(client, { protocol: 'http1', target: `${WEB}:8080`, path: '/hello?token=secret' }));
    expect(reply).toMatchObject({ status: 200, server: server.name });
    const seen = parseTraceparent(reply.seen.traceparent);
    const tree = requestTree(await traceSpans(zipkinFile(), seen.traceId, 2), 'zipkin');
    expect(tree.server.id).toBe(seen.spanId);
    expect(tree.client.parentId).toBeUndefined();
    const common = { 'http.request.method': 'GET', 'url.path': '/hello', 'http.response.status_code': '200', 'network.protocol.version': '1.1', 'server.address': WEB, 'server.port': '8080' };
    expect(tree.client).toMatchObject({ name: 'GET', tags: { ...common, 'tsmesh.destination.service': `web.${NS}`, 'network.peer.address': server.ip } });
    expect(tree.server).toMatchObject({ name: 'GET', tags: { ...common, 'network.peer.address': client.ip } });
    for (const span of [tree.client, tree.server]) {
      expect(span.tags).not.toHaveProperty(['rpc.system.name']);
      expect(JSON.stringify(span)).not.toContain('secret'); // the query string never reaches telemetry
    }
  }, 30_000);

  // ---- an application's own context is continued ----------------------------------------------

  const formats: Array<{ name: string; headers: (trace: string, span: string) => Record<string, string>; traceId: (trace: string) => string }> = [
    { name: 'W3C traceparent', headers: (t, s) => ({ traceparent: `00-${t}-${s}-01` }), traceId: (t) => t },
    { name: 'B3 single header', headers: (t, s) => ({ b3: `${t}-${s}-1` }), traceId: (t) => t },
    // A 64-bit B3 trace id is left-padded to 128 bits (telemetry README: Propagation).
    { name: 'B3 multi headers (64-bit trace id)', headers: (t, s) => ({ 'x-b3-traceid': t.slice(16), 'x-b3-spanid': s, 'x-b3-sampled': '1' }), traceId: (t) => `0000000000000000${t.slice(16)}` },
  ];

  test.each(formats)('a request carrying only $name continues the application trace over gRPC and HTTP/1.1', async (format) => {
    const { client } = pairs.zipkin;
    const calls = await Promise.all(
      (['grpc', 'http1'] as const).map(async (protocol) => {
        const [trace, parent] = [newTraceId(), newSpanId()];
        const target = protocol === 'grpc' ? `${GREETER}:50051` : `${WEB}:8080`;
        const reply = ok(await probe(client, { protocol, target, path: '/continued', headers: format.headers(trace, parent) }));
        return { protocol, traceId: format.traceId(trace), parent, reply };
      }),
    );
    for (const { traceId, parent, reply } of calls) {
      const tree = requestTree(await traceSpans(zipkinFile(), traceId, 2), 'zipkin');
      expect(tree.client.parentId).toBe(parent);
      // The application behind the server sidecar continues the trace as a child of the server span,
      // in W3C and in the B3 style the request came with.
      expect(parseTraceparent(reply.seen.traceparent)).toEqual({ traceId, spanId: tree.server.id, sampled: true });
      if (format.name.startsWith('B3 multi')) {
        expect(reply.seen['x-b3-traceid']).toBe(traceId);
        expect(reply.seen).not.toHaveProperty(['b3']);
      } else {
        expect(reply.seen.b3).toBe(`${traceId}-${tree.server.id}-1-${tree.client.id}`);
      }
    }
  }, 30_000);

  // ---- OTLP/HTTP -------------------------------------------------------------------------------

  test('with TSMESH_TRACING=otlp the same client/server tree arrives at the OTLP/HTTP endpoint', async () => {
    const { client, server } = pairs.otlp;
    const grpcCall = await runClient<SpreadResult>(client, 'grpc-client', ['--target', `${GREETER}:50051`, '--calls', '1']);
    const httpReply = ok(await probe(client, { protocol: 'http1', target: `${WEB}:8080`, path: '/otlp' }));
    const [appTrace, appSpan] = [newTraceId(), newSpanId()];
    const continued = ok(await probe(client, { protocol: 'grpc', target: `${GREETER}:50051`, headers: { traceparent: `00-${appTrace}-${appSpan}-01` } }));

    const grpcSeen = parseTraceparent(grpcCall.sample?.meta.traceparent);
    const grpcTree = requestTree(await traceSpans(otlpFile(), grpcSeen.traceId, 2), 'otlp');
    expect(grpcTree.server.id).toBe(grpcSeen.spanId);
    expect(grpcTree.client).toMatchObject({ format: 'otlp', name: 'tsmesh.demo.Greeter/SayHello', tags: { 'rpc.system.name': 'grpc', 'rpc.status_code': 'OK', 'http.response.status_code': '200', 'tsmesh.destination.service': `greeter.${NS}`, 'network.peer.address': server.ip } });
    expect(grpcTree.server).toMatchObject({ format: 'otlp', tags: { 'rpc.status_code': 'OK', 'network.peer.address': client.ip, 'k8s.namespace.name': NS } });

    const httpSeen = parseTraceparent(httpReply.seen.traceparent);
    const httpTree = requestTree(await traceSpans(otlpFile(), httpSeen.traceId, 2), 'otlp');
    expect(httpTree.server.id).toBe(httpSeen.spanId);
    expect(httpTree.client).toMatchObject({ name: 'GET', tags: { 'url.path': '/otlp', 'http.response.status_code': '200', 'tsmesh.destination.service': `web.${NS}` } });

    const continuedTree = requestTree(await traceSpans(otlpFile(), appTrace, 2), 'otlp');
    expect(continuedTree.client.parentId).toBe(appSpan);
    expect(parseTraceparent(continued.seen.traceparent).spanId).toBe(continuedTree.server.id);
    // Nothing of this pair went to the Zipkin collector.
    expect(readCollectedSpans(zipkinFile()).filter((s) => s.service.startsWith('otlp-'))).toEqual([]);
  }, 30_000);

  // ---- sampling --------------------------------------------------------------------------------

  test('at TSMESH_TRACING_SAMPLE_RATE=0 nothing is exported for requests without a decision; a caller that sampled is still traced', async () => {
    const { client } = pairs.rate0;
    // No context, and a B3 context that defers the decision: both decided at rate 0.
    const unsampled = [
      ...(await probe(client, { protocol: 'grpc', target: `${GREETER}:50051`, count: 5 })),
      ...(await probe(client, { protocol: 'http1', target: `${WEB}:8080`, path: '/rate0', count: 5 })),
      ...(await probe(client, { protocol: 'http1', target: `${WEB}:8080`, path: '/deferred', headers: { 'x-b3-traceid': newTraceId(), 'x-b3-spanid': newSpanId() } })),
    ];
    const unsampledTraces = new Set<string>();
    for (const reply of unsampled) {
      expect(reply.error).toBeUndefined();
      const seen = parseTraceparent(reply.seen.traceparent);
      // The decision (not sampled) is propagated, so the application does not sample either.
      expect(seen.sampled).toBe(false);
      unsampledTraces.add(seen.traceId);
    }
    expect(unsampledTraces.size).toBe(11);

    // Callers that decided to sample: W3C flag 01, and B3 debug.
    const w3c = newTraceId();
    const debug = newTraceId();
    const sampled = [
      ok(await probe(client, { protocol: 'grpc', target: `${GREETER}:50051`, headers: { traceparent: `00-${w3c}-${newSpanId()}-01` } })),
      ok(await probe(client, { protocol: 'http1', target: `${WEB}:8080`, path: '/debug', headers: { b3: `${debug}-${newSpanId()}-d` } })),
    ];
    for (const [trace, reply] of [[w3c, sampled[0]], [debug, sampled[1]]] as const) {
      const tree = requestTree(await traceSpans(zipkinFile(), trace, 2), 'rate0');
      expect(parseTraceparent(reply?.seen.traceparent)).toEqual({ traceId: trace, spanId: tree.server.id, sampled: true });
    }
    // The sampled requests came after the others through the same sidecars and batch queues:
    // had any unsampled request been recorded, its spans would have been exported first.
    expect(readCollectedSpans(zipkinFile()).filter((s) => unsampledTraces.has(s.traceId))).toEqual([]);
  }, 30_000);

  test('at rate 1 every request is traced, and an incoming not-sampled decision is kept', async () => {
    const { client } = pairs.zipkin;
    const notSampled = newTraceId();
    const refused = ok(await probe(client, { protocol: 'grpc', target: `${GREETER}:50051`, headers: { traceparent: `00-${notSampled}-${newSpanId()}-00` } }));
    expect(parseTraceparent(refused.seen.traceparent)).toMatchObject({ traceId: notSampled, sampled: false });
    const replies = [
      ...(await probe(client, { protocol: 'grpc', target: `${GREETER}:50051`, count: 10 })),
      ...(await probe(client, { protocol: 'http1', target: `${WEB}:8080`, path: '/every', count: 10 })),
    ];
    const traces = new Set(replies.map((r) => parseTraceparent(r.seen.traceparent).traceId));
    expect(traces.size).toBe(20);
    await eventually(
      () => readCollectedSpans(zipkinFile()).filter((s) => traces.has(s.traceId)),
      (spans) => spans.length >= 40,
      'two spans for each of 20 requests',
    );
    const spans = readCollectedSpans(zipkinFile());
    for (const trace of traces) requestTree(spans.filter((s) => s.traceId === trace), 'zipkin');
    expect(spans.filter((s) => s.traceId === notSampled)).toEqual([]);
  }, 30_000);

  // ---- access log ------------------------------------------------------------------------------

  test('each sidecar writes one access-log line per request, with the trace id of the exported spans', async () => {
    const { client, server } = pairs.zipkin;
    const path = `/access/${newSpanId()}`;
    const httpReply = ok(await probe(client, { protocol: 'http1', target: `${WEB}:8080`, path: `${path}?q=1` }));
    const grpcTrace = newTraceId();
    ok(await probe(client, { protocol: 'grpc', target: `${GREETER}:50051`, headers: { traceparent: `00-${grpcTrace}-${newSpanId()}-01` } }));
    const httpTrace = parseTraceparent(httpReply.seen.traceparent).traceId;

    for (const [pod, reporter] of [[client, 'source'], [server, 'destination']] as const) {
      const lines = await eventually(
        () => accessLines(pod).filter((l) => l.path === path || l.trace_id === grpcTrace),
        (found) => found.length >= 2,
        `access-log lines in ${pod.name}`,
      );
      const http = one(lines.filter((l) => l.path === path), `HTTP access line in ${pod.name}`);
      expect(http).toMatchObject({ type: 'http', reporter, protocol: 'http1', method: 'GET', status: 200, grpc_status: null, trace_id: httpTrace });
      const grpc = one(lines.filter((l) => l.trace_id === grpcTrace), `gRPC access line in ${pod.name}`);
      expect(grpc).toMatchObject({ type: 'http', reporter, protocol: 'grpc', method: 'POST', path: GRPC_PATH, status: 200, grpc_status: 0 });
    }
    // The same trace ids as the spans the collector received, one client and one server span each.
    for (const trace of [httpTrace, grpcTrace]) requestTree(await traceSpans(zipkinFile(), trace, 2), 'zipkin');
  }, 30_000);

  // ---- metrics ---------------------------------------------------------------------------------

  test('request counters and duration histograms on both sidecars count exactly the requests made', async () => {
    const { client, server } = pairs.otlp;
    const N = 25;
    const source = { reporter: 'source', source_workload: 'otlp-client', source_namespace: NS, destination_workload: 'otlp-server', destination_namespace: NS, response_code: '200', connection_security_policy: 'none' };
    // Without mTLS the destination side cannot know the caller; it knows the Service its port serves.
    const destination = { reporter: 'destination', source_workload: 'unknown', source_namespace: 'unknown', destination_workload: 'otlp-server', destination_namespace: NS, response_code: '200', connection_security_policy: 'none' };
    const series = [
      { pod: client, labels: { ...source, grpc_status: '0', destination_service: `greeter.${NS}` } },
      { pod: client, labels: { ...source, grpc_status: '', destination_service: `web.${NS}` } },
      { pod: server, labels: { ...destination, grpc_status: '0', destination_service: `greeter.${NS}` } },
      { pod: server, labels: { ...destination, grpc_status: '', destination_service: `web.${NS}` } },
    ];
    const read = async (): Promise<Array<{ requests: number; count: number; inf: number; access: number }>> => {
      const scraped = new Map<Pod, Sample[]>([[client, await scrape(client)], [server, await scrape(server)]]);
      return series.map(({ pod, labels }) => {
        const samples = scraped.get(pod) ?? [];
        return {
          requests: total(samples, 'tsmesh_requests_total', labels),
          count: total(samples, 'tsmesh_request_duration_seconds_count', labels),
          inf: total(samples, 'tsmesh_request_duration_seconds_bucket', { ...labels, le: '+Inf' }),
          access: accessLines(pod).filter((l) => l.type === 'http' && (labels.grpc_status === '0' ? l.path === GRPC_PATH : l.path === '/metrics')).length,
        };
      });
    };
    const before = await read();
    const [grpcRun, httpRun] = await Promise.all([
      runClient<SpreadResult>(client, 'grpc-client', ['--target', `${GREETER}:50051`, '--calls', String(N)]),
      runClient<SpreadResult>(client, 'http-client', ['--url', `http://${WEB}:8080/metrics`, '--requests', String(N)]),
    ]);
    expect([grpcRun.ok, httpRun.ok]).toEqual([N, N]);
    const after = await eventually(read, (now) => now.every((s, i) => s.access - (before[i]?.access ?? 0) >= N), 'every access-log line', 5000);
    after.forEach((now, i) => {
      const was = before[i] ?? { requests: 0, count: 0, inf: 0, access: 0 };
      expect({ series: series[i]?.labels, requests: now.requests - was.requests, count: now.count - was.count, inf: now.inf - was.inf, access: now.access - was.access }).toEqual({
        series: series[i]?.labels,
        requests: N,
        count: N,
        inf: N,
        access: N,
      });
    });
  }, 30_000);

  test('an opaque TCP connection (server-first banner) is counted opened and closed on both sidecars, with its bytes and a connection span', async () => {
    const { client, server } = pairs.otlp;
    const labels = {
      client: { reporter: 'source', source_workload: 'otlp-client', source_namespace: NS, destination_service: `banner.${NS}`, destination_workload: 'otlp-server', destination_namespace: NS, connection_security_policy: 'none' },
      server: { reporter: 'destination', source_workload: 'unknown', source_namespace: 'unknown', destination_workload: 'otlp-server', destination_namespace: NS, connection_security_policy: 'none' },
    };
    const read = async (pod: Pod, where: Record<string, string>): Promise<number[]> => {
      const samples = await scrape(pod);
      return ['tsmesh_tcp_opened_total', 'tsmesh_tcp_closed_total', 'tsmesh_tcp_sent_bytes_total', 'tsmesh_tcp_received_bytes_total'].map((name) => total(samples, name, where));
    };
    const before = { client: await read(client, labels.client), server: await read(server, labels.server) };
    const tcpLinesBefore = { client: accessLines(client).filter((l) => l.type === 'tcp').length, server: accessLines(server).filter((l) => l.type === 'tcp').length };
    const { banner } = await runClient<{ banner: string }>(client, 'banner-client', ['--host', BANNER, '--port', '7000']);
    expect(banner).toMatch(/^hello from otlp-server /);
    const bytes = Buffer.byteLength(banner) + 1; // the line and its newline, towards the client; nothing back
    for (const side of ['client', 'server'] as const) {
      const pod = side === 'client' ? client : server;
      const was = before[side];
      const now = await eventually(() => read(pod, labels[side]), (n) => (n[1] ?? 0) > (was[1] ?? 0), `the closed connection on ${pod.name}`, 5000);
      expect(now.map((v, i) => v - (was[i] ?? 0))).toEqual([1, 1, bytes, 0]);
      const lines = accessLines(pod).filter((l) => l.type === 'tcp').slice(tcpLinesBefore[side]);
      const line = one(lines, `TCP access line in ${pod.name}`);
      expect(line).toMatchObject({ bytes_sent: bytes, bytes_received: 0 });
      // The connection's span (a trace of its own: TCP carries no context) went to the collector.
      const span = one(await traceSpans(otlpFile(), String(line.trace_id), 1), `connection span from ${pod.name}`);
      expect(span).toMatchObject({ kind: side === 'client' ? 'CLIENT' : 'SERVER', service: pod.name, tags: { 'network.transport': 'tcp', 'tsmesh.bytes_sent': String(bytes) } });
    }
  }, 30_000);

  // ---- a collector that goes away -------------------------------------------------------------

  test('killing the collector fails no request; tracing resumes when it is back', async () => {
    const { client } = pairs.zipkin;
    await killAndWait(zipkinCollector);
    const [grpcRun, httpRun] = await Promise.all([
      runClient<SpreadResult>(client, 'grpc-client', ['--target', `${GREETER}:50051`, '--calls', '100']),
      runClient<SpreadResult>(client, 'http-client', ['--url', `http://${WEB}:8080/no-collector`, '--requests', '100']),
    ]);
    expect({ grpc: grpcRun.failed, http: httpRun.failed, ok: grpcRun.ok + httpRun.ok, errors: [...grpcRun.errors, ...httpRun.errors] }).toEqual({ grpc: 0, http: 0, ok: 200, errors: [] });
    // The failed exports are reported, not thrown: the sidecar says so and keeps serving.
    await eventually(() => client.logs.some((l) => l.includes('"component":"telemetry.export"') && l.includes('exporting spans failed')), (found) => found, 'the export failure log line', 8000);
    for (const pod of [pairs.zipkin.client, pairs.zipkin.server]) expect(pod.processes.every((p) => p.exitCode === null && p.signalCode === null)).toBe(true);

    zipkinCollector = await startWorkload(collectorPod, 'collector', ['--port', String(ZIPKIN_PORT), '--out', zipkinFile()]);
    const reply = ok(await probe(client, { protocol: 'grpc', target: `${GREETER}:50051` }));
    requestTree(await traceSpans(zipkinFile(), parseTraceparent(reply.seen.traceparent).traceId, 2, 15_000), 'zipkin');
  }, 60_000);

  test('no request span was exported twice', async () => {
    const reply = ok(await probe(pairs.otlp.client, { protocol: 'grpc', target: `${GREETER}:50051` }));
    requestTree(await traceSpans(otlpFile(), parseTraceparent(reply.seen.traceparent).traceId, 2), 'otlp');
    for (const file of [zipkinFile(), otlpFile()]) {
      const seen = new Map<string, number>();
      for (const s of readCollectedSpans(file)) seen.set(`${s.traceId}/${s.kind}/${s.service}`, (seen.get(`${s.traceId}/${s.kind}/${s.service}`) ?? 0) + 1);
      expect([...seen].filter(([, n]) => n > 1)).toEqual([]);
    }
  }, 30_000);
});
