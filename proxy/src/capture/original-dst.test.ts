import net from 'node:net';
import { afterEach, describe, expect, test } from '@jest/globals';
import { originalDst, parseSockaddr } from './original-dst.js';
import { listenTcp, once, type Listening } from '../testing/servers.js';

/** struct sockaddr_in as the kernel fills it (family in host order, here little-endian). */
function sockaddrIn(address: string, port: number): Buffer {
  const buf = Buffer.alloc(28);
  buf.writeUInt16LE(2, 0);
  buf.writeUInt16BE(port, 2);
  address.split('.').forEach((octet, i) => buf.writeUInt8(Number(octet), 4 + i));
  return buf;
}

/** struct sockaddr_in6 from eight 16-bit groups. */
function sockaddrIn6(groups: number[], port: number): Buffer {
  const buf = Buffer.alloc(28);
  buf.writeUInt16LE(10, 0);
  buf.writeUInt16BE(port, 2);
  groups.forEach((g, i) => buf.writeUInt16BE(g, 8 + i * 2));
  return buf;
}

function parsed(buf: Buffer): unknown {
  const result = parseSockaddr(buf);
  if (!result.ok) throw result.error;
  return result.value;
}

describe('parseSockaddr', () => {
  test('decodes an IPv4 address and a network-order port', () => {
    expect(parsed(sockaddrIn('10.96.0.10', 8080))).toEqual({ address: '10.96.0.10', port: 8080, family: 4 });
    expect(parsed(sockaddrIn('255.0.1.2', 65535))).toEqual({ address: '255.0.1.2', port: 65535, family: 4 });
  });

  test.each([
    [[0xfd00, 0, 0, 0, 0, 0, 0, 1], 'fd00::1'],
    [[0, 0, 0, 0, 0, 0, 0, 1], '::1'],
    [[0, 0, 0, 0, 0, 0, 0, 0], '::'],
    [[0xfe80, 0, 0, 0, 0, 0, 0, 0], 'fe80::'],
    [[0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], '2001:db8::1:0:0:1'], // equal runs: the first one is compressed
    [[0x2001, 0xdb8, 0, 1, 0, 0, 0, 1], '2001:db8:0:1::1'], // a single zero group stays
    [[0x2001, 0xdb8, 1, 2, 3, 4, 5, 6], '2001:db8:1:2:3:4:5:6'],
    [[0x2001, 0xdb8, 0xabcd, 0, 0, 0xffff, 0, 0], '2001:db8:abcd::ffff:0:0'],
  ])('decodes IPv6 %j as %s (RFC 5952 compression, lower-case hex)', (groups, text) => {
    expect(parsed(sockaddrIn6(groups, 443))).toEqual({ address: text, port: 443, family: 6 });
  });

  test('refuses an unknown address family as a value', () => {
    const buf = Buffer.alloc(28);
    buf.writeUInt16LE(1, 0); // AF_UNIX
    const result = parseSockaddr(buf);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe('TSMESH_ERR_ORIGINAL_DST');
  });
});

describe('originalDst', () => {
  let server: Listening<net.Server> | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  test('fails as a value on a connection that was not redirected', async () => {
    const accepted = new Promise<net.Socket>((resolve) => {
      void listenTcp(resolve).then((s) => {
        server = s;
        const client = net.connect(s.port, '127.0.0.1');
        client.on('error', () => undefined);
        client.on('connect', () => client.end());
      });
    });
    const socket = await accepted;
    const result = originalDst(socket);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe('TSMESH_ERR_ORIGINAL_DST');
    socket.destroy();
    await once(socket, 'close').catch(() => undefined);
  });
});
