import net from 'node:net';
import { afterEach, describe, expect, test } from '@jest/globals';
import { detectProtocol } from './detect.js';
import { H2_PREFACE } from './classify.js';
import { listenTcp, once, pause, type Listening } from '../testing/servers.js';

interface Pair {
  /** The accepted, paused, unread socket detection runs on. */
  readonly server: net.Socket;
  readonly client: net.Socket;
}

let listening: Listening<net.Server> | undefined;
const sockets: net.Socket[] = [];

/** A connected pair whose server side is accepted with pauseOnConnect, as the capture listeners do. */
async function connectedPair(): Promise<Pair> {
  let resolveAccepted: (s: net.Socket) => void = () => undefined;
  const accepted = new Promise<net.Socket>((resolve) => (resolveAccepted = resolve));
  listening ??= await listenTcp((s) => resolveAccepted(s), { pauseOnConnect: true, allowHalfOpen: true });
  const client = net.connect(listening.port, '127.0.0.1');
  client.on('error', () => undefined);
  const server = await accepted;
  sockets.push(client, server);
  return { server, client };
}

/** Everything the socket delivers from now until the peer ends. */
function readAll(socket: net.Socket): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.resume();
  return once(socket, 'end').then(() => Buffer.concat(chunks).toString('latin1'));
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await listening?.close();
  listening = undefined;
});

describe('detectProtocol', () => {
  test('a client that stays silent is opaque with timedOut, after about the timeout', async () => {
    const { server } = await connectedPair();
    const started = Date.now();
    const detection = await detectProtocol(server, { timeoutMs: 120 });
    const elapsed = Date.now() - started;
    expect(detection).toEqual({ protocol: 'opaque', timedOut: true });
    expect(elapsed).toBeGreaterThanOrEqual(110);
    expect(elapsed).toBeLessThan(1000);
  });

  test('a method sent in two chunks (GE, then T / ...) is HTTP/1, and no byte is consumed', async () => {
    const { server, client } = await connectedPair();
    client.write('GE');
    const detecting = detectProtocol(server, { timeoutMs: 2000 });
    await pause(30);
    client.end('T / HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(await detecting).toEqual({ protocol: 'http1', timedOut: false });
    expect(await readAll(server)).toBe('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  });

  test('a client that sends the HTTP/2 preface is HTTP/2 at once', async () => {
    const { server, client } = await connectedPair();
    client.write(H2_PREFACE);
    const started = Date.now();
    expect(await detectProtocol(server, { timeoutMs: 2000 })).toEqual({ protocol: 'http2', timedOut: false });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('a client that closes without sending is opaque, without waiting for the timeout', async () => {
    const { server, client } = await connectedPair();
    client.end();
    const started = Date.now();
    expect(await detectProtocol(server, { timeoutMs: 5000 })).toEqual({ protocol: 'opaque', timedOut: false });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('garbage is opaque at once and stays unread for the TCP forwarder', async () => {
    const { server, client } = await connectedPair();
    client.end(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    expect(await detectProtocol(server, { timeoutMs: 5000 })).toEqual({ protocol: 'opaque', timedOut: false });
    expect(Buffer.from(await readAll(server), 'latin1')).toEqual(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  });

  test('a request line begun and left hanging is incomplete HTTP/1 at the request-line limit, never opaque', async () => {
    const { server, client } = await connectedPair();
    client.write('PO');
    const started = Date.now();
    expect(await detectProtocol(server, { timeoutMs: 100, requestLineTimeoutMs: 400 })).toEqual({ protocol: 'http1', timedOut: true, incomplete: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
  });

  test('a client that pauses after its first byte, past the detection timeout, is still HTTP/1 once its line ends', async () => {
    const { server, client } = await connectedPair();
    client.write('G');
    const detecting = detectProtocol(server, { timeoutMs: 100, requestLineTimeoutMs: 2000 });
    await pause(300);
    client.end('ET / HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(await detecting).toEqual({ protocol: 'http1', timedOut: false });
    expect(await readAll(server)).toBe('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  });

  test('an unknown method after an empty line is HTTP/1 at once', async () => {
    const { server, client } = await connectedPair();
    client.write('\r\nNOTIFY /x HTTP/1.1\r\n');
    const started = Date.now();
    expect(await detectProtocol(server, { timeoutMs: 2000 })).toEqual({ protocol: 'http1', timedOut: false });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('bytes that cannot become a request line are settled at the detection timeout, not the request-line limit', async () => {
    const { server, client } = await connectedPair();
    client.write(Buffer.from([0x16, 0x03])); // the start of a TLS record
    const started = Date.now();
    expect(await detectProtocol(server, { timeoutMs: 100, requestLineTimeoutMs: 5000 })).toEqual({ protocol: 'opaque', timedOut: true });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('a socket destroyed locally while detecting settles as opaque', async () => {
    const { server } = await connectedPair();
    const detecting = detectProtocol(server, { timeoutMs: 5000 });
    await pause(20);
    server.destroy();
    expect(await detecting).toEqual({ protocol: 'opaque', timedOut: false });
  });
});
