// End-to-end proof of zone preference (issue 16, Locality): a client pod labelled
// `topology.kubernetes.io/zone: a` whose sidecar (uid 1337, `tsmesh iptables`, `tsmesh proxy
// --config`, no --zone: it finds its zone in the mesh) calls Services with two replicas in zone a
// and two in zone b (EndpointSlice `zone`). Requests stay in zone a; they go to zone b when zone a's
// replicas are not ready or ejected (answering 500), and come back when zone a is healthy again.
// curl runs as the application; the replicas name themselves in `x-served-by`.
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import { meshDocuments, startSidecar, Topology, type MeshPodSpec, type MeshServiceSpec, type Pod } from 'tsmesh/demo';
import { requireNetns } from './netns.js';
import { curl, requireTrafficProbe, serviceLabel, sidecarClusters, sidecarMetrics, startReplica, sum, trafficPolicy } from './traffic-policy-helpers.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;

const NS = 'shop';
const ZONES: Record<string, string> = { a1: 'a', a2: 'a', b1: 'b', b2: 'b' };
const REPLICAS = Object.keys(ZONES);
/** `web`: every replica answers 200. `flaky`: zone a's replicas answer 500, zone b's 200. */
const WEB = { ip: '10.96.9.1', port: 80, target: 8080 };
const FLAKY = { ip: '10.96.9.2', port: 80, target: 8081 };
const EJECT_AFTER = 2;

