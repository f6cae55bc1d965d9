// End-to-end proof of HTTPRoute filters (issue 12): a client pod and two server pods, each a
// network namespace with `tsmesh iptables` applied and a sidecar (uid 1337) reading a mesh file.
// An HTTPRoute on Service `web` carries a ResponseHeaderModifier, a RequestRedirect, a URLRewrite and
// a RequestMirror to Service `shadow`; curl in the client pod, captured by iptables, sees each one,
// and the servers' request logs show what reached them.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { meshYaml, startSidecar, Topology, waitForLine, type MeshPodSpec, type Pod } from 'tsmesh/demo';
import { stringify } from 'yaml';
import { requireNetns } from './netns.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;

const NS = 'shop';
const WEB = '10.96.0.40';
const SHADOW = '10.96.0.41';
const PORT = 8080;

/** A server that logs every request it gets (one JSON line in argv[2]'s file) and answers what it saw. */
const RECORDING_SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const [name, log] = process.argv.slice(1);
http.createServer((req, res) => {
  let bytes = 0;
  req.on('data', (c) => (bytes += c.length));
  req.on('end', () => {
    const seen = { server: name, method: req.method, url: req.url, host: req.headers.host, xmod: req.headers['x-mod'], bodyBytes: bytes };
    fs.appendFileSync(log, JSON.stringify(seen) + '\\n');
    res.writeHead(200, { 'content-type': 'application/json', 'x-internal': 'secret' });
    res.end(JSON.stringify(seen));
  });
}).listen(${PORT}, () => console.log('ready'));
`;

interface Seen {
  readonly server: string;
  readonly method: string;
  readonly url: string;
  readonly host: string | undefined;
  readonly xmod: string | undefined;
  readonly bodyBytes: number;
}

interface CurlAnswer {
  readonly status: number;
  readonly headers: Map<string, string>;
  readonly body: string;
}

/** `curl -i` in the pod (its traffic captured like an application's), parsed. */
async function curl(pod: Pod, args: readonly string[]): Promise<CurlAnswer> {
  const out = await pod.exec('curl', ['-sS', '-i', '--max-time', '5', ...args]);
  const split = out.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = out.slice(0, split).split('\r\n');
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${line.slice(colon + 1).trim()}` : line.slice(colon + 1).trim());
  }
  return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: out.slice(split + 4) };
}

function logOf(file: string): Seen[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Seen);
}

async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const prefix = (value: string): Record<string, unknown> => ({ path: { type: 'PathPrefix', value } });
const web = { name: 'web', port: PORT };

const ROUTE = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'web-filters', namespace: NS },
  spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'web', port: PORT }],
    rules: [
      { matches: [prefix('/resp')], filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-frame', value: 'deny' }], remove: ['x-internal'] } }], backendRefs: [web] },
      { matches: [prefix('/old')], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' }, statusCode: 301 } }] },
      { matches: [prefix('/api/v1')], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'api.internal', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } }], backendRefs: [web] },
      {
        matches: [prefix('/mirror')],
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-mod', value: 'yes' }] } },
          { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: PORT } } },
        ],
        backendRefs: [web],
      },
      { backendRefs: [web] },
    ],
  },
};

