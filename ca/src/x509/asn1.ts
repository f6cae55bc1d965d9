// DER building and reading on top of node-forge's ASN.1 codec, with Buffers at the edges.
import type Forge from 'node-forge';
import forge from './forge.js';

const { asn1 } = forge;
export type Asn1 = Forge.asn1.Asn1;
export const Tag = asn1.Type;
export const TagClass = asn1.Class;

/** Well-known object identifiers used by the CA. */
export const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  sha384WithRSA: '1.2.840.113549.1.1.12',
  sha512WithRSA: '1.2.840.113549.1.1.13',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
} as const;

export function toBinary(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('binary');
}

export function fromBinary(bytes: string): Buffer {
  return Buffer.from(bytes, 'binary');
}

/** Encodes a node-forge ASN.1 tree as DER. */
export function encode(node: Asn1): Buffer {
  return fromBinary(asn1.toDer(node).getBytes());
}

/**
 * Decodes DER strictly (all bytes consumed). BIT STRINGs are kept as raw bytes, never guessed
 * to be nested ASN.1. Throws on malformed input.
 */
export function decode(der: Uint8Array): Asn1 {
  const fromDer = asn1.fromDer as unknown as (bytes: string, options: object) => Asn1;
  return fromDer(toBinary(der), { strict: true, parseAllBytes: true, decodeBitStrings: false });
}

export const seq = (...children: Asn1[]): Asn1 => asn1.create(TagClass.UNIVERSAL, Tag.SEQUENCE, true, children);
export const set = (...children: Asn1[]): Asn1 => asn1.create(TagClass.UNIVERSAL, Tag.SET, true, children);
export const oid = (id: string): Asn1 =>
  asn1.create(TagClass.UNIVERSAL, Tag.OID, false, asn1.oidToDer(id).getBytes());
export const bool = (value: boolean): Asn1 =>
  asn1.create(TagClass.UNIVERSAL, Tag.BOOLEAN, false, value ? '\xff' : '\x00');
export const nullValue = (): Asn1 => asn1.create(TagClass.UNIVERSAL, Tag.NULL, false, '');
export const octets = (bytes: Uint8Array): Asn1 =>
  asn1.create(TagClass.UNIVERSAL, Tag.OCTETSTRING, false, toBinary(bytes));
export const utf8 = (text: string): Asn1 =>
  asn1.create(TagClass.UNIVERSAL, Tag.UTF8, false, forge.util.encodeUtf8(text));
/** A BIT STRING whose content is whole bytes (keys, signatures). */
export const bitString = (bytes: Uint8Array): Asn1 =>
  asn1.create(TagClass.UNIVERSAL, Tag.BITSTRING, false, '\x00' + toBinary(bytes));
/** A small non-negative INTEGER. */
export const smallInt = (value: number): Asn1 =>
  asn1.create(TagClass.UNIVERSAL, Tag.INTEGER, false, asn1.integerToDer(value).getBytes());
/** An INTEGER from its big-endian two's-complement content bytes (already minimal). */
export const bigInt = (content: Uint8Array): Asn1 =>
  asn1.create(TagClass.UNIVERSAL, Tag.INTEGER, false, toBinary(content));
/** `[n] EXPLICIT` wrapper. */
export const explicit = (tagNumber: number, child: Asn1): Asn1 =>
  asn1.create(TagClass.CONTEXT_SPECIFIC, tagNumber, true, [child]);
/** `[n] IMPLICIT` primitive value (GeneralName choices, key identifiers). */
export const implicitPrimitive = (tagNumber: number, content: Uint8Array): Asn1 =>
  asn1.create(TagClass.CONTEXT_SPECIFIC, tagNumber, false, toBinary(content));

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280 4.1.2.5); seconds precision. */
export function time(date: Date): Asn1 {
  const whole = new Date(Math.floor(date.getTime() / 1000) * 1000);
  if (whole.getUTCFullYear() < 2050) {
    return asn1.create(TagClass.UNIVERSAL, Tag.UTCTIME, false, asn1.dateToUtcTime(whole));
  }
  return asn1.create(TagClass.UNIVERSAL, Tag.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(whole));
}

