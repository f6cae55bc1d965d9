// End-to-end proof of HTTPLocalRateLimitPolicy: a CA and meshed pods with real SPIFFE identities
// (frontend, other, batch callers; a backend), each in its own network namespace with `tsmesh
// iptables` and a sidecar. The backend's sidecar (its default two event loops, sharing the buckets)
// enforces the policies of the mesh file; callers offer 3× their limit over several connections.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import { caEnv, meshYaml, publishTrustBundle, startCa, startSidecar, startWorkload, Topology, writeCaTokens, type MeshPodSpec, type Pod } from 'tsmesh/demo';
import { accessLines, counterSum, metricsOf, probe, requireProbe, waitUntil } from './mtls-helpers.js';
import type { GrpcBurstResult, RateResult } from './mtls-probe.js';
import { requireNetns } from './netns.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;

const NS = 'shop';
const API = '10.96.0.31';
const GREETER = '10.96.0.32';
const HTTP_PORT = 8080;
const IDENTITY_RPS = 20;
const OVERRIDE_RPS = 40;
const SECONDS = 5;

const limitPolicy = (name: string, spec: unknown): string => stringify({ apiVersion: 'policy.tsmesh.io/v1', kind: 'HTTPLocalRateLimitPolicy', metadata: { name, namespace: NS }, spec });

/**
 * Requests admitted per second in the steady state: whole seconds 1 to SECONDS-2 (the first holds
 * the burst, a full bucket's worth; the last may be cut short).
 */
function steadyRate(result: RateResult): number {
  const seconds = result.perSecond.slice(1, SECONDS - 1);
  return seconds.reduce((n, s) => n + (s['200'] ?? 0), 0) / seconds.length;
}

/** Offers `rps` GETs per second from `pod` for SECONDS over 6 connections. */
function offer(pod: Pod, rps: number): Promise<RateResult> {
  return probe<RateResult>(pod, ['http-rate', '--url', `http://${API}:${HTTP_PORT}/api/items`, '--rate', String(rps), '--duration-ms', String(SECONDS * 1000), '--connections', '6']);
}

