// Several event loops (`--concurrency 2`): connections land on every loop, one /metrics counts them
// all exactly, mesh changes reach every loop, /clusters merges them, and a loop that ends is
// restarted on the same ports while the other keeps serving. The loops run the built worker
// (dist/loops/worker.js): build before running these tests.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { MeshFileSource, type MeshSnapshot } from '@tsmesh/common';
import { parseProxyConfig } from '../config.js';
import type { RunningProxy } from '../proxy.js';
import { find, parseExposition, type Exposition } from '../telemetry/testing/prometheus-text.js';
import { TestMeshFile, type TestService } from '../testing/mesh.js';
import { adminJson, fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, pause } from '../testing/servers.js';
import type { MergedClusterStats } from './merge.js';
import { mergeMetrics } from './merge.js';
import { LoopPool } from './pool.js';

const service = (...endpoints: number[]): TestService => ({ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints });

interface Upstream {
  readonly port: number;
  close(): void;
}

/** One port answering `name` over HTTP/1.1 and h2c (prior knowledge), as an application may. */
async function upstream(name: string): Promise<Upstream> {
  const h1 = http.createServer((req, res) => {
    req.resume();
    res.end(name);
  });
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.resume();
    stream.respond({ ':status': 200 });
    stream.end(name);
  });
  h2.on('session', (session) => session.on('error', () => undefined));
  // node:http2 reads its socket's handle itself, so h2c connections are relayed to its own port.
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  const h2Port = (h2.address() as net.AddressInfo).port;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  const server = net.createServer((socket) => {
    track(socket);
    socket.once('data', (first: Buffer) => {
      if (first.subarray(0, 3).toString() !== 'PRI') {
        socket.pause();
        socket.unshift(first);
        h1.emit('connection', socket);
        socket.resume();
        return;
      }
      const relay = net.connect({ host: '127.0.0.1', port: h2Port });
      track(relay);
      relay.write(first);
      socket.pipe(relay).pipe(socket);
      relay.once('close', () => socket.destroy());
      socket.once('close', () => relay.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
      h1.close();
      h2.close();
    },
  };
}

/** `count` GETs, each on its own HTTP/1.1 connection, `parallel` at a time; the bodies. */
async function h1Requests(port: number, count: number, parallel = 25): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < count; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - i) }, () => fetchText(port, '/'));
    for (const res of await Promise.all(batch)) bodies.push(`${res.status} ${res.body}`);
  }
  return bodies;
}

/** `sessions` HTTP/2 connections, `streams` GETs on each; the bodies. */
async function h2Requests(port: number, sessions: number, streams: number): Promise<string[]> {
  const one = async (): Promise<string[]> => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      return await Promise.all(
        Array.from(
          { length: streams },
          () =>
            new Promise<string>((resolve, reject) => {
              const req = session.request({ ':path': '/' });
              let status = 0;
              const chunks: Buffer[] = [];
              req.on('response', (h) => (status = Number(h[':status'])));
              req.on('data', (c: Buffer) => chunks.push(c));
              req.on('end', () => resolve(`${status} ${Buffer.concat(chunks).toString()}`));
              req.on('error', reject);
            }),
        ),
      );
    } finally {
      session.close();
    }
  };
  return (await Promise.all(Array.from({ length: sessions }, one))).flat();
}

async function scrape(proxy: RunningProxy): Promise<Exposition> {
  const res = await fetchText(proxy.ports.health, '/metrics');
  expect(res.status).toBe(200);
  return parseExposition(res.body);
}

const total = (text: Exposition, name: string, where: Record<string, string> = {}): number => find(text, name, where).reduce((n, s) => n + s.value, 0);

/** Connections accepted on the outbound port, per loop. */
const accepted = (text: Exposition): [number, number] => [
  total(text, 'tsmesh_proxy_loop_connections_total', { loop: '0', direction: 'outbound' }),
  total(text, 'tsmesh_proxy_loop_connections_total', { loop: '1', direction: 'outbound' }),
];

const requests = (text: Exposition): number => total(text, 'tsmesh_requests_total', { reporter: 'source', response_code: '200' });

