// holdForFirstSpeaker on forwardTcp, on real sockets: a capture-like listener hands each client to
// forwardTcp with the hold, over a real local upstream. Whoever speaks first decides; a client that
// speaks HTTP first is taken back with every byte still unread, before the upstream sees one.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { forwardTcp } from '../tcp/forward.js';
import { endpointOf, fixedSelector } from '../upstream/selector.js';
import { eventually, listenTcp, once, pause, type Listening } from '../testing/servers.js';
import { holdForFirstSpeaker, watchFirstBytes } from './first-speaker.js';

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

/** An upstream that records what it receives; `greeting` makes it server-first. */
async function upstream(greeting?: string): Promise<{ port: number; received: () => string; accepted: () => number; ended: () => boolean }> {
  let received = '';
  let accepted = 0;
  let ended = false;
  const s = await server((socket) => {
    accepted++;
    socket.on('error', () => undefined);
    if (greeting) socket.write(greeting);
    socket.on('data', (c: Buffer) => {
      received += c.toString('latin1');
      if (greeting) socket.write(`echo ${c.toString('latin1')}`);
    });
    socket.on('end', () => {
      ended = true;
      socket.end();
    });
  }, { allowHalfOpen: true });
  return { port: s.port, received: () => received, accepted: () => accepted, ended: () => ended };
}

interface Outcome {
  readonly kind: 'http' | 'incomplete';
  readonly protocol?: string;
  /** What was left unread on the client when the hold gave it back. */
  readonly bytes: Promise<string>;
}

/** A client connected through a capture-like listener whose connections go to forwardTcp with the hold. */
async function heldThrough(upstreamPort: number, requestLineTimeoutMs = 300): Promise<{ client: net.Socket; outcome: Promise<Outcome> }> {
  let report: (o: Outcome) => void = () => undefined;
  const outcome = new Promise<Outcome>((resolve) => (report = resolve));
  const readRest = (client: Duplex): Promise<string> => {
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    client.resume();
    return pause(100).then(() => Buffer.concat(chunks).toString('latin1'));
  };
  const capture = await server(
    (socket) => {
      forwardTcp(socket, fixedSelector('test', endpointOf('127.0.0.1', upstreamPort)), {
        connectTimeoutMs: 2000,
        hold: holdForFirstSpeaker(
          { requestLineTimeoutMs },
          {
            http: (client, protocol) => report({ kind: 'http', protocol, bytes: readRest(client) }),
            incomplete: (client) => report({ kind: 'incomplete', bytes: readRest(client) }),
          },
        ),
      });
    },
    { pauseOnConnect: true, allowHalfOpen: true },
  );
  const client = net.connect({ port: capture.port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => undefined);
  cleanups.push(() => client.destroy());
  await once(client, 'connect');
  return { client, outcome };
}

describe('holdForFirstSpeaker', () => {
  test('a server that speaks first makes the connection opaque: both ways work, nothing is taken back', async () => {
    const up = await upstream('220 ready\r\n');
    const { client, outcome } = await heldThrough(up.port);
    const got: Buffer[] = [];
    client.on('data', (c: Buffer) => got.push(c));
    await eventually(() => Buffer.concat(got).toString() === '220 ready\r\n', 'the greeting');
    client.write('GET / HTTP/1.1\r\n\r\n');
    await eventually(() => up.received() === 'GET / HTTP/1.1\r\n\r\n', 'the client bytes upstream');
    expect(await Promise.race([outcome, pause(200).then(() => 'none')])).toBe('none');
  });

  test('a client that speaks HTTP first is taken back with every byte unread; the upstream never sees one', async () => {
    const up = await upstream();
    const { client, outcome } = await heldThrough(up.port);
    await eventually(() => up.accepted() === 1, 'the upstream connection');
    client.write('\r\nNOTIFY /x HTTP/1.1\r\nx-forwarded-client-cert: forged\r\n\r\n');
    const taken = await outcome;
    expect(taken).toMatchObject({ kind: 'http', protocol: 'http1' });
    expect(await taken.bytes).toBe('\r\nNOTIFY /x HTTP/1.1\r\nx-forwarded-client-cert: forged\r\n\r\n');
    await eventually(() => up.ended(), 'the upstream connection to be closed');
    expect(up.received()).toBe('');
  });

  test('a client that speaks first with bytes that are not HTTP is forwarded, those bytes included', async () => {
    const up = await upstream();
    const { client } = await heldThrough(up.port);
    client.write(Buffer.from([0x00, 0x01, 0x02]));
    await pause(20);
    client.write('more');
    await eventually(() => up.received() === '\u0000\u0001\u0002more', 'every byte upstream');
  });

  test('a client that sends part of a request line and ends is forwarded as bytes, its end included', async () => {
    const up = await upstream();
    const { client, outcome } = await heldThrough(up.port);
    client.end('GET /pa');
    await eventually(() => up.ended(), 'the end upstream');
    expect(up.received()).toBe('GET /pa');
    expect(await Promise.race([outcome, pause(100).then(() => 'none')])).toBe('none');
  });

  test('a client that begins a request line and stalls is handed back as incomplete at the limit', async () => {
    const up = await upstream();
    const { client, outcome } = await heldThrough(up.port, 300);
    const started = Date.now();
    client.write('GET /admin HT');
    const taken = await outcome;
    expect(taken.kind).toBe('incomplete');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(up.received()).toBe('');
  });
});

describe('watchFirstBytes', () => {
  test('reports an HTTP/2 preface split over two writes, and puts the bytes back', async () => {
    let accepted: net.Socket | undefined;
    const s = await server((socket) => (accepted = socket), { pauseOnConnect: true });
    const client = net.connect(s.port, '127.0.0.1');
    cleanups.push(() => client.destroy());
    await eventually(() => accepted, 'the accepted socket');
    const socket = accepted as net.Socket;
    const result = new Promise((resolve) => watchFirstBytes(socket, {}, resolve));
    client.write('PRI * HTTP/2.0\r\n');
    await pause(20);
    client.write('\r\nSM\r\n\r\n');
    expect(await result).toEqual({ kind: 'client-first', detection: { protocol: 'http2', timedOut: false }, ended: false });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await eventually(() => Buffer.concat(chunks).toString() === 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'the preface, unread');
  });

  test('settles a silent client after silenceTimeoutMs', async () => {
    let accepted: net.Socket | undefined;
    const s = await server((socket) => (accepted = socket), { pauseOnConnect: true });
    const client = net.connect(s.port, '127.0.0.1');
    cleanups.push(() => client.destroy());
    await eventually(() => accepted, 'the accepted socket');
    const result = await new Promise((resolve) => watchFirstBytes(accepted as net.Socket, { silenceTimeoutMs: 50 }, resolve));
    expect(result).toEqual({ kind: 'client-first', detection: { protocol: 'opaque', timedOut: true }, ended: false });
  });
});
