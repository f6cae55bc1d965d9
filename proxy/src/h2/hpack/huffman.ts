// HPACK's static Huffman code (RFC 7541 §5.2, Appendix B): encoding, and decoding four bits at a
// time through a transition table built once at module load. Hand-written so the table can be read
// against the RFC and so decoding allocates nothing.

// Appendix B code lengths in bits, symbols 0..255 then EOS (256). The code is canonical (codes of
// one length are consecutive, in symbol order, after all shorter ones), so the lengths are the
// whole table; the codes are derived below and checked against the RFC in huffman.test.ts.
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //   0..15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //  16..31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //          ' ' .. '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //               '0' .. '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //                 '@' .. 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //              'P' .. '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //                 '`' .. 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //             'p' .. 127
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..255
  30, //                                                              EOS
];

const EOS = 256;

/** Code of each symbol, right-aligned (the RFC's "code as hex" column). */
export const HUFFMAN_CODES = new Uint32Array(257);
/** Length in bits of each symbol's code. */
export const HUFFMAN_LENGTHS = Uint8Array.from(CODE_LENGTHS);

/** huffmanDecode results below zero. */
export const HuffmanError = {
  /** The EOS symbol appeared in the string (§5.2: a decoding error). */
  EOS: -1,
  /** More than 7 bits of padding (§5.2). */
  PADDING_TOO_LONG: -2,
  /** Padding that is not the most significant bits of EOS, i.e. not all ones (§5.2). */
  PADDING_NOT_ONES: -3,
} as const;

// Transition entry: next state in bits 0..7, emitted symbol in bits 8..15, then the flags.
const EMIT = 1 << 16;
const FAIL = 1 << 17;
/** (state << 4 | nibble) → transition. States are the 256 internal nodes of the code tree. */
const TRANSITIONS = new Uint32Array(256 * 16);
/** state → 0 if the string may end there, else the HuffmanError the ending would be. */
const END_STATE = new Int8Array(256);

(function build(): void {
  const order = Array.from({ length: 257 }, (_, sym) => sym);
  order.sort((a, b) => CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b);
  let code = 0;
  let length = 0;
  for (const sym of order) {
    const len = CODE_LENGTHS[sym]!;
    code *= 2 ** (len - length);
    length = len;
    HUFFMAN_CODES[sym] = code;
    code += 1;
  }
  // A complete prefix code uses up every code of the longest length exactly.
  if (code !== 2 ** 30) throw new Error('HPACK Huffman code lengths are not a complete code');

  // Tree: child >= 0 is an internal node, child < 0 is the leaf of symbol -child - 1.
  const child0 = new Int16Array(256);
  const child1 = new Int16Array(256);
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const len = HUFFMAN_LENGTHS[sym]!;
    const c = HUFFMAN_CODES[sym]!;
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const children = (c >>> bit) & 1 ? child1 : child0;
      if (bit === 0) {
        children[node] = -sym - 1;
      } else {
        if (children[node] === 0) children[node] = nodes++;
        node = children[node]!;
      }
    }
  }
  if (nodes !== 256) throw new Error('HPACK Huffman tree is not full');

  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const next = (nibble >>> bit) & 1 ? child1[node]! : child0[node]!;
        if (next >= 0) {
          node = next;
        } else if (-next - 1 === EOS) {
          entry |= FAIL;
          break;
        } else {
          // Codes are at least 5 bits long, so four bits complete at most one symbol.
          entry |= EMIT | ((-next - 1) << 8);
          node = 0;
        }
      }
      TRANSITIONS[(state << 4) | nibble] = entry | node;
    }
  }

  // Valid padding is a proper prefix of EOS (all ones) shorter than 8 bits: the nodes reached from
  // the root by up to 7 one-bits. Deeper all-ones nodes are too much padding; the rest are not ones.
  END_STATE.fill(HuffmanError.PADDING_NOT_ONES);
  for (let ones = 0, depth = 0; ones >= 0; depth++) {
    END_STATE[ones] = depth <= 7 ? 0 : HuffmanError.PADDING_TOO_LONG;
    ones = child1[ones]!;
  }
})();

/** Octets the Huffman encoding of a latin1 string takes, padding included. */
export function huffmanEncodedLength(str: string): number {
  let bits = 0;
  for (let i = 0; i < str.length; i++) bits += HUFFMAN_LENGTHS[str.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman encoding of a latin1 string into `out` at `pos` and returns the position after
 * it. `out` must have room for huffmanEncodedLength(str) octets.
 */
export function huffmanEncode(str: string, out: Uint8Array, pos: number): number {
  // Bits not yet written sit in the low `pending` (< 8) bits of `acc`, so adding a code of up to 24
  // bits stays within 31 bits; longer codes go in two parts.
  let acc = 0;
  let pending = 0;
  for (let i = 0; i < str.length; i++) {
    const sym = str.charCodeAt(i) & 0xff;
    const code = HUFFMAN_CODES[sym]!;
    const len = HUFFMAN_LENGTHS[sym]!;
    if (len > 24) {
      acc = (acc << (len - 16)) | (code >>> 16);
      pending += len - 16;
      while (pending >= 8) {
        pending -= 8;
        out[pos++] = acc >>> pending;
      }
      acc = ((acc & ((1 << pending) - 1)) << 16) | (code & 0xffff);
      pending += 16;
    } else {
      acc = (acc << len) | code;
      pending += len;
    }
    while (pending >= 8) {
      pending -= 8;
      out[pos++] = acc >>> pending;
    }
    acc &= (1 << pending) - 1;
  }
  if (pending > 0) out[pos++] = (acc << (8 - pending)) | (0xff >>> pending);
  return pos;
}

/**
 * Decodes src[start, end) into `out` at `outPos`. Returns the number of octets written, or a
 * HuffmanError (< 0). `out` must have room for floor((end - start) * 8 / 5) octets.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array, outPos: number): number {
  let state = 0;
  let n = outPos;
  for (let i = start; i < end; i++) {
    const octet = src[i]!;
    let t = TRANSITIONS[(state << 4) | (octet >>> 4)]!;
    if (t & FAIL) return HuffmanError.EOS;
    if (t & EMIT) out[n++] = t >>> 8;
    t = TRANSITIONS[((t & 0xff) << 4) | (octet & 0xf)]!;
    if (t & FAIL) return HuffmanError.EOS;
    if (t & EMIT) out[n++] = t >>> 8;
    state = t & 0xff;
  }
  return END_STATE[state] || n - outPos;
}

/** Validates src[start, end) as Huffman code and returns its decoded length (or a HuffmanError) without writing it. */
export function huffmanDecodedLength(src: Uint8Array, start: number, end: number): number {
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const octet = src[i]!;
    let t = TRANSITIONS[(state << 4) | (octet >>> 4)]!;
    if (t & FAIL) return HuffmanError.EOS;
    if (t & EMIT) n++;
    t = TRANSITIONS[((t & 0xff) << 4) | (octet & 0xf)]!;
    if (t & FAIL) return HuffmanError.EOS;
    if (t & EMIT) n++;
    state = t & 0xff;
  }
  return END_STATE[state] || n;
}

/** The message for a HuffmanError. */
export function huffmanErrorMessage(code: number): string {
  switch (code) {
    case HuffmanError.EOS:
      return 'Huffman-coded string contains the EOS symbol (RFC 7541 §5.2)';
    case HuffmanError.PADDING_TOO_LONG:
      return 'Huffman-coded string has more than 7 bits of padding (RFC 7541 §5.2)';
    default:
      return 'Huffman-coded string padding is not the most significant bits of EOS (RFC 7541 §5.2)';
  }
}
