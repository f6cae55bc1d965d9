// Reads a TLS ClientHello off a passthrough connection without terminating TLS: the records are
// reassembled (a ClientHello may be fragmented over several, RFC 8446 §5.1), the message is
// checked against its grammar (RFC 8446 §4.1.2, §4.2; RFC 6066 §3; RFC 7301 §3.1) and its server
// name and ALPN list are returned. Hostile input: every length is bounded by the enclosing one,
// the whole message by `maxBytes`, and anything malformed is an error value, never a throw.
// Unlike detect/classify.ts (a lenient classifier that must pass doubtful bytes on), this reader
// refuses: a connection it cannot route is closed.

/** Why a ClientHello was refused (stable codes, counted and logged by the listener). */
export type ClientHelloError =
  | 'not_handshake' // a record of another content type, or not TLS at all (§5.1)
  | 'bad_record' // a record of length 0 or over 2^14 (§5.1), or a version whose major is not 3
  | 'not_client_hello' // the first handshake message is not a ClientHello (§4)
  | 'too_large' // the ClientHello is longer than the limit
  | 'malformed' // a length that does not fit, a vector out of its bounds, trailing bytes
  | 'duplicate_extension' // §4.2: at most one extension of a type
  | 'bad_server_name'; // RFC 6066 §3: empty list, two host names, a name that is not a DNS name

export interface ClientHelloInfo {
  /** The host_name of the server_name extension, lower-case; undefined when the client sent none. */
  readonly sni: string | undefined;
  /** The ALPN protocol names offered (RFC 7301); undefined without the extension. */
  readonly alpn: readonly string[] | undefined;
}

export type ClientHelloResult = { readonly ok: true; readonly value: ClientHelloInfo } | { readonly ok: false; readonly error: ClientHelloError };

/** The largest ClientHello read by default (a post-quantum key share and a PSK ticket fit easily). */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;
/** §5.1: TLSPlaintext.length MUST NOT exceed 2^14. */
const MAX_RECORD = 16 * 1024;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

const fail = (error: ClientHelloError): ClientHelloResult => ({ ok: false, error });

/** Bytes received in chunks; joined only when a whole unit (a record, the message) is there. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first `n` bytes (n <= length), without taking them. */
  peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.chunks, this.length);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  /** Takes the first `n` bytes (n <= length). */
  take(n: number): Buffer {
    const out = this.peek(n);
    const first = this.chunks[0]!;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.length -= n;
    return out;
  }
}

/**
 * Incremental reader: `push` every chunk the client sends until it answers a result. The bytes
 * are not changed; the caller keeps them and relays them once the route is known. Work is linear
 * in the bytes received however they are cut (into chunks or records).
 */
export class ClientHelloReader {
  private readonly raw = new ByteQueue();
  private readonly handshake = new ByteQueue();
  private result: ClientHelloResult | undefined;

  constructor(private readonly maxBytes = MAX_CLIENT_HELLO_BYTES) {}

  /** Adds bytes; answers the result once decided (then always the same), else undefined. */
  push(chunk: Buffer): ClientHelloResult | undefined {
    if (this.result !== undefined) return this.result;
    if (chunk.length === 0) return undefined;
    this.raw.push(chunk);
    // The content type alone says whether this is a handshake: do not wait to refuse the rest.
    if (this.raw.peek(1)[0] !== HANDSHAKE) return (this.result = fail('not_handshake'));
    while (this.result === undefined && this.raw.length >= 5) {
      const header = this.raw.peek(5);
      if (header[0] !== HANDSHAKE) return (this.result = fail('not_handshake'));
      if (header[1] !== 3) return (this.result = fail('bad_record'));
      const length = header.readUInt16BE(3);
      if (length === 0 || length > MAX_RECORD) return (this.result = fail('bad_record'));
      if (this.raw.length < 5 + length) break;
      this.handshake.push(this.raw.take(5 + length).subarray(5));
      this.result = this.settle();
      if (this.result === undefined && this.raw.length > 0 && this.raw.peek(1)[0] !== HANDSHAKE) this.result = fail('not_handshake');
    }
    return this.result;
  }

  /** Decides from the handshake bytes reassembled so far, or undefined to read more records. */
  private settle(): ClientHelloResult | undefined {
    if (this.handshake.length < 4) return undefined;
    const header = this.handshake.peek(4);
    if (header[0] !== CLIENT_HELLO) return fail('not_client_hello');
    const length = header.readUIntBE(1, 3);
    if (length + 4 > this.maxBytes) return fail('too_large');
    if (this.handshake.length < 4 + length) return undefined;
    return parseClientHelloBody(this.handshake.peek(4 + length).subarray(4));
  }
}

/** A bounds-checked cursor: every read fails (returns undefined) past the end of its window. */
class Cursor {
  constructor(
    private readonly buf: Buffer,
    public off = 0,
    private readonly end = buf.length,
  ) {}

