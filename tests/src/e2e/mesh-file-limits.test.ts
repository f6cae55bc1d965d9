// A hostile mesh file never stalls the data path: `tsmesh proxy --config` serving HTTP on its
// outbound port while the mesh file is rewritten with 1 MiB of brackets (or nesting that looks
// valid) keeps answering every request within 100 ms, stays under 200 MiB of memory, names the file
// and the limit it broke, and keeps routing with the last good mesh.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SIDECAR_NODE_FLAGS } from '@tsmesh/common';
import { CLI_MAIN } from 'tsmesh/demo';

const MiB = 1024 * 1024;
const SERVICE_IP = '10.96.0.10';
/** The figures. */
const MAX_LATENCY_MS = 100;
const MAX_RSS_MIB = 200;
const REQUEST_EVERY_MS = 10;
/** What MeshFileSource logs on a refused change. */
const REFUSED = 'mesh file refused; the last good mesh stays in force';

const meshFile = (upstreamPort: number, name: string): string =>
  `${JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'limits' } },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: 'limits' },
        spec: { clusterIP: SERVICE_IP, clusterIPs: [SERVICE_IP], ports: [{ name: 'http', port: 80, targetPort: upstreamPort, protocol: 'TCP' }] },
      },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${name}-1`, namespace: 'limits', labels: { 'kubernetes.io/service-name': name } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: upstreamPort, protocol: 'TCP' }],
        endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      },
    ],
  })}\n`;

/** The hostile contents: each 1 MiB, each refused for its nesting before a parser sees it. */
const HOSTILE: ReadonlyArray<readonly [string, () => string]> = [
  ['1 MiB of [', () => '['.repeat(MiB)],
  ['1 MiB of {', () => '{'.repeat(MiB)],
  ['balanced YAML flow nesting (a: [[[...]]])', () => `a: ${'['.repeat(MiB / 2 - 2)}${']'.repeat(MiB / 2 - 2)}\n`],
  ['balanced JSON object nesting ({"a":{"a":...}})', () => `${'{"a":'.repeat(MiB / 10)}1${'}'.repeat(MiB / 10)}\n`],
  ['YAML block nesting (- - - ...)', () => `${'- '.repeat(MiB / 2 - 1)}a\n`],
];

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = net.createServer();
      server.listen({ host: '127.0.0.1', port: 0 });
      await once(server, 'listening');
      return server;
    }),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** `VmRSS` / `VmHWM` (peak) of a process, in MiB. */
function memoryMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? NaN) / 1024;
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

/** One GET through the sidecar's outbound port on a new connection; an error is status 0. */
function get(port: number): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { host: SERVICE_IP } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, ms: performance.now() - started }));
    });
    request.on('error', (error) => resolve({ status: 0, body: error.message, ms: performance.now() - started }));
  });
}

describe('a hostile mesh file under load', () => {
  let dir: string;
  let file: string;
  let upstream: http.Server;
  let sidecar: ChildProcess;
  let outboundPort: number;
  let log = '';
  const refusals = (): Array<Record<string, unknown>> =>
    log
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line['msg'] === REFUSED);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-mesh-limits-'));
    file = join(dir, 'mesh.yaml');
    upstream = http.createServer((_request, response) => response.end('upstream'));
    upstream.listen({ host: '127.0.0.1', port: 0 });
    await once(upstream, 'listening');
    const upstreamPort = (upstream.address() as net.AddressInfo).port;
    writeFileSync(file, meshFile(upstreamPort, 'web'));
    const [outbound, inbound, admin, health] = await freePorts(4);
    outboundPort = outbound ?? 0;
    sidecar = spawn(
      process.execPath,
      [
        ...SIDECAR_NODE_FLAGS, CLI_MAIN, 'proxy',
        '--config', file,
        '--outbound-target', `${SERVICE_IP}:80`,
        '--bind', '127.0.0.1',
        '--outbound-port', String(outbound), '--inbound-port', String(inbound), '--admin-port', String(admin), '--health-port', String(health),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'], TSMESH_LOG_LEVEL: 'info', TSMESH_POD_NAME: 'client-0', TSMESH_POD_NAMESPACE: 'limits' } },
    );
    sidecar.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    sidecar.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${health}/healthz/ready`).then((r) => r.ok, () => false);
      if (ready) break;
      if (sidecar.exitCode !== null || Date.now() > deadline) throw new Error(`the sidecar never became ready: ${log.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }, 30_000);

  afterAll(async () => {
    if (sidecar !== undefined && sidecar.exitCode === null) {
      sidecar.kill('SIGKILL');
      await once(sidecar, 'exit');
    }
    upstream?.closeAllConnections();
    upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each(HOSTILE)('%s: refused by its nesting while requests keep flowing', async (what, content) => {
    const refusedBefore = refusals().length;
    const answers: Array<Promise<Answer>> = [];
    let refusal: Record<string, unknown> | undefined;
    let peakRss = 0;
    const tick = setInterval(() => {
      answers.push(get(outboundPort));
      peakRss = Math.max(peakRss, memoryMiB(sidecar.pid ?? 0, 'VmRSS'));
    }, REQUEST_EVERY_MS);
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      writeFileSync(file, content());
      const deadline = Date.now() + 60_000;
      while (refusal === undefined) {
        refusal = refusals()[refusedBefore];
        if (Date.now() > deadline) throw new Error(`no refusal logged: ${log.slice(-2000)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Requests go on for a while after the refusal: the last good mesh is still in force.
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      clearInterval(tick);
    }
    const done = await Promise.all(answers);
    const latencies = done.map((a) => a.ms).sort((a, b) => a - b);
    const max = latencies[latencies.length - 1] ?? Infinity;
    const p50 = latencies[Math.floor(latencies.length / 2)] ?? Infinity;
    const peakHwm = memoryMiB(sidecar.pid ?? 0, 'VmHWM');
    console.log(`${what}: ${done.length} requests, p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms; RSS peak sampled ${peakRss.toFixed(0)} MiB, VmHWM ${peakHwm.toFixed(0)} MiB`);
    // The last good mesh stays in force: every request was routed to the upstream.
    expect(done.filter((a) => a.status !== 200 || a.body !== 'upstream')).toEqual([]);
    expect(max).toBeLessThan(MAX_LATENCY_MS);
    expect(peakHwm).toBeLessThan(MAX_RSS_MIB);
    // The error names the file and the limit (with its value).
    expect(refusal?.['reason']).toEqual(expect.stringContaining(file));
    expect(refusal?.['reason']).toMatch(/nesting deeper than 64 levels/);
    expect(refusal?.['code']).toBe('TSMESH_ERR_MESH_TOO_DEEP');
  }, 90_000);
});
