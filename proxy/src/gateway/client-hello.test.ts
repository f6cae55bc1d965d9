// The passthrough ClientHello reader against RFC 8446 (§5.1 records, §4 handshake, §4.1.2
// ClientHello, §4.2 extensions), RFC 6066 §3 (server_name) and RFC 7301 §3.1 (ALPN); properties
// over any cut of the bytes; one test per attack.
import fc from 'fast-check';
import { ClientHelloReader, isSniHostName, MAX_CLIENT_HELLO_BYTES, parseClientHelloBody, type ClientHelloResult } from './client-hello.js';
import { alpnExtension, capturedClientHello, clientHello, clientHelloBody, handshake, rawSniExtension, records, sniExtension, SUPPORTED_VERSIONS } from './testing/client-hello.js';

function readAll(bytes: Buffer, max?: number): ClientHelloResult | undefined {
  return new ClientHelloReader(max).push(bytes);
}

function readChunks(chunks: readonly Buffer[]): ClientHelloResult | undefined {
  const reader = new ClientHelloReader();
  let result: ClientHelloResult | undefined;
  for (const c of chunks) result = reader.push(c);
  return result;
}

const sniOf = (r: ClientHelloResult | undefined): string | undefined => (r?.ok ? r.value.sni : undefined);
const errorOf = (r: ClientHelloResult | undefined): string | undefined => (r !== undefined && !r.ok ? r.error : undefined);

describe('a real ClientHello', () => {
  it("reads the server name and ALPN of Node's TLS client", async () => {
    const hello = await capturedClientHello('Reviews.Example.COM', ['h2', 'http/1.1']);
    const result = readAll(hello);
    expect(result).toEqual({ ok: true, value: { sni: 'reviews.example.com', alpn: ['h2', 'http/1.1'] } });
  });
});

describe('RFC 8446 §5.1 record layer', () => {
  const message = handshake(clientHelloBody({ extensions: [sniExtension('a.example.com'), SUPPORTED_VERSIONS] }));

  it('reassembles a ClientHello fragmented over several records', () => {
    expect(sniOf(readAll(records(message, 1)))).toBe('a.example.com');
    expect(sniOf(readAll(records(message, 7)))).toBe('a.example.com');
  });

  it('refuses a record of another content type (application_data)', () => {
    expect(errorOf(readAll(records(message, 16384, 23)))).toBe('not_handshake');
  });

  it('refuses a handshake record interleaved with a record of another type', () => {
    const first = records(message.subarray(0, 10));
    const alert = records(Buffer.from([1, 0]), 16384, 21);
    expect(errorOf(readAll(Buffer.concat([first, alert])))).toBe('not_handshake');
  });

  it('refuses a zero-length handshake record', () => {
    expect(errorOf(readAll(Buffer.from([22, 3, 1, 0, 0])))).toBe('bad_record');
  });

  it('refuses a record longer than 2^14 bytes', () => {
    expect(errorOf(readAll(Buffer.from([22, 3, 1, 0x40, 0x01])))).toBe('bad_record');
  });

  it('refuses a record whose version major is not 3', () => {
    expect(errorOf(readAll(Buffer.from([22, 2, 0, 0, 4])))).toBe('bad_record');
  });

  it('ignores legacy_record_version otherwise (0x0301, 0x0303 both read)', () => {
    expect(sniOf(readAll(records(message, 16384, 22, 0x0303)))).toBe('a.example.com');
  });
});

