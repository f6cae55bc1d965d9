// The passthrough listener on a real loopback socket: the ClientHello picks the destination and
// reaches the relay byte for byte; wrong, absent or malformed ClientHellos and slow or truncated
// clients are refused, each counted with its reason.
import net from 'node:net';
import type { TlsDestination, TlsGatewayPort } from '@tsmesh/common';
import { PassthroughPort, type PassthroughRefusal } from './passthrough.js';
import { clientHello, sniExtension, SUPPORTED_VERSIONS } from './testing/client-hello.js';

const DESTINATION: TlsDestination = { route: { kind: 'TLSRoute', namespace: 'edge', name: 'reviews' }, backends: [{ namespace: 'edge', name: 'reviews', port: 443, weight: 1, problem: undefined }] };

function tlsPort(names: readonly string[]): TlsGatewayPort {
  return { port: 0, protocol: 'TLS', listeners: [], destination: (name) => (names.includes(name) ? DESTINATION : undefined) };
}

interface Harness {
  readonly port: PassthroughPort;
  readonly address: number;
  readonly relayed: Promise<{ socket: net.Socket; destination: TlsDestination }>;
  readonly refusals: PassthroughRefusal[];
  readonly refused: Promise<PassthroughRefusal>;
}

const open: PassthroughPort[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

async function harness(limits = { clientHelloTimeoutMs: 2000, maxClientHelloBytes: 64 * 1024 }): Promise<Harness> {
  const refusals: PassthroughRefusal[] = [];
  let onRelay!: (v: { socket: net.Socket; destination: TlsDestination }) => void;
  let onRefused!: (r: PassthroughRefusal) => void;
  const relayed = new Promise<{ socket: net.Socket; destination: TlsDestination }>((r) => (onRelay = r));
  const refused = new Promise<PassthroughRefusal>((r) => (onRefused = r));
  const port = new PassthroughPort(
    tlsPort(['a.example.com']),
    {
      relay: (socket, destination) => onRelay({ socket, destination }),
      refused: (_port, reason) => {
        refusals.push(reason);
        onRefused(reason);
      },
    },
    limits,
  );
  await port.listen('127.0.0.1');
  open.push(port);
  return { port, address: port.address().port, relayed, refusals, refused };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => undefined);
  });
}

/** Everything the peer sends until it closes. */
function received(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
}

function readExactly(socket: net.Socket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  return new Promise((resolve) => {
    const onData = (c: Buffer): void => {
      chunks.push(c);
      have += c.length;
      if (have >= n) {
        socket.off('data', onData);
        socket.pause();
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on('data', onData);
    socket.resume();
  });
}

describe('PassthroughPort', () => {
  it('hands a connection whose SNI a route serves to the relay with every byte it sent, untouched', async () => {
    const h = await harness();
    const client = await connect(h.address);
    const hello = clientHello({ extensions: [sniExtension('a.example.com'), SUPPORTED_VERSIONS] });
    client.write(hello.subarray(0, 10));
    client.write(hello.subarray(10));
    const { socket, destination } = await h.relayed;
    expect(destination).toBe(DESTINATION);
    client.write('after');
    const bytes = await readExactly(socket, hello.length + 5);
    expect(bytes.equals(Buffer.concat([hello, Buffer.from('after')]))).toBe(true);
    socket.destroy();
    client.destroy();
    expect(h.refusals).toEqual([]);
  });

  it('refuses a server name no route serves with an unrecognized_name alert, and counts it', async () => {
    const h = await harness();
    const client = await connect(h.address);
    const answer = received(client);
    client.write(clientHello({ extensions: [sniExtension('evil.example.com')] }));
    expect(await h.refused).toBe('unknown_server_name');
    expect([...(await answer)]).toEqual([21, 3, 3, 0, 2, 2, 112]);
  });

  it('refuses a ClientHello without server name', async () => {
    const h = await harness();
    const client = await connect(h.address);
    const answer = received(client);
    client.write(clientHello({ extensions: [SUPPORTED_VERSIONS] }));
    expect(await h.refused).toBe('no_server_name');
    await answer;
  });

  it('closes a connection that does not speak TLS, without an answer', async () => {
    const h = await harness();
    const client = await connect(h.address);
    const answer = received(client);
    client.write('GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n');
    expect(await h.refused).toBe('not_handshake');
    expect((await answer).length).toBe(0);
  });

  it('refuses an oversized ClientHello from its header', async () => {
    const h = await harness({ clientHelloTimeoutMs: 2000, maxClientHelloBytes: 1024 });
    const client = await connect(h.address);
    const answer = received(client);
    client.write(Buffer.from([22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00]));
    expect(await h.refused).toBe('too_large');
    await answer;
  });

  it('cuts a slow-drip (slowloris) client at the ClientHello deadline', async () => {
    const h = await harness({ clientHelloTimeoutMs: 200, maxClientHelloBytes: 64 * 1024 });
    const client = await connect(h.address);
    const answer = received(client);
    const hello = clientHello();
    let i = 0;
    const drip = setInterval(() => {
      if (!client.destroyed && i < hello.length) client.write(hello.subarray(i, ++i));
    }, 10);
    try {
      expect(await h.refused).toBe('timeout');
      await answer;
      expect(i).toBeLessThan(hello.length);
    } finally {
      clearInterval(drip);
    }
  });

  it('refuses a client that ends in the middle of its ClientHello', async () => {
    const h = await harness();
    const client = await connect(h.address);
    client.end(clientHello().subarray(0, 30));
    expect(await h.refused).toBe('truncated');
  });

  it('follows a new port table: a name served after an update is routed', async () => {
    const h = await harness();
    h.port.port = tlsPort(['b.example.com']);
    const client = await connect(h.address);
    client.write(clientHello({ extensions: [sniExtension('b.example.com')] }));
    const { socket } = await h.relayed;
    socket.destroy();
    client.destroy();
  });
});

describe('PassthroughPort on a TCP listener', () => {
  it('relays every connection at once to the TCPRoute, without waiting for a ClientHello', async () => {
    let relayed!: (s: net.Socket) => void;
    const got = new Promise<net.Socket>((r) => (relayed = r));
    const port = new PassthroughPort({ port: 0, protocol: 'TCP', listeners: [], destination: () => DESTINATION }, { relay: (socket) => relayed(socket), refused: () => undefined });
    await port.listen('127.0.0.1');
    open.push(port);
    const client = await connect(port.address().port);
    const socket = await got;
    client.write('plain bytes');
    expect((await readExactly(socket, 11)).toString()).toBe('plain bytes');
    socket.destroy();
    client.destroy();
  });

  it('closes a connection when no TCPRoute serves the port', async () => {
    let refused!: (r: PassthroughRefusal) => void;
    const reason = new Promise<PassthroughRefusal>((r) => (refused = r));
    const port = new PassthroughPort({ port: 0, protocol: 'TCP', listeners: [], destination: () => undefined }, { relay: () => undefined, refused: (_p, r) => refused(r) });
    await port.listen('127.0.0.1');
    open.push(port);
    const client = await connect(port.address().port);
    const answer = received(client);
    expect(await reason).toBe('no_route');
    expect((await answer).length).toBe(0);
  });
});
