// End-to-end over IPv6: dual-stack pods (an IPv4 and an IPv6 address each), `tsmesh iptables`
// programming ip6tables as well (auto: the pods have a global IPv6 address), and Services with an
// IPv4 and an IPv6 cluster IP that exist only in the mesh file. A client calling the IPv6 cluster IP
// is captured by ip6tables, its original destination read with IP6T_SO_ORIGINAL_DST, and its calls
// balanced per request over mutual TLS to the replicas, each counted once although it has two addresses.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  caEnv,
  meshYaml,
  publishTrustBundle,
  runClient,
  startCa,
  startSidecar,
  startWorkload,
  Topology,
  writeCaTokens,
  type MeshPodSpec,
  type Pod,
  type SpreadResult,
} from 'tsmesh/demo';
import { accessLines, failuresSince, httpGet } from './mtls-helpers.js';
import { requireNetns } from './netns.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;

const NS = 'shop';
const SERVERS = ['s1', 's2'];
const GREETER = { v4: '10.96.0.10', v6: 'fd00:96::10' };
const WEB = { v4: '10.96.0.11', v6: 'fd00:96::11' };
const GREETER_ID = `spiffe://cluster.local/ns/${NS}/sa/greeter`;
const SHOPPER_ID = `spiffe://cluster.local/ns/${NS}/sa/shopper`;