describe('a sidecar with two event loops (--concurrency 2)', () => {
  let a: Upstream;
  let b: Upstream;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;

  beforeAll(async () => {
    a = await upstream('a');
    b = await upstream('b');
    mesh = new TestMeshFile([service(a.port)]);
    proxy = await startTestProxy(mesh.path, { concurrency: 2 });
  });

  afterAll(async () => {
    await proxy?.close();
    a?.close();
    b?.close();
    mesh?.remove();
  });

  test('runs both loops on the one capture port: 200 HTTP/1.1 and 20 HTTP/2 connections are all answered, and each loop took some', async () => {
    expect(proxy.loops).toBe(2);
    expect((await fetchText(proxy.ports.health, '/healthz/ready')).status).toBe(200);
    const before = accepted(await scrape(proxy));
    const h1 = await h1Requests(proxy.ports.outbound, 200);
    const h2 = await h2Requests(proxy.ports.outbound, 20, 5);
    expect(h1).toEqual(Array(200).fill('200 a'));
    expect(h2).toEqual(Array(100).fill('200 a'));
    const after = accepted(await scrape(proxy));
    const [loop0, loop1] = [after[0] - before[0], after[1] - before[1]];
    expect(loop0 + loop1).toBe(220);
    // The kernel hashes each connection to one of the listeners: with 220, both get some.
    expect(loop0).toBeGreaterThan(0);
    expect(loop1).toBeGreaterThan(0);
  });

  test('/metrics counts every request exactly once, whichever loop served it', async () => {
    const before = requests(await scrape(proxy));
    await h1Requests(proxy.ports.outbound, 150);
    await h2Requests(proxy.ports.outbound, 10, 7);
    // A request is counted when it ends, just after its answer left: wait for the last ones.
    await eventually(async () => requests(await scrape(proxy)) - before >= 220, 'every request to be counted');
    await pause(200);
    const text = await scrape(proxy);
    expect(requests(text) - before).toBe(220);
    // One exposition: one sample per label set, whatever the number of loops.
    const series = find(text, 'tsmesh_requests_total').map((s) => JSON.stringify(s.labels));
    expect(new Set(series).size).toBe(series.length);
    expect(find(text, 'process_resident_memory_bytes')).toHaveLength(1);
  });

  test('a mesh file change reaches every loop: new connections on both loops go to the new endpoint', async () => {
    mesh.write([service(b.port)]);
    // Eventually a batch of 40 fresh connections, spread over both loops, all reach b.
    await eventually(
      async () => {
        const before = accepted(await scrape(proxy));
        const bodies = await h1Requests(proxy.ports.outbound, 40, 20);
        const after = accepted(await scrape(proxy));
        return bodies.every((body) => body === '200 b') && after[0] > before[0] && after[1] > before[1];
      },
      'every loop to send new connections to the new endpoint',
      5000,
    );
    const dump = await adminJson<{ version: string }>(proxy, '/config_dump');
    expect(dump.version).toBe(proxy.snapshot()?.version);
  });

  test('/clusters merges the loops: one entry per cluster, each endpoint with what every loop sees of it', async () => {
    const clusters = await adminJson<MergedClusterStats[]>(proxy, '/clusters');
    const cluster = clusters.find((c) => c.cluster === `default/svc:${SERVICE_PORT}`);
    expect(cluster?.endpoints).toEqual([
      expect.objectContaining({
        port: b.port,
        inFlight: 0,
        ejected: false,
        loops: [expect.objectContaining({ loop: 0, inFlight: 0, ejected: false }), expect.objectContaining({ loop: 1, inFlight: 0, ejected: false })],
      }),
    ]);
    // Open upstream connections: the sidecar's figure is the sum of its loops'.
    const endpoint = cluster!.endpoints[0]!;
    for (const protocol of ['http1', 'http2', 'tcp'] as const) {
      expect(endpoint.connections[protocol]).toBe(endpoint.loops.reduce((n, l) => n + l.connections[protocol], 0));
    }
  });

  test('POST /logging reaches the loops as well as the main thread', async () => {
    const res = await fetchText(proxy.ports.admin, '/logging?level=silent', { method: 'POST' });
    expect(res.status).toBe(200);
    // Nothing to observe from outside but that the loops still serve afterwards.
    expect(await h1Requests(proxy.ports.outbound, 10)).toEqual(Array(10).fill('200 b'));
  });
});

