// H1Forwarder through a running sidecar (outbound, explicit-port mode) with real upstream
// servers on 127.0.0.1: per-request balancing, streaming with backpressure, trailers,
// 100-continue, header hygiene, retries and ejection, limits, opaque fallback and upgrades.
// Every suite runs on both HTTP/1.1 engines (`--http1-engine node|relay`, the relay in h1/).
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile, type TestService } from '../testing/mesh.js';
import { clusterStats, fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { blackholePort, closedPort, eventually, listenHttp, listenTcp, once, pause, payload, sha256, type Blackhole, type Listening } from '../testing/servers.js';
import { HTTP1_ENGINES as ENGINES, type Http1Engine } from '../config.js';

/** Every test runs against both HTTP/1.1 engines (`--http1-engine`). */
const engineArgs = (engine: Http1Engine): string[] => ['--http1-engine', engine];

type Handler = (name: string, req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Upstream {
  readonly name: string;
  readonly listening: Listening<http.Server>;
  /** Requests seen, in order. */
  readonly seen: http.IncomingMessage[];
}

/** Replies with the endpoint's name; tests replace it for their own paths. */
const byName: Handler = (name, req, res) => {
  req.resume();
  res.setHeader('x-upstream', name);
  res.end(name);
};
let handler: Handler = byName;

async function upstream(name: string): Promise<Upstream> {
  const seen: http.IncomingMessage[] = [];
  const listening = await listenHttp((req, res) => {
    seen.push(req);
    handler(name, req, res);
  });
  // Expect: 100-continue arrives here; the default (an automatic 100) would hide what the proxy does.
  listening.server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push(req);
    handler(name, req, res);
  });
  listening.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    seen.push(req);
    upgradeHandler(name, req, socket);
  });
  return { name, listening, seen };
}
let upgradeHandler: (name: string, req: http.IncomingMessage, socket: net.Socket) => void = (_n, _r, socket) => socket.destroy();

interface Received {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly trailers: NodeJS.Dict<string>;
  readonly socket: net.Socket;
}

/** One request through `agent` (keep-alive, one socket) or a fresh connection. */
function send(port: number, path: string, init: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer; agent?: http.Agent } = {}): Promise<Received> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: init.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers, socket: res.socket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

const agents: http.Agent[] = [];
function oneConnectionAgent(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  return agent;
}

/** Writes `data` in 64 KiB chunks honouring backpressure until `stallMs` pass without a 'drain'; returns how many bytes left the writer. */
async function writeUntilStalled(stream: NodeJS.WritableStream & { writableLength: number }, data: Buffer, stallMs = 400): Promise<{ offset: number; stalled: boolean }> {
  let offset = 0;
  while (offset < data.length) {
    const chunk = data.subarray(offset, offset + 64 * 1024);
    offset += chunk.length;
    if (!stream.write(chunk)) {
      const drained = await Promise.race([once(stream as unknown as NodeJS.EventEmitter, 'drain', 60_000).then(() => true), pause(stallMs).then(() => false)]);
      if (!drained) return { offset, stalled: true };
    }
  }
  return { offset, stalled: false };
}

async function writeRest(stream: NodeJS.WritableStream, data: Buffer, from: number): Promise<void> {
  for (let offset = from; offset < data.length; offset += 64 * 1024) {
    if (!stream.write(data.subarray(offset, offset + 64 * 1024))) await once(stream as unknown as NodeJS.EventEmitter, 'drain', 30_000);
  }
}

const MIB = 1024 * 1024;

afterEach(() => {
  handler = byName;
  for (const agent of agents.splice(0)) agent.destroy();
});

