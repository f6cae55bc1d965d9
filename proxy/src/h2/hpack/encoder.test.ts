import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { HpackDecoder } from './decoder.js';
import type { DynamicTable } from './dynamic-table.js';
import { HpackEncoder, writeInteger } from './encoder.js';
import { huffmanEncode, huffmanEncodedLength } from './huffman.js';

const hex = (s: string): string => s.replace(/\s+/g, '');
const latin1Hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

function huffmanHex(s: string): string {
  const out = Buffer.alloc(huffmanEncodedLength(s));
  huffmanEncode(s, out, 0);
  return out.toString('hex');
}

/** The encoder's own table size, which the peer's decoder must match. */
const encoderTableSize = (encoder: HpackEncoder): number =>
  (encoder as unknown as { table: DynamicTable }).table.size;

function decodeOk(decoder: HpackDecoder, block: Uint8Array): string[] {
  const result = decoder.decode(block);
  if (!result.ok) throw new Error(result.message);
  expect(result.tooLarge).toBe(false);
  return result.headers;
}

const C3 = [
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'],
  [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'],
];
const DATE_1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE_2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const SET_COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const C5 = [
  [':status', '302', 'cache-control', 'private', 'date', DATE_1, 'location', LOCATION],
  [':status', '307', 'cache-control', 'private', 'date', DATE_1, 'location', LOCATION],
  [':status', '200', 'cache-control', 'private', 'date', DATE_2, 'location', LOCATION, 'content-encoding', 'gzip', 'set-cookie', SET_COOKIE],
];
/** Announcing the 256-octet table the RFC's C.5/C.6 examples assume (§6.3). */
const SIZE_UPDATE_256 = '3fe101';

describe('HpackEncoder', () => {
  it('writes the integers of RFC 7541 Appendix C.1', () => {
    const out = Buffer.alloc(8);
    expect(out.subarray(0, writeInteger(out, 0, 10, 5, 0)).toString('hex')).toBe('0a');
    expect(out.subarray(0, writeInteger(out, 0, 1337, 5, 0)).toString('hex')).toBe('1f9a0a');
    expect(out.subarray(0, writeInteger(out, 0, 42, 8, 0)).toString('hex')).toBe('2a');
    // The prefix's flag bits are kept.
    expect(out.subarray(0, writeInteger(out, 0, 1337, 5, 0xe0)).toString('hex')).toBe('ff9a0a');
  });

  it('encodes the requests of RFC 7541 Appendix C.3 byte for byte without Huffman', () => {
    const encoder = new HpackEncoder({ huffman: false });
    const decoder = new HpackDecoder();
    const expected = [
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ];
    const sizes = [57, 110, 164];
    C3.forEach((headers, i) => {
      const block = encoder.encode(headers);
      expect(block.toString('hex')).toBe(hex(expected[i]!));
      expect(decodeOk(decoder, block)).toEqual(headers);
      expect(decoder.tableSize).toBe(sizes[i]);
      expect(encoderTableSize(encoder)).toBe(sizes[i]);
    });
  });

  it('encodes the requests of RFC 7541 Appendix C.4 byte for byte with Huffman', () => {
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder();
    const expected = [
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ];
    C3.forEach((headers, i) => {
      const block = encoder.encode(headers);
      expect(block.toString('hex')).toBe(hex(expected[i]!));
      expect(decodeOk(decoder, block)).toEqual(headers);
    });
    expect(decoder.tableSize).toBe(164);
  });

  it('encodes the responses of RFC 7541 Appendix C.5 like the RFC, except that set-cookie is never indexed', () => {
    const encoder = new HpackEncoder({ huffman: false });
    encoder.setPeerMaxTableSize(256);
    const decoder = new HpackDecoder({ maxTableSize: 256 });
    decoder.setMaxTableSize(256);
    const expected = [
      `${SIZE_UPDATE_256}
       4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
       2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
       6c65 2e63 6f6d`,
      '4803 3330 37c1 c0bf',
      // The RFC indexes set-cookie (77 38 ...); we send it never indexed with the same name index (1f 28 38 ...).
      `88c1 611d ${latin1Hex(DATE_2)} c05a 0467 7a69 70 1f28 38 ${latin1Hex(SET_COOKIE)}`,
    ];
    C5.forEach((headers, i) => {
      const block = encoder.encode(headers);
      expect(block.toString('hex')).toBe(hex(expected[i]!));
      expect(decodeOk(decoder, block)).toEqual(headers);
    });
    // The RFC's 215 includes set-cookie; without it location and :status 307 were not evicted.
    expect(decoder.tableSize).toBe(222);
    expect(encoderTableSize(encoder)).toBe(222);
  });

  it('encodes the responses of RFC 7541 Appendix C.6 like the RFC, except where Huffman is not shorter', () => {
    const encoder = new HpackEncoder();
    encoder.setPeerMaxTableSize(256);
    const decoder = new HpackDecoder({ maxTableSize: 256 });
    decoder.setMaxTableSize(256);
    const expected = [
      `${SIZE_UPDATE_256}
       4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
       2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      // "307" Huffman-coded is 3 octets, as long as the raw string, so it goes raw (the RFC: 83 640eff).
      '4803 3330 37c1 c0bf',
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
       1f28 ad ${huffmanHex(SET_COOKIE)}`,
    ];
    C5.forEach((headers, i) => {
      const block = encoder.encode(headers);
      expect(block.toString('hex')).toBe(hex(expected[i]!));
      expect(decodeOk(decoder, block)).toEqual(headers);
    });
    expect(decoder.tableSize).toBe(222);
  });

  it('encodes a repeated gRPC request in one octet per header once its fields are indexed', () => {
    const encoder = new HpackEncoder();
    const request = [
      ':method', 'POST', ':scheme', 'http', ':path', '/helloworld.Greeter/SayHello', ':authority', 'greeter.default.svc:50051',
      'content-type', 'application/grpc', 'te', 'trailers', 'grpc-accept-encoding', 'identity,deflate,gzip', 'user-agent', 'grpc-node-js/1.10.0',
    ];
    const first = encoder.encode(request);
    const second = encoder.encode(request);
    expect(second.length).toBe(8);
    const decoder = new HpackDecoder();
    expect(decodeOk(decoder, first)).toEqual(request);
    expect(decodeOk(decoder, second)).toEqual(request);
  });

  it('sends credentials and short cookies as never indexed (RFC 7541 §6.2.3, §7.1.3)', () => {
    const encoder = new HpackEncoder();
    for (const [name, value] of [
      ['authorization', 'Bearer abc'],
      ['proxy-authorization', 'Basic xyz'],
      ['set-cookie', 'id=1'],
      ['cookie', 'short=1'],
      ['x-secret', 'not sensitive by name'],
    ] as const) {
      for (let i = 0; i < 2; i++) {
        const block = encoder.encode([name, value]);
        if (name === 'x-secret') expect(block[0]! & 0xc0).toBe(i === 0 ? 0x40 : 0x80);
        else expect(block[0]! & 0xf0).toBe(0x10);
      }
    }
    const longCookie = 'session=' + 'a'.repeat(40);
    encoder.encode(['cookie', longCookie]);
    expect(encoder.encode(['cookie', longCookie]).length).toBe(1);
  });

  it('does not index values longer than a quarter of the table, nor paths with a query string', () => {
    const encoder = new HpackEncoder();
    const big = 'x'.repeat(1025);
    encoder.encode(['x-big', big]);
    const again = encoder.encode(['x-big', big]);
    expect(again[0]).toBe(0x00); // literal without indexing, new name
    expect(again.length).toBeGreaterThan(100);
    encoder.encode([':path', '/search?q=1']);
    expect(encoder.encode([':path', '/search?q=1'])[0]! & 0xf0).toBe(0x00); // literal without indexing
    encoder.encode([':path', '/svc/Method']);
    expect(encoder.encode([':path', '/svc/Method']).length).toBe(1);
    expect(encoderTableSize(encoder)).toBe(5 + 11 + 32);
    encoder.encode(['x-big', 'x'.repeat(1024)]); // exactly a quarter is still indexed
    expect(encoder.encode(['x-big', 'x'.repeat(1024)]).length).toBe(1);
  });

  it('refers to a custom name already in the dynamic table when only its value is new', () => {
    const encoder = new HpackEncoder({ huffman: false });
    encoder.encode(['x-tenant', 'aaa']);
    // Literal with indexing, name = dynamic index 62 (01 111110), then the raw value.
    expect(encoder.encode(['x-tenant', 'bbb']).toString('hex')).toBe(`7e03${latin1Hex('bbb')}`);
  });

  it('uses Huffman only when it is shorter', () => {
    const encoder = new HpackEncoder();
    const raw = '\u00ff\u00fe\u00fd';
    expect(encoder.encode(['x-bin', raw]).subarray(-4).toString('hex')).toBe(`03${latin1Hex(raw)}`);
  });

  describe('dynamic table size updates', () => {
    it('announces a lower peer table size at the start of the next block (RFC 7541 §6.3)', () => {
      const encoder = new HpackEncoder();
      encoder.encode(['x-a', 'b']);
      encoder.setPeerMaxTableSize(100);
      expect(encoder.encode([':method', 'GET']).toString('hex')).toBe('3f4582');
      expect(encoder.encode([':method', 'GET']).toString('hex')).toBe('82');
    });

    it('announces the lowest size and then the final one when the size went down and up between blocks (RFC 7541 §4.2)', () => {
      const encoder = new HpackEncoder();
      encoder.encode(['x-a', 'b']);
      encoder.setPeerMaxTableSize(0);
      encoder.setPeerMaxTableSize(4096);
      const block = encoder.encode([':method', 'GET']);
      expect(block.toString('hex')).toBe('20' + '3fe11f' + '82');
      expect(encoderTableSize(encoder)).toBe(0);
    });

    it('sends no update when the peer raises its limit above the encoder\'s own choice', () => {
      const encoder = new HpackEncoder();
      encoder.setPeerMaxTableSize(65536);
      expect(encoder.encode([':method', 'GET']).toString('hex')).toBe('82');
    });

    it('announces its own table size below the initial 4096 in the first block', () => {
      const encoder = new HpackEncoder({ tableSize: 0 });
      expect(encoder.encode([':method', 'GET']).toString('hex')).toBe('2082');
      const decoder = new HpackDecoder();
      encoder.encode(['x-a', 'b']);
      expect(encoderTableSize(encoder)).toBe(0);
      decodeOk(decoder, new HpackEncoder({ tableSize: 0 }).encode(['x-a', 'b']));
      expect(decoder.tableSize).toBe(0);
    });

    it('raises the table when the peer allows more than 4096 and it wants more', () => {
      const encoder = new HpackEncoder({ tableSize: 8192 });
      expect(encoder.encode([':method', 'GET']).toString('hex')).toBe('82');
      encoder.setPeerMaxTableSize(65536);
      expect(encoder.encode([':method', 'GET']).toString('hex')).toBe('3fe13f82');
    });
  });

  it('round-trips arbitrary header lists through one encoder and decoder across peer table size changes', () => {
    const name = fc.oneof(
      fc.constantFrom(':method', ':path', ':authority', 'content-type', 'te', 'authorization', 'cookie', 'set-cookie', 'x-id'),
      fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,24}$/),
    );
    const value = fc.oneof(
      fc.constantFrom('', 'GET', '/', '/a?b=c', 'application/grpc', 'trailers', 'x'.repeat(1500)),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
    );
    const step = fc.record({
      fields: fc.array(fc.tuple(name, value), { maxLength: 12 }),
      peerTableSize: fc.option(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 8192 })), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 15 }),
        fc.integer({ min: 0, max: 8192 }),
        fc.boolean(),
        (steps, tableSize, huffman) => {
          const encoder = new HpackEncoder({ tableSize, huffman });
          const decoder = new HpackDecoder({ maxHeaderListSize: 1 << 24 });
          for (const { fields, peerTableSize } of steps) {
            if (peerTableSize !== undefined) {
              encoder.setPeerMaxTableSize(peerTableSize);
              decoder.setMaxTableSize(peerTableSize);
            }
            const headers = fields.flat();
            expect(decodeOk(decoder, encoder.encode(headers))).toEqual(headers);
            expect(decoder.tableSize).toBe(encoderTableSize(encoder));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('indexing policy for fields unique to each request', () => {
  it('sends trace ids as literals without indexing, so they never evict the fields that repeat', () => {
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder();
    let firstSize = 0;
    for (let i = 0; i < 50; i++) {
      const traceparent = `00-${i.toString(16).padStart(32, '0')}-${i.toString(16).padStart(16, '0')}-01`;
      const block = encoder.encode([':method', 'POST', ':path', '/pkg.Svc/Call', 'content-type', 'application/grpc', 'traceparent', traceparent, 'x-request-id', `req-${i}`]);
      const decoded = decoder.decode(block);
      expect(decoded.ok && decoded.headers[7]).toBe(traceparent);
      // Only the repeating fields were ever inserted: the table stops growing after the first block.
      if (i > 0) expect(decoder.tableSize).toBe(firstSize);
      firstSize = decoder.tableSize;
    }
  });
});

describe('RFC 7541 6.2.3 never-indexed fields through an intermediary', () => {
  it('re-encodes a field its peer sent never-indexed the same way, even one it would otherwise index', () => {
    // A client marks a custom token never-indexed (0001 prefix): name literal, value literal.
    const upstreamDecoder = new HpackDecoder();
    const fromClient = Buffer.concat([Buffer.from([0x10, 7]), Buffer.from('x-token', 'latin1'), Buffer.from([6]), Buffer.from('secret', 'latin1')]);
    const decoded = upstreamDecoder.decode(fromClient);
    expect(decoded.ok && decoded.headers).toEqual(['x-token', 'secret']);
    const fields = decoded.ok ? decoded.headers : [];
    // Forwarded twice: both times as a never-indexed literal (first octet 0001xxxx), never indexed.
    const encoder = new HpackEncoder({ huffman: false });
    for (let i = 0; i < 2; i++) {
      const block = encoder.encode(fields);
      expect(block[0]! & 0xf0).toBe(0x10);
      const seen = new HpackDecoder().decode(block);
      expect(seen.ok && seen.headers).toEqual(['x-token', 'secret']);
    }
    // Without the mark the same field is indexed the first time and sent as one octet the next.
    const plain = new HpackEncoder({ huffman: false });
    plain.encode(['x-token', 'secret']);
    expect(plain.encode(['x-token', 'secret']).length).toBe(1);
  });
});