suite('dual stack: IPv6 capture, balancing and mTLS in network namespaces', () => {
  let topology: Topology;
  let dir: string;
  let client: Pod;
  let servers: Pod[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-ds-'));
    chmodSync(dir, 0o755); // sidecars (uid 1337) read the mesh file, their token and the trust bundle
    topology = await Topology.create('tsm-ds', '10.236.0', { ipv6Prefix: 'fd00:236::' });
    const caPod = await topology.addPod({ name: 'ca', hostId: 2 });
    client = await topology.addPod({ name: 'client', hostId: 10 });
    servers = await Promise.all(SERVERS.map((name, i) => topology.addPod({ name, hostId: 11 + i })));
    const pods: MeshPodSpec[] = [client, ...servers].map((p) => ({
      name: p.name,
      namespace: NS,
      serviceAccount: p === client ? 'shopper' : 'greeter',
      ip: p.ip,
      ip6: p.ip6,
      labels: { app: p === client ? 'client' : 'greeter' },
      meshed: true,
    }));
    const backends = SERVERS.map((pod) => ({ pod }));
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(
      meshFile,
      meshYaml(pods, [
        // IPv4 first: the sidecars dial the replicas' IPv4 addresses, whichever cluster IP was called.
        { name: 'greeter', namespace: NS, clusterIP: GREETER.v4, secondaryClusterIP: GREETER.v6, ports: [{ name: 'grpc', port: 50051, targetPort: 50051 }], annotations: { 'tsmesh.io/load-balancer': 'round-robin' }, backends },
        // IPv6 first: sidecar to sidecar over IPv6, captured inbound by ip6tables.
        { name: 'web', namespace: NS, clusterIP: WEB.v6, secondaryClusterIP: WEB.v4, ports: [{ name: 'http', port: 8080, targetPort: 8080 }], annotations: { 'tsmesh.io/load-balancer': 'round-robin' }, backends },
      ]),
    );
    const tokens = writeCaTokens(dir, [
      { namespace: NS, serviceAccount: 'shopper' },
      { namespace: NS, serviceAccount: 'greeter' },
    ]);
    const [clientToken, serverToken] = tokens.sidecarTokenFiles as [string, string];
    const stateDir = join(dir, 'ca');
    const trustFile = join(dir, 'trust-bundle.pem');
    await startCa(caPod, { stateDir, tokenFile: tokens.tokenFile });
    publishTrustBundle(join(stateDir, 'root-cert.pem'), trustFile);
    for (const pod of servers) {
      await startWorkload(pod, 'grpc-server', ['--port', '50051', '--name', pod.name]);
      await startWorkload(pod, 'http-server', ['--port', '8080', '--name', pod.name]);
    }
    await Promise.all([
      ...servers.map((pod) => startSidecar(pod, { meshFile, namespace: NS, serviceAccount: 'greeter', env: { ...caEnv(caPod, serverToken, trustFile), TSMESH_ACCESS_LOG: 'on' } })),
      startSidecar(client, { meshFile, namespace: NS, serviceAccount: 'shopper', env: { ...caEnv(caPod, clientToken, trustFile), TSMESH_ACCESS_LOG: 'on' } }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await topology?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('the pods are dual-stack and tsmesh iptables programmed ip6tables too', async () => {
    expect(client.ip6).toBe('fd00:236::10');
    const rules = await client.exec('ip6tables-save', ['-t', 'nat']);
    expect(rules).toMatch(/-A OUTPUT -p tcp -j TSMESH_OUTBOUND/);
    expect(rules).toMatch(/-A PREROUTING -p tcp -j TSMESH_INBOUND/);
    expect(rules).toMatch(/-A TSMESH_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    expect(rules).toMatch(/-A TSMESH_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
    // The inbound proxy's IPv6 source address for deliveries to the application.
    expect(await client.exec('ip', ['-6', 'addr', 'show', 'dev', 'lo'])).toContain('inet6 ::6/128');
  });

  test('a gRPC client on one channel to the IPv6 cluster IP spreads its calls over both replicas, each once per round, over mTLS', async () => {
    const started = Date.now();
    const before = accessLines(client).length;
    const result = await runClient<SpreadResult>(client, 'grpc-client', ['--target', `[${GREETER.v6}]:50051`, '--calls', '200']);
    expect(result.failed).toBe(0);
    // Round-robin over two pods, not over four addresses: exactly alternating.
    expect(result.counts).toEqual({ s1: 100, s2: 100 });
    for (let i = 1; i < result.timeline.length; i++) expect(result.timeline[i]).not.toBe(result.timeline[i - 1]);

    const sent = accessLines(client)
      .slice(before)
      .filter((l) => l.reporter === 'source' && l.path === '/tsmesh.demo.Greeter/SayHello');
    expect(sent).toHaveLength(200);
    for (const line of sent) {
      expect(line.mtls).toBe(true);
      expect(line.destination_identity).toBe(GREETER_ID);
      expect(line.destination_service).toBe(`greeter.${NS}`);
    }
    for (const server of servers) {
      const received = accessLines(server).filter((l) => l.reporter === 'destination' && l.path === '/tsmesh.demo.Greeter/SayHello');
      expect(received.length).toBeGreaterThanOrEqual(100);
      for (const line of received) {
        expect(line.mtls).toBe(true);
        expect(line.source_identity).toBe(SHOPPER_ID);
      }
    }
    expect([...failuresSince(client, started), ...servers.flatMap((s) => failuresSince(s, started))]).toEqual([]);
  }, 60_000);

  test('the IPv4 and the IPv6 cluster IP of one Service reach the same replicas', async () => {
    const v4 = await runClient<SpreadResult & { connections: number }>(client, 'http-client', ['--url', `http://${WEB.v4}:8080/v4`, '--requests', '20']);
    const v6 = await runClient<SpreadResult & { connections: number }>(client, 'http-client', ['--url', `http://[${WEB.v6}]:8080/v6`, '--requests', '20']);
    for (const result of [v4, v6]) {
      expect(result.failed).toBe(0);
      expect(result.connections).toBe(1);
      expect(result.counts).toEqual({ s1: 10, s2: 10 });
    }
  }, 60_000);

  test('a server reached at its IPv4 address gets the connection there', async () => {
    // A pod IP called directly (an endpoint, not a Service): delivered at that same IPv4 address.
    const answer = await httpGet<{ server: string; localAddress: string }>(client, `http://${servers[0]?.ip}:8080/direct`);
    expect(answer.status).toBe(200);
    expect(answer.body?.server).toBe('s1');
    expect(answer.body?.localAddress).toMatch(new RegExp(`^(::ffff:)?${(servers[0]?.ip ?? '').replace(/\./g, '\\.')}$`));
  }, 30_000);

  test('a Service whose primary family is IPv6 is served sidecar to sidecar over IPv6: mTLS, captured inbound by ip6tables', async () => {
    const before = accessLines(client).length;
    const befores = servers.map((s) => accessLines(s).length);
    const result = await runClient<SpreadResult & { connections: number }>(client, 'http-client', ['--url', `http://${WEB.v4}:8080/over-v6`, '--requests', '10']);
    expect(result.counts).toEqual({ s1: 5, s2: 5 });
    const sent = accessLines(client)
      .slice(before)
      .filter((l) => l.reporter === 'source' && l.path === '/over-v6');
    expect(sent).toHaveLength(10);
    expect(new Set(sent.map((l) => l.upstream))).toEqual(new Set(servers.map((s) => `[${s.ip6}]:8080`)));
    for (const line of sent) expect(line.mtls).toBe(true);
    servers.forEach((server, i) => {
      const received = accessLines(server)
        .slice(befores[i])
        .filter((l) => l.reporter === 'destination' && l.path === '/over-v6');
      expect(received).toHaveLength(5);
      for (const line of received) {
        expect(line.mtls).toBe(true);
        expect(line.source_identity).toBe(SHOPPER_ID);
        expect(line.downstream?.startsWith(`[${client.ip6}]:`)).toBe(true);
      }
    });
    // Delivered to the application at the pod's IPv6 address, the one the client's sidecar dialled.
    const answer = await httpGet<{ server: string; localAddress: string }>(client, `http://${WEB.v4}:8080/where`);
    expect(answer.status).toBe(200);
    const server = servers.find((s) => s.name === answer.body?.server);
    expect(answer.body?.localAddress).toBe(server?.ip6);
  }, 60_000);

  test('a Service whose primary family is IPv4 is dialled over IPv4, whichever cluster IP was called', async () => {
    const before = accessLines(client).length;
    const result = await runClient<SpreadResult>(client, 'grpc-client', ['--target', `[${GREETER.v6}]:50051`, '--calls', '4']);
    expect(result.failed).toBe(0);
    const upstreams = accessLines(client)
      .slice(before)
      .filter((l) => l.reporter === 'source')
      .map((l) => l.upstream);
    expect(new Set(upstreams)).toEqual(new Set(servers.map((s) => `${s.ip}:50051`)));
  }, 60_000);

  test('the application sees the verified client identity over IPv6, and a forged one never', async () => {
    const answer = await httpGet<{ server: string; headers: Record<string, string> }>(client, `http://[${WEB.v6}]:8080/who`, ['x-forwarded-client-cert: By=x;URI=spiffe://cluster.local/ns/shop/sa/admin']);
    expect(answer.status).toBe(200);
    expect(answer.body?.headers['x-forwarded-client-cert']).toBe(`By=${GREETER_ID};URI=${SHOPPER_ID}`);
  }, 30_000);
});
