// H2Forwarder through a running sidecar (outbound, explicit-port mode) with real HTTP/2
// upstream servers on 127.0.0.1: per-stream balancing over one client session, gRPC trailers,
// flow-controlled bodies, long-lived streams, retries, error answers and cancellation.
import http2 from 'node:http2';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile } from '../testing/mesh.js';
import { clusterStats, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { blackholePort, closedPort, eventually, listenH2, once, pause, payload, sha256, type Blackhole, type Listening } from '../testing/servers.js';

const { HTTP2_HEADER_STATUS, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const END_STREAM = 0x1;

type Handler = (name: string, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/** Answers with the endpoint's name. */
const byName: Handler = (name, stream) => {
  stream.resume();
  stream.respond({ ':status': 200, 'x-upstream': name });
  stream.end(name);
};
let handler: Handler = byName;

interface Upstream {
  readonly name: string;
  readonly listening: Listening<http2.Http2Server>;
  readonly seen: http2.IncomingHttpHeaders[];
}

async function upstream(name: string): Promise<Upstream> {
  const seen: http2.IncomingHttpHeaders[] = [];
  const listening = await listenH2((stream, headers) => {
    seen.push(headers);
    handler(name, stream, headers);
  });
  return { name, listening, seen };
}

interface Answer {
  readonly headers: http2.IncomingHttpHeaders;
  readonly flags: number;
  readonly body: Buffer;
  readonly trailers: http2.IncomingHttpHeaders | undefined;
}

/** One stream on `session`; resolves when it closes. */
function call(session: http2.ClientHttp2Session, path: string, extra: http2.OutgoingHttpHeaders = {}, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': body ? 'POST' : 'GET', ':path': path, ...extra }, { endStream: !body });
    let headers: http2.IncomingHttpHeaders = {};
    let flags = 0;
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h, f) => {
      headers = h;
      flags = f;
    });
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => resolve({ headers, flags, body: Buffer.concat(chunks), trailers }));
    if (body) req.end(body);
  });
}

const sessions: http2.ClientHttp2Session[] = [];
async function connect(port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 1 << 20 } });
  session.on('error', () => undefined);
  sessions.push(session);
  await once(session, 'connect');
  return session;
}

/** Writes `data` in 64 KiB chunks honouring backpressure, then ends. */
async function writeAll(stream: http2.Http2Stream, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; offset += 64 * 1024) {
    if (!stream.write(data.subarray(offset, offset + 64 * 1024))) await once(stream, 'drain', 30_000);
  }
  stream.end();
}

const MIB = 1024 * 1024;

afterEach(() => {
  handler = byName;
  for (const session of sessions.splice(0)) session.destroy();
});

