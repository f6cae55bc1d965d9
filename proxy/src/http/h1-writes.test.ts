// How many writes a forwarded HTTP/1.1 request costs upstream: a request whose head and body the
// client sent at once leaves in one write (one syscall), chunked or not; a large body still streams.
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, test } from '@jest/globals';
import { sendBody } from './h1.js';
import { H1UpstreamPool } from '../upstream/h1-pool.js';
import { plainDialer, type Dialer } from '../upstream/dial.js';
import { endpointOf } from '../upstream/selector.js';
import { listenHttp, payload, sha256, type Listening } from '../testing/servers.js';

const WRITE_METHODS = ['writev', 'writeBuffer', 'writeLatin1String', 'writeUtf8String', 'writeAsciiString', 'writeUcs2String'] as const;

/** A plain dialer whose sockets count the writes they hand the kernel. */
function countingDialer(): { dial: Dialer; writes: () => number } {
  let writes = 0;
  const dial = Object.assign(
    (endpoint: Parameters<Dialer>[0], inner: Parameters<Dialer>[1]) => {
      const dialed = plainDialer(endpoint, inner);
      const handle = (dialed.socket as unknown as { _handle: Record<string, (...args: unknown[]) => unknown> })._handle;
      for (const name of WRITE_METHODS) {
        const original = handle[name];
        if (typeof original !== 'function') continue;
        handle[name] = function (this: unknown, ...args: unknown[]) {
          writes++;
          return original.apply(this, args);
        };
      }
      return dialed;
    },
    { mtlsFor: () => false },
  );
  return { dial, writes: () => writes };
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * upstream <- pool <- a front server forwarding each request body with sendBody, as H1Forwarder
 * does. `send` runs twice: the first opens the pooled connection (writes before it is connected
 * are queued apart); resolves with what the upstream received and the second one's writes.
 */
async function forward(send: (port: number) => Promise<void>): Promise<{ writes: number; received: Buffer[] }> {
  const received: Buffer[] = [];
  const upstream: Listening<http.Server> = await listenHttp((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(Buffer.concat(chunks));
      res.end('ok');
    });
  });
  cleanups.push(() => upstream.close());
  const { dial, writes } = countingDialer();
  const pool = new H1UpstreamPool({ connectTimeoutMs: 2000, idleTimeoutMs: 30_000 }, dial);
  cleanups.push(() => pool.close());
  const front = await listenHttp((req, res) => {
    const headers = req.rawHeaders.filter((_, i) => i % 2 === 0 ? !/^(host|connection)$/i.test(req.rawHeaders[i]!) : !/^(host|connection)$/i.test(req.rawHeaders[i - 1]!));
    const out = pool.request(endpointOf('127.0.0.1', upstream.port), { method: req.method, path: req.url, headers: ['host', 'svc', ...headers] as unknown as http.OutgoingHttpHeaders, setHost: false });
    out.on('response', (ures) => ures.pipe(res));
    out.on('error', () => res.destroy());
    sendBody(req, out, () => undefined);
  });
  cleanups.push(() => front.close());
  await send(front.port);
  const before = writes();
  await send(front.port);
  expect(upstream.accepted).toBe(1);
  return { writes: writes() - before, received };
}

/** Sends one POST in a single write (head and whole body, as a client with a small body does) and reads the answer. */
function post(port: number, framing: 'chunked' | 'content-length', body: Buffer): Promise<void> {
  const head = framing === 'chunked' ? 'transfer-encoding: chunked' : `content-length: ${body.length}`;
  const framed = framing === 'chunked' ? (body.length > 0 ? [Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')] : [Buffer.from('0\r\n\r\n')]) : [body];
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      socket.write(Buffer.concat([Buffer.from(`POST / HTTP/1.1\r\nhost: front\r\nconnection: close\r\n${head}\r\n\r\n`), ...framed]));
    });
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('end', () => (answer.startsWith('HTTP/1.1 200') ? resolve() : reject(new Error(answer))));
    socket.on('error', reject);
  });
}

describe('HTTP/1.1 request body forwarding', () => {
  test('sends a chunked body the client sent at once in one write with its head', async () => {
    const body = payload(512);
    const { writes, received } = await forward((port) => post(port, 'chunked', body));
    expect(received).toEqual([body, body]);
    expect(writes).toBe(1);
  });

  test('sends a Content-Length body the client sent at once in one write with its head', async () => {
    const body = payload(512);
    const { writes, received } = await forward((port) => post(port, 'content-length', body));
    expect(received).toEqual([body, body]);
    expect(writes).toBe(1);
  });

  test('sends a request without a body in one write', async () => {
    const { writes } = await forward((port) => post(port, 'content-length', Buffer.alloc(0)));
    expect(writes).toBe(1);
  });

  test('still streams a large body whole, with backpressure', async () => {
    const body = payload(4 * 1024 * 1024);
    const { received } = await forward((port) => post(port, 'chunked', body));
    expect(received.map((b) => sha256(b))).toEqual([sha256(body), sha256(body)]);
  });
});
