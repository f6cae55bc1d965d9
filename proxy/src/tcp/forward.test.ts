// forwardTcp on real sockets: a capture-like listener (pauseOnConnect, allowHalfOpen) hands
// each accepted client to forwardTcp with a fake UpstreamSelector over real local servers.
import net from 'node:net';
import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { err, ok, setLogLevel, type Result, type TsmeshError } from '@tsmesh/common';
import { noEndpointsError } from '../errors.js';
import { endpointOf, type FailureKind, type UpstreamEndpoint, type UpstreamLease, type UpstreamSelector } from '../upstream/selector.js';
import { forwardTcp, type TcpForwardResult } from './forward.js';
import { blackholePort, closedPort, eventually, listenTcp, once, pause, payload, sha256, type Blackhole, type Listening } from '../testing/servers.js';

/** Rotates over fixed endpoints and records what the forwarder reports on each lease. */
class RecordingSelector implements UpstreamSelector {
  readonly name = 'test/tcp:9000';
  readonly events: string[] = [];
  private next = 0;

  constructor(private readonly endpoints: readonly UpstreamEndpoint[]) {}

  get size(): number {
    return this.endpoints.length;
  }

  select(): Result<UpstreamLease, TsmeshError> {
    const endpoint = this.endpoints[this.next++ % Math.max(1, this.endpoints.length)];
    if (!endpoint) return err(noEndpointsError(this.name));
    const port = endpoint.port;
    this.events.push(`select ${port}`);
    return ok({
      endpoint,
      failed: (kind: FailureKind) => this.events.push(`failed ${port} ${kind}`),
      succeeded: () => this.events.push(`succeeded ${port}`),
      responded: (status: number) => this.events.push(`responded ${port} ${status}`),
      release: () => this.events.push(`release ${port}`),
    });
  }
}

const local = (port: number): UpstreamEndpoint => endpointOf('127.0.0.1', port);

beforeAll(() => setLogLevel('silent'));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(onConnection: (socket: net.Socket) => void, options: net.ServerOpts = {}): Promise<Listening<net.Server>> {
  const s = await listenTcp(onConnection, options);
  cleanups.push(() => s.close());
  return s;
}

interface Forwarding {
  readonly client: net.Socket;
  /** Resolves with forwardTcp's onClose report. */
  readonly closed: Promise<TcpForwardResult>;
  /** The proxy-side socket of the client connection. */
  readonly accepted: Promise<net.Socket>;
  /** The client's first error. */
  readonly errored: Promise<NodeJS.ErrnoException>;
}

/** A client connected through a capture-like listener whose connections go to forwardTcp(selector). */
async function forwardThrough(selector: UpstreamSelector, connectTimeoutMs = 2000, idleTimeoutMs?: number): Promise<Forwarding> {
  let report: (r: TcpForwardResult) => void = () => undefined;
  const closed = new Promise<TcpForwardResult>((resolve) => (report = resolve));
  let gotSocket: (s: net.Socket) => void = () => undefined;
  const accepted = new Promise<net.Socket>((resolve) => (gotSocket = resolve));
  const capture = await server(
    (socket) => {
      gotSocket(socket);
      forwardTcp(socket, selector, { connectTimeoutMs, idleTimeoutMs, onClose: report });
    },
    { pauseOnConnect: true, allowHalfOpen: true },
  );
  const client = net.connect({ port: capture.port, host: '127.0.0.1', allowHalfOpen: true });
  const errored = new Promise<NodeJS.ErrnoException>((resolve) => client.on('error', resolve));
  cleanups.push(() => client.destroy());
  // A client the forwarder resets at once may see the reset before its own 'connect'.
  await Promise.race([once(client, 'connect'), errored]);
  return { client, closed, accepted, errored };
}

function collect(socket: net.Socket): { data: () => Buffer; ended: Promise<unknown> } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return { data: () => Buffer.concat(chunks), ended: once(socket, 'end', 10_000) };
}

/** Writes 64 KiB chunks honouring backpressure until `stallMs` pass without 'drain'. */
async function writeUntilStalled(socket: net.Socket, data: Buffer, stallMs = 400): Promise<{ offset: number; stalled: boolean }> {
  let offset = 0;
  while (offset < data.length) {
    const chunk = data.subarray(offset, offset + 64 * 1024);
    offset += chunk.length;
    if (!socket.write(chunk)) {
      const drained = await Promise.race([once(socket, 'drain', 60_000).then(() => true), pause(stallMs).then(() => false)]);
      if (!drained) return { offset, stalled: true };
    }
  }
  return { offset, stalled: false };
}

const MIB = 1024 * 1024;