/** Reads a decoded UTCTime/GeneralizedTime. */
export function readTime(node: Asn1): Date {
  const value = primitive(node);
  if (node.type === Tag.UTCTIME) return asn1.utcTimeToDate(value);
  if (node.type === Tag.GENERALIZEDTIME) return asn1.generalizedTimeToDate(value);
  throw new Error('expected a time value');
}

/** Children of a constructed node; throws if it is primitive. */
export function children(node: Asn1 | undefined, what = 'value'): Asn1[] {
  if (node === undefined || !Array.isArray(node.value)) throw new Error(`expected a constructed ${what}`);
  return node.value;
}

/** Content bytes (binary string) of a primitive node; throws if it is constructed. */
export function primitive(node: Asn1 | undefined, what = 'value'): string {
  if (node === undefined || typeof node.value !== 'string') throw new Error(`expected a primitive ${what}`);
  return node.value;
}

export function isUniversal(node: Asn1 | undefined, type: Forge.asn1.Type): node is Asn1 {
  return node !== undefined && node.tagClass === TagClass.UNIVERSAL && node.type === type;
}

export function isContext(node: Asn1 | undefined, tagNumber: number): node is Asn1 {
  return node !== undefined && node.tagClass === TagClass.CONTEXT_SPECIFIC && node.type === tagNumber;
}

export function readOid(node: Asn1 | undefined): string {
  if (!isUniversal(node, Tag.OID)) throw new Error('expected an OBJECT IDENTIFIER');
  return asn1.derToOid(primitive(node));
}

/** The bytes of a BIT STRING made of whole bytes; throws when bits are left unused. */
export function readBitStringBytes(node: Asn1 | undefined): Buffer {
  if (!isUniversal(node, Tag.BITSTRING)) throw new Error('expected a BIT STRING');
  const raw = fromBinary(primitive(node));
  if (raw.length === 0 || raw[0] !== 0) throw new Error('BIT STRING has unused bits');
  return raw.subarray(1);
}

/** Named bits of a BIT STRING (bit 0 = most significant bit of the first byte). */
export function readNamedBits(node: Asn1 | undefined): Set<number> {
  if (!isUniversal(node, Tag.BITSTRING)) throw new Error('expected a BIT STRING');
  const raw = fromBinary(primitive(node));
  const bits = new Set<number>();
  for (let i = 1; i < raw.length; i++) {
    const byte = raw[i] ?? 0;
    for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) bits.add((i - 1) * 8 + b);
  }
  return bits;
}

/** A BIT STRING of named bits, trailing zero bits removed as DER requires. */
export function namedBits(bits: readonly number[]): Asn1 {
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  const unused = 7 - (highest & 7);
  return asn1.create(TagClass.UNIVERSAL, Tag.BITSTRING, false, String.fromCharCode(unused) + toBinary(bytes));
}

/**
 * The exact DER bytes of each element inside a constructed DER element, as found on the wire.
 * Signatures are checked over these bytes, never over a re-encoding.
 */
export function rawChildren(der: Uint8Array): Buffer[] {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const outer = readHeader(buf, 0);
  if (!outer.constructed) throw new Error('expected a constructed element');
  if (outer.contentStart + outer.length !== buf.length) throw new Error('trailing bytes after element');
  const out: Buffer[] = [];
  let at = outer.contentStart;
  while (at < buf.length) {
    const inner = readHeader(buf, at);
    const end = inner.contentStart + inner.length;
    if (end > buf.length) throw new Error('element runs past its parent');
    out.push(buf.subarray(at, end));
    at = end;
  }
  return out;
}

function readHeader(buf: Buffer, at: number): { constructed: boolean; contentStart: number; length: number } {
  const tag = buf[at];
  const first = buf[at + 1];
  if (tag === undefined || first === undefined) throw new Error('truncated element');
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte tags are not supported');
  const constructed = (tag & 0x20) !== 0;
  if (first < 0x80) return { constructed, contentStart: at + 2, length: first };
  const count = first & 0x7f;
  if (count === 0 || count > 4) throw new Error('unsupported length encoding');
  let length = 0;
  for (let i = 0; i < count; i++) {
    const byte = buf[at + 2 + i];
    if (byte === undefined) throw new Error('truncated length');
    length = length * 256 + byte;
  }
  return { constructed, contentStart: at + 2 + count, length };
}