describe('H2Forwarder (outbound, through the sidecar)', () => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let upstreams: Upstream[];

  beforeAll(async () => {
    upstreams = await Promise.all(['a', 'b', 'c'].map(upstream));
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: upstreams.map((u) => u.listening.port) }]);
    proxy = await startTestProxy(mesh.path);
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all(upstreams.map((u) => u.listening.close()));
    mesh?.remove();
  });

  // Each test leaves no stream in flight once its clients are done (every lease released): checked
  // after every test, so a leak is charged to the test that made it, whatever the order.
  afterEach(async () => {
    await eventually(async () => (await clusterStats(proxy)).endpoints.every((e) => e.inFlight === 0), 'every lease to be released');
  });

  test('balances the streams of one client session over all three endpoints', async () => {
    const session = await connect(proxy.ports.outbound);
    const answers = await Promise.all(Array.from({ length: 9 }, () => call(session, '/name')));
    expect(answers.map((a) => a.headers[HTTP2_HEADER_STATUS])).toEqual(Array(9).fill(200));
    expect(answers.map((a) => a.body.toString()).sort()).toEqual(['a', 'a', 'a', 'b', 'b', 'b', 'c', 'c', 'c']);
    const more = [];
    for (let i = 0; i < 3; i++) more.push((await call(session, '/name')).body.toString());
    expect(more.sort()).toEqual(['a', 'b', 'c']);
  });

  test('forwards gRPC-style trailers (grpc-status, grpc-message) after the body', async () => {
    handler = (_name, stream) => {
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK', 'x-cost': '7' }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
    };
    const session = await connect(proxy.ports.outbound);
    const answer = await call(session, '/pkg.Service/Method', { 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 0]));
    expect(answer.headers[HTTP2_HEADER_STATUS]).toBe(200);
    expect(answer.headers['content-type']).toBe('application/grpc+proto');
    expect(answer.body).toEqual(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
    expect(answer.trailers).toEqual(expect.objectContaining({ 'grpc-status': '0', 'grpc-message': 'OK', 'x-cost': '7' }));
  });

  test('forwards a trailers-only response as one HEADERS frame that ends the stream', async () => {
    handler = (_name, stream) => {
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'no such thing' }, { endStream: true });
    };
    const session = await connect(proxy.ports.outbound);
    const answer = await call(session, '/pkg.Service/Missing', { 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 0]));
    expect(answer.flags & END_STREAM).toBe(END_STREAM);
    expect(answer.headers['grpc-status']).toBe('5');
    expect(answer.headers['grpc-message']).toBe('no such thing');
    expect(answer.trailers).toBeUndefined();
    expect(answer.body.length).toBe(0);
  });

  test('keeps te: trailers on the forwarded request', async () => {
    const session = await connect(proxy.ports.outbound);
    await call(session, '/te', { 'content-type': 'application/grpc', te: 'trailers' });
    const seen = upstreams.flatMap((u) => u.seen).find((h) => h[':path'] === '/te');
    expect(seen?.te).toBe('trailers');
    expect(seen?.['content-type']).toBe('application/grpc');
  });

  test('carries 10 MB each way on one stream at the same time, under flow control', async () => {
    const up = payload(10 * MIB);
    const down = Buffer.from(payload(10 * MIB)).reverse();
    handler = (_name, stream) => {
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      const received: Buffer[] = [];
      stream.on('data', (c: Buffer) => received.push(c));
      const gotAll = once(stream, 'end', 30_000);
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-received-sha': sha256(received), 'x-received-bytes': String(Buffer.concat(received).length) }));
      // Answer while the request body is still arriving: both directions are in flight together.
      void (async () => {
        for (let offset = 0; offset < down.length; offset += 64 * 1024) {
          if (!stream.write(down.subarray(offset, offset + 64 * 1024))) await once(stream, 'drain', 30_000);
        }
        await gotAll;
        stream.end();
      })();
    };
    const session = await connect(proxy.ports.outbound);
    const req = session.request({ ':method': 'POST', ':path': '/bidi' });
    const chunks: Buffer[] = [];
    let trailers: http2.IncomingHttpHeaders = {};
    let firstResponseByteAt = 0;
    req.on('data', (c: Buffer) => {
      firstResponseByteAt ||= Date.now();
      chunks.push(c);
    });
    req.on('trailers', (t) => (trailers = t));
    const closed = once(req, 'close', 30_000);
    await writeAll(req, up);
    const lastRequestByteAt = Date.now();
    await closed;
    expect(firstResponseByteAt).toBeGreaterThan(0);
    expect(firstResponseByteAt).toBeLessThanOrEqual(lastRequestByteAt);
    expect(sha256(chunks)).toBe(sha256(down));
    expect(trailers['x-received-bytes']).toBe(String(up.length));
    expect(trailers['x-received-sha']).toBe(sha256(up));
  }, 60_000);

  test('a client that does not read holds the endpoint back (flow control end to end), then gets every byte', async () => {
    const data = payload(20 * MIB);
    let progress: Promise<{ offset: number; stalled: boolean }> | undefined;
    let go: () => void = () => undefined;
    const resume = new Promise<void>((resolve) => (go = resolve));
    handler = (_name, stream) => {
      stream.resume();
      stream.respond({ ':status': 200 });
      progress = (async () => {
        let offset = 0;
        while (offset < data.length) {
          const chunk = data.subarray(offset, offset + 64 * 1024);
          offset += chunk.length;
          if (!stream.write(chunk)) {
            const drained = await Promise.race([once(stream, 'drain', 60_000).then(() => true), pause(400).then(() => false)]);
            if (!drained) return { offset, stalled: true };
          }
        }
        return { offset, stalled: false };
      })();
      void progress.then(async ({ offset }) => {
        await resume;
        for (let o = offset; o < data.length; o += 64 * 1024) {
          if (!stream.write(data.subarray(o, o + 64 * 1024))) await once(stream, 'drain', 30_000);
        }
        stream.end();
      });
    };
    const session = await connect(proxy.ports.outbound);
    const req = session.request({ ':path': '/big' });
    req.pause();
    await once(req, 'response');
    const { offset, stalled } = await (await eventually(() => progress, 'the endpoint to start writing'));
    expect(stalled).toBe(true);
    expect(offset).toBeLessThan(data.length);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const ended = once(req, 'end', 30_000);
    go();
    req.resume();
    await ended;
    expect(sha256(chunks)).toBe(sha256(data));
  }, 60_000);

  test('a long-lived server stream keeps flowing while other streams come and go on the same session', async () => {
    handler = (name, stream, headers) => {
      stream.resume();
      if (headers[':path'] !== '/watch') return byName(name, stream, headers);
      stream.respond({ ':status': 200 });
      let n = 0;
      const timer = setInterval(() => {
        stream.write(`event ${++n}\n`);
        if (n === 40) {
          clearInterval(timer);
          stream.end();
        }
      }, 50);
      stream.on('close', () => clearInterval(timer));
    };
    const session = await connect(proxy.ports.outbound);
    const started = Date.now();
    const arrivals: number[] = [];
    const events: string[] = [];
    const watch = session.request({ ':path': '/watch' });
    watch.setEncoding('utf8');
    watch.on('data', (c: string) => {
      arrivals.push(Date.now() - started);
      events.push(c);
    });
    const watchClosed = once(watch, 'close', 10_000).then(() => Date.now() - started);
    let shortDone = 0;
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all([call(session, '/name'), call(session, '/name')]);
      expect(answers.every((a) => Number(a.headers[HTTP2_HEADER_STATUS]) === 200)).toBe(true);
      shortDone = Date.now() - started;
    }
    const watchEnded = await watchClosed;
    expect(events.join('').trim().split('\n')).toHaveLength(40);
    expect(shortDone).toBeLessThan(watchEnded);
    expect(arrivals[0]).toBeLessThan(1000);
    expect(watchEnded).toBeGreaterThanOrEqual(1900);
    // Events were relayed as they were made, not held back until the end.
    expect(arrivals.filter((t) => t < watchEnded - 500).length).toBeGreaterThan(20);
  }, 20_000);

  test('a client cancel (RST_STREAM) reaches the endpoint stream', async () => {
    let upstreamStream: http2.ServerHttp2Stream | undefined;
    handler = (_name, stream) => {
      upstreamStream = stream;
      stream.respond({ ':status': 200 });
      stream.write('started\n');
    };
    const session = await connect(proxy.ports.outbound);
    const req = session.request({ ':path': '/hang' });
    req.on('error', () => undefined);
    await once(req, 'data');
    const upstreamSide = await eventually(() => upstreamStream, 'the endpoint to get the stream');
    const upstreamClosed = once(upstreamSide, 'close');
    let aborted = false;
    upstreamSide.on('aborted', () => (aborted = true));
    req.close(NGHTTP2_CANCEL);
    await upstreamClosed;
    expect(aborted).toBe(true);
    expect(upstreamSide.rstCode).toBe(NGHTTP2_CANCEL);
    // A cancel is the client's doing: the endpoint is not ejected for it.
    expect((await clusterStats(proxy)).endpoints.some((e) => e.ejected)).toBe(false);
  });

  test('an endpoint reset after the response started resets the client stream (never a clean end)', async () => {
    let upstreamStream: http2.ServerHttp2Stream | undefined;
    handler = (_name, stream) => {
      upstreamStream = stream;
      stream.respond({ ':status': 200 });
      stream.write('partial');
    };
    const session = await connect(proxy.ports.outbound);
    const req = session.request({ ':path': '/reset' });
    req.on('error', () => undefined);
    const closed = once(req, 'close');
    // The response has started for sure once its first bytes reached the client (a timer after the
    // write could fire before the sidecar relayed them, on a stalled machine): reset only then.
    await once(req, 'data');
    // destroy() sends RST_STREAM(INTERNAL_ERROR) at once; close(code) would first end the stream cleanly.
    upstreamStream?.destroy(new Error('endpoint broke'));
    req.resume();
    await closed;
    expect(req.rstCode).toBe(NGHTTP2_INTERNAL_ERROR);
  });

  test('an endpoint whose connection dies mid-response resets the client stream, and the next stream is served', async () => {
    let dying: Upstream | undefined;
    handler = (name, stream, headers) => {
      if (headers[':path'] !== '/crash') return byName(name, stream, headers);
      dying = upstreams.find((u) => u.name === name);
      stream.respond({ ':status': 200 });
      stream.write('partial');
    };
    const session = await connect(proxy.ports.outbound);
    const req = session.request({ ':path': '/crash' });
    req.on('error', () => undefined);
    const closed = once(req, 'close');
    // Mid-response for sure: the client has the first bytes when the endpoint's connection dies.
    await once(req, 'data');
    dying?.listening.resetConnections();
    req.resume();
    await closed;
    expect(req.rstCode).not.toBe(0);
    const after = await Promise.all([call(session, '/name'), call(session, '/name'), call(session, '/name')]);
    expect(after.map((a) => a.headers[HTTP2_HEADER_STATUS])).toEqual([200, 200, 200]);
  });

  test('an endpoint that answers in full before the request body ends stops the client upload too (RST_STREAM NO_ERROR)', async () => {
    handler = (_name, stream) => {
      // A gRPC server refusing a client-streaming call at once, without reading the stream.
      setTimeout(() => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true }), 20);
    };
    const session = await connect(proxy.ports.outbound);
    const req = session.request({ ':method': 'POST', ':path': '/pkg.Service/Upload', 'content-type': 'application/grpc' });
    req.on('error', () => undefined);
    let headers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (headers = h));
    req.resume();
    const writer = setInterval(() => req.write(Buffer.alloc(100)), 5);
    try {
      await once(req, 'close', 3000);
    } finally {
      clearInterval(writer);
    }
    expect(headers['grpc-status']).toBe('12');
    expect(req.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
  });
});

