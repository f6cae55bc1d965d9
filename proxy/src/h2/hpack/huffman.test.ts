import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  HuffmanError,
  huffmanDecode,
  huffmanDecodedLength,
  huffmanEncode,
  huffmanEncodedLength,
} from './huffman.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function encode(str: string): Buffer {
  const out = Buffer.alloc(huffmanEncodedLength(str));
  expect(huffmanEncode(str, out, 0)).toBe(out.length);
  return out;
}

function decode(bytes: Uint8Array): string | number {
  const out = Buffer.alloc(Math.floor((bytes.length * 8) / 5));
  const n = huffmanDecode(bytes, 0, bytes.length, out, 0);
  return n < 0 ? n : out.toString('latin1', 0, n);
}

const latin1 = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1'));

// RFC 7541 Appendix C.4 and C.6: each literal and its Huffman encoding.
const RFC_STRINGS: [string, string][] = [
  ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
  ['no-cache', 'a8eb 1064 9cbf'],
  ['custom-key', '25a8 49e9 5ba9 7d7f'],
  ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
  ['302', '6402'],
  ['307', '640e ff'],
  ['private', 'aec3 771a 4b'],
  ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
  ['Mon, 21 Oct 2013 20:13:22 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff'],
  ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
  ['gzip', '9bd9 ab'],
  [
    'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
    '94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
  ],
];

describe('HPACK Huffman code', () => {
  it('derives the RFC 7541 Appendix B code of the first and last symbol of every code length', () => {
    // [symbol, code as hex, length] from Appendix B.
    const rows: [number, number, number][] = [
      [48, 0x0, 5], [116, 0x9, 5],
      [32, 0x14, 6], [117, 0x2d, 6],
      [58, 0x5c, 7], [122, 0x7b, 7],
      [38, 0xf8, 8], [90, 0xfd, 8],
      [33, 0x3f8, 10], [63, 0x3fc, 10],
      [39, 0x7fa, 11], [124, 0x7fc, 11],
      [35, 0xffa, 12], [62, 0xffb, 12],
      [0, 0x1ff8, 13], [126, 0x1ffd, 13],
      [94, 0x3ffc, 14], [125, 0x3ffd, 14],
      [60, 0x7ffc, 15], [123, 0x7ffe, 15],
      [92, 0x7fff0, 19], [208, 0x7fff2, 19],
      [128, 0xfffe6, 20], [226, 0xfffed, 20],
      [153, 0x1fffdc, 21], [230, 0x1fffe8, 21],
      [129, 0x3fffd2, 22], [233, 0x3fffeb, 22],
      [1, 0x7fffd8, 23], [239, 0x7ffff4, 23],
      [9, 0xffffea, 24], [237, 0xfffff5, 24],
      [199, 0x1ffffec, 25], [235, 0x1ffffef, 25],
      [192, 0x3ffffe0, 26], [255, 0x3ffffee, 26],
      [203, 0x7ffffde, 27], [254, 0x7fffff0, 27],
      [2, 0xfffffe2, 28], [127, 0xffffffc, 28], [220, 0xffffffd, 28], [249, 0xffffffe, 28],
      [10, 0x3ffffffc, 30], [13, 0x3ffffffd, 30], [22, 0x3ffffffe, 30], [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, len] of rows) {
      expect([sym, HUFFMAN_CODES[sym], HUFFMAN_LENGTHS[sym]]).toEqual([sym, code, len]);
    }
  });

  it('encodes and decodes the literals of RFC 7541 Appendix C.4 and C.6 as the RFC does', () => {
    for (const [str, encoded] of RFC_STRINGS) {
      expect(encode(str).toString('hex')).toBe(hex(encoded).toString('hex'));
      expect(decode(hex(encoded))).toBe(str);
    }
  });

  it('round-trips arbitrary latin1 strings', () => {
    fc.assert(
      fc.property(latin1, (str) => {
        expect(decode(encode(str))).toBe(str);
      }),
    );
  });

  it('encodes at an offset without touching the octets around it', () => {
    const out = Buffer.alloc(20, 0xaa);
    const end = huffmanEncode('gzip', out, 5);
    expect(end).toBe(8);
    expect(out.subarray(5, 8)).toEqual(hex('9bd9ab'));
    expect(out[4]).toBe(0xaa);
    expect(out[8]).toBe(0xaa);
  });

  it('decodes the empty string, and accepts up to 7 bits of padding', () => {
    expect(decode(new Uint8Array(0))).toBe('');
    // ':' is 1011100, then one bit of padding.
    expect(decode(hex('b9'))).toBe(':');
    // '0' is 00000, then three bits.
    expect(decode(hex('07'))).toBe('0');
    // 'a' 00011 and '0' 00000, then six bits.
    expect(decode(hex('18 3f'))).toBe('a0');
    // Five '0's take 25 bits, then seven bits of padding.
    expect(decode(hex('0000 007f'))).toBe('00000');
  });

  it('rejects the EOS symbol inside a string (RFC 7541 §5.2)', () => {
    expect(decode(hex('ffff ffff'))).toBe(HuffmanError.EOS);
    // 'a' (00011) then EOS (30 ones) then padding.
    expect(decode(hex('1fff ffff ff'))).toBe(HuffmanError.EOS);
    expect(huffmanDecodedLength(hex('1fff ffff ff'), 0, 5)).toBe(HuffmanError.EOS);
  });

  it('rejects padding longer than 7 bits (RFC 7541 §5.2)', () => {
    expect(decode(hex('ff'))).toBe(HuffmanError.PADDING_TOO_LONG);
    // 'a' 00011 + 111 padding, then a whole octet more of ones.
    expect(decode(hex('1fff'))).toBe(HuffmanError.PADDING_TOO_LONG);
  });

  it('rejects padding that is not all ones (RFC 7541 §5.2)', () => {
    // 'a' 00011 then 000.
    expect(decode(hex('18'))).toBe(HuffmanError.PADDING_NOT_ONES);
    // 'a' 00011 then 110.
    expect(decode(hex('1e'))).toBe(HuffmanError.PADDING_NOT_ONES);
  });

  it('gives the same verdict and length when only validating arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const result = decode(bytes);
        const length = huffmanDecodedLength(bytes, 0, bytes.length);
        if (typeof result === 'number') expect(length).toBe(result);
        else expect(length).toBe(result.length);
      }),
    );
  });

  it('computes huffmanEncodedLength as the octets huffmanEncode writes', () => {
    fc.assert(
      fc.property(latin1, (str) => {
        const out = Buffer.alloc(str.length * 4 + 1);
        expect(huffmanEncode(str, out, 0)).toBe(huffmanEncodedLength(str));
      }),
    );
  });
});