suite('HTTPRoute filters in network namespaces', () => {
  let topology: Topology;
  let dir: string;
  let client: Pod;
  const webLog = (): Seen[] => logOf(join(dir, 'web.log'));
  const shadowLog = (): Seen[] => logOf(join(dir, 'shadow.log'));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-filters-'));
    chmodSync(dir, 0o755); // the sidecars run as uid 1337 and read the mesh file
    topology = await Topology.create('tsm-flt', '10.238.0');
    client = await topology.addPod({ name: 'client', hostId: 10 });
    const webPod = await topology.addPod({ name: 'web', hostId: 11 });
    const shadowPod = await topology.addPod({ name: 'shadow', hostId: 12 });
    const pods: MeshPodSpec[] = [client, webPod, shadowPod].map((p) => ({ name: p.name, namespace: NS, serviceAccount: p.name, ip: p.ip, labels: { app: p.name }, meshed: true }));
    const meshFile = join(dir, 'mesh.yaml');
    const ports = [{ name: 'http', port: PORT, targetPort: PORT }];
    const services = meshYaml(pods, [
      { name: 'web', namespace: NS, clusterIP: WEB, ports, backends: [{ pod: 'web' }] },
      { name: 'shadow', namespace: NS, clusterIP: SHADOW, ports, backends: [{ pod: 'shadow' }] },
    ]);
    writeFileSync(meshFile, `${services}${services.endsWith('\n') ? '' : '\n'}---\n${stringify(ROUTE)}`);
    for (const pod of [webPod, shadowPod]) {
      const server: ChildProcess = pod.spawn(process.execPath, ['-e', RECORDING_SERVER, pod.name, join(dir, `${pod.name}.log`)]);
      await waitForLine(server, (l) => l === 'ready', 15_000, `the server of ${pod.name}`);
      await startSidecar(pod, { meshFile, namespace: NS, serviceAccount: pod.name });
    }
    await startSidecar(client, { meshFile, namespace: NS, serviceAccount: 'client' });
  }, 120_000);

  afterAll(async () => {
    await topology?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('ResponseHeaderModifier: curl gets the header the route sets, not the one it removes', async () => {
    const answer = await curl(client, [`http://${WEB}:${PORT}/resp/a`]);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-frame')).toBe('deny');
    expect(answer.headers.has('x-internal')).toBe(false);
    // Another rule's response is untouched.
    expect((await curl(client, [`http://${WEB}:${PORT}/plain`])).headers.get('x-internal')).toBe('secret');
  }, 30_000);

  test('RequestRedirect: the client sidecar answers 301 with the rewritten Location; nothing reaches web', async () => {
    const answer = await curl(client, ['-H', 'Host: web.shop.svc', `http://${WEB}:${PORT}/old/page?q=1`]);
    expect(answer.status).toBe(301);
    expect(answer.headers.get('location')).toBe(`http://web.shop.svc:${PORT}/new/page?q=1`);
    expect(webLog().filter((s) => s.url.startsWith('/old') || s.url.startsWith('/new'))).toEqual([]);
  }, 30_000);

  test('URLRewrite: web receives the rewritten path (query kept) and host', async () => {
    const answer = await curl(client, [`http://${WEB}:${PORT}/api/v1/users?id=7`]);
    expect(answer.status).toBe(200);
    const seen = JSON.parse(answer.body) as Seen;
    expect(seen).toMatchObject({ server: 'web', url: '/v2/users?id=7', host: 'api.internal' });
    expect(webLog().some((s) => s.url === '/v2/users?id=7')).toBe(true);
  }, 30_000);

  test('RequestMirror: web answers; shadow gets a copy with the body and the edited headers; the copy is counted', async () => {
    const answer = await curl(client, ['-X', 'POST', '--data-binary', 'hello mirror', `http://${WEB}:${PORT}/mirror/x`]);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ server: 'web', url: '/mirror/x', xmod: 'yes', bodyBytes: 12 });
    const copy = await waitFor(() => shadowLog().find((s) => s.url === '/mirror/x'), 'the copy at shadow');
    expect(copy).toMatchObject({ server: 'shadow', method: 'POST', xmod: 'yes', bodyBytes: 12 });
    const metrics = await waitFor(async () => {
      const text = await client.exec(process.execPath, ['-e', "fetch('http://127.0.0.1:15020/metrics').then(r=>r.text()).then(t=>console.log(t))"]);
      return /^tsmesh_route_mirror_total\{[^}]*result="sent"[^}]*\} [1-9]/m.test(text) ? text : undefined;
    }, 'the copy to be counted');
    expect(metrics).toMatch(/destination_service="shop\/shadow:8080"/);
  }, 30_000);
});