  get left(): number {
    return this.end - this.off;
  }

  u8(): number | undefined {
    if (this.left < 1) return undefined;
    return this.buf[this.off++];
  }

  u16(): number | undefined {
    if (this.left < 2) return undefined;
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }

  bytes(n: number): Buffer | undefined {
    if (n < 0 || this.left < n) return undefined;
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }

  /** A vector `<min..max>` with a 1- or 2-byte length prefix; undefined when out of bounds. */
  vector(prefix: 1 | 2, min: number, max: number): Buffer | undefined {
    const n = prefix === 1 ? this.u8() : this.u16();
    if (n === undefined || n < min || n > max) return undefined;
    return this.bytes(n);
  }
}

/** Checks a ClientHello body (after the 4-byte handshake header) and reads SNI and ALPN. */
export function parseClientHelloBody(body: Buffer): ClientHelloResult {
  const c = new Cursor(body);
  // §4.1.2: legacy_version, random[32], legacy_session_id<0..32>, cipher_suites<2..2^16-2>,
  // legacy_compression_methods<1..2^8-1>, extensions<8..2^16-1> (absent in TLS 1.2 and older).
  const version = c.u16();
  if (version === undefined || version >> 8 !== 3) return fail('malformed');
  if (c.bytes(32) === undefined) return fail('malformed');
  if (c.vector(1, 0, 32) === undefined) return fail('malformed');
  const suites = c.vector(2, 2, 0xfffe);
  if (suites === undefined || suites.length % 2 !== 0) return fail('malformed');
  if (c.vector(1, 1, 0xff) === undefined) return fail('malformed');
  if (c.left === 0) return { ok: true, value: { sni: undefined, alpn: undefined } };
  const extensions = c.vector(2, 0, 0xffff);
  if (extensions === undefined || c.left !== 0) return fail('malformed');
  const e = new Cursor(extensions);
  const seen = new Set<number>();
  let sni: string | undefined;
  let alpn: string[] | undefined;
  while (e.left > 0) {
    const type = e.u16();
    const data = e.vector(2, 0, 0xffff);
    if (type === undefined || data === undefined) return fail('malformed');
    if (seen.has(type)) return fail('duplicate_extension');
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = readServerName(data);
      if (!name.ok) return name;
      sni = name.value;
    } else if (type === EXT_ALPN) {
      const list = readAlpn(data);
      if (list === undefined) return fail('malformed');
      alpn = list;
    }
  }
  return { ok: true, value: { sni, alpn } };
}

// RFC 6066 §3 HostName: ASCII, no trailing dot, not an IP literal; labels of letters, digits,
// hyphens (and underscores, which real names carry) of 1..63 bytes.
const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV4 = /^\d+\.\d+\.\d+\.\d+$/;

/** Whether `name` (lower-case) is a host name as RFC 6066 §3 lets a client send it. */
export function isSniHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253 || IPV4.test(name)) return false;
  return name.split('.').every((label) => LABEL.test(label));
}

function readServerName(data: Buffer): { ok: true; value: string } | { ok: false; error: ClientHelloError } {
  // ServerNameList server_name_list<1..2^16-1>; ServerName { NameType name_type; HostName<1..2^16-1> }.
  const c = new Cursor(data);
  const list = c.vector(2, 1, 0xffff);
  if (list === undefined || c.left !== 0) return { ok: false, error: 'bad_server_name' };
  const l = new Cursor(list);
  let host: string | undefined;
  while (l.left > 0) {
    const type = l.u8();
    // Only host_name (0) is defined; the encoding of any other type is unknown, so it cannot be skipped.
    if (type !== 0) return { ok: false, error: 'bad_server_name' };
    const name = l.vector(2, 1, 0xffff);
    if (name === undefined || host !== undefined) return { ok: false, error: 'bad_server_name' };
    for (const b of name) if (b < 0x21 || b > 0x7e) return { ok: false, error: 'bad_server_name' };
    host = name.toString('latin1').toLowerCase();
    if (!isSniHostName(host)) return { ok: false, error: 'bad_server_name' };
  }
  return host === undefined ? { ok: false, error: 'bad_server_name' } : { ok: true, value: host };
}

function readAlpn(data: Buffer): string[] | undefined {
  // RFC 7301 §3.1: ProtocolName protocol_name_list<2..2^16-1>; ProtocolName<1..2^8-1>.
  const c = new Cursor(data);
  const list = c.vector(2, 2, 0xffff);
  if (list === undefined || c.left !== 0) return undefined;
  const l = new Cursor(list);
  const out: string[] = [];
  while (l.left > 0) {
    const name = l.vector(1, 1, 0xff);
    if (name === undefined) return undefined;
    out.push(name.toString('latin1'));
  }
  return out;
}
