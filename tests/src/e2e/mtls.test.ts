// End-to-end proof of identity and mutual TLS: a CA pod running `tsmesh ca`, a client and two
// server pods with `tsmesh iptables` and sidecars (uid 1337) that hold SPIFFE certificates from it,
// and an unmeshed pod. Certificates live 4 s at first, so renewal runs all the time; later tests
// restart the CA (longer lifetimes, an outage, a root rotation) on the same state directories.
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import {
  caEnv,
  killAndWait,
  meshYaml,
  publishTrustBundle,
  runClient,
  startCa,
  startSidecar,
  startWorkload,
  Topology,
  writeCaTokens,
  type CaProcessOptions,
  type MeshPodSpec,
  type Pod,
  type SpreadResult,
} from 'tsmesh/demo';
import { accessLines, certsOf, counterSum, failuresSince, httpGet, metricsOf, probe, requireProbe, startProbe, waitUntil, type Certs, type RunningProbe } from './mtls-helpers.js';
import type { GrpcCallResult, LoadResult } from './mtls-probe.js';
import { requireNetns } from './netns.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;

const NS = 'shop';
const spiffe = (sa: string): string => `spiffe://cluster.local/ns/${NS}/sa/${sa}`;
const SHOPPER = spiffe('shopper');
const GREETER_ID = spiffe('greeter');
const IMPOSTOR = spiffe('impostor');
const XFCC = `By=${GREETER_ID};URI=${SHOPPER}`;
const FORGED_XFCC = `By=${GREETER_ID};URI=${spiffe('admin')}`;

/** Cluster IPs: greeter (gRPC), web (HTTP/1.1), banner (opaque TCP) are s1; lonely is s2 only. */
const GREETER = '10.96.0.10';
const WEB = '10.96.0.11';
const BANNER = '10.96.0.12';
const LONELY = '10.96.0.13';
const STRICT_PORT = 8080;
const PERMISSIVE_PORT = 8081;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fingerprint = (file: string): string => new X509Certificate(readFileSync(file)).fingerprint256;
const msLeft = (certs: Certs): number => Date.parse(certs.certificate?.notAfter ?? '') - Date.now();

