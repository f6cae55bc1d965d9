// A minimal DER (X.690) encoder: just the types an X.509 v3 certificate needs. Written for the
// injector's own webhook certificates, so that it needs no ASN.1 library.

/** One encoded value: tag, length and contents. */
export type Der = Buffer;

function length(size: number): Buffer {
  if (size < 0x80) return Buffer.from([size]);
  const bytes: number[] = [];
  for (let rest = size; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A value with the given tag byte and contents. */
export function tlv(tag: number, contents: Buffer): Der {
  return Buffer.concat([Buffer.from([tag]), length(contents.length), contents]);
}

export const sequence = (...items: Der[]): Der => tlv(0x30, Buffer.concat(items));
export const set = (...items: Der[]): Der => tlv(0x31, Buffer.concat(items));
export const octetString = (contents: Buffer): Der => tlv(0x04, contents);
export const utf8String = (text: string): Der => tlv(0x0c, Buffer.from(text, 'utf8'));
export const boolean = (value: boolean): Der => tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
/** Context-specific constructed tag [n] EXPLICIT around an encoded value. */
export const explicit = (n: number, value: Der): Der => tlv(0xa0 | n, value);
/** Context-specific primitive tag [n] IMPLICIT with raw contents (e.g. a dNSName is [2]). */
export const implicit = (n: number, contents: Buffer): Der => tlv(0x80 | n, contents);

/** A non-negative INTEGER from big-endian bytes (a leading 0 is added when the top bit is set). */
export function unsignedInteger(bytes: Buffer): Der {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && (bytes[start + 1] ?? 0) < 0x80) start++;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, (trimmed[0] ?? 0) >= 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export const smallInteger = (value: number): Der => unsignedInteger(Buffer.from([value]));

/** A BIT STRING of whole bytes (no unused bits), as signatures and key identifiers are. */
export const bitString = (bytes: Buffer): Der => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));

/** A BIT STRING of named flags (bit 0 = the top bit of the first byte), trailing zeros dropped. */
export function flags(bits: readonly number[]): Der {
  const top = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)]! |= 0x80 >> bit % 8;
  return tlv(0x03, Buffer.concat([Buffer.from([7 - (top % 8)]), bytes]));
}

/** An OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Der {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) {
    const groups: number[] = [];
    for (let value = arc; ; value = Math.floor(value / 128)) {
      groups.unshift((value % 128) | (groups.length === 0 ? 0 : 0x80));
      if (value < 128) break;
    }
    bytes.push(...groups);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 4.1.2.5), to the second. */
export function time(at: Date): Der {
  const iso = at.toISOString(); // 2026-11-22T01:46:41.123Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z'; // 20261122014641Z
  return at.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : tlv(0x18, Buffer.from(digits, 'ascii'));
}
