// `--http-idle-timeout` on HTTP/1.1 through a real proxy: the client's keep-alive connection and
// the pooled upstream connection are both closed once idle that long, and a slow response in
// flight on a pooled connection is never cut by it.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile } from '../testing/mesh.js';
import { SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, listenHttp, once, type Listening } from '../testing/servers.js';
import { HTTP1_ENGINES as ENGINES, type Http1Engine } from '../config.js';

/** Every test runs against both HTTP/1.1 engines (`--http1-engine`). */
const engineArgs = (engine: Http1Engine): string[] => ['--http1-engine', engine];

const IDLE_MS = 400;

describe.each(ENGINES)('HTTP/1.1 idle timeout (%s engine)', (engine) => {
  let upstream: Listening<http.Server>;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;

  beforeAll(async () => {
    // The upstream never closes an idle connection itself: only the proxy's timer can.
    upstream = await listenHttp(
      (req, res) => {
        req.resume();
        const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0);
        setTimeout(() => res.end('ok'), delay);
      },
      { keepAliveTimeout: 0 },
    );
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [upstream.port] }]);
    proxy = await startTestProxy(mesh.path, { args: [...engineArgs(engine), '--http-idle-timeout', `${IDLE_MS}ms`] });
  });

  afterAll(async () => {
    await proxy?.close();
    await upstream?.close();
    mesh?.remove();
  });

  /** One request on a raw keep-alive connection; resolves with the socket, still open. */
  async function get(path: string): Promise<{ socket: net.Socket; answer: string }> {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.ports.outbound });
    await once(socket, 'connect');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: svc\r\n\r\n`);
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    await eventually(() => answer.endsWith('ok'), 'the answer', 5000);
    return { socket, answer };
  }

  test('closes the idle client connection and the idle pooled upstream connection', async () => {
    const { socket, answer } = await get('/');
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(upstream.open).toBe(1);
    const ended = once(socket, 'end', 5000);
    const answeredAt = Date.now();
    await ended;
    expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(IDLE_MS - 50);
    await eventually(() => upstream.open === 0, 'the pooled upstream connection to be closed', 5000);
    socket.destroy();
  });

  test('never cuts a response slower than the idle timeout', async () => {
    const { answer, socket } = await get(`/?delay=${IDLE_MS * 3}`);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    socket.destroy();
  });
});