describe('RFC 8446 §4 handshake and §4.1.2 ClientHello', () => {
  it('refuses a first handshake message that is not a ClientHello (ServerHello)', () => {
    expect(errorOf(readAll(records(handshake(clientHelloBody(), 2))))).toBe('not_client_hello');
  });

  it('reads a TLS 1.2 ClientHello without extensions', () => {
    expect(readAll(clientHello({ extensions: null }))).toEqual({ ok: true, value: { sni: undefined, alpn: undefined } });
  });

  it.each([
    ['a legacy_session_id over 32 bytes', { sessionId: Buffer.alloc(33) }],
    ['an odd cipher_suites length', { suites: Buffer.from([0x13, 0x01, 0x13]) }],
    ['no cipher suite', { suites: Buffer.alloc(0) }],
    ['no compression method', { compression: Buffer.alloc(0) }],
    ['a legacy_version whose major is not 3', { version: 0x0203 }],
    ['bytes after the extensions', { trailing: Buffer.from([0]) }],
  ])('refuses %s', (_name, parts) => {
    expect(errorOf(readAll(clientHello(parts)))).toBe('malformed');
  });

  it('refuses an extension whose length runs past the block', () => {
    const body = clientHelloBody({ extensions: [{ type: 0xfafa, data: Buffer.alloc(4) }] });
    body.writeUInt16BE(0xff, body.length - 6); // the extension's length
    expect(errorOf(readAll(records(handshake(body))))).toBe('malformed');
  });

  it('refuses a message shorter than its declared length once the next record is not a handshake', () => {
    const body = clientHelloBody();
    const cut = Buffer.concat([records(handshake(body, 1, body.length).subarray(0, 20)), records(Buffer.from([1, 0]), 16384, 23)]);
    expect(errorOf(readAll(cut))).toBe('not_handshake');
  });
});

describe('RFC 8446 §4.2 extensions', () => {
  it('refuses two extensions of one type', () => {
    expect(errorOf(readAll(clientHello({ extensions: [sniExtension('a.example.com'), SUPPORTED_VERSIONS, SUPPORTED_VERSIONS] })))).toBe('duplicate_extension');
  });

  it('skips extensions it does not know', () => {
    expect(sniOf(readAll(clientHello({ extensions: [{ type: 0x1a1a, data: Buffer.alloc(0) }, sniExtension('b.example.com')] })))).toBe('b.example.com');
  });
});

describe('RFC 6066 §3 server_name', () => {
  it('reads the host_name, lower-cased (DNS names are case-insensitive)', () => {
    expect(sniOf(readAll(clientHello({ extensions: [sniExtension('Productpage.Bookinfo.Example')] })))).toBe('productpage.bookinfo.example');
  });

  it.each([
    ['two host names (at most one name of a type)', sniExtension('a.example.com', 'b.example.com')],
    ['an empty server_name_list', { type: 0, data: Buffer.from([0, 0]) }],
    ['an empty HostName', rawSniExtension([[0, Buffer.alloc(0)]])],
    ['a name_type other than host_name', rawSniExtension([[1, Buffer.from('a.example.com')]])],
    ['a trailing dot', sniExtension('a.example.com.')],
    ['an IPv4 literal', sniExtension('10.0.0.1')],
    ['an IPv6 literal', sniExtension('::1')],
    ['a non-ASCII byte', rawSniExtension([[0, Buffer.from([0x61, 0xc3, 0xa9])]])],
    ['a NUL byte', rawSniExtension([[0, Buffer.from('a.example.com\0.evil.com', 'latin1')]])],
    ['an empty label', sniExtension('a..example.com')],
    ['a label over 63 bytes', sniExtension(`${'a'.repeat(64)}.example.com`)],
    ['bytes after the list', { type: 0, data: Buffer.concat([sniExtension('a.example.com').data, Buffer.from([0])]) }],
  ])('refuses %s', (_name, extension) => {
    expect(errorOf(readAll(clientHello({ extensions: [extension] })))).toBe('bad_server_name');
  });

  it('a ClientHello without server_name has no SNI', () => {
    expect(readAll(clientHello({ extensions: [SUPPORTED_VERSIONS] }))).toEqual({ ok: true, value: { sni: undefined, alpn: undefined } });
  });
});

describe('RFC 7301 §3.1 ALPN', () => {
  it('reads the protocol list in order', () => {
    const r = readAll(clientHello({ extensions: [sniExtension('a.example.com'), alpnExtension('h2', 'http/1.1')] }));
    expect(r?.ok && r.value.alpn).toEqual(['h2', 'http/1.1']);
  });

  it('refuses an empty protocol name', () => {
    expect(errorOf(readAll(clientHello({ extensions: [alpnExtension('h2', '')] })))).toBe('malformed');
  });

  it('refuses an empty protocol list', () => {
    expect(errorOf(readAll(clientHello({ extensions: [{ type: 16, data: Buffer.from([0, 0]) }] })))).toBe('malformed');
  });
});

