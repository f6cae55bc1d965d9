// HPACK decoder (RFC 7541 §3, §6): one header block in, a flat latin1 [name, value, ...] list out,
// with every malformed input a COMPRESSION_ERROR value and the header-list limit enforced as it
// decodes. Hand-written so those limits live where the bytes arrive and nothing is built past them.
import { DynamicTable, ENTRY_OVERHEAD } from './dynamic-table.js';
import { huffmanDecode, huffmanDecodedLength, huffmanErrorMessage } from './huffman.js';
import { STATIC_NAMES, STATIC_TABLE_LENGTH, STATIC_VALUES } from './static-table.js';

export interface HpackDecoderOptions {
  /** SETTINGS_HEADER_TABLE_SIZE we advertised: the most a table-size update may ask for. Default 4096. */
  maxTableSize?: number;
  /** Decoded header-list size limit (RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE: sum of name+value+32). Default 65536. */
  maxHeaderListSize?: number;
}

/**
 * A decoded field list. `neverIndexed` holds the values the peer sent as "never indexed" (RFC 7541
 * §6.2.3), which an encoder must send the same way when it forwards them.
 */
export type FieldList = string[] & { neverIndexed?: Set<string> };

/** Records `value` as never-indexed on `fields` (a non-enumerable property: the list stays a plain list). */
export function markNeverIndexed(fields: string[], value: string): void {
  let set = (fields as FieldList).neverIndexed;
  if (!set) {
    set = new Set();
    Object.defineProperty(fields, 'neverIndexed', { value: set, enumerable: false, writable: false });
  }
  set.add(value);
}

export type HpackDecodeResult =
  | { ok: true; headers: string[]; tooLarge: false }
  | { ok: true; headers: string[]; tooLarge: true }
  | { ok: false; message: string };

/** RFC 9113 §6.5.2: the table size both ends assume until SETTINGS say otherwise. */
const INITIAL_TABLE_SIZE = 4096;
const DEFAULT_MAX_HEADER_LIST_SIZE = 65536;
/** Integers above this are refused: no legitimate index, length or size comes near it. */
const MAX_INTEGER = 2 ** 31 - 1;
/** Continuation octets after the prefix: 5 carry 35 bits, enough for MAX_INTEGER. */
const MAX_INTEGER_OCTETS = 5;
/** The Huffman scratch buffer is kept between blocks only up to this size. */
const SCRATCH_KEEP = 16 * 1024;

/** Node's Buffer has this fast path; @types/node does not declare it. */
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
}

const EMPTY = Buffer.alloc(0) as Latin1Buffer;
/** Held between blocks in place of the list just returned; never pushed to. */
const NO_HEADERS: string[] = [];

/** Thrown only inside decode() to unwind to its single catch; never escapes. */
class CompressionError {
  constructor(readonly message: string) {}
}

/**
 * The decoding half of one connection's HPACK context. The dynamic table starts at the protocol's
 * initial 4096 octets; `maxTableSize` bounds the size updates the peer may send, and once
 * setMaxTableSize is called a table above it must be shrunk by the next block's first update.
 */
export class HpackDecoder {
  private readonly table = new DynamicTable(INITIAL_TABLE_SIZE);
  private maxTableSize: number;
  /**
   * Whether setMaxTableSize has been called: until then the peer may not have seen our SETTINGS
   * and may still use the initial 4096 octets, so a smaller advertised size is not yet enforced.
   */
  private settingsAcked = false;
  private readonly maxHeaderListSize: number;
  private scratch: Buffer = Buffer.allocUnsafe(256);

  // Per-block state, reset by decode().
  private block: Latin1Buffer = EMPTY;
  private pos = 0;
  // The string literal just read: its octets block[strStart, strEnd) and whether Huffman-coded.
  private strStart = 0;
  private strEnd = 0;
  private strHuffman = false;
  // The list being built, its size so far (name + value + 32 per field) and whether it passed the limit.
  private headers = NO_HEADERS;
  private listSize = 0;
  private tooLarge = false;

  constructor(options: HpackDecoderOptions = {}) {
    this.maxTableSize = options.maxTableSize ?? INITIAL_TABLE_SIZE;
    this.maxHeaderListSize = options.maxHeaderListSize ?? DEFAULT_MAX_HEADER_LIST_SIZE;
  }

  /** Current dynamic table size in octets (§4.1). */
  get tableSize(): number {
    return this.table.size;
  }