describe('H2Forwarder with an unreachable endpoint', () => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let upstreams: Upstream[];
  let dead: number;

  beforeAll(async () => {
    upstreams = await Promise.all(['a', 'b'].map(upstream));
    dead = await closedPort();
    const [a, b] = upstreams.map((u) => u.listening.port) as [number, number];
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [a, dead, b] }]);
    proxy = await startTestProxy(mesh.path);
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all(upstreams.map((u) => u.listening.close()));
    mesh?.remove();
  });

  test('retries a stream (even one with a body) on another endpoint and ejects the unreachable one', async () => {
    const session = await connect(proxy.ports.outbound);
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await call(session, '/name', {}, Buffer.from('body')));
    expect(answers.map((a) => a.headers[HTTP2_HEADER_STATUS])).toEqual(Array(6).fill(200));
    expect(new Set(answers.map((a) => a.body.toString()))).toEqual(new Set(['a', 'b']));
    const stats = await clusterStats(proxy);
    expect(stats.endpoints.find((e) => e.port === dead)?.ejected).toBe(true);
    expect(stats.endpoints.every((e) => e.inFlight === 0)).toBe(true);
  });
});

describe('H2Forwarder with an endpoint whose connects hang', () => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let upstreams: Upstream[];
  let hole: Blackhole;

  beforeAll(async () => {
    upstreams = await Promise.all(['a', 'b'].map(upstream));
    hole = await blackholePort();
    const [a, b] = upstreams.map((u) => u.listening.port) as [number, number];
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [a, hole.port, b] }]);
    proxy = await startTestProxy(mesh.path, { args: ['--connect-timeout', '200ms'] });
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all(upstreams.map((u) => u.listening.close()));
    hole?.close();
    mesh?.remove();
  });

  test('gives up on the hanging connect after the connect timeout and sends the stream elsewhere', async () => {
    const session = await connect(proxy.ports.outbound);
    const answers = await Promise.all(Array.from({ length: 4 }, () => call(session, '/name')));
    expect(answers.map((a) => a.headers[HTTP2_HEADER_STATUS])).toEqual([200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.body.toString()))).toEqual(new Set(['a', 'b']));
    const stats = await clusterStats(proxy);
    expect(stats.endpoints.find((e) => e.port === hole.port)?.ejected).toBe(true);
  });
});

