// Test fixture: real upstream servers on 127.0.0.1 (HTTP/1, HTTP/2, TCP) that track their
// connections so a test can count them and close everything, plus polling and byte helpers.
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';

export interface Listening<S> {
  readonly server: S;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Resets every open connection (RST), as a crashed process would; the server keeps listening. */
  resetConnections(): void;
  close(): Promise<void>;
}

function tracked<S extends net.Server | http.Server | http2.Http2Server>(server: S, onClose: () => void, port = 0): Promise<Listening<S>> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  server.on('connection', (socket: net.Socket) => {
    accepted++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve({
        server,
        port: (server.address() as net.AddressInfo).port,
        get accepted() {
          return accepted;
        },
        get open() {
          return sockets.size;
        },
        resetConnections: () => {
          for (const socket of sockets) socket.resetAndDestroy();
        },
        close: () =>
          new Promise<void>((done) => {
            onClose();
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** An HTTP/1.1 server running `handler` for every request, on `port` (default: one the kernel picks). */
export function listenHttp(handler: http.RequestListener, options: http.ServerOptions = {}, port = 0): Promise<Listening<http.Server>> {
  const server = http.createServer({ keepAliveTimeout: 30_000, ...options }, handler);
  return tracked(server, () => server.closeAllConnections(), port);
}

/** A cleartext HTTP/2 server running `onStream` for every stream. */
export function listenH2(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void): Promise<Listening<http2.Http2Server>> {
  const server = http2.createServer({ settings: { initialWindowSize: 1 << 20 } });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => undefined);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    onStream(stream, headers);
  });
  return tracked(server, () => {
    for (const session of sessions) session.destroy();
  });
}

/** A TCP server running `onConnection` for every connection (errors on its sockets are ignored). */
export function listenTcp(onConnection: (socket: net.Socket) => void, options: net.ServerOpts = {}): Promise<Listening<net.Server>> {
  const server = net.createServer(options, (socket) => {
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  return tracked(server, () => undefined);
}

/**
 * A port on 127.0.0.1 that refuses connections, and keeps refusing them for the rest of the run.
 * A port bound and then released is not enough: it comes from the kernel's ephemeral range, so a
 * listener on port 0 in another test worker may take it, or an outgoing connection may get it as
 * its local port and, dialling it, connect to itself (TCP simultaneous open). Ports below the
 * ephemeral range are handed out by neither, so once one is seen refusing it stays closed.
 */
export async function closedPort(): Promise<number> {
  const low = 20_000;
  const high = ephemeralRangeStart();
  if (high - low < 1000) throw new Error(`closedPort: the ephemeral port range starts at ${high}, leaving no room above ${low}`);
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = randomInt(low, high);
    if (await refuses(port)) return port;
  }
  throw new Error(`closedPort: 20 ports in ${low}-${high - 1} on 127.0.0.1 all accepted connections`);
}

/**
 * A port on 127.0.0.1 for a server that stops and must then get the same port back (a restart),
 * or whose port a test dials after the server stopped, expecting a refusal. A port-0 listener's
 * port is anyone's once it closes (a listener in another test worker may take it meanwhile). This
 * one is below the ephemeral range, so nothing is given it unasked, and below closedPort()'s
 * ports, so no other test counts on it refusing. Free when returned: listen on it at once.
 */
export async function stablePort(): Promise<number> {
  const low = 10_000;
  const high = 20_000;
  if (ephemeralRangeStart() < high) throw new Error(`stablePort: the ephemeral port range starts at ${ephemeralRangeStart()}, below ${high}`);
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = randomInt(low, high);
    if (await refuses(port)) return port;
  }
  throw new Error(`stablePort: 20 ports in ${low}-${high - 1} on 127.0.0.1 all accepted connections`);
}

function ephemeralRangeStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) && start > 0 ? start : 32_768;
  } catch {
    return 32_768;
  }
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the first value of `probe` that is neither undefined nor false (checked every 10 ms); throws after `timeoutMs`. */
export async function eventually<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const why = last === undefined ? '' : ` (last error: ${(last as Error).message})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await pause(10);
  }
}

export function sha256(data: Buffer | Iterable<Buffer>): string {
  const hash = createHash('sha256');
  if (Buffer.isBuffer(data)) hash.update(data);
  else for (const chunk of data) hash.update(chunk);
  return hash.digest('hex');
}

/** `size` random bytes, made once per size (random data defeats any accidental compression). */
const payloads = new Map<number, Buffer>();
export function payload(size: number): Buffer {
  let p = payloads.get(size);
  if (!p) payloads.set(size, (p = randomBytes(size)));
  return p;
}

/** Resolves when `emitter` emits `event`, rejects after `timeoutMs`. */
export function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no '${event}' within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref(); // a wait that lost a race must not keep the test process alive
    const on = (value: T): void => {
      clearTimeout(timer);
      resolve(value);
    };
    emitter.once(event, on);
  });
}

export interface Blackhole {
  readonly port: number;
  close(): void;
}

/**
 * A port on 127.0.0.1 where connects hang (SYN dropped): a child process listens with a backlog
 * of 1 and never accepts, and its accept queue is filled, as an overloaded or firewalled host.
 */
export async function blackholePort(): Promise<Blackhole> {
  const script = [
    "const s = require('node:net').createServer();",
    "s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {",
    '  process.stdout.write(`${s.address().port}\\n`);',
    '  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);',
    '});',
  ].join('\n');
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`blackhole listener exited with ${code}`)));
  });
  const port = Number(line);
  // Fill the accept queue; from then on the kernel drops new SYNs and connects hang.
  const fillers: net.Socket[] = [];
  for (;;) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
    const connected = await once(socket, 'connect', 300).then(() => true, () => false);
    if (!connected) break;
    if (fillers.length > 16) throw new Error('the blackhole listener keeps accepting');
  }
  return {
    port,
    close: () => {
      for (const socket of fillers) socket.destroy();
      child.kill('SIGKILL');
    },
  };
}
