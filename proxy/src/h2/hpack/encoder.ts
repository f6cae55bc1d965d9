// HPACK encoder (RFC 7541 §6): a flat [name, value, ...] list in, one header block out, indexing
// what repeats across requests and never indexing credentials. Hand-written so the indexing policy
// is ours and the common path (everything already in a table) allocates only the returned block.
import { DynamicTable, ENTRY_OVERHEAD } from './dynamic-table.js';
import { huffmanEncode, huffmanEncodedLength } from './huffman.js';
import { STATIC_BY_NAME, STATIC_TABLE_LENGTH } from './static-table.js';

export interface HpackEncoderOptions {
  /** The most dynamic table we are willing to use; the peer's SETTINGS_HEADER_TABLE_SIZE may lower it. Default 4096. */
  tableSize?: number;
  /** Use Huffman coding when it is shorter. Default true. */
  huffman?: boolean;
}

/** RFC 9113 §6.5.2: the table size both ends assume until SETTINGS say otherwise. */
const INITIAL_TABLE_SIZE = 4096;
/** Output buffer kept between blocks only up to this size. */
const OUT_KEEP = 64 * 1024;

/** Node's Buffer has this fast path; @types/node does not declare it. */
interface Latin1Buffer extends Buffer {
  latin1Write(str: string, offset: number): number;
}

/** The dynamic entries with one name, by insertion number (DynamicTable.insertCount - 1 at insert). */
interface DynamicName {
  newest: number;
  values: Map<string, number>;
}

/**
 * Writes an integer with an N-bit prefix (§5.1) at out[pos], OR-ing `flags` into the first octet,
 * and returns the position after it. `out` must have room for 6 octets.
 */