describe.each(ENGINES)('H1Forwarder (outbound, through the sidecar) (%s engine)', (engine) => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let upstreams: Upstream[];

  beforeAll(async () => {
    upstreams = await Promise.all(['a', 'b', 'c'].map(upstream));
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: upstreams.map((u) => u.listening.port) }]);
    proxy = await startTestProxy(mesh.path, { args: engineArgs(engine) });
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all(upstreams.map((u) => u.listening.close()));
    mesh?.remove();
  });

  test('balances each request of one keep-alive connection over all three endpoints', async () => {
    const agent = oneConnectionAgent();
    const names: string[] = [];
    const sockets = new Set<net.Socket>();
    for (let i = 0; i < 9; i++) {
      const res = await send(proxy.ports.outbound, '/name', { agent });
      expect(res.status).toBe(200);
      names.push(res.body.toString());
      sockets.add(res.socket);
    }
    expect(sockets.size).toBe(1);
    expect(names.sort()).toEqual(['a', 'a', 'a', 'b', 'b', 'b', 'c', 'c', 'c']);
  });

  test('streams a 20 MB upload: the client is held back while the endpoint does not read, and every byte arrives', async () => {
    const data = payload(20 * MIB);
    let startReading: () => void = () => undefined;
    const reading = new Promise<void>((resolve) => (startReading = resolve));
    handler = (name, req, res) => {
      void reading.then(() => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => res.end(JSON.stringify({ bytes: Buffer.concat(chunks).length, sha: sha256(chunks) })));
      });
    };
    const responded = new Promise<Received>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/upload', method: 'POST', agent: false, headers: { 'content-length': data.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers, socket: res.socket }));
      });
      req.on('error', reject);
      void (async () => {
        const { offset, stalled } = await writeUntilStalled(req, data);
        // Without backpressure the proxy would have swallowed all 20 MB into memory.
        expect(stalled).toBe(true);
        expect(offset - req.writableLength).toBeLessThan(data.length);
        startReading();
        await writeRest(req, data, offset);
        req.end();
      })().catch(reject);
    });
    const res = await responded;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ bytes: data.length, sha: sha256(data) });
  }, 60_000);

  test('streams a 20 MB download: the endpoint is held back while the client does not read, and every byte arrives', async () => {
    const data = payload(20 * MIB);
    let upstreamProgress: Promise<{ offset: number; stalled: boolean }> = Promise.resolve({ offset: 0, stalled: false });
    let rest: () => void = () => undefined;
    const resume = new Promise<void>((resolve) => (rest = resolve));
    handler = (_name, req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': data.length });
      upstreamProgress = writeUntilStalled(res, data);
      void upstreamProgress.then(async ({ offset }) => {
        await resume;
        await writeRest(res, data, offset);
        res.end();
      });
    };
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/download', agent: false }, resolve);
      req.on('error', reject);
    });
    res.pause();
    const { offset, stalled } = await eventually(() => upstreamProgress, 'the endpoint to start writing', 10_000);
    expect(stalled).toBe(true);
    expect(offset).toBeLessThan(data.length);
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    const ended = once(res, 'end', 30_000);
    rest();
    res.resume();
    await ended;
    expect(Buffer.concat(chunks).length).toBe(data.length);
    expect(sha256(chunks)).toBe(sha256(data));
  }, 60_000);

  test('forwards the trailers of a chunked response to the client', async () => {
    handler = (_name, req, res) => {
      req.resume();
      res.writeHead(200, { trailer: 'x-checksum, x-count', 'content-type': 'text/plain' });
      res.write('one ');
      res.write('two');
      res.addTrailers({ 'x-checksum': 'abc123', 'x-count': '2' });
      res.end();
    };
    const res = await send(proxy.ports.outbound, '/trailers');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('one two');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.trailers).toEqual({ 'x-checksum': 'abc123', 'x-count': '2' });
  });

  test('lets a client with Expect: 100-continue send its body only after the endpoint asked for it', async () => {
    const body = Buffer.from('the body');
    let continueSentAt = 0;
    handler = (_name, req, res) => {
      expect(req.headers.expect).toBe('100-continue');
      setTimeout(() => {
        continueSentAt = Date.now();
        res.writeContinue();
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => res.end(`got ${Buffer.concat(chunks).toString()}`));
      }, 100);
    };
    let continuedAt = 0;
    const res = await new Promise<Received>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: proxy.ports.outbound, path: '/expect', method: 'PUT', agent: false, headers: { expect: '100-continue', 'content-length': body.length } },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks), trailers: r.trailers, socket: r.socket }));
        },
      );
      req.on('continue', () => {
        continuedAt = Date.now();
        req.end(body);
      });
      req.on('error', reject);
    });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('got the body');
    expect(continueSentAt).toBeGreaterThan(0);
    expect(continuedAt).toBeGreaterThanOrEqual(continueSentAt);
  });

  test('drops hop-by-hop request headers (Connection and what it names, Keep-Alive, Upgrade, TE) and keeps end-to-end ones', async () => {
    let got: http.IncomingMessage | undefined;
    handler = (_name, req, res) => {
      got = req;
      req.resume();
      res.end('ok');
    };
    const res = await send(proxy.ports.outbound, '/headers', {
      headers: {
        connection: 'x-secret, keep-alive',
        'x-secret': 'hop',
        'keep-alive': 'timeout=5',
        upgrade: 'h2c',
        te: 'trailers',
        'proxy-connection': 'keep-alive',
        'x-forwarded-client-cert': 'By=forged',
        'x-end-to-end': 'kept',
        accept: 'text/plain',
        cookie: 'a=1',
      },
    });
    expect(res.status).toBe(200);
    const headers = got?.headers ?? {};
    expect(headers['x-end-to-end']).toBe('kept');
    expect(headers.accept).toBe('text/plain');
    expect(headers.cookie).toBe('a=1');
    for (const name of ['x-secret', 'keep-alive', 'upgrade', 'te', 'proxy-connection', 'x-forwarded-client-cert']) expect(headers[name]).toBeUndefined();
    expect(headers.connection).not.toContain('x-secret');
  });

  test('drops hop-by-hop response headers and keeps end-to-end ones', async () => {
    handler = (_name, req, res) => {
      req.resume();
      res.writeHead(200, { connection: 'x-internal', 'x-internal': 'hop', 'x-end-to-end': 'kept', 'proxy-authenticate': 'Basic' });
      res.end('ok');
    };
    const res = await send(proxy.ports.outbound, '/response-headers');
    expect(res.headers['x-end-to-end']).toBe('kept');
    expect(res.headers['x-internal']).toBeUndefined();
    expect(res.headers['proxy-authenticate']).toBeUndefined();
  });

  test('keeps repeated response headers (Set-Cookie) and answers HEAD with the length but no body', async () => {
    handler = (_name, req, res) => {
      req.resume();
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.setHeader('content-length', 5);
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    };
    const got = await send(proxy.ports.outbound, '/cookies');
    expect(got.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(got.body.toString()).toBe('hello');
    const head = await send(proxy.ports.outbound, '/cookies', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('5');
    expect(head.body.length).toBe(0);
  });

  test('answers 431 to request headers over 32 KiB, and other connections are served meanwhile', async () => {
    const huge = await send(proxy.ports.outbound, '/huge', { headers: { 'x-big': 'x'.repeat(40 * 1024) } });
    expect(huge.status).toBe(431);
    const normal = await send(proxy.ports.outbound, '/name');
    expect(normal.status).toBe(200);
  });

  test('forwards garbage as opaque TCP to one endpoint, without disturbing other connections', async () => {
    const garbage = net.connect(proxy.ports.outbound, '127.0.0.1');
    garbage.on('error', () => undefined);
    const answer: Buffer[] = [];
    garbage.on('data', (c: Buffer) => answer.push(c));
    const closed = once(garbage, 'close', 10_000);
    garbage.write(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a]));
    const normal = await send(proxy.ports.outbound, '/name');
    expect(normal.status).toBe(200);
    await closed;
    // The bytes reached an HTTP server, which refused them as a bad request.
    expect(Buffer.concat(answer).toString()).toMatch(/^HTTP\/1\.1 400/);
  });

  test('forwards a chunked request body of any method framed as chunked, so its bytes cannot pose as a second request', async () => {
    const bodies = new Map<string, string>();
    handler = (_name, req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.set(`${req.method} ${req.url}`, Buffer.concat(chunks).toString());
        res.end('ok');
      });
    };
    const smuggled = 'GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n';
    for (const method of ['GET', 'DELETE', 'POST']) {
      const res = await send(proxy.ports.outbound, `/chunked-${method}`, { method, headers: { 'transfer-encoding': 'chunked' }, body: Buffer.from(smuggled) });
      expect(res.status).toBe(200);
      expect(bodies.get(`${method} /chunked-${method}`)).toBe(smuggled);
    }
    await pause(50);
    expect([...bodies.keys()].some((k) => k.includes('/smuggled'))).toBe(false);
  });

  test('forwards 103 Early Hints with their headers', async () => {
    handler = (_name, req, res) => {
      req.resume();
      res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style' }, () => res.end('page'));
    };
    const infos: Array<{ statusCode: number; headers: http.IncomingHttpHeaders }> = [];
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/hints', agent: false }, resolve);
      req.on('information', (info) => infos.push({ statusCode: info.statusCode, headers: info.headers }));
      req.on('error', reject);
    });
    res.resume();
    await once(res, 'end');
    expect(res.statusCode).toBe(200);
    expect(infos).toEqual([{ statusCode: 103, headers: expect.objectContaining({ link: '</app.css>; rel=preload; as=style' }) }]);
  });

  test('passes the final answer of an endpoint that refuses Expect: 100-continue, and the client never sends its body', async () => {
    const upstreamSockets = new Set<net.Socket>();
    handler = (_name, req, res) => {
      upstreamSockets.add(req.socket);
      res.writeHead(417, { 'content-type': 'text/plain' });
      res.end('too big');
    };
    const client = await new Promise<{ res: http.IncomingMessage; req: http.ClientRequest; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = http.request({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/refuse', method: 'PUT', agent: false, headers: { expect: '100-continue', 'content-length': 10 } }, (res) =>
        resolve({ res, req, continued }),
      );
      req.on('continue', () => (continued = true));
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(client.res.statusCode).toBe(417);
    expect(client.continued).toBe(false);
    client.res.resume();
    client.req.destroy();
    // The upstream request can never complete: it must not keep its connection to the endpoint.
    await eventually(() => [...upstreamSockets].every((s) => s.destroyed), 'the upstream connection of the refused request to close');
  });

  test('a client that goes away mid-response closes the request to the endpoint', async () => {
    let upstreamClosed: Promise<unknown> = Promise.resolve();
    handler = (_name, req, res) => {
      req.resume();
      res.writeHead(200);
      const timer = setInterval(() => res.write('tick\n'), 10);
      upstreamClosed = once(res, 'close');
      res.on('close', () => clearInterval(timer));
    };
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/endless', agent: false }, resolve);
      req.on('error', reject);
    });
    await once(res, 'data');
    res.destroy();
    await upstreamClosed;
  });

  test.each([
    ['Content-Length and Transfer-Encoding together', 'POST /x HTTP/1.1\r\nhost: svc\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two different Content-Lengths', 'POST /x HTTP/1.1\r\nhost: svc\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab'],
    ['a bare LF inside a header value', 'GET /x HTTP/1.1\r\nhost: svc\r\nx-a: 1\nGET /smuggled HTTP/1.1\r\n\r\n'],
    ['an obs-fold header continuation', 'GET /x HTTP/1.1\r\nhost: svc\r\nx-a: 1\r\n folded\r\n\r\n'],
    ['a chunk size that overflows 64 bits', 'POST /x HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffff0\r\nGET /smuggled HTTP/1.1\r\n\r\n0\r\n\r\n'],
  ])('refuses an ambiguous request (%s) with 400 and forwards nothing', async (_what, raw) => {
    const before = upstreams.reduce((n, u) => n + u.seen.length, 0);
    const socket = net.connect(proxy.ports.outbound, '127.0.0.1');
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.write(raw);
    await once(socket, 'close');
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 400 /);
    expect(upstreams.reduce((n, u) => n + u.seen.length, 0)).toBe(before);
  });

  test('answers pipelined requests in order, each balanced on its own', async () => {
    const socket = net.connect(proxy.ports.outbound, '127.0.0.1');
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.write('GET /name HTTP/1.1\r\nhost: svc\r\n\r\nGET /name HTTP/1.1\r\nhost: svc\r\n\r\nGET /name HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n');
    await once(socket, 'close');
    const text = Buffer.concat(chunks).toString();
    const names = [...text.matchAll(/x-upstream: (\w)/g)].map((m) => m[1]);
    expect(text.match(/HTTP\/1\.1 200/g)).toHaveLength(3);
    expect(names.sort()).toEqual(['a', 'b', 'c']);
  });

  test('passes an Upgrade through and then carries bytes both ways', async () => {
    upgradeHandler = (name, req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${req.headers.upgrade}\r\nx-upstream: ${name}\r\n\r\n`);
      socket.on('data', (c: Buffer) => socket.write(Buffer.from(c.toString().toUpperCase())));
      socket.on('end', () => socket.end());
    };
    const upgraded = await new Promise<{ res: http.IncomingMessage; socket: net.Socket; head: Buffer }>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: proxy.ports.outbound,
        path: '/ws',
        agent: false,
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'x-forwarded-client-cert': 'By=forged' },
      });
      req.on('upgrade', (res, socket, head) => resolve({ res, socket, head }));
      req.on('error', reject);
      req.end();
    });
    expect(upgraded.res.statusCode).toBe(101);
    const seen = upstreams.flatMap((u) => u.seen).find((r) => r.url === '/ws');
    expect(seen?.headers['sec-websocket-key']).toBe('dGhlIHNhbXBsZSBub25jZQ==');
    expect(seen?.headers['x-forwarded-client-cert']).toBeUndefined();
    const { socket } = upgraded;
    const echoed: Buffer[] = [upgraded.head];
    socket.on('data', (c: Buffer) => echoed.push(c));
    const ended = once(socket, 'end');
    socket.write('hello ');
    await eventually(() => Buffer.concat(echoed).toString() === 'HELLO ', 'the first echo');
    socket.end('world');
    await ended;
    expect(Buffer.concat(echoed).toString()).toBe('HELLO WORLD');
    socket.destroy();
  });

  test('a client that gives up before the answer cancels the upstream request without blaming the endpoint', async () => {
    let upstreamClosed: Promise<unknown> | undefined;
    let arrived = false;
    handler = (_name, req, res) => {
      req.resume();
      arrived = true;
      upstreamClosed = once(res, 'close');
      const timer = setTimeout(() => res.end('late'), 2000);
      res.on('close', () => clearTimeout(timer));
    };
    const req = http.get({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/slow', agent: false });
    req.on('error', () => undefined);
    await eventually(() => arrived, 'the request to reach the endpoint');
    req.destroy();
    await upstreamClosed;
    const stats = await clusterStats(proxy);
    expect(stats.endpoints.some((e) => e.ejected)).toBe(false);
  });

  test('answers clients that half-close (FIN) right after their request, then closes their connections', async () => {
    handler = (name, req, res) => {
      req.resume();
      setTimeout(() => res.end(`${name} ${req.url}`), 100);
    };
    const answers = await Promise.all(
      Array.from(
        { length: 30 },
        (_, i) =>
          new Promise<{ text: string; closed: boolean }>((resolve) => {
            const socket = net.connect(proxy.ports.outbound, '127.0.0.1', () => {
              socket.write(`GET /fin${i} HTTP/1.1\r\nhost: svc\r\n\r\n`);
              socket.end();
            });
            let text = '';
            socket.on('data', (c: Buffer) => (text += c.toString()));
            socket.on('error', () => undefined);
            // 'close' after 'end': the sidecar closed its side once the answer was out.
            socket.on('close', () => resolve({ text, closed: true }));
          }),
      ),
    );
    for (const [i, a] of answers.entries()) {
      expect(a.text).toMatch(/^HTTP\/1\.1 200 /);
      expect(a.text).toContain(` /fin${i}`);
    }
  });

  test('leaves no request in flight once the clients are done', async () => {
    await eventually(async () => (await clusterStats(proxy)).endpoints.every((e) => e.inFlight === 0), 'every lease to be released');
  });
});

describe.each(ENGINES)('H1Forwarder with an unreachable endpoint (%s engine)', (engine) => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let upstreams: Upstream[];
  let dead: number;

  beforeAll(async () => {
    upstreams = await Promise.all(['a', 'b'].map(upstream));
    dead = await closedPort();
    const [a, b] = upstreams.map((u) => u.listening.port) as [number, number];
    const service: TestService = { name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [a, dead, b] };
    mesh = new TestMeshFile([service]);
    proxy = await startTestProxy(mesh.path, { args: engineArgs(engine) });
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all(upstreams.map((u) => u.listening.close()));
    mesh?.remove();
  });

  test('retries a GET on another endpoint (the client sees 200) and ejects the unreachable one', async () => {
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await send(proxy.ports.outbound, '/name');
      expect(res.status).toBe(200);
      names.push(res.body.toString());
    }
    expect(new Set(names)).toEqual(new Set(['a', 'b']));
    const stats = await clusterStats(proxy);
    expect(stats.endpoints.find((e) => e.port === dead)?.ejected).toBe(true);
    expect(stats.endpoints.filter((e) => e.ejected)).toHaveLength(1);
    expect(stats.endpoints.every((e) => e.inFlight === 0)).toBe(true);
  });
});

describe.each(ENGINES)('H1Forwarder with an endpoint whose connects hang (%s engine)', (engine) => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let upstreams: Upstream[];
  let hole: Blackhole;

  beforeAll(async () => {
    upstreams = await Promise.all(['a', 'b'].map(upstream));
    hole = await blackholePort();
    const [a, b] = upstreams.map((u) => u.listening.port) as [number, number];
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [a, hole.port, b] }]);
    proxy = await startTestProxy(mesh.path, { args: [...engineArgs(engine), '--connect-timeout', '200ms'] });
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all(upstreams.map((u) => u.listening.close()));
    hole?.close();
    mesh?.remove();
  });

  test('gives up on the hanging connect after the connect timeout and retries the GET elsewhere', async () => {
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await send(proxy.ports.outbound, '/name');
      expect(res.status).toBe(200);
      names.push(res.body.toString());
    }
    expect(new Set(names)).toEqual(new Set(['a', 'b']));
    const stats = await clusterStats(proxy);
    expect(stats.endpoints.find((e) => e.port === hole.port)?.ejected).toBe(true);
  });
});

describe.each(ENGINES)('H1Forwarder with an endpoint that breaks mid-response (%s engine)', (engine) => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let upstreams: Upstream[];

  beforeAll(async () => {
    upstreams = await Promise.all(['a', 'b'].map(upstream));
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: upstreams.map((u) => u.listening.port) }]);
    proxy = await startTestProxy(mesh.path, { args: engineArgs(engine) });
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all(upstreams.map((u) => u.listening.close()));
    mesh?.remove();
  });

  test('a reset after the response started cuts the client response short (no hang, no fake success) and ejects the endpoint', async () => {
    let upstreamSocket: net.Socket | undefined;
    handler = (_name, req, res) => {
      req.resume();
      upstreamSocket = req.socket as net.Socket;
      res.writeHead(200, { 'content-length': 1000 });
      res.write('partial');
    };
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/reset', agent: false }, (res) => {
        // The response has started for sure once its first bytes reached the client (a timer after the
        // write could fire before the sidecar relayed them, on a stalled machine): reset only then.
        res.once('data', () => upstreamSocket?.resetAndDestroy());
        res.on('data', () => undefined);
        res.on('end', () => resolve('complete'));
        res.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
        res.on('aborted', () => resolve('aborted'));
      });
      req.on('error', (e) => resolve(`error ${e.message}`));
    });
    expect(outcome).not.toBe('complete');
    // The lease reports the reset: passive health takes the endpoint out for a while.
    const stats = await eventually(async () => {
      const s = await clusterStats(proxy);
      return s.endpoints.some((e) => e.ejected) && s;
    }, 'the endpoint to be ejected');
    expect(stats.endpoints.filter((e) => e.ejected)).toHaveLength(1);
    expect(stats.endpoints.every((e) => e.inFlight === 0)).toBe(true);
  });
});

describe.each(ENGINES)('H1Forwarder with an endpoint that drops idle keep-alive connections (%s engine)', (engine) => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let endpoint: Listening<net.Server>;
  const requestsPerConnection: number[] = [];

  beforeAll(async () => {
    // Answers the first request of each connection (keep-alive), then closes the connection
    // when the next request arrives: the race of a server closing an idle keep-alive
    // connection just as the proxy reuses it, made deterministic.
    endpoint = await listenTcp((socket) => {
      const index = requestsPerConnection.push(0) - 1;
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        while (buffered.includes('\r\n\r\n')) {
          buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
          requestsPerConnection[index] = (requestsPerConnection[index] ?? 0) + 1;
          if (requestsPerConnection[index] === 1) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=30\r\n\r\nok');
          else socket.destroy();
        }
      });
    });
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [endpoint.port] }]);
    proxy = await startTestProxy(mesh.path, { args: engineArgs(engine) });
  });

  afterAll(async () => {
    await proxy?.close();
    await endpoint?.close();
    mesh?.remove();
  });

  test('a GET that meets a pooled connection the endpoint already dropped is sent again on a fresh one, and nobody is ejected', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await send(proxy.ports.outbound, '/again');
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('ok');
    }
    // Each request after the first met a reused connection that was dropped, then succeeded on a new one.
    expect(requestsPerConnection.filter((n) => n === 2).length).toBeGreaterThanOrEqual(1);
    expect((await clusterStats(proxy)).endpoints.some((e) => e.ejected)).toBe(false);
  });

  test('a POST is not sent twice: it fails with 502 instead', async () => {
    await send(proxy.ports.outbound, '/warm'); // leaves a pooled connection the endpoint will drop
    const res = await send(proxy.ports.outbound, '/create', { method: 'POST', headers: { 'content-length': '0' } });
    expect(res.status).toBe(502);
  });
});

describe.each(ENGINES)('H1Forwarder under a route request timeout (%s engine)', (engine) => {
  test('answers 504 in time and closes the request to the endpoint', async () => {
    let upstreamClosed = false;
    let answered = false;
    // The endpoint holds its answer until the test lets it go: a 504 that arrives first can only
    // come from the route's deadline (without it this test would hang), whatever the machine's load.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = await listenHttp((req, res) => {
      req.resume();
      res.on('close', () => (upstreamClosed = true));
      void held.then(() => {
        answered = true;
        if (!res.destroyed) res.end('late');
      });
    });
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [slow.port], requestTimeout: '100ms' }]);
    const proxy = await startTestProxy(mesh.path, { args: engineArgs(engine) });
    try {
      const res = await send(proxy.ports.outbound, '/slow');
      expect(res.status).toBe(504);
      expect(answered).toBe(false);
      release();
      await eventually(() => upstreamClosed, 'the upstream request to be closed');
      // A timeout is not the endpoint's failure to connect: it stays in.
      expect((await clusterStats(proxy)).endpoints.some((e) => e.ejected)).toBe(false);
    } finally {
      await proxy.close();
      await slow.close();
      mesh.remove();
    }
  });
});

describe.each(ENGINES)('H1Forwarder with every endpoint down (%s engine)', (engine) => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;

  beforeAll(async () => {
    const ports = [await closedPort(), await closedPort(), await closedPort()];
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: ports }]);
    proxy = await startTestProxy(mesh.path, { args: engineArgs(engine) });
  });

  afterAll(async () => {
    await proxy?.close();
    mesh?.remove();
  });

  test('answers an Upgrade it cannot connect with 503, not a dropped connection', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/ws', agent: false, headers: { connection: 'Upgrade', upgrade: 'websocket' } });
      req.on('response', (res) => {
        res.resume();
        resolve(String(res.statusCode));
      });
      req.on('upgrade', () => resolve('upgraded'));
      req.on('error', (e) => reject(e));
      req.end();
    });
    expect(answer).toBe('503');
  });

  test('answers 503 with the reason, and keeps answering', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetchText(proxy.ports.outbound, '/name');
      expect(res.status).toBe(503);
      expect(res.headers['x-tsmesh-error']).toMatch(/ECONNREFUSED|no healthy upstream/);
    }
    const stats = await clusterStats(proxy);
    expect(stats.endpoints.every((e) => e.inFlight === 0)).toBe(true);
  });
});
