import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { type FieldList, HpackDecoder } from './decoder.js';
import type { HpackDecodeResult } from './decoder.js';
import { HpackEncoder, writeInteger } from './encoder.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decodeOk(decoder: HpackDecoder, block: Uint8Array): string[] {
  const result = decoder.decode(block);
  if (!result.ok) throw new Error(result.message);
  expect(result.tooLarge).toBe(false);
  return result.headers;
}

function expectError(result: HpackDecodeResult, section: string): void {
  expect(result.ok).toBe(false);
  if (!result.ok) expect(result.message).toContain(section);
}

/** The dynamic table, newest first, read back with indexed references (which change nothing). */
function dynamicEntries(decoder: HpackDecoder, count: number): string[] {
  return decodeOk(decoder, Uint8Array.from({ length: count }, (_, i) => 0x80 | (62 + i)));
}

function integer(value: number, prefixBits: number, flags: number): Buffer {
  const out = Buffer.alloc(8);
  return out.subarray(0, writeInteger(out, 0, value, prefixBits, flags));
}

/** Literal with incremental indexing and a new name, no Huffman (RFC 7541 §6.2.1). */
function indexedLiteral(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x40]),
    integer(name.length, 7, 0),
    Buffer.from(name, 'latin1'),
    integer(value.length, 7, 0),
    Buffer.from(value, 'latin1'),
  ]);
}