describe('LoopPool', () => {
  let a: Upstream;
  let mesh: TestMeshFile;
  let snapshot: MeshSnapshot;

  beforeAll(async () => {
    a = await upstream('a');
    mesh = new TestMeshFile([service(a.port)]);
    const source = new MeshFileSource(mesh.path);
    const first = await source.start();
    await source.close();
    if (!first.ok) throw first.error;
    snapshot = first.value;
  });

  afterAll(() => {
    a?.close();
    mesh?.remove();
  });

  const config = () =>
    parseProxyConfig(
      ['--config', mesh.path, '--outbound-port', '0', '--inbound-port', '0', '--bind', '127.0.0.1', '--outbound-target', `${SERVICE_IP}:${SERVICE_PORT}`],
      { TSMESH_LOG_LEVEL: 'silent' },
    );
  const metricsOf = async (pool: LoopPool): Promise<Exposition> => parseExposition(await mergeMetrics(await pool.metrics()).metrics());

  test('restarts a loop that ended unexpectedly, on the same ports, while the other loop serves; merged counters do not go back', async () => {
    const restarted: number[] = [];
    const pool = await LoopPool.start({
      config: config(),
      loops: 2,
      snapshot,
      identity: false,
      material: undefined,
      tracing: { exporter: 'none', sampleRate: 1 },
      accessLog: false,
      logLevel: 'silent',
      restartDelayMs: 200,
      onRestart: (loop) => restarted.push(loop),
    });
    try {
      expect(pool.listening()).toBe(2);
      expect(await h1Requests(pool.ports.outbound, 40)).toEqual(Array(40).fill('200 a'));
      await eventually(async () => requests(await metricsOf(pool)) === 40, 'the first 40 requests to be counted');
      const firstWorker = pool.worker(0);

      await firstWorker?.terminate();
      expect(pool.listening()).toBe(1);
      // While loop 0 is down, the kernel hands every connection to loop 1.
      expect(await h1Requests(pool.ports.outbound, 40)).toEqual(Array(40).fill('200 a'));

      await eventually(() => pool.listening() === 2, 'loop 0 to be restarted', 5000);
      expect(restarted).toEqual([0]);
      expect(pool.worker(0)).not.toBe(firstWorker);
      const before = accepted(await metricsOf(pool));
      expect(await h1Requests(pool.ports.outbound, 100)).toEqual(Array(100).fill('200 a'));
      const after = accepted(await metricsOf(pool));
      expect(after[0]).toBeGreaterThan(before[0]);
      expect(after[1]).toBeGreaterThan(before[1]);
      // What loop 0 counted before it ended is kept: 180 in all.
      await eventually(async () => requests(await metricsOf(pool)) === 180, 'all 180 requests to be counted');
    } finally {
      await pool.close();
    }
    expect(pool.listening()).toBe(0);
  });

  test('fails to start, naming the loop and the reason, when the port is taken by someone else', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const busy = parseProxyConfig(
        ['--config', mesh.path, '--outbound-port', String(port), '--inbound-port', '0', '--bind', '127.0.0.1'],
        { TSMESH_LOG_LEVEL: 'silent' },
      );
      await expect(
        LoopPool.start({ config: busy, loops: 2, snapshot, identity: false, material: undefined, tracing: { exporter: 'none', sampleRate: 1 }, accessLog: false, logLevel: 'silent' }),
      ).rejects.toThrow(/event loop 0: .*EADDRINUSE/);
    } finally {
      taken.close();
    }
  });
});

/** Connects to `port` and says how that went: 'connected', or the error code (ECONNREFUSED, ECONNRESET). */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      // Accepted into a listener's queue is not yet served: wait to see whether it is reset.
      socket.once('close', () => resolve('reset'));
      socket.once('error', () => undefined);
      setTimeout(() => {
        socket.destroy();
        resolve('connected');
      }, 50);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

describe('draining a sidecar with two event loops', () => {
  test('once readiness reports 503, every loop has closed its listener: new connections are refused, never accepted and reset', async () => {
    const a = await upstream('a');
    const mesh = new TestMeshFile([service(a.port)]);
    const proxy = await startTestProxy(mesh.path, { concurrency: 2 });
    // A held connection keeps the drain going while readiness and connections are tried.
    const held = net.connect({ host: '127.0.0.1', port: proxy.ports.outbound });
    held.on('error', () => undefined);
    try {
      await new Promise((resolve) => held.once('connect', resolve));
      expect((await fetchText(proxy.ports.health, '/healthz/ready')).status).toBe(200);
      const drained = proxy.drain(3000);
      let ready = 200;
      while (ready === 200) ready = (await fetchText(proxy.ports.health, '/healthz/ready')).status;
      expect(ready).toBe(503);
      const outcomes = await Promise.all(Array.from({ length: 40 }, () => connectOutcome(proxy.ports.outbound)));
      expect(outcomes).toEqual(Array(40).fill('ECONNREFUSED'));
      held.destroy();
      expect(await drained).toEqual({ remaining: 0 });
    } finally {
      held.destroy();
      await proxy.close();
      a.close();
      mesh.remove();
    }
  });
});
