// End-to-end proof of traffic policy (issue 12): a client pod whose sidecar (uid 1337, `tsmesh
// iptables`, `tsmesh proxy --config`) reads a mesh file with HTTPRoute `retry`/`timeouts` and
// TrafficPolicies (docs/traffic-policy.md), and five replica pods whose servers misbehave on purpose
// (503 half the time, hang, 500 always, slow, gRPC UNAVAILABLE). Real clients run as the application
// in the client pod: curl (HTTP/1.1 and HTTP/2), @grpc/grpc-js, and a Node client for timelines.
// The replicas have no sidecar: what the client sees is what its own sidecar's policy made of it.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startSidecar, Topology, type MeshPodSpec, type MeshServiceSpec, type Pod } from 'tsmesh/demo';
import { requireNetns } from './netns.js';
import { replaceFile } from './routing-helpers.js';
import {
  accessLog,
  collectLines,
  curl,
  CURL_FORMAT,
  httpRoute,
  probe,
  replicaStats,
  requireTrafficProbe,
  serviceLabel,
  sidecarClusters,
  sidecarMetrics,
  startReplica,
  sum,
  trafficMeshYaml,
  trafficPolicy,
} from './traffic-policy-helpers.js';
import type { GrpcCall, PortStats, TimelineReport } from './traffic-policy-model.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;

const NS = 'shop';
const REPLICAS = ['r1', 'r2', 'r3', 'r4', 'r5'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The Services under test: cluster IP, port, the replicas' port behind it, and who serves it. */
const SVC = {
  retry: { ip: '10.96.7.1', port: 80, target: 8081, backends: ['r1', 'r2', 'r3', 'r4'] },
  timeout: { ip: '10.96.7.2', port: 80, target: 8082, backends: ['r1', 'r2', 'r3'] },
  greeter: { ip: '10.96.7.3', port: 50051, target: 50051, backends: ['r1', 'r2', 'r3'] },
  'greeter-hang': { ip: '10.96.7.4', port: 50051, target: 50052, backends: ['r1', 'r2'] },
  outlier: { ip: '10.96.7.5', port: 80, target: 8084, backends: ['r1', 'r2', 'r3', 'r4'] },
  breaker: { ip: '10.96.7.6', port: 80, target: 8085, backends: ['r1'] },
  sticky: { ip: '10.96.7.7', port: 80, target: 8086, backends: ['r1', 'r2', 'r3', 'r4', 'r5'] },
  budget: { ip: '10.96.7.8', port: 80, target: 8088, backends: ['r1', 'r2'] },
  // Limits of the sidecar, not of each of its two event loops, and the later knobs.
  pool: { ip: '10.96.7.9', port: 80, target: 8094, backends: ['r1'] },
  'budget-loops': { ip: '10.96.7.10', port: 80, target: 8091, backends: ['r1', 'r2'] },
  'outlier-loops': { ip: '10.96.7.11', port: 80, target: 8095, backends: ['r1', 'r2', 'r3', 'r4'] },
  'success-rate': { ip: '10.96.7.12', port: 80, target: 8096, backends: ['r1', 'r2', 'r3', 'r4'] },
  idle: { ip: '10.96.7.13', port: 80, target: 8097, backends: ['r1'] },
  session: { ip: '10.96.7.14', port: 80, target: 8098, backends: ['r1', 'r2', 'r3'] },
} as const;
type ServiceName = keyof typeof SVC;

/** What each replica does on each port. */
const MODES: Record<string, { http: Record<number, string>; h2?: Record<number, string>; grpc: Record<number, string> }> = {
  r1: {
    http: { 8081: 'flaky', 8082: 'hang', 8084: 'fail', 8086: 'ok', 8088: 'down', 8091: 'down', 8094: 'slow', 8095: 'fail', 8096: 'flaky30', 8097: 'ok', 8098: 'ok' },
    h2: { 8085: 'slow' },
    grpc: { 50051: 'unavailable', 50052: 'hang' },
  },
  r2: { http: { 8081: 'ok', 8082: 'ok', 8084: 'fail', 8086: 'ok', 8088: 'ok', 8091: 'ok', 8095: 'ok', 8096: 'ok', 8098: 'ok' }, grpc: { 50051: 'ok', 50052: 'hang' } },
  r3: { http: { 8081: 'ok', 8082: 'ok', 8084: 'ok', 8086: 'ok', 8095: 'ok', 8096: 'ok', 8098: 'ok' }, grpc: { 50051: 'ok' } },
  r4: { http: { 8081: 'ok', 8084: 'ok', 8086: 'ok', 8095: 'ok', 8096: 'ok' }, grpc: {} },
  r5: { http: { 8086: 'ok' }, grpc: {} },
};

// The policies under test, as a user writes them.
const PER_TRY_MS = 250;
const REQUEST_TIMEOUT_MS = 2000;
const GRPC_PER_TRY_MS = 300;
const EJECT_AFTER = 3;
const BASE_EJECTION_MS = 1000;
const MAX_REQUESTS = 4;
const SLOW_MS = 300;
const BUDGET_PERCENT = 10;
const MAX_CONNECTIONS = 2;
const MAX_PENDING = 4;
const IDLE_TIMEOUT_MS = 500;

const POLICIES = [
  httpRoute(NS, 'retry', { name: 'retry', port: 80 }, { backend: { name: 'retry', port: 80 }, retry: { codes: [503], attempts: 2, backoff: '10ms' } }),
  httpRoute(NS, 'timeout', { name: 'timeout', port: 80 }, {
    backend: { name: 'timeout', port: 80 },
    retry: { codes: [503], attempts: 2, backoff: '10ms' },
    timeouts: { request: `${REQUEST_TIMEOUT_MS}ms`, backendRequest: `${PER_TRY_MS}ms` },
  }),
  trafficPolicy(NS, 'greeter', { retry: { attempts: 2, backoff: '10ms', grpcCodes: ['UNAVAILABLE'] } }),
  // gRPC per-try timeout: GRPCRoute has no timeouts, an HTTPRoute on the gRPC port matches the call as POST /service/method.
  httpRoute(NS, 'greeter-hang', { name: 'greeter-hang', port: 50051 }, {
    backend: { name: 'greeter-hang', port: 50051 },
    timeouts: { request: '5s', backendRequest: `${GRPC_PER_TRY_MS}ms` },
  }),
  trafficPolicy(NS, 'greeter-hang', { retry: { attempts: 1, backoff: '10ms', grpcCodes: ['UNAVAILABLE'] } }),
  trafficPolicy(NS, 'outlier', {
    loadBalancer: { algorithm: 'round-robin' },
    outlierDetection: { consecutive5xxErrors: EJECT_AFTER, maxEjectionPercent: 25, baseEjectionTime: `${BASE_EJECTION_MS}ms`, interval: '1s' },
  }),
  trafficPolicy(NS, 'breaker', { connectionPool: { maxRequests: MAX_REQUESTS } }),
  httpRoute(NS, 'budget', { name: 'budget', port: 80 }, { backend: { name: 'budget', port: 80 }, retry: { codes: [503], attempts: 2, backoff: '10ms' } }),
  trafficPolicy(NS, 'budget', { retryBudget: { percent: BUDGET_PERCENT, minRetriesPerSecond: 1, interval: '10s' } }),
  trafficPolicy(NS, 'sticky', { loadBalancer: { algorithm: 'ring-hash', hash: { header: 'x-user' } } }),
  trafficPolicy(NS, 'pool', { connectionPool: { maxConnections: MAX_CONNECTIONS, maxPendingRequests: MAX_PENDING } }),
  httpRoute(NS, 'budget-loops', { name: 'budget-loops', port: 80 }, { backend: { name: 'budget-loops', port: 80 }, retry: { codes: [503], attempts: 2, backoff: '10ms' } }),
  trafficPolicy(NS, 'budget-loops', { retryBudget: { percent: BUDGET_PERCENT, minRetriesPerSecond: 1, interval: '10s' } }),
  // A long ejection: it must outlast the test, so that what the replica receives after its 3rd 500 is what the ejection let through.
  trafficPolicy(NS, 'outlier-loops', { loadBalancer: { algorithm: 'round-robin' }, outlierDetection: { consecutive5xxErrors: EJECT_AFTER, maxEjectionPercent: 25, baseEjectionTime: '60s' } }),
  trafficPolicy(NS, 'success-rate', {
    loadBalancer: { algorithm: 'round-robin' },
    // Consecutive errors off: only the success rate can eject.
    outlierDetection: { consecutive5xxErrors: 0, interval: '1s', baseEjectionTime: '60s', maxEjectionPercent: 25, successRateMinimumHosts: 3, successRateRequestVolume: 20, successRateStdevFactor: 1000 },
  }),
  trafficPolicy(NS, 'idle', { connectionPool: { idleTimeout: `${IDLE_TIMEOUT_MS}ms` } }),
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'session', namespace: NS },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'session', port: 80 }],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/cart' } }], sessionPersistence: { sessionName: 'cart', absoluteTimeout: '1h' }, backendRefs: [{ name: 'session', port: 80 }] },
        { backendRefs: [{ name: 'session', port: 80 }] },
      ],
    },
  },
  trafficPolicy(NS, 'session', { loadBalancer: { algorithm: 'round-robin' } }),
];