describe('forwardTcp', () => {
  test('relays bytes both ways and reports the counts once both sides are done', async () => {
    const echo = await server((s) => s.pipe(s));
    const selector = new RecordingSelector([local(echo.port)]);
    const { client, closed } = await forwardThrough(selector);
    const got = collect(client);
    client.write('hello');
    await eventually(() => got.data().toString() === 'hello', 'the echo');
    client.end();
    await got.ended;
    expect(await closed).toEqual({ upstream: `127.0.0.1:${echo.port}`, sent: 5, received: 5, error: undefined });
    expect(selector.events).toEqual([`select ${echo.port}`, `succeeded ${echo.port}`, `release ${echo.port}`]);
  });

  test('carries a client half-close: the server still answers after the FIN and then ends', async () => {
    const upstream = await server(
      (s) => {
        const seen: Buffer[] = [];
        s.on('data', (c: Buffer) => seen.push(c));
        s.on('end', () => {
          s.write(`you sent ${Buffer.concat(seen).toString()}; `);
          setTimeout(() => s.end('bye'), 20);
        });
      },
      { allowHalfOpen: true },
    );
    const { client, closed } = await forwardThrough(new RecordingSelector([local(upstream.port)]));
    const got = collect(client);
    client.end('question');
    await got.ended;
    expect(got.data().toString()).toBe('you sent question; bye');
    await closed;
    await eventually(() => upstream.open === 0, 'the upstream connection to close');
  });

  test('carries a server half-close: the client still sends after the server ended', async () => {
    let received: Promise<string> = Promise.resolve('');
    const upstream = await server(
      (s) => {
        s.end('banner\n');
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        received = once(s, 'end').then(() => Buffer.concat(chunks).toString());
      },
      { allowHalfOpen: true },
    );
    const { client, closed } = await forwardThrough(new RecordingSelector([local(upstream.port)]));
    const got = collect(client);
    await got.ended;
    expect(got.data().toString()).toBe('banner\n');
    client.end('late words');
    expect(await received).toBe('late words');
    await closed;
  });

  test('holds a fast writer back while the server does not read (50 MB, backpressure end to end)', async () => {
    const data = payload(50 * MIB);
    let readAll: (s: net.Socket) => void = () => undefined;
    const upstreamSocket = new Promise<net.Socket>((resolve) => (readAll = resolve));
    const upstream = await server((s) => {
      s.pause();
      readAll(s);
    });
    const { client, closed } = await forwardThrough(new RecordingSelector([local(upstream.port)]));
    const before = process.memoryUsage().rss;
    const { offset, stalled } = await writeUntilStalled(client, data);
    expect(stalled).toBe(true);
    expect(offset).toBeLessThan(data.length);
    // What is not in kernel buffers would be in the proxy: its memory must not have taken the rest.
    expect(process.memoryUsage().rss - before).toBeLessThan(40 * MIB);
    const s = await upstreamSocket;
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    const ended = once(s, 'end', 30_000);
    s.resume();
    for (let o = offset; o < data.length; o += 64 * 1024) {
      if (!client.write(data.subarray(o, o + 64 * 1024))) await once(client, 'drain', 30_000);
    }
    client.end();
    await ended;
    expect(sha256(chunks)).toBe(sha256(data));
    s.end();
    expect((await closed).sent).toBe(data.length);
  }, 60_000);

  test('a reset from the server resets the client', async () => {
    const upstream = await server((s) => s.once('data', () => s.resetAndDestroy()));
    const { client, closed, errored } = await forwardThrough(new RecordingSelector([local(upstream.port)]));
    client.write('trigger');
    expect((await errored).code).toBe('ECONNRESET');
    expect((await closed).error).toBe('ECONNRESET');
  });

  test('a reset from the client resets the server side', async () => {
    let serverError: Promise<NodeJS.ErrnoException> = new Promise(() => undefined);
    const upstream = await server((s) => {
      serverError = once<NodeJS.ErrnoException>(s, 'error');
    });
    const { client } = await forwardThrough(new RecordingSelector([local(upstream.port)]));
    await eventually(() => upstream.accepted === 1, 'the upstream connection');
    client.write('x');
    await pause(20);
    client.resetAndDestroy();
    expect((await serverError).code).toBe('ECONNRESET');
  });

  test('a refused connect resets the client, fails the lease and releases it', async () => {
    const dead = await closedPort();
    const selector = new RecordingSelector([local(dead)]);
    const { errored, closed } = await forwardThrough(selector);
    expect((await errored).code).toBe('ECONNRESET');
    expect(await closed).toEqual({ upstream: `127.0.0.1:${dead}`, sent: 0, received: 0, error: 'ECONNREFUSED' });
    expect(selector.events).toEqual([`select ${dead}`, `failed ${dead} connect`, `release ${dead}`]);
  });

  test('a refused connect is retried on the next endpoint, and the client never notices', async () => {
    const dead = await closedPort();
    const echo = await server((s) => s.pipe(s));
    const selector = new RecordingSelector([local(dead), local(echo.port)]);
    const { client, closed } = await forwardThrough(selector);
    const got = collect(client);
    client.end('ping');
    await got.ended;
    expect(got.data().toString()).toBe('ping');
    expect((await closed).upstream).toBe(`127.0.0.1:${echo.port}`);
    expect(selector.events).toEqual([`select ${dead}`, `failed ${dead} connect`, `release ${dead}`, `select ${echo.port}`, `succeeded ${echo.port}`, `release ${echo.port}`]);
  });

  test('a connect that hangs times out and moves on to the next endpoint', async () => {
    const hole: Blackhole = await blackholePort();
    cleanups.push(() => hole.close());
    const echo = await server((s) => s.pipe(s));
    const selector = new RecordingSelector([local(hole.port), local(echo.port)]);
    const started = Date.now();
    const { client } = await forwardThrough(selector, 200);
    const got = collect(client);
    client.end('ping');
    await got.ended;
    expect(got.data().toString()).toBe('ping');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(selector.events.slice(0, 3)).toEqual([`select ${hole.port}`, `failed ${hole.port} connect`, `release ${hole.port}`]);
  });

  test('the lease is released when the client connection is closed while the connect is pending', async () => {
    const hole: Blackhole = await blackholePort();
    cleanups.push(() => hole.close());
    const selector = new RecordingSelector([local(hole.port)]);
    const { accepted, closed } = await forwardThrough(selector, 10_000);
    await pause(30);
    (await accepted).destroy();
    await eventually(() => selector.events.includes(`release ${hole.port}`), 'the lease to be released', 2000);
    expect(await closed).toEqual({ upstream: `127.0.0.1:${hole.port}`, sent: 0, received: 0, error: 'ECONNABORTED' });
    expect(selector.events.filter((e) => e.startsWith('release'))).toHaveLength(1);
  });

  test('a connection idle for the idle timeout is closed on both sides and reported as such', async () => {
    let serverSide: net.Socket | undefined;
    const upstream = await server((s) => {
      serverSide = s;
      s.on('data', (c: Buffer) => s.write(c));
    });
    const { client, closed } = await forwardThrough(new RecordingSelector([local(upstream.port)]), 2000, 300);
    const got = collect(client);
    // Traffic every 100 ms keeps it open well past the timeout...
    let lastByte = 0;
    for (let i = 0; i < 6; i++) {
      client.write(`${i}`);
      lastByte = Date.now();
      await pause(100);
    }
    expect(client.destroyed).toBe(false);
    expect(got.data().toString()).toBe('012345');
    // ...then silence closes it: the client sees the end, the upstream connection goes too.
    await got.ended;
    expect(Date.now() - lastByte).toBeGreaterThanOrEqual(290);
    expect(await closed).toMatchObject({ upstream: `127.0.0.1:${upstream.port}`, sent: 6, received: 6, error: 'idle_timeout' });
    await eventually(() => upstream.open === 0 && serverSide?.destroyed === true, 'the upstream side to close');
  });

  test('a half-closed pair whose server never ends is released at the idle timeout', async () => {
    let serverSawEnd = false;
    let serverSide: net.Socket | undefined;
    const upstream = await server(
      (s) => {
        serverSide = s;
        s.on('error', () => undefined);
        s.on('end', () => (serverSawEnd = true)); // and never ends its own side
        s.resume();
      },
      { allowHalfOpen: true },
    );
    const { client, closed } = await forwardThrough(new RecordingSelector([local(upstream.port)]), 2000, 250);
    const got = collect(client);
    client.end('bye');
    await eventually(() => serverSawEnd, 'the FIN to cross');
    expect((await closed).error).toBe('idle_timeout');
    await got.ended;
    await eventually(() => client.destroyed, 'the client connection to be released');
    // The sidecar's upstream socket is gone: the server's next write is answered with a reset.
    const write = (): void => void serverSide?.write('late');
    await eventually(() => (write(), upstream.open === 0), 'the upstream connection to be released');
  });

  test('the idle timeout can be turned off (0)', async () => {
    const upstream = await server((s) => s.resume());
    const { client } = await forwardThrough(new RecordingSelector([local(upstream.port)]), 2000, 0);
    client.write('x');
    await pause(400);
    expect(client.destroyed).toBe(false);
    expect(upstream.open).toBe(1);
  });

  test('without any endpoint the client is reset at once', async () => {
    const { errored, closed } = await forwardThrough(new RecordingSelector([]));
    expect((await errored).code).toBe('ECONNRESET');
    expect(await closed).toEqual({ upstream: undefined, sent: 0, received: 0, error: 'TSMESH_ERR_NO_ENDPOINTS' });
  });
});