suite('HTTPLocalRateLimitPolicy in network namespaces, with identities from the CA', () => {
  let topology: Topology;
  let dir: string;
  let frontend: Pod;
  let other: Pod;
  let batch: Pod;
  let backend: Pod;

  beforeAll(async () => {
    requireProbe();
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-rl-'));
    chmodSync(dir, 0o755);
    const trustFile = join(dir, 'trust-bundle.pem');
    topology = await Topology.create('tsm-rl', '10.242.0');
    const caPod = await topology.addPod({ name: 'ca', hostId: 2 });
    frontend = await topology.addPod({ name: 'frontend', hostId: 10 });
    other = await topology.addPod({ name: 'other', hostId: 11 });
    batch = await topology.addPod({ name: 'batch', hostId: 13 });
    backend = await topology.addPod({ name: 'backend', hostId: 12 });

    const pods: MeshPodSpec[] = [
      { name: 'frontend', namespace: NS, serviceAccount: 'frontend', ip: frontend.ip, labels: { app: 'frontend' }, meshed: true },
      { name: 'other', namespace: NS, serviceAccount: 'other', ip: other.ip, labels: { app: 'other' }, meshed: true },
      { name: 'batch', namespace: NS, serviceAccount: 'batch', ip: batch.ip, labels: { app: 'batch' }, meshed: true },
      { name: 'backend', namespace: NS, serviceAccount: 'backend', ip: backend.ip, labels: { app: 'backend' }, meshed: true },
    ];
    const mesh = meshYaml(pods, [
      { name: 'api', namespace: NS, clusterIP: API, ports: [{ name: 'http', port: HTTP_PORT, targetPort: HTTP_PORT }], backends: [{ pod: 'backend' }] },
      { name: 'greeter', namespace: NS, clusterIP: GREETER, ports: [{ name: 'grpc', port: 50051, targetPort: 50051 }], backends: [{ pod: 'backend' }] },
    ]);
    const backendOnly = { matchLabels: { app: 'backend' } };
    const policies = [
      limitPolicy('api', {
        selector: backendOnly,
        port: HTTP_PORT,
        total: { requestsPerSecond: 500 },
        identity: { requestsPerSecond: IDENTITY_RPS },
        overrides: [{ requestsPerSecond: OVERRIDE_RPS, clientRefs: [{ kind: 'ServiceAccount', name: 'batch' }] }],
      }),
      limitPolicy('greeter', { selector: backendOnly, port: 50051, identity: { requestsPerSecond: 1 } }),
    ];
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(meshFile, [mesh, ...policies].join('---\n'));

    const accounts = ['frontend', 'other', 'batch', 'backend'];
    const tokens = writeCaTokens(dir, accounts.map((serviceAccount) => ({ namespace: NS, serviceAccount })));
    const tokenFiles = tokens.sidecarTokenFiles as [string, string, string, string];
    const stateDir = join(dir, 'ca');
    await startCa(caPod, { stateDir, tokenFile: tokens.tokenFile });
    publishTrustBundle(join(stateDir, 'root-cert.pem'), trustFile);
    await Promise.all([startWorkload(backend, 'http-server', ['--port', String(HTTP_PORT), '--name', 'backend']), startWorkload(backend, 'grpc-server', ['--port', '50051', '--name', 'backend'])]);
    await Promise.all(
      [frontend, other, batch, backend].map((pod, i) =>
        startSidecar(pod, {
          meshFile,
          namespace: NS,
          serviceAccount: accounts[i] as string,
          env: { ...caEnv(caPod, tokenFiles[i] as string, trustFile), ...(pod === backend ? { TSMESH_ACCESS_LOG: 'on' } : {}) },
        }),
      ),
    );
  }, 120_000);

  afterAll(async () => {
    await topology?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('at 3× its limit one caller is admitted at its limit ±10 %; the excess gets 429 with retry-after', async () => {
    const result = await offer(frontend, 3 * IDENTITY_RPS);
    expect(result.errors).toEqual([]);
    expect(result.sent).toBeGreaterThanOrEqual(3 * IDENTITY_RPS * SECONDS * 0.95);
    const rate = steadyRate(result);
    expect(rate).toBeGreaterThanOrEqual(IDENTITY_RPS * 0.9);
    expect(rate).toBeLessThanOrEqual(IDENTITY_RPS * 1.1);
    expect(result.statuses['429']).toBeGreaterThan(0);
    // Every 429 says when to come back: a whole number of seconds, at least 1.
    expect(Object.keys(result.retryAfter).every((v) => /^[1-9][0-9]*$/.test(v))).toBe(true);
  }, 60_000);

  test('per-identity buckets are independent: two callers at 3× each get their own limit', async () => {
    const [a, b] = await Promise.all([offer(frontend, 3 * IDENTITY_RPS), offer(other, 3 * IDENTITY_RPS)]);
    for (const result of [a, b]) {
      expect(result.errors).toEqual([]);
      expect(steadyRate(result)).toBeGreaterThanOrEqual(IDENTITY_RPS * 0.9);
      expect(steadyRate(result)).toBeLessThanOrEqual(IDENTITY_RPS * 1.1);
    }
  }, 60_000);

  test('an override applies to the caller it names', async () => {
    const result = await offer(batch, 3 * OVERRIDE_RPS);
    expect(result.errors).toEqual([]);
    expect(steadyRate(result)).toBeGreaterThanOrEqual(OVERRIDE_RPS * 0.9);
    expect(steadyRate(result)).toBeLessThanOrEqual(OVERRIDE_RPS * 1.1);
  }, 60_000);

  test('gRPC (@grpc/grpc-js): the call over the limit ends RESOURCE_EXHAUSTED with retry-after', async () => {
    const result = await probe<GrpcBurstResult>(frontend, ['grpc-burst', '--target', `${GREETER}:50051`, '--count', '3']);
    expect(result.codes).toEqual([0, 8, 8]);
    expect(result.retryAfter).toEqual(['1', '1']);
  }, 60_000);

  test('the backend counts limited requests by policy and reason, and logs them with the RL flag', async () => {
    const metrics = await metricsOf(backend);
    expect(counterSum(metrics, 'tsmesh_ratelimit_decisions_total', { decision: 'limited', policy: `${NS}/api`, reason: 'identity' })).toBeGreaterThan(0);
    expect(counterSum(metrics, 'tsmesh_ratelimit_decisions_total', { decision: 'limited', policy: `${NS}/api`, reason: 'override' })).toBeGreaterThan(0);
    expect(counterSum(metrics, 'tsmesh_ratelimit_decisions_total', { decision: 'limited', policy: `${NS}/greeter`, reason: 'identity' })).toBe(2);
    await waitUntil(() => accessLines(backend).find((l) => l.status === 429 && l.flags === 'RL'), 5000, 'an RL access line with 429');
    // Both of the backend's event loops served callers here (one bucket across two loops is proven in
    // proxy/src/inbound/rate-limit.test.ts, where a per-loop bucket admits twice the limit).
    for (const loop of ['0', '1']) expect(counterSum(metrics, 'tsmesh_proxy_loop_connections_total', { loop, direction: 'inbound' })).toBeGreaterThan(0);
  }, 60_000);
});
