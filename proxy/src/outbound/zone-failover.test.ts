// A whole sidecar (explicit-port mode, real sockets) in zone a, calling a Service with two replicas
// in zone a and two in zone b: requests stay in zone a, fail over to zone b when zone a's replicas
// are not ready or stop answering, and come back when zone a is healthy again. The counts are the
// replicas' own; the metric and /clusters say the same.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterEach, describe, expect, it } from '@jest/globals';
import { TestMeshFile, type TestEndpoint, type TestService } from '../testing/mesh.js';
import { adminJson, fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, listenHttp, type Listening } from '../testing/servers.js';
import type { ClusterView } from '../upstream/manager.js';

const CLUSTER = `default/svc:${SERVICE_PORT}`;

interface Replica {
  readonly name: string;
  readonly zone: string;
  readonly server: Listening<http.Server>;
  served: number;
}

async function replica(name: string, zone: string): Promise<Replica> {
  const r: { -readonly [K in keyof Replica]?: Replica[K] } = { name, zone, served: 0 };
  r.server = await listenHttp((_req, res) => {
    r.served = (r.served ?? 0) + 1;
    res.end(name);
  });
  return r as Replica;
}

const service = (replicas: readonly Replica[], notReady: ReadonlySet<string> = new Set()): TestService => ({
  name: 'svc',
  clusterIP: SERVICE_IP,
  port: SERVICE_PORT,
  portName: 'http',
  endpoints: replicas.map((r): TestEndpoint => ({ port: r.server.port, zone: r.zone, ready: !notReady.has(r.name) })),
});

/** `n` requests, one after another; the names of the replicas that answered. */
async function send(port: number, n: number): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await fetchText(port, '/', { agent });
      expect(res.status).toBe(200);
      names.push(res.body);
    }
    return names;
  } finally {
    agent.destroy();
  }
}

function zonePicks(metrics: string, locality: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith('tsmesh_upstream_zone_picks_total{') && l.includes(`locality="${locality}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('a sidecar that knows its zone', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('keeps requests in its zone, fails over when the zone is not ready or down, and comes back', async () => {
    const replicas = await Promise.all([replica('a1', 'a'), replica('a2', 'a'), replica('b1', 'b'), replica('b2', 'b')]);
    const mesh = new TestMeshFile([service(replicas)]);
    const proxy = await startTestProxy(mesh.path, { args: ['--zone', 'a'] });
    cleanups.push(
      () => mesh.remove(),
      () => Promise.all(replicas.map((r) => r.server.close())).then(() => undefined),
      () => proxy.close(),
    );
    const locality = async () => (await adminJson<ClusterView[]>(proxy, '/clusters')).find((c) => c.cluster === CLUSTER)?.locality;
    expect(await locality()).toEqual({ zone: 'a', mode: 'zone', localShare: 1 });

    // Zone a is whole: every request stays there, spread over both of its replicas.
    expect(new Set(await send(proxy.ports.outbound, 20))).toEqual(new Set(['a1', 'a2']));

    // Zone a's replicas are not ready: everything goes to zone b.
    mesh.write([service(replicas, new Set(['a1', 'a2']))]);
    await eventually(async () => (await locality())?.localShare === 0, 'the sidecar to see zone a not ready');
    expect(new Set(await send(proxy.ports.outbound, 20))).toEqual(new Set(['b1', 'b2']));

    // Ready again: back to zone a.
    mesh.write([service(replicas)]);
    await eventually(async () => (await locality())?.localShare === 1, 'the sidecar to see zone a ready again');
    expect(new Set(await send(proxy.ports.outbound, 20))).toEqual(new Set(['a1', 'a2']));

    // Zone a's replicas stop answering: the connect failures eject them, the requests still succeed in zone b.
    const [a1, a2] = replicas;
    await Promise.all([a1!.server.close(), a2!.server.close()]);
    const before = replicas.map((r) => r.served);
    const after = await send(proxy.ports.outbound, 20);
    expect(new Set(after)).toEqual(new Set(['b1', 'b2']));
    expect(replicas.map((r, i) => r.served - before[i]!)).toEqual([0, 0, expect.any(Number), expect.any(Number)]);

    const metrics = (await fetchText(proxy.ports.health, '/metrics')).body;
    expect(zonePicks(metrics, 'local')).toBeGreaterThanOrEqual(40);
    expect(zonePicks(metrics, 'cross_zone')).toBeGreaterThanOrEqual(40);
  });

  it('balances over every zone when the Service opts out with tsmesh.io/locality: off', async () => {
    const replicas = await Promise.all([replica('a1', 'a'), replica('b1', 'b')]);
    const mesh = new TestMeshFile([service(replicas)]);
    // The fixture writes its own Service annotations: add the opt-out to the YAML it made.
    const yaml = readFileSync(mesh.path, 'utf8');
    const optedOut = yaml.replace('tsmesh.io/load-balancer: round-robin', 'tsmesh.io/load-balancer: round-robin\n    tsmesh.io/locality: "off"');
    expect(optedOut).not.toBe(yaml);
    mesh.writeText(optedOut);
    const proxy = await startTestProxy(mesh.path, { args: ['--zone', 'a'] });
    cleanups.push(
      () => mesh.remove(),
      () => Promise.all(replicas.map((r) => r.server.close())).then(() => undefined),
      () => proxy.close(),
    );
    expect(new Set(await send(proxy.ports.outbound, 10))).toEqual(new Set(['a1', 'b1']));
  });
});