/** The Service port's name, which declares its protocol. The breaker's backend speaks h2c on a port named http, as many do. */
const portName = (service: ServiceName): string => (SVC[service].port === 50051 ? 'grpc' : 'http');
const url = (service: ServiceName, path = '/'): string => `http://${SVC[service].ip}:${SVC[service].port}${path}`;
const count = <T>(items: readonly T[], test: (item: T) => boolean): number => items.filter(test).length;

/** `n` curl transfers to `target`, each on a connection of its own (so spread over the sidecar's event loops), as one curl config. */
function freshConnections(target: (i: number) => string, n: number, extra: readonly string[] = []): string {
  const blocks: string[] = [];
  const format = CURL_FORMAT.replace('\n', '\\n');
  for (let i = 0; i < n; i++) {
    blocks.push([`url = "${target(i)}"`, 'header = "Connection: close"', 'output = "/dev/null"', 'silent', 'show-error', `write-out = "${format}"`, ...extra].join('\n'));
  }
  return blocks.join('\nnext\n');
}

suite('traffic policy (retries, timeouts, outlier detection, circuit breaking, ring hash) in network namespaces', () => {
  let topology: Topology;
  let dir: string;
  let meshFile: string;
  let client: Pod;
  let sidecar: ChildProcess;
  let pods: MeshPodSpec[];

  const services = (without: { service?: ServiceName; replica?: string } = {}): MeshServiceSpec[] =>
    Object.entries(SVC).map(([name, s]) => ({
      name,
      namespace: NS,
      clusterIP: s.ip,
      ports: [{ name: portName(name as ServiceName), port: s.port, targetPort: s.target }],
      backends: s.backends.filter((b) => !(name === without.service && b === without.replica)).map((pod) => ({ pod })),
    }));

  /** Per replica, what its port `target` received. */
  const received = async (service: ServiceName): Promise<Record<string, PortStats>> => {
    const out: Record<string, PortStats> = {};
    for (const name of SVC[service].backends) {
      const stats = (await replicaStats(topology.pod(name)))[String(SVC[service].target)];
      out[name] = stats ?? { mode: '?', received: 0, statuses: {}, maxInFlight: 0 };
    }
    return out;
  };

  /** Outbound connections each event loop of the client sidecar accepted between two metric samples. */
  const perLoop = (before: Awaited<ReturnType<typeof sidecarMetrics>>, after: Awaited<ReturnType<typeof sidecarMetrics>>): [number, number] =>
    (['0', '1'] as const).map(
      (loop) => sum(after, 'tsmesh_proxy_loop_connections_total', { loop, direction: 'outbound' }) - sum(before, 'tsmesh_proxy_loop_connections_total', { loop, direction: 'outbound' }),
    ) as [number, number];

  /** Runs a curl config file (written to the suite's directory) in the client pod. */
  const curlConfig = async (name: string, config: string) => {
    const file = join(dir, name);
    writeFileSync(file, config);
    return curl(client, ['-K', file]);
  };

  beforeAll(async () => {
    requireTrafficProbe();
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-policy-'));
    chmodSync(dir, 0o755); // the sidecar (uid 1337) reads and watches the mesh file
    meshFile = join(dir, 'mesh.yaml');
    topology = await Topology.create('tsm-tp', '10.238.0');
    client = await topology.addPod({ name: 'client', hostId: 10 });
    const replicas = await Promise.all(REPLICAS.map((name, i) => topology.addPod({ name, hostId: 11 + i })));
    pods = [
      { name: 'client', namespace: NS, serviceAccount: 'client', ip: client.ip, labels: { app: 'client' }, meshed: true },
      ...replicas.map((p) => ({ name: p.name, namespace: NS, serviceAccount: 'backend', ip: p.ip, labels: { app: 'backend' }, meshed: false })),
    ];
    writeFileSync(meshFile, trafficMeshYaml(pods, services(), POLICIES));
    await Promise.all(replicas.map((pod) => startReplica(pod, MODES[pod.name] ?? { http: {}, grpc: {} }, SLOW_MS)));
    // Two event loops (the default, said here because the tests below depend on it).
    sidecar = await startSidecar(client, { meshFile, namespace: NS, serviceAccount: 'client', env: { TSMESH_ACCESS_LOG: 'on' }, args: ['--concurrency', '2'] });
  }, 60_000);

  afterAll(async () => {
    // Kills every process and deletes every namespace (with the iptables rules inside them), even after a failure.
    await topology?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('HTTPRoute retry on 503: ≥ 99.9 % of 1,000 requests succeed though one replica of four answers 503 half the time; every retry counted, within the retry budget', async () => {
    const before = await sidecarMetrics(client);
    const sidecarLog = collectLines(sidecar);
    const started = Date.now();
    // One curl, 1,000 GETs on one keep-alive connection.
    const run = await curl(client, [url('retry', '/r/[1-1000]')]);
    const answers = run.answers;
    const seconds = (Date.now() - started) / 1000;
    const after = await sidecarMetrics(client);
    const stats = await received('retry');
    await sleep(200);
    sidecarLog.stop();
    const log = accessLog(sidecarLog.lines).filter((l) => serviceLabel(NS, 'retry').test(String(l.destination_service ?? '')));

    const retries = (reason?: string): number =>
      sum(after, 'tsmesh_upstream_retries_total', { destination_service: serviceLabel(NS, 'retry'), ...(reason ? { reason } : {}) }) -
      sum(before, 'tsmesh_upstream_retries_total', { destination_service: serviceLabel(NS, 'retry'), ...(reason ? { reason } : {}) });
    const ok = count(answers, (a) => a.status === 200);
    const flaky503 = stats.r1?.statuses['503'] ?? 0;
    // Linkerd's budget as configured by default: 20 % of the requests plus 10 a second, over a 10 s window.
    const budget = 0.2 * answers.length + 10 * (seconds + 10);
    console.log(`retry: ${ok}/${answers.length} ok in ${seconds.toFixed(1)} s; r1 answered 503 ${flaky503} times; retries ${retries()} (status ${retries('status')}), budget ≤ ${budget.toFixed(0)}; per replica ${JSON.stringify(Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.received])))}`);

    expect(run.other).toEqual([]);
    expect(answers.length).toBe(1000);
    expect(ok / answers.length).toBeGreaterThanOrEqual(0.999);
    // The fault was real: r1 took its share and failed half of it.
    expect(flaky503).toBeGreaterThanOrEqual(100);
    expect(Math.abs(flaky503 - (stats.r1?.statuses['200'] ?? 0))).toBeLessThanOrEqual(1);
    // Every 503 was retried once (elsewhere), and counted so; nothing past the budget.
    expect(retries('status')).toBe(flaky503);
    expect(retries()).toBeLessThanOrEqual(budget);
    // The clients' requests plus the retries are what the replicas received.
    const total = Object.values(stats).reduce((n, s) => n + s.received, 0);
    expect(total).toBe(answers.length + flaky503);
    // The access log gives each request's tries: two for each retried one.
    expect(log.length).toBe(answers.length);
    expect(count(log, (l) => l.attempts === 2)).toBe(flaky503);
    expect(log.every((l) => l.status === 200 && (l.attempts === 1 || l.attempts === 2))).toBe(true);
  }, 60_000);

  test(`the retry budget binds: with one replica of two always answering 503, retries stop at ${BUDGET_PERCENT} % of the requests (plus 1/s), the others answered 503 and counted as refused`, async () => {
    const before = await sidecarMetrics(client);
    const started = Date.now();
    const { answers, other } = await curl(client, [url('budget', '/budget/[1-400]')]);
    const seconds = (Date.now() - started) / 1000;
    const after = await sidecarMetrics(client);
    const stats = await received('budget');
    const delta = (name: string, match: Record<string, string>): number =>
      sum(after, name, { destination_service: serviceLabel(NS, 'budget'), ...match }) - sum(before, name, { destination_service: serviceLabel(NS, 'budget'), ...match });
    const retried = delta('tsmesh_upstream_retries_total', {});
    const refused = delta('tsmesh_upstream_overflow_total', { kind: 'retry_budget' });
    const down503 = stats.r1?.statuses['503'] ?? 0;
    const failed = count(answers, (a) => a.status === 503);
    // TrafficPolicy retryBudget: percent of the requests of the last 10 s, plus 1 a second over the window.
    const budget = (BUDGET_PERCENT / 100) * answers.length + 1 * (seconds + 10);
    console.log(`budget: ${answers.length} requests in ${seconds.toFixed(1)} s; r1 answered 503 ${down503} times; ${retried} retried (budget ≤ ${budget.toFixed(0)}), ${refused} refused by the budget; the client got ${failed} 503s`);

    expect(other).toEqual([]);
    expect(answers.length).toBe(400);
    expect(down503).toBeGreaterThan(100);
    // Retries went out up to the budget and no further.
    expect(retried).toBeGreaterThanOrEqual((BUDGET_PERCENT / 100) * answers.length);
    expect(retried).toBeLessThanOrEqual(budget);
    // Every 503 of r1 was either retried (and answered by r2) or refused by the budget and passed on.
    expect(retried + refused).toBe(down503);
    expect(failed).toBe(refused);
    expect(count(answers, (a) => a.status === 200)).toBe(answers.length - refused);
  }, 60_000);

  test('timeouts.backendRequest: a hung replica costs one per-try timeout, then another replica answers; every request within timeouts.request', async () => {
    const before = await sidecarMetrics(client);
    const sidecarLog = collectLines(sidecar);
    const { answers, other } = await curl(client, [url('timeout', '/t/[1-45]')]);
    const after = await sidecarMetrics(client);
    const stats = await received('timeout');
    await sleep(200);
    sidecarLog.stop();
    // Each request's tries, from the access log (the path tells the request: /t/1 .. /t/45).
    const attempts = new Map(accessLog(sidecarLog.lines).filter((l) => serviceLabel(NS, 'timeout').test(String(l.destination_service ?? ''))).map((l) => [String(l.path), Number(l.attempts)]));
    const timeoutRetries = sum(after, 'tsmesh_upstream_retries_total', { destination_service: serviceLabel(NS, 'timeout'), reason: 'timeout' }) - sum(before, 'tsmesh_upstream_retries_total', { destination_service: serviceLabel(NS, 'timeout'), reason: 'timeout' });
    const retried = answers.filter((_a, i) => attempts.get(`/t/${i + 1}`) === 2);
    const ms = (a: { seconds: number }): number => a.seconds * 1000;
    const max = Math.max(...answers.map(ms));
    console.log(`timeout: ${answers.length} requests, ${retried.length} met the hung replica (it received ${stats.r1?.received}) and took ${retried.map((a) => ms(a).toFixed(0)).join(', ')} ms; slowest ${max.toFixed(0)} ms; timeout retries ${timeoutRetries}`);

    expect(other).toEqual([]);
    expect(answers.length).toBe(45);
    expect(attempts.size).toBe(45);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.every((a) => a.server === 'r2' || a.server === 'r3')).toBe(true);
    // The hung replica was tried, and each time cut after the per-try timeout and retried once.
    const hung = stats.r1?.received ?? 0;
    expect(hung).toBeGreaterThanOrEqual(3);
    expect(timeoutRetries).toBe(hung);
    expect(retried.length).toBe(hung);
    expect([...attempts.values()].every((n) => n === 1 || n === 2)).toBe(true);
    // Measured by the client: those requests waited the per-try timeout for the hung one, and no
    // longer (plus backoff and a scheduling margin); every request far below timeouts.request.
    for (const a of retried) {
      expect(ms(a)).toBeGreaterThanOrEqual(PER_TRY_MS - 5);
      expect(ms(a)).toBeLessThan(PER_TRY_MS + 250);
    }
    expect(max).toBeLessThan(REQUEST_TIMEOUT_MS);
  }, 60_000);

  test('gRPC: TrafficPolicy retry.grpcCodes [UNAVAILABLE] turns a replica that always answers UNAVAILABLE into no failed call', async () => {
    const before = await sidecarMetrics(client);
    const calls = await probe<GrpcCall[]>(client, ['grpc-calls', '--target', `${SVC.greeter.ip}:50051`, '--calls', '150']);
    const after = await sidecarMetrics(client);
    const stats = await received('greeter');
    const retried = sum(after, 'tsmesh_upstream_retries_total', { destination_service: serviceLabel(NS, 'greeter') }) - sum(before, 'tsmesh_upstream_retries_total', { destination_service: serviceLabel(NS, 'greeter') });
    const unavailable = stats.r1?.statuses['14'] ?? 0;
    console.log(`grpc retry: ${count(calls, (c) => c.code === 0)}/${calls.length} ok; r1 answered UNAVAILABLE ${unavailable} times; retries ${retried}`);

    expect(calls.filter((c) => c.code !== 0)).toEqual([]);
    expect(calls.every((c) => c.server === 'r2' || c.server === 'r3')).toBe(true);
    expect(unavailable).toBeGreaterThanOrEqual(10);
    expect(retried).toBe(unavailable);
  }, 60_000);

  test('gRPC: a per-try timeout (timeouts.backendRequest) gives DEADLINE_EXCEEDED from the sidecar when every replica hangs', async () => {
    const before = await received('greeter-hang');
    const sidecarLog = collectLines(sidecar);
    const calls = await probe<GrpcCall[]>(client, ['grpc-calls', '--target', `${SVC['greeter-hang'].ip}:50051`, '--calls', '3', '--deadline-ms', '10000']);
    const after = await received('greeter-hang');
    await sleep(200);
    sidecarLog.stop();
    const log = accessLog(sidecarLog.lines).filter((l) => serviceLabel(NS, 'greeter-hang').test(String(l.destination_service ?? '')));
    console.log(`grpc per-try timeout: ${JSON.stringify(calls.map((c) => ({ code: c.code, ms: Math.round(c.ms), details: c.details })))}; access log ${JSON.stringify(log.map((l) => [l.grpc_status, l.flags, l.attempts]))}`);
    const tries = (['r1', 'r2'] as const).reduce((n, r) => n + (after[r]?.received ?? 0) - (before[r]?.received ?? 0), 0);

    for (const call of calls) {
      expect(call.code).toBe(4); // DEADLINE_EXCEEDED
      // From the sidecar after two tries of 300 ms (the retry policy's attempts: 1), long before the client's own 10 s deadline.
      expect(call.ms).toBeGreaterThanOrEqual(2 * GRPC_PER_TRY_MS - 20);
      expect(call.ms).toBeLessThan(2 * GRPC_PER_TRY_MS + 600);
    }
    // Both tries of each call reached a hung replica: one each, as a retry goes to another endpoint.
    expect(tries).toBe(2 * calls.length);
    // The access log says why: flag UT (upstream request timeout), two tries.
    expect(log).toHaveLength(calls.length);
    for (const line of log) expect(line).toMatchObject({ protocol: 'grpc', grpc_status: 4, flags: 'UT', attempts: 2 });
  }, 60_000);

  test(`outlier detection: a replica answering 500 is ejected after ${EJECT_AFTER} consecutive errors, at most 25 % of the Service is ejected, and it comes back after the ejection time`, async () => {
    const report = await probe<TimelineReport>(client, ['http-timeline', '--url', url('outlier', '/o'), '--duration-ms', '4500', '--interval-ms', '10', '--cluster', `${NS}/outlier:80`]);
    const { answers } = report;
    expect(report.errors).toEqual([]);
    expect(answers.length).toBeGreaterThan(100);

    // The first ejection: the bad replica whose requests stop first, right after its third 500.
    const bad = ['r1', 'r2'];
    const firstGap = (replica: string): { index: number; gapMs: number; nth: number } | undefined => {
      const mine = answers.map((a, i) => ({ ...a, i })).filter((a) => a.server === replica);
      for (let k = 1; k < mine.length; k++) {
        const gapMs = (mine[k]?.at ?? 0) - (mine[k - 1]?.at ?? 0);
        if (gapMs > BASE_EJECTION_MS / 2) return { index: mine[k - 1]?.i ?? 0, gapMs, nth: k };
      }
      return undefined;
    };
    const gaps = bad.map((r) => ({ replica: r, gap: firstGap(r) })).filter((g) => g.gap !== undefined);
    expect(gaps.length).toBeGreaterThan(0);
    gaps.sort((a, b) => (a.gap?.index ?? 0) - (b.gap?.index ?? 0));
    const first = gaps[0];
    const ejected = first?.replica ?? '';
    const other = bad.find((r) => r !== ejected) ?? '';
    console.log(`outlier: ${answers.length} requests; ${ejected} ejected after its request #${first?.gap?.nth}, back ${first?.gap?.gapMs} ms later; /clusters polls ${report.ejections.length}, most ejected at once ${Math.max(...report.ejections.map((e) => e.ejected.length))}`);
    // Ejected after exactly EJECT_AFTER consecutive 500s (it answers nothing else), for the ejection time.
    expect(first?.gap?.nth).toBe(EJECT_AFTER);
    expect(first?.gap?.gapMs).toBeGreaterThanOrEqual(BASE_EJECTION_MS - 50);
    // Back after the ejection time: it receives requests again (the first comes within a round of the return).
    expect(first?.gap?.gapMs).toBeLessThan(BASE_EJECTION_MS + 400);

    // While it was out, the other bad replica also failed EJECT_AFTER times in a row and more, but
    // maxEjectionPercent 25 (one of four) kept it in: it went on receiving requests.
    const outFrom = answers[first?.gap?.index ?? 0]?.at ?? 0;
    const whileOut = answers.filter((a) => a.at > outFrom + 50 && a.at < outFrom + BASE_EJECTION_MS - 50);
    expect(count(whileOut, (a) => a.server === ejected)).toBe(0);
    expect(count(whileOut, (a) => a.server === other)).toBeGreaterThan(EJECT_AFTER + 3);
    expect(whileOut.every((a) => a.server !== other || a.status === 500)).toBe(true);

    // The sidecar's own view, polled all along: never more than one of the four ejected, never a healthy one.
    expect(report.ejections.length).toBeGreaterThan(20);
    expect(report.ejections.every((e) => e.endpoints === 4)).toBe(true);
    expect(Math.max(...report.ejections.map((e) => e.ejected.length))).toBe(1);
    const healthy = new Set([topology.pod('r3').ip, topology.pod('r4').ip].map((ip) => `${ip}:${SVC.outlier.target}`));
    expect(report.ejections.every((e) => e.ejected.every((k) => !healthy.has(k)))).toBe(true);
  }, 60_000);

  test(`circuit breaking: h2load floods 40 concurrent streams at 200 requests/s over maxRequests ${MAX_REQUESTS}: fast 503s flagged UO and counted, while the requests within the limit keep succeeding`, async () => {
    const before = await sidecarMetrics(client);
    const sidecarLog = collectLines(sidecar);
    // One HTTP/2 connection (so one event loop of the sidecar), up to 40 streams at once, 300 requests over 1.5 s.
    const h2log = join(dir, 'h2load.log');
    const summary = await client.exec('h2load', ['-n', '300', '-c', '1', '-m', '40', '--rps', '200', `--log-file=${h2log}`, url('breaker', '/b')]);
    // Per request: start (µs since the epoch), status, duration (µs).
    const requests = readFileSync(h2log, 'utf8').trim().split('\n').map((l) => l.split('\t').map(Number)).map(([start, status, us]) => ({ start: (start ?? 0) / 1000, status: status ?? 0, ms: (us ?? 0) / 1000 }));
    // The header the client sees on such a 503: a burst of 20 streams on one connection (nghttp), 4 of them let through.
    const burst = await client.exec('nghttp', ['-nv', '-m', '20', url('breaker', '/burst')]);
    const after = await sidecarMetrics(client);
    const stats = await received('breaker');
    await sleep(200); // the access-log lines of the last answers
    sidecarLog.stop();
    const log = accessLog(sidecarLog.lines).filter((l) => serviceLabel(NS, 'breaker').test(String(l.destination_service ?? '')));

    const overflowed = requests.filter((r) => r.status === 503);
    const served = requests.filter((r) => r.status === 200);
    const streams = new Map<string, { status?: string; error?: string }>();
    for (const m of burst.matchAll(/recv \(stream_id=(\d+)\) (:status|x-tsmesh-proxy-error): (\S+)/g)) {
      const entry = streams.get(m[1] ?? '') ?? {};
      if (m[2] === ':status') entry.status = m[3];
      else entry.error = m[3];
      streams.set(m[1] ?? '', entry);
    }
    const burst503 = [...streams.values()].filter((e) => e.status === '503');
    const overflowCount = sum(after, 'tsmesh_upstream_overflow_total', { destination_service: serviceLabel(NS, 'breaker'), kind: 'max_requests' }) - sum(before, 'tsmesh_upstream_overflow_total', { destination_service: serviceLabel(NS, 'breaker'), kind: 'max_requests' });
    const flood = { from: Math.min(...requests.map((r) => r.start)), to: Math.max(...requests.map((r) => r.start)) };
    const half = (flood.from + flood.to) / 2;
    console.log(
      `breaker: h2load ${summary.split('\n').find((l) => l.startsWith('status codes')) ?? '?'}; ${served.length} served (${count(served, (r) => r.start < half)} in the first half), ` +
        `${overflowed.length} overflowed (slowest 503 ${Math.max(...overflowed.map((r) => r.ms)).toFixed(1)} ms); burst: ${burst503.length} of ${streams.size} refused; ` +
        `counted ${overflowCount}; most in flight at the backend ${stats.r1?.maxInFlight}; UO access-log lines ${count(log, (l) => String(l.flags).includes('UO'))}`,
    );

    expect(requests.length).toBe(300);
    expect(served.length + overflowed.length).toBe(300);
    expect(overflowed.length).toBeGreaterThan(200);
    // Within the limit, requests kept succeeding all along the flood (the backend serves ~13/s), each after the backend's delay.
    expect(count(served, (r) => r.start < half)).toBeGreaterThanOrEqual(5);
    expect(count(served, (r) => r.start >= half)).toBeGreaterThanOrEqual(5);
    for (const r of served) expect(r.ms).toBeGreaterThanOrEqual(SLOW_MS - 10);
    // Over it, refused at once: not after waiting for the slow backend.
    for (const r of overflowed) expect(r.ms).toBeLessThan(SLOW_MS / 3);
    // The header on each refused stream, the UO flag in the access log, the counter: one each per refusal.
    expect(streams.size).toBe(20);
    expect(burst503.length).toBe(20 - MAX_REQUESTS);
    expect(burst503.every((e) => e.error === 'overflow')).toBe(true);
    expect(overflowCount).toBe(overflowed.length + burst503.length);
    expect(count(log, (l) => l.status === 503 && String(l.flags).split(',').includes('UO'))).toBe(overflowed.length + burst503.length);
    // The backend got exactly the requests let through, and never more than maxRequests at once.
    expect(stats.r1?.received).toBe(served.length + MAX_REQUESTS);
    expect(stats.r1?.maxInFlight).toBe(MAX_REQUESTS);
  }, 60_000);

  test(`circuit breaking bounds the sidecar, not each of its event loops: 16 connections spread over both loops still get at most maxRequests ${MAX_REQUESTS} in flight`, async () => {
    const loopsBefore = await sidecarMetrics(client);
    const summary = await client.exec('h2load', ['-n', '320', '-c', '16', '-m', '10', '--rps', '15', url('breaker', '/loops')]);
    const loopsAfter = await sidecarMetrics(client);
    const stats = await received('breaker');
    const accepted = (loop: string): number =>
      sum(loopsAfter, 'tsmesh_proxy_loop_connections_total', { loop, direction: 'outbound' }) - sum(loopsBefore, 'tsmesh_proxy_loop_connections_total', { loop, direction: 'outbound' });
    const codes = /status codes: (\d+) 2xx, \d+ 3xx, \d+ 4xx, (\d+) 5xx/.exec(summary);
    console.log(`breaker over loops: connections per loop ${accepted('0')} + ${accepted('1')}; ${codes?.[0] ?? summary}; most in flight at the backend ${stats.r1?.maxInFlight}`);
    // Both event loops took connections (16 over 2: all on one has odds 2^-15), so each could have let maxRequests through on its own.
    expect(accepted('0')).toBeGreaterThan(0);
    expect(accepted('1')).toBeGreaterThan(0);
    expect(Number(codes?.[1])).toBeGreaterThanOrEqual(MAX_REQUESTS);
    expect(Number(codes?.[2])).toBeGreaterThan(100);
    expect(stats.r1?.maxInFlight).toBe(MAX_REQUESTS);
  }, 60_000);

  test('ring hash on a header: a key always lands on the same replica; with one of five replicas removed, every key it did not hold keeps its replica (≥ 75 %)', async () => {
    const KEYS = 200;
    const config = (rounds: number): string => {
      const blocks: string[] = [];
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < KEYS; k++) blocks.push(`url = "${url('sticky', `/s/${k}`)}"\nheader = "x-user: user-${k}"\noutput = "/dev/null"\nsilent\nwrite-out = "${k} %{http_code} %header{x-served-by}\\n"`);
      }
      return blocks.join('\nnext\n');
    };
    const run = async (rounds: number): Promise<Map<number, string[]>> => {
      const file = join(dir, `keys-${rounds}.curlrc`);
      writeFileSync(file, config(rounds));
      const out = await client.exec('curl', ['-K', file]);
      const byKey = new Map<number, string[]>();
      for (const line of out.trim().split('\n')) {
        const [k, status, server] = line.split(' ');
        byKey.set(Number(k), [...(byKey.get(Number(k)) ?? []), status === '200' ? (server ?? '?') : `!${status}`]);
      }
      return byKey;
    };

    const first = await run(3);
    const owner = new Map<number, string>();
    for (const [k, servers] of first) {
      expect(servers.length).toBe(3);
      expect(new Set(servers).size).toBe(1); // the same replica every time
      owner.set(k, servers[0] ?? '');
    }
    expect(owner.size).toBe(KEYS);
    const spread = new Map<string, number>();
    for (const s of owner.values()) spread.set(s, (spread.get(s) ?? 0) + 1);
    expect([...spread.keys()].sort()).toEqual(REPLICAS); // hashing, not one replica for everyone

    // r5 leaves the Service (its EndpointSlice changes in the mesh file the sidecar watches).
    replaceFile(meshFile, trafficMeshYaml(pods, services({ service: 'sticky', replica: 'r5' }), POLICIES));
    const deadline = Date.now() + 10_000;
    for (;;) {
      const clusters = (await sidecarClusters(client)) as Array<{ cluster: string; endpoints: unknown[] }>;
      if (clusters.find((c) => c.cluster === `${NS}/sticky:80`)?.endpoints.length === 4) break;
      if (Date.now() > deadline) throw new Error('the client sidecar never dropped r5 from sticky');
      await sleep(100);
    }

    const second = await run(1);
    let kept = 0;
    let movedElsewhere = 0;
    for (const [k, [server]] of second) {
      expect(server).not.toBe('r5');
      expect(server?.startsWith('!')).toBe(false);
      if (server === owner.get(k)) kept++;
      else if (owner.get(k) !== 'r5') movedElsewhere++;
    }
    console.log(`ring hash: owners ${JSON.stringify(Object.fromEntries(spread))}; after r5 left ${kept}/${KEYS} keys kept their replica, ${movedElsewhere} not held by r5 moved`);
    expect(second.size).toBe(KEYS);
    expect(kept / KEYS).toBeGreaterThanOrEqual(0.75);
    expect(movedElsewhere).toBe(0);
  }, 60_000);
  test(`maxConnections ${MAX_CONNECTIONS} and maxPendingRequests ${MAX_PENDING} bound the sidecar, not each event loop: of 16 requests at once over both loops, ${MAX_CONNECTIONS + MAX_PENDING} are served, the rest refused at once`, async () => {
    const before = await sidecarMetrics(client);
    const was = (await received('pool')).r1;
    // 16 connections, one request each, all at once; the backend takes SLOW_MS per request.
    const summary = await client.exec('h2load', ['--h1', '-n', '16', '-c', '16', url('pool', '/pool')]);
    const after = await sidecarMetrics(client);
    const stats = (await received('pool')).r1;
    const [loop0, loop1] = perLoop(before, after);
    const codes = /status codes: (\d+) 2xx, \d+ 3xx, \d+ 4xx, (\d+) 5xx/.exec(summary);
    const delta = (kind: string): number =>
      sum(after, 'tsmesh_upstream_overflow_total', { destination_service: serviceLabel(NS, 'pool'), kind }) - sum(before, 'tsmesh_upstream_overflow_total', { destination_service: serviceLabel(NS, 'pool'), kind });
    console.log(
      `pool over loops: connections per loop ${loop0} + ${loop1}; ${codes?.[0] ?? summary}; waited ${delta('max_connections')}, refused ${delta('max_pending')}; ` +
        `backend: ${(stats?.received ?? 0) - (was?.received ?? 0)} requests on ${(stats?.connections ?? 0) - (was?.connections ?? 0)} connections, most in flight ${stats?.maxInFlight}, most open ${stats?.maxOpen}`,
    );
    expect(loop0).toBeGreaterThan(0);
    expect(loop1).toBeGreaterThan(0);
    // Per loop, each could have served MAX_CONNECTIONS + MAX_PENDING: twice as many.
    expect(Number(codes?.[1])).toBe(MAX_CONNECTIONS + MAX_PENDING);
    expect(Number(codes?.[2])).toBe(16 - MAX_CONNECTIONS - MAX_PENDING);
    expect(delta('max_pending')).toBe(16 - MAX_CONNECTIONS - MAX_PENDING);
    expect((stats?.received ?? 0) - (was?.received ?? 0)).toBe(MAX_CONNECTIONS + MAX_PENDING);
    // The backend never had more than maxConnections requests at once, each on a connection of its
    // own: a connection is closed for a waiting request as soon as its answer is in, and only then is
    // another dialled. (Its own count of open connections, `maxOpen`, may read one more: it can
    // accept the new connection before it reads the FIN of the one the sidecar just closed.)
    expect(stats?.maxInFlight).toBe(MAX_CONNECTIONS);
    expect((stats?.connections ?? 0) - (was?.connections ?? 0)).toBe(MAX_CONNECTIONS + MAX_PENDING);
  }, 60_000);

  test(`the retry budget is one per sidecar: 400 requests on fresh connections over both loops retry at most ${BUDGET_PERCENT} % plus 1/s, not that twice`, async () => {
    const before = await sidecarMetrics(client);
    const started = Date.now();
    const { answers, other } = await curlConfig('budget-loops.curlrc', freshConnections((i) => url('budget-loops', `/bl/${i}`), 400));
    const seconds = (Date.now() - started) / 1000;
    const after = await sidecarMetrics(client);
    const [loop0, loop1] = perLoop(before, after);
    const delta = (name: string, match: Record<string, string>): number =>
      sum(after, name, { destination_service: serviceLabel(NS, 'budget-loops'), ...match }) - sum(before, name, { destination_service: serviceLabel(NS, 'budget-loops'), ...match });
    const retried = delta('tsmesh_upstream_retries_total', {});
    const refused = delta('tsmesh_upstream_overflow_total', { kind: 'retry_budget' });
    // One budget: percent of all the requests, plus 1 a second over the 10 s window (per loop, the floor would count twice).
    const budget = (BUDGET_PERCENT / 100) * answers.length + 1 * (seconds + 10);
    console.log(`budget over loops: connections per loop ${loop0} + ${loop1}; ${answers.length} requests in ${seconds.toFixed(1)} s; ${retried} retried (one budget ≤ ${budget.toFixed(0)}, per loop it would be ≤ ${(budget + seconds + 10).toFixed(0)}), ${refused} refused`);
    expect(other).toEqual([]);
    expect(answers.length).toBe(400);
    expect(loop0).toBeGreaterThan(50);
    expect(loop1).toBeGreaterThan(50);
    expect(retried).toBeGreaterThanOrEqual((BUDGET_PERCENT / 100) * answers.length);
    expect(retried).toBeLessThanOrEqual(budget);
    expect(refused).toBeGreaterThan(0);
  }, 60_000);

  test(`outlier detection is one per sidecar: requests on fresh connections over both loops stop reaching a replica answering 500 after its ${EJECT_AFTER}rd consecutive error`, async () => {
    const before = await sidecarMetrics(client);
    const { answers, other } = await curlConfig('outlier-loops.curlrc', freshConnections((i) => url('outlier-loops', `/ol/${i}`), 60));
    const after = await sidecarMetrics(client);
    const [loop0, loop1] = perLoop(before, after);
    const stats = await received('outlier-loops');
    console.log(`outlier over loops: connections per loop ${loop0} + ${loop1}; per replica ${JSON.stringify(Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.received])))}`);
    expect(other).toEqual([]);
    expect(answers.length).toBe(60);
    expect(loop0).toBeGreaterThan(5);
    expect(loop1).toBeGreaterThan(5);
    // Counted over both loops and ejected on both: per loop, each would have let EJECT_AFTER through.
    expect(stats.r1?.received).toBe(EJECT_AFTER);
    expect(count(answers, (a) => a.status === 500)).toBe(EJECT_AFTER);
  }, 60_000);

  test('success-rate ejection: a replica failing 30 % of its requests (never twice in a row) while three others succeed is ejected at the next interval', async () => {
    const report = await probe<TimelineReport>(client, ['http-timeline', '--url', url('success-rate', '/sr'), '--duration-ms', '4000', '--interval-ms', '2', '--cluster', `${NS}/success-rate:80`]);
    const { answers } = report;
    const bad = answers.filter((a) => a.server === 'r1');
    const lastBad = Math.max(...bad.map((a) => a.at));
    const after = answers.filter((a) => a.at > lastBad);
    const ejectedAt = report.ejections.find((e) => e.ejected.length > 0)?.at;
    console.log(
      `success rate: ${answers.length} requests over ${((answers.at(-1)?.at ?? 0) - (answers[0]?.at ?? 0)) / 1000} s; r1 took ${bad.length} (${count(bad, (a) => a.status === 500)} failed), the last ${((lastBad - (answers[0]?.at ?? 0)) / 1000).toFixed(2)} s in; ` +
        `${after.length} requests after it, all to ${[...new Set(after.map((a) => a.server))].sort().join(',')}; /clusters says ejected ${report.ejections.find((e) => e.ejected.length > 0)?.ejected.join(',') ?? 'nothing'}`,
    );
    expect(report.errors).toEqual([]);
    // The fault was real, and below the consecutive counters' reach.
    expect(bad.length).toBeGreaterThanOrEqual(20);
    expect(count(bad, (a) => a.status === 500) / bad.length).toBeGreaterThan(0.2);
    // Ejected within two intervals, and kept out for the rest of the run.
    expect(lastBad - (answers[0]?.at ?? 0)).toBeLessThan(2500);
    expect(after.length).toBeGreaterThan(100);
    expect(after.every((a) => a.status === 200 && a.server !== 'r1')).toBe(true);
    expect(ejectedAt).toBeDefined();
    expect(report.ejections.filter((e) => e.at > (ejectedAt ?? 0)).every((e) => e.ejected.length === 1 && e.ejected[0] === `${topology.pod('r1').ip}:${SVC['success-rate'].target}`)).toBe(true);
  }, 60_000);

  test(`connectionPool.idleTimeout ${IDLE_TIMEOUT_MS} ms: the upstream connection left idle is closed then, as the backend sees`, async () => {
    const was = (await received('idle')).r1;
    const run = await curl(client, [url('idle', '/idle')]);
    const sent = Date.now();
    const open = (await received('idle')).r1?.open ?? 0;
    let closedAfter = -1;
    for (let polls = 0; polls < 100; polls++) {
      if (((await received('idle')).r1?.open ?? 0) === 0) {
        closedAfter = Date.now() - sent;
        break;
      }
      await sleep(50);
    }
    const stats = (await received('idle')).r1;
    console.log(`idle: ${run.answers[0]?.status}; backend connections ${(stats?.connections ?? 0) - (was?.connections ?? 0)}, open right after ${open}, closed ${closedAfter} ms after the answer`);
    expect(run.answers.map((a) => a.status)).toEqual([200]);
    expect(open).toBe(1); // pooled by the sidecar, not closed with the client's connection
    expect(closedAfter).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - 200);
    expect(closedAfter).toBeLessThan(IDLE_TIMEOUT_MS + 1500); // the sidecar's own default is 5 minutes
  }, 60_000);

  test('route-rule sessionPersistence: requests of the sticky rule with its cookie land on one replica from both loops; the other rule balances', async () => {
    const jar = join(dir, 'cart.jar');
    const first = await curl(client, ['-c', jar, url('session', '/cart/0')]);
    const owner = first.answers[0]?.server;
    const before = await sidecarMetrics(client);
    const sticky = await curlConfig('session.curlrc', freshConnections((i) => url('session', `/cart/${i + 1}`), 30, [`cookie = "${jar}"`]));
    const plain = await curlConfig('plain.curlrc', freshConnections((i) => url('session', `/other/${i}`), 30, [`cookie = "${jar}"`]));
    const after = await sidecarMetrics(client);
    const [loop0, loop1] = perLoop(before, after);
    const jarText = readFileSync(jar, 'utf8');
    console.log(`session: first answer from ${owner}; sticky rule ${JSON.stringify(Object.fromEntries(['r1', 'r2', 'r3'].map((r) => [r, count(sticky.answers, (a) => a.server === r)])))}, other rule ${JSON.stringify(Object.fromEntries(['r1', 'r2', 'r3'].map((r) => [r, count(plain.answers, (a) => a.server === r)])))}; connections per loop ${loop0} + ${loop1}`);
    expect(jarText).toMatch(/\tcart\t[A-Za-z0-9_-]+/);
    expect(owner).toMatch(/^r[123]$/);
    expect(loop0).toBeGreaterThan(5);
    expect(loop1).toBeGreaterThan(5);
    expect(sticky.answers.length).toBe(30);
    expect(sticky.answers.every((a) => a.status === 200 && a.server === owner)).toBe(true);
    expect(new Set(plain.answers.map((a) => a.server)).size).toBe(3);
  }, 60_000);
});