  /**
   * Sets the SETTINGS_HEADER_TABLE_SIZE the peer now knows we advertised (call once our SETTINGS is
   * ACKed). If the table is larger, the next block must start with a size update (§4.2).
   */
  setMaxTableSize(size: number): void {
    this.maxTableSize = size;
    this.settingsAcked = true;
  }

  /** Decodes one complete header block (HEADERS + CONTINUATION fragments already joined). Never throws. */
  decode(block: Uint8Array): HpackDecodeResult {
    this.block = (
      Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength)
    ) as Latin1Buffer;
    this.pos = 0;
    try {
      return this.decodeBlock();
    } catch (err) {
      if (err instanceof CompressionError) return { ok: false, message: err.message };
      return { ok: false, message: `internal HPACK decoder error: ${String(err)}` };
    } finally {
      this.block = EMPTY;
      this.headers = NO_HEADERS;
      if (this.scratch.length > SCRATCH_KEEP) this.scratch = Buffer.allocUnsafe(256);
    }
  }

  private decodeBlock(): HpackDecodeResult {
    const block = this.block;
    const end = block.length;
    const limit = this.settingsAcked ? this.maxTableSize : Math.max(this.maxTableSize, INITIAL_TABLE_SIZE);

    // §4.2: size updates come first (several are allowed), and one is owed if our advertised size
    // went below the table's.
    while (this.pos < end && (block[this.pos]! & 0xe0) === 0x20) {
      const size = this.readInteger(5);
      if (size > limit) {
        throw new CompressionError(`dynamic table size update to ${size} exceeds the advertised ${limit} (RFC 7541 §6.3)`);
      }
      this.table.setMaxSize(size);
    }
    if (this.table.maxSize > limit) {
      throw new CompressionError('header block does not start with the required dynamic table size update (RFC 7541 §4.2)');
    }

    this.headers = [];
    this.listSize = 0;
    this.tooLarge = false;
    while (this.pos < end) {
      const first = block[this.pos]!;
      if (first & 0x80) {
        this.decodeIndexed();
      } else if ((first & 0xe0) === 0x20) {
        throw new CompressionError('dynamic table size update after the start of the header block (RFC 7541 §4.2)');
      } else {
        this.decodeLiteral((first & 0xc0) === 0x40, (first & 0xf0) === 0x10);
      }
    }
    const headers = this.headers;
    return this.tooLarge ? { ok: true, headers: [], tooLarge: true } : { ok: true, headers, tooLarge: false };
  }

  /** §6.1 Indexed Header Field. Past the list limit only the index is checked: O(1), no strings. */
  private decodeIndexed(): void {
    const index = this.readInteger(7);
    if (this.tooLarge) {
      this.checkIndex(index);
      return;
    }
    const name = this.nameAt(index);
    const value = this.valueAt(index);
    if (this.count(name.length + value.length + ENTRY_OVERHEAD)) this.headers.push(name, value);
  }

  /**
   * §6.2 literals: with incremental indexing (01), without (0000) or never indexed (0001). Strings
   * are built only if the field is kept or enters the dynamic table.
   */
  private decodeLiteral(indexing: boolean, neverIndexed: boolean): void {
    const block = this.block;
    const nameIndex = this.readInteger(indexing ? 6 : 4);
    let name = '';
    let nameStart = 0;
    let nameEnd = 0;
    let nameHuffman = false;
    if (nameIndex !== 0) {
      name = this.nameAt(nameIndex);
    } else {
      this.readStringLiteral();
      nameStart = this.strStart;
      nameEnd = this.strEnd;
      nameHuffman = this.strHuffman;
    }
    this.readStringLiteral();
    const valueStart = this.strStart;
    const valueEnd = this.strEnd;
    const valueHuffman = this.strHuffman;

    if (this.tooLarge && !indexing) {
      // Nothing of this field is kept: only check that it is well-formed.
      if (nameHuffman) this.validateHuffman(nameStart, nameEnd);
      if (valueHuffman) this.validateHuffman(valueStart, valueEnd);
      return;
    }

    // Huffman strings are decoded into scratch (name first, then value) to learn their lengths.
    let nameLength = name.length;
    if (nameIndex === 0) nameLength = nameHuffman ? this.huffmanToScratch(nameStart, nameEnd, 0) : nameEnd - nameStart;
    const valueOffset = nameHuffman ? nameLength : 0;
    const valueLength = valueHuffman
      ? this.huffmanToScratch(valueStart, valueEnd, valueOffset)
      : valueEnd - valueStart;

    const fieldSize = nameLength + valueLength + ENTRY_OVERHEAD;
    const keep = !this.tooLarge && this.count(fieldSize);
    const insert = indexing && fieldSize <= this.table.maxSize;
    if (keep || insert) {
      if (nameIndex === 0) {
        name = nameHuffman ? this.scratchString(0, nameLength) : block.latin1Slice(nameStart, nameEnd);
      }
      const value = valueHuffman
        ? this.scratchString(valueOffset, valueOffset + valueLength)
        : block.latin1Slice(valueStart, valueEnd);
      if (insert) this.table.add(name, value);
      if (keep) {
        this.headers.push(name, value);
        // §6.2.3: an intermediary re-encodes such a field never-indexed too; the list carries it.
        if (neverIndexed) markNeverIndexed(this.headers, value);
      }
    }
    // §4.4: an entry larger than the table empties it (and is not built for the table's sake).
    if (indexing && !insert) this.table.evictAll();
  }

  /** Adds a field to the list size; returns whether it is within the limit (else drops the list). */
  private count(fieldSize: number): boolean {
    this.listSize += fieldSize;
    if (this.listSize <= this.maxHeaderListSize) return true;
    this.tooLarge = true;
    this.headers = [];
    return false;
  }

  /** Reads an integer with an N-bit prefix at pos (§5.1). */
  private readInteger(prefixBits: number): number {
    const block = this.block;
    const end = block.length;
    const max = (1 << prefixBits) - 1;
    let value = block[this.pos++]! & max;
    if (value < max) return value;
    let shift = 1;
    for (let octets = 0; ; octets++) {
      if (this.pos >= end) throw new CompressionError('header block truncated inside an integer (RFC 7541 §5.1)');
      if (octets === MAX_INTEGER_OCTETS) throw new CompressionError('integer encoding too long (RFC 7541 §5.1)');
      const octet = block[this.pos++]!;
      value += (octet & 0x7f) * shift;
      if (value > MAX_INTEGER) throw new CompressionError('integer exceeds 2^31 - 1 (RFC 7541 §5.1)');
      if ((octet & 0x80) === 0) return value;
      shift *= 128;
    }
  }

  /** Reads a string literal's header (§5.2) and records where its octets are; pos moves past them. */
  private readStringLiteral(): void {
    if (this.pos >= this.block.length) {
      throw new CompressionError('header block truncated before a string literal (RFC 7541 §5.2)');
    }
    this.strHuffman = (this.block[this.pos]! & 0x80) !== 0;
    const length = this.readInteger(7);
    if (length > this.block.length - this.pos) {
      throw new CompressionError('string literal length exceeds the header block (RFC 7541 §5.2)');
    }
    this.strStart = this.pos;
    this.strEnd = this.pos + length;
    this.pos = this.strEnd;
  }

  /** Decodes block[start, end) into scratch at offset; returns the decoded length. */
  private huffmanToScratch(start: number, end: number, offset: number): number {
    // Every code is at least 5 bits, which bounds the decoded length.
    const needed = offset + Math.floor(((end - start) * 8) / 5);
    if (needed > this.scratch.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.scratch.length * 2));
      this.scratch.copy(grown, 0, 0, offset);
      this.scratch = grown;
    }
    const n = huffmanDecode(this.block, start, end, this.scratch, offset);
    if (n < 0) throw new CompressionError(huffmanErrorMessage(n));
    return n;
  }

  private validateHuffman(start: number, end: number): void {
    const n = huffmanDecodedLength(this.block, start, end);
    if (n < 0) throw new CompressionError(huffmanErrorMessage(n));
  }

  private scratchString(start: number, end: number): string {
    return (this.scratch as Latin1Buffer).latin1Slice(start, end);
  }

  private checkIndex(index: number): void {
    if (index === 0) throw new CompressionError('index 0 is not a valid table index (RFC 7541 §6.1)');
    if (index > STATIC_TABLE_LENGTH + this.table.length) {
      throw new CompressionError(`index ${index} is beyond the static and dynamic tables (RFC 7541 §2.3.3)`);
    }
  }

  private nameAt(index: number): string {
    this.checkIndex(index);
    return index <= STATIC_TABLE_LENGTH ? STATIC_NAMES[index]! : this.table.name(index - STATIC_TABLE_LENGTH - 1);
  }

  private valueAt(index: number): string {
    return index <= STATIC_TABLE_LENGTH ? STATIC_VALUES[index]! : this.table.value(index - STATIC_TABLE_LENGTH - 1);
  }
}