describe('H2Forwarder with an endpoint shutting down gracefully (GOAWAY)', () => {
  test('streams the endpoint refuses unprocessed are sent again, body and all; nobody is ejected', async () => {
    const sessionsOfA: http2.ServerHttp2Session[] = [];
    const echo = (name: string) => (stream: http2.ServerHttp2Stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        setTimeout(() => stream.end(`${name}:${Buffer.concat(chunks).toString()}`), 2);
      });
    };
    const a = await listenH2(echo('a'));
    a.server.on('session', (session: http2.ServerHttp2Session) => sessionsOfA.push(session));
    const b = await listenH2(echo('b'));
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [a.port, b.port] }]);
    const proxy = await startTestProxy(mesh.path);
    try {
      const session = await connect(proxy.ports.outbound);
      const failures: string[] = [];
      let calls = 0;
      let closing = false;
      const oneCall = async (): Promise<void> => {
        const n = ++calls;
        const answer = await call(session, '/pkg.Service/Method', { 'content-type': 'application/grpc' }, Buffer.from(`request ${n}`));
        const text = answer.body.toString();
        if (Number(answer.headers[HTTP2_HEADER_STATUS]) !== 200 || !/^[ab]:request \d+$/.test(text) || !text.endsWith(`request ${n}`)) failures.push(`${answer.headers[HTTP2_HEADER_STATUS]} ${text}`);
      };
      const load = (async () => {
        // Keep streams in flight on every session until well after the GOAWAYs.
        for (let round = 0; round < 40; round++) {
          await Promise.all(Array.from({ length: 10 }, oneCall));
          if (round === 5) {
            closing = true;
            for (const s of sessionsOfA) s.close(); // graceful: GOAWAY, in-flight streams finish
          }
        }
      })();
      await load;
      expect(closing).toBe(true);
      expect(failures).toEqual([]);
      expect((await clusterStats(proxy)).endpoints.some((e) => e.ejected)).toBe(false);
    } finally {
      await proxy.close();
      await Promise.all([a.close(), b.close()]);
      mesh.remove();
    }
  }, 30_000);
});

