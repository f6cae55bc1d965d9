import net from 'node:net';
import tls from 'node:tls';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { classify, H2_PREFACE, MAX_DETECT_BYTES, parseClientHello } from './classify.js';
import { listenTcp, type Listening } from '../testing/servers.js';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Captures the first record a real TLS client sends (its ClientHello) on a plain TCP server. */
async function captureClientHello(options: tls.ConnectionOptions): Promise<Buffer> {
  let server: Listening<net.Server> | undefined;
  try {
    const hello = new Promise<Buffer>((resolve) => {
      let seen = Buffer.alloc(0);
      void listenTcp((socket) => {
        socket.on('data', (chunk: Buffer) => {
          seen = Buffer.concat([seen, chunk]);
          if (seen.length >= 5 && seen.length >= 5 + seen.readUInt16BE(3)) {
            resolve(seen.subarray(0, 5 + seen.readUInt16BE(3)));
            socket.destroy();
          }
        });
      }).then((s) => {
        server = s;
        const client = tls.connect({ host: '127.0.0.1', port: s.port, rejectUnauthorized: false, ...options });
        client.on('error', () => undefined);
      });
    });
    return await hello;
  } finally {
    await server?.close();
  }
}

/** A minimal hand-built ClientHello record with the given extensions. */
function handBuiltHello(extensions: Buffer): Buffer {
  const body = Buffer.concat([
    Buffer.from([0x03, 0x03]), // client_version TLS 1.2
    Buffer.alloc(32, 7), // random
    Buffer.from([0]), // session id
    Buffer.from([0, 2, 0x13, 0x01]), // one cipher suite
    Buffer.from([1, 0]), // compression: null
    Buffer.from([extensions.length >> 8, extensions.length & 0xff]),
    extensions,
  ]);
  const handshake = Buffer.concat([Buffer.from([0x01, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01, handshake.length >> 8, handshake.length & 0xff]), handshake]);
}

function sniExtension(name: string): Buffer {
  const host = latin1(name);
  const list = Buffer.concat([Buffer.from([0, host.length >> 8, host.length & 0xff]), host]);
  const data = Buffer.concat([Buffer.from([list.length >> 8, list.length & 0xff]), list]);
  return Buffer.concat([Buffer.from([0, 0, data.length >> 8, data.length & 0xff]), data]);
}

function alpnExtension(protocols: string[]): Buffer {
  const list = Buffer.concat(protocols.map((p) => Buffer.concat([Buffer.from([p.length]), latin1(p)])));
  const data = Buffer.concat([Buffer.from([list.length >> 8, list.length & 0xff]), list]);
  return Buffer.concat([Buffer.from([0, 0x10, data.length >> 8, data.length & 0xff]), data]);
}