describe('properties', () => {
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
  const hostname = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join('.')).filter((h) => isSniHostName(h));

  it('any record fragmentation and any chunking give the same answer as one push', () => {
    fc.assert(
      fc.property(hostname, fc.integer({ min: 1, max: 300 }), fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 20 }), (host, fragment, cuts) => {
        const wire = records(handshake(clientHelloBody({ extensions: [sniExtension(host), alpnExtension('h2')] })), fragment);
        const chunks: Buffer[] = [];
        let off = 0;
        for (let i = 0; off < wire.length; i++) {
          const n = cuts[i % cuts.length]!;
          chunks.push(wire.subarray(off, off + n));
          off += n;
        }
        expect(readChunks(chunks)).toEqual({ ok: true, value: { sni: host, alpn: ['h2'] } });
      }),
    );
  });

  it('a strict prefix of a ClientHello never decides (it waits for more)', () => {
    const wire = records(handshake(clientHelloBody()), 50);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: wire.length - 1 }), (n) => {
        expect(readAll(wire.subarray(0, n))).toBeUndefined();
      }),
    );
  });

  it('arbitrary bytes never throw, and once decided the answer stays the same', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 8 }), (chunks) => {
        const reader = new ClientHelloReader();
        let decided: ClientHelloResult | undefined;
        for (const c of chunks) {
          const r = reader.push(Buffer.from(c));
          if (decided !== undefined) expect(r).toBe(decided);
          decided ??= r;
        }
      }),
    );
  });

  it('a corrupted ClientHello body never throws and never yields a name that is not a host name', () => {
    const body = clientHelloBody({ extensions: [sniExtension('a.example.com'), alpnExtension('h2')] });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(body.length - 1), fc.uint8Array({ minLength: 1, maxLength: 1 })), { minLength: 1, maxLength: 6 }), (flips) => {
        const copy = Buffer.from(body);
        for (const [at, [b]] of flips) copy[at] = b!;
        const r = parseClientHelloBody(copy);
        if (r.ok && r.value.sni !== undefined) expect(isSniHostName(r.value.sni)).toBe(true);
      }),
    );
  });

  it('every generated host name is read back as sent', () => {
    fc.assert(fc.property(hostname, (host) => expect(sniOf(readAll(clientHello({ extensions: [sniExtension(host.toUpperCase())] })))).toBe(host)));
  });
});

describe('attacks', () => {
  it('truncated: a ClientHello cut short is never routed (the reader waits; the listener times it out)', () => {
    const wire = clientHello();
    expect(readAll(wire.subarray(0, wire.length - 1))).toBeUndefined();
  });

  it('oversized: a declared length over the limit is refused at once, before its bytes arrive', () => {
    const header = records(Buffer.from([1, 0xff, 0xff, 0xff]));
    expect(errorOf(readAll(header))).toBe('too_large');
    const body = clientHelloBody({ extensions: [sniExtension('a.example.com'), { type: 0xfafa, data: Buffer.alloc(2000) }] });
    expect(errorOf(readAll(records(handshake(body)), 1024))).toBe('too_large');
    expect(MAX_CLIENT_HELLO_BYTES).toBeGreaterThanOrEqual(16 * 1024);
  });

  it('fragmented: a ClientHello in one-byte records, pushed one byte at a time, is still read', () => {
    const wire = records(handshake(clientHelloBody({ extensions: [sniExtension('a.example.com'), { type: 0xfafa, data: Buffer.alloc(8000) }] })), 1);
    const reader = new ClientHelloReader();
    let result: ClientHelloResult | undefined;
    for (let i = 0; i < wire.length && result === undefined; i++) result = reader.push(wire.subarray(i, i + 1));
    expect(sniOf(result)).toBe('a.example.com');
  });

  it('not TLS at all (an HTTP request) is refused on its first byte', () => {
    expect(errorOf(readAll(Buffer.from('G')))).toBe('not_handshake');
  });
});