const C3_1 = [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'];
const C3_2 = [...C3_1, 'cache-control', 'no-cache'];
const C3_3 = [
  ':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com',
  'custom-key', 'custom-value',
];
const C5_1 = [
  ':status', '302', 'cache-control', 'private', 'date', 'Mon, 21 Oct 2013 20:13:21 GMT',
  'location', 'https://www.example.com',
];
const C5_2 = [...C5_1];
C5_2[1] = '307';
const C5_3 = [
  ':status', '200', 'cache-control', 'private', 'date', 'Mon, 21 Oct 2013 20:13:22 GMT',
  'location', 'https://www.example.com', 'content-encoding', 'gzip',
  'set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
];
/** The RFC's C.5/C.6 examples assume a 256-octet table; on a connection that is announced first (§6.3). */
const SIZE_UPDATE_256 = '3fe101';

function responseDecoder(): HpackDecoder {
  const decoder = new HpackDecoder({ maxTableSize: 256 });
  decoder.setMaxTableSize(256);
  return decoder;
}

describe('HpackDecoder', () => {
  it('reads the integers of RFC 7541 Appendix C.1.1 and C.1.2 (5-bit prefix)', () => {
    const decoder = new HpackDecoder();
    decoder.setMaxTableSize(10);
    expect(decoder.decode(hex('2a')).ok).toBe(true); // size update to 10
    expectError(decoder.decode(hex('2b')), '§6.3'); // 11 is over
    decoder.setMaxTableSize(1337);
    expect(decoder.decode(hex('3f9a0a')).ok).toBe(true); // 1337
    expectError(decoder.decode(hex('3f9b0a')), '§6.3'); // 1338
  });

  it('decodes RFC 7541 Appendix C.2.1, a literal with indexing', () => {
    const decoder = new HpackDecoder();
    const block = hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572');
    expect(decodeOk(decoder, block)).toEqual(['custom-key', 'custom-header']);
    expect(decoder.tableSize).toBe(55);
  });

  it('decodes RFC 7541 Appendix C.2.2, a literal without indexing', () => {
    const decoder = new HpackDecoder();
    expect(decodeOk(decoder, hex('040c 2f73 616d 706c 652f 7061 7468'))).toEqual([':path', '/sample/path']);
    expect(decoder.tableSize).toBe(0);
  });

  it('decodes RFC 7541 Appendix C.2.3, a literal never indexed', () => {
    const decoder = new HpackDecoder();
    const fields = decodeOk(decoder, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')) as FieldList;
    expect([...fields]).toEqual(['password', 'secret']);
    // The list says which values came never-indexed, so a forwarder sends them the same way (§6.2.3).
    expect(fields.neverIndexed).toEqual(new Set(['secret']));
    expect(decoder.tableSize).toBe(0);
  });

  it('decodes RFC 7541 Appendix C.2.4, an indexed field', () => {
    const decoder = new HpackDecoder();
    expect(decodeOk(decoder, hex('82'))).toEqual([':method', 'GET']);
    expect(decoder.tableSize).toBe(0);
  });

  it('decodes the three requests of RFC 7541 Appendix C.3 (no Huffman) with one decoder', () => {
    const decoder = new HpackDecoder();
    expect(decodeOk(decoder, hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'))).toEqual(C3_1);
    expect(decoder.tableSize).toBe(57);
    expect(dynamicEntries(decoder, 1)).toEqual([':authority', 'www.example.com']);

    expect(decodeOk(decoder, hex('8286 84be 5808 6e6f 2d63 6163 6865'))).toEqual(C3_2);
    expect(decoder.tableSize).toBe(110);
    expect(dynamicEntries(decoder, 2)).toEqual(['cache-control', 'no-cache', ':authority', 'www.example.com']);

    const third = hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65');
    expect(decodeOk(decoder, third)).toEqual(C3_3);
    expect(decoder.tableSize).toBe(164);
    expect(dynamicEntries(decoder, 3)).toEqual([
      'custom-key', 'custom-value', 'cache-control', 'no-cache', ':authority', 'www.example.com',
    ]);
  });

  it('decodes the three requests of RFC 7541 Appendix C.4 (Huffman) with one decoder', () => {
    const decoder = new HpackDecoder();
    expect(decodeOk(decoder, hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))).toEqual(C3_1);
    expect(decoder.tableSize).toBe(57);
    expect(decodeOk(decoder, hex('8286 84be 5886 a8eb 1064 9cbf'))).toEqual(C3_2);
    expect(decoder.tableSize).toBe(110);
    const third = hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf');
    expect(decodeOk(decoder, third)).toEqual(C3_3);
    expect(decoder.tableSize).toBe(164);
    expect(dynamicEntries(decoder, 3)).toEqual([
      'custom-key', 'custom-value', 'cache-control', 'no-cache', ':authority', 'www.example.com',
    ]);
  });

  it('decodes the three responses of RFC 7541 Appendix C.5 (no Huffman, 256-octet table, evictions)', () => {
    const decoder = responseDecoder();
    const first = hex(`${SIZE_UPDATE_256}
      4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
      2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
      6c65 2e63 6f6d`);
    expect(decodeOk(decoder, first)).toEqual(C5_1);
    expect(decoder.tableSize).toBe(222);

    expect(decodeOk(decoder, hex('4803 3330 37c1 c0bf'))).toEqual(C5_2);
    expect(decoder.tableSize).toBe(222);
    expect(dynamicEntries(decoder, 4)).toEqual([
      ':status', '307', 'location', 'https://www.example.com', 'date', 'Mon, 21 Oct 2013 20:13:21 GMT',
      'cache-control', 'private',
    ]);

    const third = hex(`
      88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
      54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
      5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
      3d31`);
    expect(decodeOk(decoder, third)).toEqual(C5_3);
    expect(decoder.tableSize).toBe(215);
    expect(dynamicEntries(decoder, 3)).toEqual([
      'set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1', 'content-encoding', 'gzip',
      'date', 'Mon, 21 Oct 2013 20:13:22 GMT',
    ]);
    expectError(decoder.decode(hex('c1')), '§2.3.3');
  });

  it('decodes the three responses of RFC 7541 Appendix C.6 (Huffman, 256-octet table, evictions)', () => {
    const decoder = responseDecoder();
    const first = hex(`${SIZE_UPDATE_256}
      4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
      2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`);
    expect(decodeOk(decoder, first)).toEqual(C5_1);
    expect(decoder.tableSize).toBe(222);
    expect(decodeOk(decoder, hex('4883 640e ffc1 c0bf'))).toEqual(C5_2);
    expect(decoder.tableSize).toBe(222);
    const third = hex(`
      88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
      77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
      9587 3160 65c0 03ed 4ee5 b106 3d50 07`);
    expect(decodeOk(decoder, third)).toEqual(C5_3);
    expect(decoder.tableSize).toBe(215);
  });

  it('decodes a Uint8Array view that is not a Buffer and starts mid-allocation', () => {
    const backing = new Uint8Array([0xee, 0xee, 0x82, 0x84, 0xee]);
    expect(decodeOk(new HpackDecoder(), backing.subarray(2, 4))).toEqual([':method', 'GET', ':path', '/']);
  });

  it('keeps arbitrary octets of names and values as latin1 characters', () => {
    const value = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
    expect(decodeOk(new HpackDecoder(), indexedLiteral('x\u00ff', value))).toEqual(['x\u00ff', value]);
  });

  describe('rejects as COMPRESSION_ERROR', () => {
    it('an integer above 2^31 - 1 (RFC 7541 §5.1)', () => {
      expectError(new HpackDecoder().decode(integer(2 ** 31, 7, 0x80)), 'exceeds 2^31 - 1 (RFC 7541 §5.1)');
      expectError(new HpackDecoder().decode(hex('ffff ffff ff0f')), '§5.1');
      // 2^31 - 1 itself is a well-formed integer, only too large an index.
      expectError(new HpackDecoder().decode(integer(2 ** 31 - 1, 7, 0x80)), '§2.3.3');
    });

    it('an integer with more than five continuation octets (RFC 7541 §5.1)', () => {
      expectError(new HpackDecoder().decode(hex('ff80 8080 8080 00')), 'integer encoding too long (RFC 7541 §5.1)');
      // Five (with redundant zero groups) are accepted: 127 + 1 = index 128 is merely out of range.
      expectError(new HpackDecoder().decode(hex('ff81 8080 8000')), '§2.3.3');
    });

    it('index 0 (RFC 7541 §6.1)', () => {
      expectError(new HpackDecoder().decode(hex('80')), '§6.1');
    });

    it('an index beyond the static and dynamic tables (RFC 7541 §2.3.3)', () => {
      const decoder = new HpackDecoder();
      expectError(decoder.decode(hex('be')), '§2.3.3');
      decodeOk(decoder, indexedLiteral('a', 'b'));
      expect(decodeOk(decoder, hex('be'))).toEqual(['a', 'b']);
      expectError(decoder.decode(hex('bf')), '§2.3.3');
      // As the name of a literal, too.
      expectError(new HpackDecoder().decode(hex('7e00')), '§2.3.3');
      expectError(new HpackDecoder().decode(hex('0f2f00')), '§2.3.3');
    });

    it('a string literal longer than the rest of the block (RFC 7541 §5.2)', () => {
      expectError(new HpackDecoder().decode(hex('400a 61')), 'string literal length exceeds the header block (RFC 7541 §5.2)');
      expectError(new HpackDecoder().decode(hex('0401 2f03 6162')), '§5.2');
    });

    it('a table size update larger than the advertised maximum (RFC 7541 §6.3)', () => {
      const decoder = new HpackDecoder({ maxTableSize: 8192 });
      decoder.setMaxTableSize(8192);
      expect(decoder.decode(integer(8192, 5, 0x20)).ok).toBe(true);
      expectError(decoder.decode(integer(8193, 5, 0x20)), '§6.3');
    });

    it('a table size update after the first field of the block (RFC 7541 §4.2)', () => {
      expectError(new HpackDecoder().decode(hex('8220')), 'after the start of the header block (RFC 7541 §4.2)');
    });

    it('a block without the size update owed after our advertised size went down (RFC 7541 §4.2)', () => {
      const decoder = new HpackDecoder();
      decodeOk(decoder, indexedLiteral('a', 'b'));
      decoder.setMaxTableSize(100);
      expectError(decoder.decode(hex('82')), 'required dynamic table size update (RFC 7541 §4.2)');
      expect(decodeOk(decoder, hex('3f45 82'))).toEqual([':method', 'GET']); // update to 100
      expect(decodeOk(decoder, hex('be'))).toEqual(['a', 'b']);
      expect(decodeOk(decoder, hex('82'))).toEqual([':method', 'GET']);
    });

    it('a block truncated inside an integer or before a string (RFC 7541 §5.1, §5.2)', () => {
      expectError(new HpackDecoder().decode(hex('3f')), 'truncated inside an integer');
      expectError(new HpackDecoder().decode(hex('82ff')), 'truncated inside an integer');
      expectError(new HpackDecoder().decode(hex('40')), 'truncated before a string literal');
      expectError(new HpackDecoder().decode(hex('4001 61')), 'truncated before a string literal');
      expectError(new HpackDecoder().decode(hex('4001 61ff')), 'truncated inside an integer');
    });

    it('a Huffman string with EOS, long padding or padding not of ones (RFC 7541 §5.2)', () => {
      expectError(new HpackDecoder().decode(hex('0001 6184 ffff ffff')), 'EOS symbol');
      expectError(new HpackDecoder().decode(hex('0001 6181 ff')), 'more than 7 bits of padding');
      expectError(new HpackDecoder().decode(hex('0081 1800')), 'not the most significant bits of EOS');
    });

    it('bad Huffman in a field that is not kept because the list is already too large (RFC 7541 §5.2)', () => {
      const decoder = new HpackDecoder({ maxHeaderListSize: 40 });
      expectError(decoder.decode(hex('82 0001 6181 ff')), '§5.2');
    });
  });

  it('allows several table size updates at the start of a block (RFC 7541 §4.2)', () => {
    const decoder = new HpackDecoder();
    decodeOk(decoder, indexedLiteral('a', 'b'));
    expect(decodeOk(decoder, Buffer.concat([hex('20'), integer(4096, 5, 0x20), hex('82')]))).toEqual([':method', 'GET']);
    expect(decoder.tableSize).toBe(0); // the update to 0 evicted everything
  });

  it('lets the peer use the initial 4096 octets until our smaller advertised size is acknowledged', () => {
    const decoder = new HpackDecoder({ maxTableSize: 100 });
    expect(decoder.decode(integer(4096, 5, 0x20)).ok).toBe(true);
    decodeOk(decoder, indexedLiteral('x', 'y'.repeat(200)));
    expect(decoder.tableSize).toBe(233);
    decoder.setMaxTableSize(100);
    expectError(decoder.decode(hex('82')), '§4.2');
    expect(decoder.decode(integer(4096, 5, 0x20)).ok).toBe(false);
  });

  describe('header list size limit', () => {
    it('counts name + value + 32 octets per field (RFC 9113 §6.5.2)', () => {
      const decoder = new HpackDecoder({ maxHeaderListSize: 42 }); // :method GET is 7 + 3 + 32
      expect(decoder.decode(hex('82'))).toEqual({ ok: true, headers: [':method', 'GET'], tooLarge: false });
      expect(decoder.decode(hex('8282'))).toEqual({ ok: true, headers: [], tooLarge: true });
    });

    it('returns tooLarge with no headers for an HPACK bomb: one large entry referenced thousands of times', () => {
      const decoder = new HpackDecoder();
      const refs = Buffer.alloc(100_000, 0xbe);
      const result = decoder.decode(Buffer.concat([indexedLiteral('x', 'a'.repeat(4000)), refs]));
      expect(result).toEqual({ ok: true, headers: [], tooLarge: true });
      expect(decoder.tableSize).toBe(4033);
      expect(decodeOk(decoder, hex('82'))).toEqual([':method', 'GET']);
    });

    it('returns tooLarge for any bomb of repeated references past the limit', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 4000 }), fc.integer({ min: 1, max: 20_000 }), (length, repeats) => {
          fc.pre((length + 33) * (repeats + 1) > 65_536);
          const decoder = new HpackDecoder();
          const block = Buffer.concat([indexedLiteral('x', 'v'.repeat(length)), Buffer.alloc(repeats, 0xbe)]);
          expect(decoder.decode(block)).toEqual({ ok: true, headers: [], tooLarge: true });
        }),
        { numRuns: 50 },
      );
    });

    it('keeps inserting into the dynamic table past the limit so later blocks stay in sync', () => {
      const decoder = new HpackDecoder({ maxHeaderListSize: 100 });
      const block = Buffer.concat([indexedLiteral('a', 'x'.repeat(30)), indexedLiteral('b', 'y'.repeat(30)), indexedLiteral('c', 'z'.repeat(30))]);
      expect(decoder.decode(block)).toEqual({ ok: true, headers: [], tooLarge: true });
      expect(decoder.tableSize).toBe(3 * 63);
      expect(decodeOk(decoder, hex('be'))).toEqual(['c', 'z'.repeat(30)]);
      expect(decodeOk(decoder, hex('c0'))).toEqual(['a', 'x'.repeat(30)]);
    });

    it('still inserts a literal longer than the list limit when it fits the dynamic table', () => {
      const decoder = new HpackDecoder({ maxHeaderListSize: 100 });
      expect(decoder.decode(indexedLiteral('big', 'v'.repeat(1000)))).toEqual({ ok: true, headers: [], tooLarge: true });
      expect(decoder.tableSize).toBe(1035);
    });

    it('skips a literal larger than the dynamic table, which empties the table (RFC 7541 §4.4)', () => {
      const decoder = new HpackDecoder({ maxHeaderListSize: 100 });
      decodeOk(decoder, indexedLiteral('a', 'b'));
      expect(decoder.decode(indexedLiteral('big', 'v'.repeat(5000))).ok).toBe(true);
      expect(decoder.tableSize).toBe(0);
      expectError(decoder.decode(hex('be')), '§2.3.3');
    });

    it('keeps a field within the list limit even when it is too large for the dynamic table', () => {
      const decoder = new HpackDecoder();
      decodeOk(decoder, indexedLiteral('a', 'b'));
      const value = 'v'.repeat(5000);
      expect(decodeOk(decoder, indexedLiteral('big', value))).toEqual(['big', value]);
      expect(decoder.tableSize).toBe(0);
    });
  });

  describe('on arbitrary input', () => {
    const check = (result: HpackDecodeResult): void => {
      if (result.ok) {
        expect(Array.isArray(result.headers)).toBe(true);
        expect(result.headers.length % 2).toBe(0);
        if (result.tooLarge) expect(result.headers).toEqual([]);
      } else {
        expect(result.message).not.toMatch(/internal/);
        expect(result.message.length).toBeGreaterThan(0);
      }
    };

    it('never throws on random bytes and always returns headers or a message', () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 5 }), (blocks) => {
          const decoder = new HpackDecoder({ maxHeaderListSize: 500 });
          for (const block of blocks) check(decoder.decode(block));
        }),
        { numRuns: 2000 },
      );
    });

    it('never throws on mutated and truncated valid blocks', () => {
      const field = fc.tuple(
        fc.constantFrom(':path', 'content-type', 'x-a', 'authorization', 'cookie', 'grpc-timeout'),
        fc.string({ maxLength: 40 }).map((s) => Buffer.from(s, 'utf8').toString('latin1')),
      );
      const mutation = fc.record({ at: fc.nat(), octet: fc.integer({ min: 0, max: 255 }) });
      fc.assert(
        fc.property(
          fc.array(fc.array(field, { maxLength: 8 }), { minLength: 1, maxLength: 4 }),
          fc.array(mutation, { minLength: 1, maxLength: 4 }),
          fc.nat(),
          (lists, mutations, cut) => {
            const encoder = new HpackEncoder();
            const decoder = new HpackDecoder();
            const blocks = lists.map((list) => encoder.encode(list.flat()));
            const last = Buffer.from(blocks.pop()!);
            for (const block of blocks) decodeOk(decoder, block);
            for (const { at, octet } of mutations) if (last.length > 0) last[at % last.length] = octet;
            check(decoder.decode(last.subarray(0, last.length === 0 ? 0 : last.length - (cut % last.length))));
          },
        ),
        { numRuns: 1000 },
      );
    });
  });
});