describe('H2Forwarder under a route request timeout', () => {
  test('answers 504 (gRPC: DEADLINE_EXCEEDED) in time, cancels the upstream stream, and survives its late answer', async () => {
    const upstreamStreams: http2.ServerHttp2Stream[] = [];
    let answered = false;
    // Each upstream stream holds its answer until the test lets it go (then answers late, if still
    // open): a 504 that arrives first can only come from the route's deadline, whatever the load.
    let release: () => void = () => undefined;
    let held = new Promise<void>((resolve) => (release = resolve));
    const slow = await listenH2((stream) => {
      upstreamStreams.push(stream);
      stream.resume();
      void held.then(() => {
        answered = true;
        if (stream.closed) return;
        stream.respond({ ':status': 200 });
        stream.end('late');
      });
    });
    const mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [slow.port], requestTimeout: '100ms' }]);
    const proxy = await startTestProxy(mesh.path);
    try {
      const session = await connect(proxy.ports.outbound);
      // The client keeps its request open (a streaming upload) while the deadline passes.
      const req = session.request({ ':method': 'POST', ':path': '/slow' });
      req.on('error', () => undefined);
      req.write('part of the body');
      const headers = await once<http2.IncomingHttpHeaders>(req, 'response');
      expect(headers[HTTP2_HEADER_STATUS]).toBe(504);
      expect(answered).toBe(false);
      await eventually(() => upstreamStreams[0]?.closed, 'the upstream stream to be cancelled');
      expect(upstreamStreams[0]?.rstCode).toBe(NGHTTP2_CANCEL);
      req.close();
      const grpc = await call(session, '/pkg.Service/Slow', { 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 0]));
      expect(grpc.headers['grpc-status']).toBe('4');
      // The late answers now arrive (to cancelled streams); the sidecar survives them and still serves.
      release();
      await eventually(() => answered, 'the late answers');
      held = new Promise<void>((resolve) => (release = resolve));
      expect((await call(session, '/again')).headers[HTTP2_HEADER_STATUS]).toBe(504);
      release();
    } finally {
      await proxy.close();
      await slow.close();
      mesh.remove();
    }
  });
});

describe('H2Forwarder with every endpoint down', () => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;

  beforeAll(async () => {
    const ports = [await closedPort(), await closedPort(), await closedPort()];
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: ports }]);
    proxy = await startTestProxy(mesh.path);
  });

  afterAll(async () => {
    await proxy?.close();
    mesh?.remove();
  });

  test('answers a gRPC call with a trailers-only UNAVAILABLE (grpc-status 14)', async () => {
    const session = await connect(proxy.ports.outbound);
    const answer = await call(session, '/pkg.Service/Method', { 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 0]));
    expect(answer.headers[HTTP2_HEADER_STATUS]).toBe(200);
    expect(answer.headers['grpc-status']).toBe('14');
    expect(answer.headers['grpc-message']).toMatch(/ECONNREFUSED|no healthy upstream/);
    expect(answer.flags & END_STREAM).toBe(END_STREAM);
  });

  test('answers any other stream with 503, and the session stays usable', async () => {
    const session = await connect(proxy.ports.outbound);
    for (let i = 0; i < 3; i++) {
      const answer = await call(session, '/page');
      expect(answer.headers[HTTP2_HEADER_STATUS]).toBe(503);
      expect(answer.body.toString()).toMatch(/ECONNREFUSED|no healthy upstream/);
    }
    const stats = await clusterStats(proxy);
    expect(stats.endpoints.every((e) => e.inFlight === 0)).toBe(true);
  });
});