export function writeInteger(out: Uint8Array, pos: number, value: number, prefixBits: number, flags: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[pos++] = flags | value;
    return pos;
  }
  out[pos++] = flags | max;
  value -= max;
  while (value >= 128) {
    out[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

/**
 * Fields that differ on every request (trace and request ids): indexing them would only evict the
 * fields that do repeat, and cost a table insert and eviction per request.
 */
const UNIQUE_PER_REQUEST = new Set(['traceparent', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-request-id', 'grpc-timeout']);

/**
 * Fields sent as "never indexed" (§6.2.3, §7.1.3) so no intermediary stores them: credentials, and
 * short cookies, which are guessable by probing the table (long ones are not, and repeat a lot).
 */
function isSensitive(name: string, value: string): boolean {
  switch (name) {
    case 'authorization':
    case 'proxy-authorization':
    case 'set-cookie':
      return true;
    case 'cookie':
      return value.length < 20;
    default:
      return false;
  }
}

/**
 * The encoding half of one connection's HPACK context. Static matches become indexes; other fields
 * are indexed in the dynamic table unless sensitive, large or a path with a query, so headers that
 * repeat across requests cost one octet each.
 */
export class HpackEncoder {
  private readonly table: DynamicTable;
  /** name → its entries in `table`, kept in step by the eviction listener. */
  private readonly dynamic = new Map<string, DynamicName>();
  private readonly ownMaxSize: number;
  private readonly huffman: boolean;
  // Table sizes to announce at the start of the next block (§4.2): the lowest since the last block, then the latest.
  private updatePending = false;
  private pendingMin = 0;
  private pendingFinal = 0;
  private out = Buffer.allocUnsafe(1024) as Latin1Buffer;
  private pos = 0;

  constructor(options: HpackEncoderOptions = {}) {
    this.ownMaxSize = options.tableSize ?? INITIAL_TABLE_SIZE;
    this.huffman = options.huffman ?? true;
    this.table = new DynamicTable(INITIAL_TABLE_SIZE, (name, value, absolute) => this.forget(name, value, absolute));
    this.setPeerMaxTableSize(INITIAL_TABLE_SIZE);
  }

  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE changed: the encoder uses min(its own choice, size) and
   * emits a Dynamic Table Size Update at the start of the next block (§4.2, §6.3), preceded by the
   * smallest size in between if the size went down and then up between blocks.
   */
  setPeerMaxTableSize(size: number): void {
    const next = Math.min(this.ownMaxSize, size);
    if (!this.updatePending) {
      if (next === this.table.maxSize) return;
      this.updatePending = true;
      this.pendingMin = next;
    } else {
      this.pendingMin = Math.min(this.pendingMin, next);
    }
    this.pendingFinal = next;
  }

  /** Encodes a flat [name, value, ...] list (names already lowercase). Returns a Buffer ready to put in HEADERS/CONTINUATION frames. */
  encode(headers: readonly string[] & { readonly neverIndexed?: ReadonlySet<string> }): Buffer {
    this.pos = 0;
    if (this.updatePending) {
      this.updatePending = false;
      this.ensure(12);
      if (this.pendingMin < this.pendingFinal) this.writeSizeUpdate(this.pendingMin);
      if (this.pendingFinal !== this.table.maxSize) this.writeSizeUpdate(this.pendingFinal);
    }
    const never = headers.neverIndexed;
    for (let i = 0; i + 1 < headers.length; i += 2) this.encodeField(headers[i]!, headers[i + 1]!, never !== undefined && never.has(headers[i + 1]!));

    const block = Buffer.allocUnsafe(this.pos);
    // Blocks of indexed fields are a few octets, where a loop beats the native copy's call cost.
    if (this.pos <= 64) for (let i = 0; i < this.pos; i++) block[i] = this.out[i]!;
    else this.out.copy(block, 0, 0, this.pos);
    if (this.out.length > OUT_KEEP) this.out = Buffer.allocUnsafe(1024) as Latin1Buffer;
    return block;
  }

  private encodeField(name: string, value: string, neverIndexed: boolean): void {
    this.ensure(name.length + value.length + 32);
    const table = this.table;
    const fromStatic = STATIC_BY_NAME.get(name);
    const exactStatic = fromStatic?.values.get(value);
    if (exactStatic !== undefined && !neverIndexed) {
      this.pos = writeInteger(this.out, this.pos, exactStatic, 7, 0x80);
      return;
    }
    const fromDynamic = this.dynamic.get(name);
    const exactDynamic = fromDynamic?.values.get(value);
    if (exactDynamic !== undefined && !neverIndexed) {
      this.pos = writeInteger(this.out, this.pos, this.indexOf(exactDynamic), 7, 0x80);
      return;
    }

    let nameIndex = 0;
    if (fromStatic !== undefined) nameIndex = fromStatic.index;
    else if (fromDynamic !== undefined) nameIndex = this.indexOf(fromDynamic.newest);

    const sensitive = neverIndexed || isSensitive(name, value);
    // Not indexed: values over a quarter of the table (one would flush the fields that do repeat),
    // paths with a query string and trace ids (unique per request, so they would only churn the table).
    const indexing =
      !sensitive &&
      value.length <= table.maxSize / 4 &&
      name.length + value.length + ENTRY_OVERHEAD <= table.maxSize &&
      !(name === ':path' && value.includes('?')) &&
      !UNIQUE_PER_REQUEST.has(name);
    if (indexing) this.pos = writeInteger(this.out, this.pos, nameIndex, 6, 0x40);
    else this.pos = writeInteger(this.out, this.pos, nameIndex, 4, sensitive ? 0x10 : 0x00);
    if (nameIndex === 0) this.writeString(name, this.huffman);
    // Ids unique to each request are sent raw: Huffman would save ~15 octets of a hex id at the
    // cost of two passes over it on every request (a measurable share of the relay's CPU).
    this.writeString(value, this.huffman && !UNIQUE_PER_REQUEST.has(name));

    if (indexing && table.add(name, value)) {
      const absolute = table.insertCount - 1;
      if (fromDynamic !== undefined) {
        fromDynamic.newest = absolute;
        fromDynamic.values.set(value, absolute);
      } else {
        this.dynamic.set(name, { newest: absolute, values: new Map([[value, absolute]]) });
      }
    }
  }

  /** HPACK index of the dynamic entry with insertion number `absolute`. */
  private indexOf(absolute: number): number {
    return STATIC_TABLE_LENGTH + this.table.insertCount - absolute;
  }

  /** Eviction listener: drops an evicted entry from `dynamic` unless a newer one has taken its place. */
  private forget(name: string, value: string, absolute: number): void {
    const entries = this.dynamic.get(name);
    if (entries === undefined) return;
    // The evicted entry is the oldest of all, so if it is the newest with its name it is the only one.
    if (entries.newest === absolute) this.dynamic.delete(name);
    else if (entries.values.get(value) === absolute) entries.values.delete(value);
  }

  private writeSizeUpdate(size: number): void {
    this.pos = writeInteger(this.out, this.pos, size, 5, 0x20);
    this.table.setMaxSize(size);
  }

  private writeString(str: string, huffman: boolean): void {
    if (huffman) {
      const length = huffmanEncodedLength(str);
      if (length < str.length) {
        this.pos = writeInteger(this.out, this.pos, length, 7, 0x80);
        this.pos = huffmanEncode(str, this.out, this.pos);
        return;
      }
    }
    this.pos = writeInteger(this.out, this.pos, str.length, 7, 0);
    this.pos += this.out.latin1Write(str, this.pos);
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + bytes)) as Latin1Buffer;
    this.out.copy(grown, 0, 0, this.pos);
    this.out = grown;
  }
}