describe('classify', () => {
  describe('HTTP/1', () => {
    test.each(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'PROPFIND', 'PURGE'])(
      'recognises a whole request line with %s as HTTP/1',
      (method) => {
        expect(classify(latin1(`${method} / HTTP/1.1\r\n`))).toEqual({ protocol: 'http1', timedOut: false });
        expect(classify(latin1(`${method} /a?b=c HTTP/1.0\r\nhost: x\r\n\r\n`))).toEqual({ protocol: 'http1', timedOut: false });
      },
    );

    test.each(['NOTIFY', 'QUERY', 'SUBSCRIBE', 'M-SEARCH', 'BREW', 'get', 'X-Custom!'])('recognises any token method (%s): what an app might parse as HTTP is HTTP', (method) => {
      expect(classify(latin1(`${method} /pot HTTP/1.1\r\n`))).toEqual({ protocol: 'http1', timedOut: false });
    });

    test('skips the empty lines RFC 9112 §2.2 tells servers to ignore before a request line', () => {
      expect(classify(latin1('\r\nGET / HTTP/1.1\r\n'))).toEqual({ protocol: 'http1', timedOut: false });
      expect(classify(latin1('\r\n\r\n\nPOST / HTTP/1.1\r\n'))).toEqual({ protocol: 'http1', timedOut: false });
      expect(classify(latin1('\r\n'))).toBe('need-more');
      expect(classify(latin1('\r\nGE'))).toBe('need-more');
    });

    test('accepts what lenient servers accept: bare LF, tabs, lower-case version, a target with spaces, the HTTP/0.9 GET', () => {
      for (const line of ['GET / HTTP/1.1\n', 'GET\t/\tHTTP/1.1\r\n', 'GET / http/1.1\r\n', 'GET /a b HTTP/1.1\r\n', 'GET /\r\n', ' GET / HTTP/1.1\r\n']) {
        expect(classify(latin1(line))).toEqual({ protocol: 'http1', timedOut: false });
      }
    });

    test('asks for more bytes while the data could still become a request line', () => {
      for (const partial of ['G', 'GE', 'GET', 'GET ', 'GET /', 'GET / HTTP/1.1', 'GET / HTTP/1.1\r', 'NOTIFY /x HT', 'OPTIONS']) {
        expect(classify(latin1(partial))).toBe('need-more');
      }
    });

    test('settles a request line prefix as opaque once the client has ended (no header can follow)', () => {
      expect(classify(latin1('GE'), true)).toEqual({ protocol: 'opaque', timedOut: false });
      expect(classify(latin1('GET / HTTP/1.1'), true)).toEqual({ protocol: 'opaque', timedOut: false });
    });

    test('a request line longer than detection peeks is HTTP/1 (the parser enforces its own limit)', () => {
      const long = latin1(`GET /${'a'.repeat(MAX_DETECT_BYTES)}`);
      expect(classify(long.subarray(0, 1000))).toBe('need-more');
      expect(classify(long.subarray(0, MAX_DETECT_BYTES))).toEqual({ protocol: 'http1', timedOut: false });
    });

    test('client-first protocols that are not HTTP stay opaque: their first line has no HTTP version', () => {
      for (const line of ['get foo\r\n', 'GETX / FOO/1.1\r\n', '*1\r\n$4\r\nPING\r\n', 'INVITE sip:a@b SIP/2.0\r\n', 'OPTIONS rtsp://x/ RTSP/1.0\r\n', 'CONNECT\n', 'PING\r\n']) {
        expect(classify(latin1(line))).toEqual({ protocol: 'opaque', timedOut: false });
      }
    });

    test('a method followed by anything but a blank, or control bytes in the line, is opaque at once', () => {
      expect(classify(latin1('GETX/'))).toEqual({ protocol: 'opaque', timedOut: false });
      expect(classify(Buffer.concat([latin1('AB '), Buffer.from([0x00, 0x01])]))).toEqual({ protocol: 'opaque', timedOut: false });
      expect(classify(Buffer.from([0x0d, 0x0a, 0x00]))).toEqual({ protocol: 'opaque', timedOut: false });
    });
  });

  describe('HTTP/2 prior knowledge', () => {
    test('recognises the complete connection preface, with or without a frame after it', () => {
      expect(classify(H2_PREFACE)).toEqual({ protocol: 'http2', timedOut: false });
      expect(classify(Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]))).toEqual({ protocol: 'http2', timedOut: false });
    });

    test('asks for more bytes on every proper prefix of the preface', () => {
      for (let n = 1; n < H2_PREFACE.length; n++) expect(classify(H2_PREFACE.subarray(0, n))).toBe('need-more');
    });

    test('settles a partial preface by the HTTP/1 rules once the client has ended', () => {
      expect(classify(H2_PREFACE.subarray(0, 10), true)).toEqual({ protocol: 'opaque', timedOut: false });
      expect(classify(H2_PREFACE.subarray(0, 17), true)).toEqual({ protocol: 'http1', timedOut: false });
    });

    test('a corrupted preface is an HTTP/1 request line (PRI * HTTP/2.0), for the HTTP/1 parser to refuse', () => {
      expect(classify(latin1('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'))).toEqual({ protocol: 'http1', timedOut: false });
    });
  });

  describe('TLS', () => {
    let realHello: Buffer;
    beforeAll(async () => {
      realHello = await captureClientHello({ servername: 'reviews.shop.svc.cluster.local', ALPNProtocols: ['h2', 'http/1.1'] });
    });

    test('reads SNI and ALPN from a real ClientHello sent by node:tls', () => {
      expect(classify(realHello)).toEqual({ protocol: 'tls', sni: 'reviews.shop.svc.cluster.local', alpn: ['h2', 'http/1.1'], timedOut: false });
    });

    test('a real ClientHello without SNI or ALPN is TLS with neither', async () => {
      const bare = await captureClientHello({});
      expect(classify(bare)).toEqual({ protocol: 'tls', sni: undefined, alpn: undefined, timedOut: false });
    });

    test('asks for more bytes while the record is incomplete, and calls it TLS (no SNI) once the client ended', () => {
      for (const n of [1, 2, 4, 5, 40, realHello.length - 1]) expect(classify(realHello.subarray(0, n))).toBe('need-more');
      expect(classify(realHello.subarray(0, 40), true)).toEqual({ protocol: 'tls', timedOut: false });
      expect(classify(realHello.subarray(0, 2), true)).toEqual({ protocol: 'opaque', timedOut: false });
    });

    test('reads a hand-built ClientHello', () => {
      const record = handBuiltHello(Buffer.concat([sniExtension('api.example'), alpnExtension(['grpc-exp', 'h2'])]));
      expect(classify(record)).toEqual({ protocol: 'tls', sni: 'api.example', alpn: ['grpc-exp', 'h2'], timedOut: false });
    });

    test('a record too large to peek whole is TLS without SNI once MAX_DETECT_BYTES are seen', () => {
      const header = Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]);
      const partial = Buffer.concat([header, Buffer.alloc(MAX_DETECT_BYTES - header.length, 1)]);
      expect(classify(partial.subarray(0, 1000))).toBe('need-more');
      expect(classify(partial)).toEqual({ protocol: 'tls', timedOut: false });
    });

    test('a handshake record that is not a ClientHello, or a bad record version, is opaque', () => {
      const notHello = Buffer.from(realHello);
      notHello[5] = 0x02; // server_hello
      expect(classify(notHello)).toEqual({ protocol: 'opaque', timedOut: false });
      expect(classify(Buffer.from([0x16, 0x02, 0x00, 0x00, 0x10]))).toEqual({ protocol: 'opaque', timedOut: false });
      expect(classify(Buffer.from([0x16, 0x03, 0x09, 0x00, 0x10]))).toEqual({ protocol: 'opaque', timedOut: false });
    });

    test('a ClientHello cut short inside its body is refused by parseClientHello', () => {
      const body = realHello.subarray(5);
      expect(parseClientHello(body.subarray(0, 30))).toBeUndefined();
      expect(parseClientHello(body)?.sni).toBe('reviews.shop.svc.cluster.local');
    });

    test('a truncated record claiming a short length is opaque', () => {
      // Length 8 covers only part of the handshake header and random: not a well-formed ClientHello.
      const record = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x08]), realHello.subarray(5, 13)]);
      expect(classify(record)).toEqual({ protocol: 'opaque', timedOut: false });
    });
  });

  describe('opaque and ended', () => {
    test('asks for more when nothing arrived yet, and is opaque when the client ended without a byte', () => {
      expect(classify(Buffer.alloc(0))).toBe('need-more');
      expect(classify(Buffer.alloc(0), true)).toEqual({ protocol: 'opaque', timedOut: false });
    });

    test('garbage and server-first protocol greetings are opaque at once', () => {
      expect(classify(Buffer.from([0x00, 0x01, 0x02, 0xff]))).toEqual({ protocol: 'opaque', timedOut: false });
      expect(classify(latin1('SSH-2.0-OpenSSH_9.6\r\n'))).toEqual({ protocol: 'opaque', timedOut: false });
    });

    test('never reports a timeout itself (the caller knows why the client ended)', () => {
      const result = classify(latin1('xyz'), true);
      expect(result !== 'need-more' && result.timedOut).toBe(false);
    });
  });
});
