// End-to-end proof of the data plane (issue: capture, detection, per-stream balancing): a
// client pod and three server pods, each a network namespace with `tsmesh iptables` applied
// and a sidecar running as uid 1337, reading a mesh file where the Services exist only.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { meshYaml, runClient, startSidecar, startWorkload, Topology, waitForLine, WORKLOAD_MAIN, type MeshPodSpec, type SpreadResult } from 'tsmesh/demo';
import { requireNetns } from './netns.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;

const NS = 'shop';
const SERVERS = ['s1', 's2', 's3'];
const GREETER = '10.96.0.10';
const WEB = '10.96.0.11';
const BANNER = '10.96.0.12';
const EXCLUDED_PORT = 9090;

function within(count: number | undefined, expected: number, slack: number): boolean {
  return count !== undefined && Math.abs(count - expected) <= slack;
}

suite('data plane in network namespaces', () => {
  let topology: Topology;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-e2e-'));
    chmodSync(dir, 0o755); // the sidecar runs as uid 1337 and must read (and watch) the mesh file
    topology = await Topology.create('tsm-dp');
    const client = await topology.addPod({ name: 'client', hostId: 10 });
    const servers = await Promise.all(SERVERS.map((name, i) => topology.addPod({ name, hostId: 11 + i })));
    const pods: MeshPodSpec[] = [client, ...servers].map((p) => ({
      name: p.name,
      namespace: NS,
      serviceAccount: p.name === 'client' ? 'shopper' : 'greeter',
      ip: p.ip,
      labels: { app: p.name === 'client' ? 'client' : 'greeter' },
      meshed: true,
    }));
    const backends = SERVERS.map((pod) => ({ pod }));
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(
      meshFile,
      meshYaml(pods, [
        { name: 'greeter', namespace: NS, clusterIP: GREETER, ports: [{ name: 'grpc', port: 50051, targetPort: 50051 }], annotations: { 'tsmesh.io/load-balancer': 'round-robin' }, backends },
        { name: 'web', namespace: NS, clusterIP: WEB, ports: [{ name: 'http', port: 8080, targetPort: 8080 }], annotations: { 'tsmesh.io/load-balancer': 'round-robin' }, backends },
        // No declared protocol: the sidecar must detect, time out on a server-first protocol, and fall back to TCP.
        { name: 'banner', namespace: NS, clusterIP: BANNER, ports: [{ name: 'banner', port: 7000, targetPort: 7000 }], backends: [{ pod: 's1' }] },
      ]),
    );
    for (const pod of servers) {
      await startWorkload(pod, 'grpc-server', ['--port', '50051', '--name', pod.name]);
      await startWorkload(pod, 'http-server', ['--port', '8080', '--name', pod.name]);
      await startWorkload(pod, 'banner-server', ['--port', '7000', '--name', pod.name]);
      await startWorkload(pod, 'banner-server', ['--port', String(EXCLUDED_PORT), '--name', `${pod.name}-direct`]);
      await startSidecar(pod, { meshFile, namespace: NS, serviceAccount: 'greeter', iptablesFlags: ['--exclude-inbound-ports', String(EXCLUDED_PORT)] });
    }
    await startSidecar(client, { meshFile, namespace: NS, serviceAccount: 'shopper', iptablesFlags: ['--exclude-outbound-ports', String(EXCLUDED_PORT)] });
  }, 120_000);

  afterAll(async () => {
    await topology?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('a gRPC client on one channel spreads its calls over every replica (round-robin, each within ±1 of N/3)', async () => {
    const result = await runClient<SpreadResult>(topology.pod('client'), 'grpc-client', ['--target', `${GREETER}:50051`, '--calls', '300']);
    expect(result.failed).toBe(0);
    expect(Object.keys(result.counts).sort()).toEqual(SERVERS);
    for (const server of SERVERS) expect(within(result.counts[server], 100, 1)).toBe(true);
  }, 60_000);

  test('HTTP/1.1 requests on one keep-alive connection are balanced per request', async () => {
    const result = await runClient<SpreadResult & { connections: number }>(topology.pod('client'), 'http-client', ['--url', `http://${WEB}:8080/hello`, '--requests', '90']);
    expect(result.failed).toBe(0);
    expect(result.connections).toBe(1);
    for (const server of SERVERS) expect(within(result.counts[server], 30, 1)).toBe(true);
  }, 60_000);

  test('a server-first TCP service works through both sidecars after detection gives up', async () => {
    const result = await runClient<{ banner: string; localPort: number }>(topology.pod('client'), 'banner-client', ['--host', BANNER, '--port', '7000']);
    expect(result.banner).toMatch(/^hello from s1 \(you are /);
    // The server saw the sidecar's connection, not the client's own socket.
    expect(result.banner).not.toContain(`:${result.localPort})`);
    const metrics = await topology.pod('client').exec(process.execPath, ['-e', "fetch('http://127.0.0.1:15020/metrics').then(r=>r.text()).then(t=>console.log(t))"]);
    expect(metrics).toMatch(/tsmesh_protocol_detect_timeouts_total\{direction="outbound"\} [1-9]/);
  }, 60_000);

  test('an excluded outbound port bypasses the sidecar', async () => {
    const s1 = topology.pod('s1');
    const result = await runClient<{ banner: string; localPort: number }>(topology.pod('client'), 'banner-client', ['--host', s1.ip, '--port', String(EXCLUDED_PORT)]);
    // The server saw the client's own socket: nothing proxied it.
    expect(result.banner).toBe(`hello from s1-direct (you are ${topology.pod('client').ip}:${result.localPort})`);
  }, 30_000);

  test("the proxy's own uid is never captured: as uid 1337 a Service IP is just an unreachable address", async () => {
    const client = topology.pod('client');
    const asApp = await runClient<{ banner: string }>(client, 'banner-client', ['--host', BANNER, '--port', '7000', '--timeout-ms', '3000']);
    expect(asApp.banner).toMatch(/^hello from s1/);
    await expect(
      client.exec(process.execPath, [WORKLOAD_MAIN, 'banner-client', '--host', BANNER, '--port', '7000', '--timeout-ms', '1500'], { uid: 1337 }),
    ).rejects.toThrow(/no banner before timeout|EHOSTUNREACH|ECONNREFUSED/);
  }, 30_000);

  test('killing one replica mid-run leaves later requests served by the others', async () => {
    const client = topology.pod('client');
    // The client stops after call 50 until the kill is done: the calls after it are known to come
    // later, however long the kill takes to be noticed here (calls go on every few ms otherwise).
    const resumeFile = join(dir, 'resume-after-kill');
    const run = client.spawn(process.execPath, [WORKLOAD_MAIN, 'grpc-client', '--target', `${GREETER}:50051`, '--calls', '150', '--interval-ms', '5', '--pause-at', '50', '--resume-file', resumeFile]);
    await waitForLine(run, (l) => l === '{"paused":50}', 30_000, 'first 50 calls');
    await topology.pod('s3').kill();
    writeFileSync(resumeFile, '');
    const line = await waitForLine(run, (l) => l.startsWith('{"result"'), 60_000, 'the remaining calls');
    const result = (JSON.parse(line) as { result: SpreadResult }).result;
    // s3 served its share before the kill and nothing after it.
    expect(result.timeline.slice(0, 50)).toContain('s3');
    expect(result.timeline.slice(50)).not.toContain('s3');
    // At most the first calls after the kill may meet its dead connection, and at most one of them
    // fails; everything after them goes to s1 and s2.
    expect(result.failed).toBeLessThanOrEqual(1);
    const after = result.timeline.slice(55);
    expect(after.length).toBe(95);
    expect(after.every((s) => s === 's1' || s === 's2')).toBe(true);
    expect(new Set(after)).toEqual(new Set(['s1', 's2']));
  }, 90_000);
});