suite('zone preference with failover, in network namespaces', () => {
  let topology: Topology;
  let dir: string;
  let meshFile: string;
  let client: Pod;
  let pods: MeshPodSpec[];

  /** The mesh file, zone a's replicas of `web` ready or not; every slice endpoint gets its pod's zone. */
  const writeMesh = (zoneAReady: boolean): void => {
    const service = (name: string, s: typeof WEB, ready: (pod: string) => boolean): MeshServiceSpec => ({
      name,
      namespace: NS,
      clusterIP: s.ip,
      ports: [{ name: 'http', port: s.port, targetPort: s.target }],
      backends: REPLICAS.map((pod) => ({ pod, ready: ready(pod) })),
    });
    const docs = meshDocuments(pods, [service('web', WEB, (pod) => zoneAReady || ZONES[pod] !== 'a'), service('flaky', FLAKY, () => true)]) as Array<Record<string, unknown>>;
    for (const doc of docs) {
      if (doc['kind'] !== 'EndpointSlice') continue;
      for (const endpoint of doc['endpoints'] as Array<Record<string, unknown>>) {
        const pod = (endpoint['targetRef'] as { name: string }).name;
        endpoint['zone'] = ZONES[pod];
      }
    }
    const policy = trafficPolicy(NS, 'flaky', { outlierDetection: { consecutive5xxErrors: EJECT_AFTER, maxEjectionPercent: 100, baseEjectionTime: '60s' } });
    writeFileSync(`${meshFile}.tmp`, [...docs, policy].map((d) => stringify(d)).join('---\n'));
    // Replaced whole (rename), as a careful writer does: the sidecar never reads half a file.
    renameSync(`${meshFile}.tmp`, meshFile);
  };

  /** `n` GETs to `s` on one keep-alive connection: who answered each, and with what. */
  const get = async (s: typeof WEB, n: number) => {
    const run = await curl(client, [`http://${s.ip}:${s.port}/z/[1-${n}]`]);
    expect(run.other).toEqual([]);
    return run.answers;
  };
  const servers = (answers: ReadonlyArray<{ server: string }>): string[] => [...new Set(answers.map((a) => a.server))].sort();

  /** The client sidecar's locality view of `service`'s cluster, from /clusters. */
  const locality = async (service: string): Promise<{ zone: string; localShare: number } | undefined> => {
    const clusters = (await sidecarClusters(client)) as Array<{ cluster: string; locality?: { zone: string; localShare: number } }>;
    return clusters.find((c) => serviceLabel(NS, service).test(c.cluster))?.locality;
  };
  const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 5_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const picks = async (service: string, where: 'local' | 'cross_zone'): Promise<number> =>
    sum(await sidecarMetrics(client), 'tsmesh_upstream_zone_picks_total', { destination_service: serviceLabel(NS, service), locality: where });

  beforeAll(async () => {
    requireTrafficProbe();
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-zone-'));
    chmodSync(dir, 0o755); // the sidecar (uid 1337) reads and watches the mesh file
    meshFile = join(dir, 'mesh.yaml');
    topology = await Topology.create('tsm-zone', '10.243.0');
    client = await topology.addPod({ name: 'client', hostId: 10 });
    const replicas = await Promise.all(REPLICAS.map((name, i) => topology.addPod({ name, hostId: 11 + i })));
    pods = [
      // The client's zone comes from its pod label (Kubernetes' PodTopologyLabelsAdmission), not from a flag.
      { name: 'client', namespace: NS, serviceAccount: 'client', ip: client.ip, labels: { app: 'client', 'topology.kubernetes.io/zone': 'a' }, meshed: true },
      ...replicas.map((p) => ({ name: p.name, namespace: NS, serviceAccount: 'backend', ip: p.ip, labels: { app: 'backend' }, meshed: false })),
    ];
    writeMesh(true);
    await Promise.all(replicas.map((pod) => startReplica(pod, { http: { [WEB.target]: 'ok', [FLAKY.target]: ZONES[pod.name] === 'a' ? 'fail' : 'ok' } })));
    await startSidecar(client, { meshFile, namespace: NS, serviceAccount: 'client' });
  }, 60_000);

  afterAll(async () => {
    // Kills every process and deletes every namespace (with the iptables rules inside them), even after a failure.
    await topology?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('requests stay in the caller zone while it is healthy, spread over its replicas', async () => {
    expect(await locality('web')).toEqual({ zone: 'a', mode: 'zone', localShare: 1 });
    const before = await picks('web', 'local');
    const answers = await get(WEB, 40);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(servers(answers)).toEqual(['a1', 'a2']);
    expect((await picks('web', 'local')) - before).toBe(40);
  }, 30_000);

  test('fail over to the other zone when no replica of the caller zone is ready, and come back when they are', async () => {
    writeMesh(false);
    await until('zone a not ready in the sidecar', async () => (await locality('web'))?.localShare === 0);
    const crossBefore = await picks('web', 'cross_zone');
    const away = await get(WEB, 40);
    expect(away.every((a) => a.status === 200)).toBe(true);
    expect(servers(away)).toEqual(['b1', 'b2']);
    expect((await picks('web', 'cross_zone')) - crossBefore).toBe(40);

    writeMesh(true);
    await until('zone a ready again in the sidecar', async () => (await locality('web'))?.localShare === 1);
    const back = await get(WEB, 40);
    expect(servers(back)).toEqual(['a1', 'a2']);
  }, 30_000);

  test('fail over to the other zone when the caller zone is ejected (outlier detection)', async () => {
    // Zone a's replicas answer 500: each is ejected after its EJECT_AFTER-th, then zone b answers everything.
    const answers = await get(FLAKY, 40);
    const failed = answers.filter((a) => a.status === 500);
    expect(failed.length).toBe(2 * EJECT_AFTER);
    expect(servers(failed)).toEqual(['a1', 'a2']);
    // After zone a's last 500 every request went to zone b and succeeded.
    const after = answers.slice(answers.findLastIndex((a) => a.status === 500) + 1);
    expect(after.length).toBeGreaterThanOrEqual(40 - 4 * EJECT_AFTER);
    expect(after.every((a) => a.status === 200)).toBe(true);
    expect(servers(after)).toEqual(['b1', 'b2']);
    expect(await locality('flaky')).toMatchObject({ zone: 'a', localShare: 0 });
    expect(await picks('flaky', 'cross_zone')).toBeGreaterThanOrEqual(40 - 2 * EJECT_AFTER);
  }, 30_000);
});