suite('identity and mutual TLS in network namespaces', () => {
  let topology: Topology;
  let dir: string;
  let caPod: Pod;
  let client: Pod;
  let s1: Pod;
  let s2: Pod;
  let outsider: Pod;
  let ca: ChildProcess | undefined;
  let caOptions: CaProcessOptions;
  let stateA: string;
  let stateB: string;
  let trustFile: string;
  const loads: Array<RunningProbe<LoadResult>> = [];

  async function stopCa(): Promise<void> {
    const running = ca;
    ca = undefined;
    if (!running) return;
    const timer = setTimeout(() => void killAndWait(running), 5000);
    await killAndWait(running, 'SIGTERM');
    clearTimeout(timer);
  }

  async function restartCa(options: Partial<CaProcessOptions>): Promise<void> {
    await stopCa();
    caOptions = { ...caOptions, ...options };
    ca = await startCa(caPod, caOptions);
  }

  /** Continuous gRPC calls on one channel plus one new TCP connection (one new mTLS handshake) after another. */
  async function startTraffic(): Promise<{ grpc: RunningProbe<LoadResult>; tcp: RunningProbe<LoadResult> }> {
    const grpc = await startProbe<LoadResult>(client, ['grpc-load', '--target', `${GREETER}:50051`, '--interval-ms', '20']);
    loads.push(grpc);
    const tcp = await startProbe<LoadResult>(client, ['tcp-loop', '--host', BANNER, '--port', '7000', '--interval-ms', '100']);
    loads.push(tcp);
    return { grpc, tcp };
  }

  const pair = (): Pod[] => [client, s1];
  const pairCerts = (): Promise<Certs[]> => Promise.all(pair().map(certsOf));

  beforeAll(async () => {
    requireProbe();
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-mtls-'));
    chmodSync(dir, 0o755); // sidecars (uid 1337) read the mesh file, their token and the trust bundle
    stateA = join(dir, 'ca-a');
    stateB = join(dir, 'ca-b');
    trustFile = join(dir, 'trust-bundle.pem');
    topology = await Topology.create('tsm-mtls', '10.235.0');
    caPod = await topology.addPod({ name: 'ca', hostId: 2 });
    client = await topology.addPod({ name: 'client', hostId: 10 });
    s1 = await topology.addPod({ name: 's1', hostId: 11 });
    s2 = await topology.addPod({ name: 's2', hostId: 12 });
    outsider = await topology.addPod({ name: 'outsider', hostId: 20 });

    // s2 is a `greeter` pod for the mesh file; its sidecar will hold an `impostor` certificate.
    const pods: MeshPodSpec[] = [
      { name: 'client', namespace: NS, serviceAccount: 'shopper', ip: client.ip, labels: { app: 'client' }, meshed: true },
      { name: 's1', namespace: NS, serviceAccount: 'greeter', ip: s1.ip, labels: { app: 'greeter' }, meshed: true },
      { name: 's2', namespace: NS, serviceAccount: 'greeter', ip: s2.ip, labels: { app: 'lonely' }, meshed: true },
    ];
    const mesh = meshYaml(pods, [
      { name: 'greeter', namespace: NS, clusterIP: GREETER, ports: [{ name: 'grpc', port: 50051, targetPort: 50051 }], backends: [{ pod: 's1' }] },
      { name: 'web', namespace: NS, clusterIP: WEB, ports: [{ name: 'http', port: STRICT_PORT, targetPort: STRICT_PORT }], backends: [{ pod: 's1' }] },
      { name: 'banner', namespace: NS, clusterIP: BANNER, ports: [{ name: 'banner', port: 7000, targetPort: 7000, appProtocol: 'tcp' }], backends: [{ pod: 's1' }] },
      { name: 'lonely', namespace: NS, clusterIP: LONELY, ports: [{ name: 'grpc', port: 50051, targetPort: 50051 }], backends: [{ pod: 's2' }] },
    ]);
    const peerAuthentication = stringify({
      apiVersion: 'security.tsmesh.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'greeter-strict', namespace: NS },
      spec: { selector: { matchLabels: { app: 'greeter' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { [String(PERMISSIVE_PORT)]: { mode: 'PERMISSIVE' } } },
    });
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(meshFile, `${mesh}---\n${peerAuthentication}`);

    const tokens = writeCaTokens(dir, [
      { namespace: NS, serviceAccount: 'shopper' },
      { namespace: NS, serviceAccount: 'greeter' },
      { namespace: NS, serviceAccount: 'impostor' },
    ]);
    const [clientToken, s1Token, s2Token] = tokens.sidecarTokenFiles as [string, string, string];
    caOptions = { stateDir: stateA, tokenFile: tokens.tokenFile, defaultTtl: '4s', maxTtl: '4s' };
    ca = await startCa(caPod, caOptions);
    publishTrustBundle(join(stateA, 'root-cert.pem'), trustFile);

    await Promise.all([
      startWorkload(s1, 'grpc-server', ['--port', '50051', '--name', 's1']),
      startWorkload(s1, 'http-server', ['--port', String(STRICT_PORT), '--name', 's1']),
      startWorkload(s1, 'http-server', ['--port', String(PERMISSIVE_PORT), '--name', 's1-permissive']),
      startWorkload(s1, 'banner-server', ['--port', '7000', '--name', 's1']),
      startWorkload(s2, 'grpc-server', ['--port', '50051', '--name', 's2']),
    ]);
    // "sidecar ready" is logged only once the sidecar holds its certificate.
    await Promise.all([
      startSidecar(client, { meshFile, namespace: NS, serviceAccount: 'shopper', env: { ...caEnv(caPod, clientToken, trustFile), TSMESH_ACCESS_LOG: 'on' } }),
      startSidecar(s1, { meshFile, namespace: NS, serviceAccount: 'greeter', env: { ...caEnv(caPod, s1Token, trustFile), TSMESH_ACCESS_LOG: 'on' } }),
      startSidecar(s2, { meshFile, namespace: NS, serviceAccount: 'impostor', env: { ...caEnv(caPod, s2Token, trustFile), TSMESH_ACCESS_LOG: 'on' } }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(loads.map((l) => l.stop().catch(() => undefined)));
    await topology?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('gRPC and HTTP/1.1 cross mTLS between the sidecars: the app sees the verified XFCC, both sidecars log both identities, metrics say mutual_tls', async () => {
    const grpc = await probe<GrpcCallResult>(client, ['grpc-call', '--target', `${GREETER}:50051`]);
    expect(grpc.ok).toBe(true);
    expect(grpc.reply?.server).toBe('s1');
    expect(grpc.reply?.meta['x-forwarded-client-cert']).toBe(XFCC);

    const http = await httpGet<{ server: string; headers: Record<string, string> }>(client, `http://${WEB}:${STRICT_PORT}/mtls-identities`);
    expect(http.status).toBe(200);
    expect(http.body?.server).toBe('s1');
    expect(http.body?.headers['x-forwarded-client-cert']).toBe(XFCC);

    for (const path of ['/tsmesh.demo.Greeter/SayHello', '/mtls-identities']) {
      for (const [pod, reporter] of [[client, 'source'], [s1, 'destination']] as const) {
        const line = await waitUntil(
          () => accessLines(pod).find((l) => l.path === path && l.reporter === reporter),
          5000,
          `${pod.name} logs a ${reporter} access line for ${path}`,
        );
        expect(line).toMatchObject({ source_identity: SHOPPER, destination_identity: GREETER_ID, mtls: true });
      }
    }

    const mutual = { connection_security_policy: 'mutual_tls' };
    expect(counterSum(await metricsOf(client), 'tsmesh_requests_total', { reporter: 'source', ...mutual })).toBeGreaterThanOrEqual(2);
    expect(counterSum(await metricsOf(s1), 'tsmesh_requests_total', { reporter: 'destination', ...mutual })).toBeGreaterThanOrEqual(2);
  }, 60_000);

  test('an x-forwarded-client-cert the client app forges is stripped: the server sees only the one from the verified certificate', async () => {
    const grpc = await probe<GrpcCallResult>(client, ['grpc-call', '--target', `${GREETER}:50051`, '--header', `x-forwarded-client-cert: ${FORGED_XFCC}`]);
    expect(grpc.ok).toBe(true);
    expect(grpc.reply?.meta['x-forwarded-client-cert']).toBe(XFCC);

    const http = await httpGet<{ headers: Record<string, string> }>(client, `http://${WEB}:${STRICT_PORT}/forged`, [`x-forwarded-client-cert: ${FORGED_XFCC}`]);
    expect(http.status).toBe(200);
    expect(http.body?.headers['x-forwarded-client-cert']).toBe(XFCC);

    // Plaintext from outside the mesh (PERMISSIVE port): no identity, so no XFCC at all.
    const plain = await httpGet<{ headers: Record<string, string> }>(outsider, `http://${s1.ip}:${PERMISSIVE_PORT}/forged`, [`x-forwarded-client-cert: ${FORGED_XFCC}`]);
    expect(plain.status).toBe(200);
    expect(plain.body?.headers['x-forwarded-client-cert']).toBeUndefined();
  }, 60_000);

  test('STRICT refuses a plaintext client from an unmeshed pod while a PERMISSIVE port of the same workload accepts it', async () => {
    const strict = await httpGet(outsider, `http://${s1.ip}:${STRICT_PORT}/strict`);
    expect(strict.status).toBe(0);
    expect(strict.error).toMatch(/fetch failed|socket|ECONNRESET|closed/i);
    await waitUntil(
      () => s1.logs.find((l) => l.includes('inbound connection refused by mTLS policy') && l.includes(`"port":${STRICT_PORT}`) && l.includes(outsider.ip)),
      5000,
      's1 logs the STRICT refusal',
    );

    const permissive = await httpGet<{ server: string }>(outsider, `http://${s1.ip}:${PERMISSIVE_PORT}/permissive`);
    expect(permissive.status).toBe(200);
    expect(permissive.body?.server).toBe('s1-permissive');
    const line = await waitUntil(
      () => accessLines(s1).find((l) => l.path === '/permissive' && l.reporter === 'destination'),
      5000,
      's1 logs the plaintext request',
    );
    expect(line).toMatchObject({ source_identity: null, mtls: false });
    expect(counterSum(await metricsOf(s1), 'tsmesh_requests_total', { reporter: 'destination', connection_security_policy: 'none' })).toBeGreaterThanOrEqual(1);

    // The policy the sidecar enforces, as it reports it.
    const dump = await httpGet<{ inboundMtls: { defaultMode: string; portModes: Record<string, string> } }>(s1, 'http://127.0.0.1:15000/config_dump');
    expect(dump.body?.inboundMtls).toEqual({ defaultMode: 'STRICT', portModes: { [String(PERMISSIVE_PORT)]: 'PERMISSIVE' } });
  }, 60_000);

  test("a sidecar holding another identity than its pod's ServiceAccount is refused: calls to it fail UNAVAILABLE and the caller logs the mismatch", async () => {
    expect((await certsOf(s2)).spiffeId).toBe(IMPOSTOR);
    const before = accessLines(s2).length;
    const started = Date.now();

    const call = await probe<GrpcCallResult>(client, ['grpc-call', '--target', `${LONELY}:50051`]);
    expect(call.ok).toBe(false);
    expect(call.code).toBe(14); // UNAVAILABLE

    const mismatch = await waitUntil(
      () => client.logs.find((l) => l.includes('upstream connect failed') && l.includes(`presented ${IMPOSTOR}, expected ${GREETER_ID}`)),
      5000,
      'the client sidecar logs the peer identity mismatch',
    );
    expect(mismatch).toContain(s2.ip);
    // The same detector the load tests below expect to stay silent.
    expect(failuresSince(client, started).length).toBeGreaterThan(0);
    // Nothing reached the impostor's application.
    expect(accessLines(s2).slice(before).filter((l) => l.reporter === 'destination')).toEqual([]);
  }, 60_000);

  test('certificates renewed every 2 s under continuous gRPC load (600 calls on one channel) and a stream of new handshakes: nothing fails', async () => {
    const serials = new Map<string, Set<string>>(pair().map((p) => [p.name, new Set<string>()]));
    const started = Date.now();
    const handshakes = await startProbe<LoadResult>(client, ['tcp-loop', '--host', BANNER, '--port', '7000', '--interval-ms', '100']);
    loads.push(handshakes);
    let done = false;
    const load = runClient<SpreadResult>(client, 'grpc-client', ['--target', `${GREETER}:50051`, '--calls', '600', '--interval-ms', '15']).finally(() => {
      done = true;
    });
    while (!done) {
      const certs = await pairCerts();
      certs.forEach((c, i) => {
        expect(c.state).toBe('valid');
        expect(msLeft(c)).toBeLessThanOrEqual(4000);
        serials.get(pair()[i]?.name ?? '')?.add(c.certificate?.serialNumber ?? '');
      });
      await sleep(400);
    }
    const result = await load;
    const elapsed = Date.now() - started;
    const tcp = await handshakes.stop();

    expect(result.errors).toEqual([]);
    expect(result.ok).toBe(600);
    expect(tcp.errors).toEqual([]);
    expect(tcp.ok).toBeGreaterThan((elapsed / 1000) * 3);
    expect([...failuresSince(client, started), ...failuresSince(s1, started)]).toEqual([]);
    // One renewal per 2 s of run; polling sees most of them (each serial lives 2 s, polls come every ~1 s).
    const atLeast = Math.max(3, Math.floor(elapsed / 2000 / 2));
    for (const seen of serials.values()) expect(seen.size).toBeGreaterThanOrEqual(atLeast);
  }, 90_000);

  test('with the CA down for longer than a renewal period traffic keeps flowing on the current certificates, and once it is back the sidecars renew', async () => {
    const started = Date.now();
    const traffic = await startTraffic();
    // 20 s certificates: renewal every 10 s. The sidecars move to them within ~2 s of the restart.
    await restartCa({ defaultTtl: '20s', maxTtl: '20s' });
    const held = await waitUntil(async () => {
      const certs = await pairCerts();
      // The outage below needs more than 13 s left on both (10.5 s + 2.5 s): 15 s leaves stopping the CA 2 s.
      return certs.every((c) => msLeft(c) > 15_000) ? certs : undefined;
    }, 15_000, 'both sidecars hold a 20 s certificate');

    await stopCa();
    const stoppedAt = Date.now();
    const renewalDue = Math.max(...held.map((c) => Date.parse(c.renewAt ?? '')));
    const firstExpiry = Math.min(...held.map((c) => Date.parse(c.certificate?.notAfter ?? '')));
    // Longer than the renewal period and past every sidecar's renewal time, shorter than what its certificate has left.
    const outageMs = Math.max(10_500, renewalDue - stoppedAt + 1500);
    expect(stoppedAt + outageMs).toBeLessThan(firstExpiry - 2500);
    await sleep(outageMs);

    const during = await pairCerts();
    during.forEach((c, i) => {
      expect(c.state).toBe('valid');
      expect(c.certificate?.serialNumber).toBe(held[i]?.certificate?.serialNumber);
      expect(c.consecutiveFailures).toBeGreaterThanOrEqual(1);
      expect(c.lastError?.code).toBe('TSMESH_ERR_CA_UNREACHABLE');
    });

    await restartCa({});
    const renewed = await waitUntil(async () => {
      const certs = await pairCerts();
      return certs.every((c, i) => c.consecutiveFailures === 0 && c.certificate?.serialNumber !== held[i]?.certificate?.serialNumber) ? certs : undefined;
    }, 15_000, 'both sidecars renew from the restarted CA');
    for (const c of renewed) expect(msLeft(c)).toBeGreaterThan(0);
    await sleep(500);

    const grpc = await traffic.grpc.stop();
    const tcp = await traffic.tcp.stop();
    expect(grpc.errors).toEqual([]);
    expect(grpc.ok).toBeGreaterThan(100);
    expect(tcp.errors).toEqual([]);
    expect(tcp.ok).toBeGreaterThan(30);
    expect([...failuresSince(client, started), ...failuresSince(s1, started)]).toEqual([]);
  }, 90_000);

  test('the root is rotated (A; bundle A+B; issuing from B; B alone) by rewriting the CA files, without a restart, under continuous traffic with no failed request or handshake', async () => {
    // Root B: made by a second CA on its own state directory, started once on another port.
    const maker = await startCa(caPod, { ...caOptions, stateDir: stateB, port: 15013 });
    await killAndWait(maker, 'SIGTERM');
    const certA = readFileSync(join(stateA, 'ca-root-cert.pem'), 'utf8');
    const keyA = readFileSync(join(stateA, 'ca-root-key.pem'), 'utf8');
    const certB = readFileSync(join(stateB, 'ca-root-cert.pem'), 'utf8');
    const keyB = readFileSync(join(stateB, 'ca-root-key.pem'), 'utf8');
    const rootA = fingerprint(join(stateA, 'ca-root-cert.pem'));
    const rootB = fingerprint(join(stateB, 'ca-root-cert.pem'));
    expect(rootB).not.toBe(rootA);
    // The operator's files, as a Secret volume would hold them; the CA looks at them every second.
    const rootFile = join(dir, 'operator-root-cert.pem');
    const keyFile = join(dir, 'operator-root-key.pem');
    writeFileSync(rootFile, certA);
    writeFileSync(keyFile, keyA);
    await restartCa({ stateDir: stateA, defaultTtl: '6s', maxTtl: '6s', args: ['--root-cert', rootFile, '--root-key', keyFile, '--material-poll', '1s'] });
    const caProcess = ca;
    const roots = (c: Certs): string[] => c.trustBundle.map((r) => r.fingerprint256).sort();
    const issuedUnder = (c: Certs, root: string): boolean => {
      const intermediate = c.chain[1];
      const stored = new X509Certificate(readFileSync(join(stateA, 'ca-intermediate-cert.pem')));
      return intermediate?.fingerprint256 === stored.fingerprint256 && stored.checkIssued(new X509Certificate(root));
    };
    const everyPair = (what: string, test: (c: Certs) => boolean): Promise<Certs[]> =>
      waitUntil(async () => {
        const certs = await pairCerts();
        return certs.every(test) ? certs : undefined;
      }, 25_000, what);
    await everyPair('both sidecars hold a certificate from the CA on the operator root A', (c) => roots(c).join() === rootA && issuedUnder(c, certA));

    const started = Date.now();
    const traffic = await startTraffic();

    // 1. Trust both roots, still issuing from A.
    writeFileSync(rootFile, certA + certB);
    await everyPair('both sidecars trust A and B', (c) => roots(c).join() === [rootA, rootB].sort().join() && issuedUnder(c, certA));

    // 2. Issue from B (a new intermediate under it); peers still on A certificates verify against A,
    // which everyone still trusts. The key is written first: the CA refuses that half-step and waits.
    writeFileSync(keyFile, keyB);
    writeFileSync(rootFile, certB + certA);
    await everyPair('both sidecars hold a certificate issued under B', (c) => issuedUnder(c, certB) && roots(c).length === 2);

    // 3. Drop A: from the sidecars' bundle file and from the CA's bundle.
    publishTrustBundle(join(stateB, 'ca-root-cert.pem'), trustFile);
    writeFileSync(rootFile, certB);
    await everyPair('both sidecars trust B alone', (c) => roots(c).join() === rootB && issuedUnder(c, certB));
    await sleep(1000);
    // One CA process throughout, which took each step from its files.
    expect(ca).toBe(caProcess);
    expect(caProcess?.exitCode).toBeNull();
    expect(caPod.logs.filter((l) => l.includes('"msg":"signing material reloaded: the files changed"')).length).toBeGreaterThanOrEqual(3);

    const grpc = await traffic.grpc.stop();
    const tcp = await traffic.tcp.stop();
    expect(grpc.errors).toEqual([]);
    expect(grpc.ok).toBeGreaterThan(100);
    expect(tcp.errors).toEqual([]);
    expect(tcp.ok).toBeGreaterThan(30);
    // Not one handshake between the sidecars failed, on either side.
    expect([...failuresSince(client, started), ...failuresSince(s1, started)]).toEqual([]);

    // New connections after the rotation: the XFCC still names both workloads.
    const http = await httpGet<{ headers: Record<string, string> }>(client, `http://${WEB}:${STRICT_PORT}/after-rotation`);
    expect(http.body?.headers['x-forwarded-client-cert']).toBe(XFCC);
  }, 120_000);
});
