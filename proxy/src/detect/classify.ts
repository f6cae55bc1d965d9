// Protocol detection, the pure part: classifies the first bytes a client sent (an HTTP/1.x request
// line with any token method, HTTP/2 prior knowledge, TLS ClientHello with SNI/ALPN, or opaque)
// or asks for more bytes.

export type DetectedProtocol = 'http1' | 'http2' | 'tls' | 'opaque';

export interface Detection {
  readonly protocol: DetectedProtocol;
  /** TLS only: the server name the client asked for. */
  readonly sni?: string | undefined;
  /** TLS only: the ALPN protocols the client offered. */
  readonly alpn?: readonly string[] | undefined;
  /** True when the client sent nothing (or too little) before the detection timeout. */
  readonly timedOut: boolean;
  /**
   * HTTP/1 only: the client began a request line but did not finish it within the request-line
   * limit. Handed to an HTTP parser it would be answered there; never pass it on as bytes.
   */
  readonly incomplete?: true;
}

export type Classification = Detection | 'need-more';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** The most bytes detection waits for (a full ClientHello record fits in 16 KiB + header). */
export const MAX_DETECT_BYTES = 16 * 1024 + 5;

const OPAQUE: Detection = { protocol: 'opaque', timedOut: false };
const HTTP1: Detection = { protocol: 'http1', timedOut: false };

/** Whether `a` is a prefix of `b` or `b` of `a` (compared over the shorter length). */
function prefixCompatible(buf: Buffer, token: Buffer): boolean {
  const n = Math.min(buf.length, token.length);
  return buf.compare(token, 0, n, 0, n) === 0;
}

// RFC 9110 §5.6.2 tchar: the bytes a method (any token) is made of.
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;

/** The rest of a request line after its method: target, then `HTTP/<digit>...` (any case, any blanks). */
const AFTER_METHOD = /^[ \t\r]+[^ \t\r][\s\S]*[ \t\r]HTTP\/\d[^ \t\r]*[ \t\r]*$/i;
/** `GET <target>` alone: the HTTP/0.9 form, which some servers still read headers after. */
const AFTER_GET_09 = /^[ \t\r]+[^ \t\r]+[ \t\r]*$/;

export type RequestLineShape = 'line' | 'prefix' | 'no';

/**
 * How much of an HTTP/1 request line `buf` holds, judged as leniently as any server the
 * application might run would parse it (what is called HTTP here goes to a strict parser that
 * answers 400 to what it refuses; what is not is passed on as bytes, so doubt must favour HTTP):
 * empty lines and blanks before it are skipped (RFC 9112 §2.2), the method is any token of any
 * case, and the line is `METHOD target HTTP/x.y` (or `GET target`). `'line'`: a whole such line;
 * `'prefix'`: no line end yet and what came could still become one; `'no'`: it cannot.
 */
export function http1RequestLine(buf: Buffer): RequestLineShape {
  const n = buf.length;
  let i = 0;
  while (i < n && (buf[i] === CR || buf[i] === LF || buf[i] === SP || buf[i] === HTAB)) i++;
  if (i === n) return n > 0 ? 'prefix' : 'no';
  const methodStart = i;
  while (i < n && TCHAR[buf[i] ?? 0] === 1) i++;
  if (i === methodStart) return 'no';
  if (i === n) return 'prefix';
  if (buf[i] !== SP && buf[i] !== HTAB) return 'no';
  const lineEnd = buf.indexOf(LF, i);
  const end = lineEnd === -1 ? n : lineEnd;
  for (let j = i; j < end; j++) {
    const b = buf[j] ?? 0;
    // Control bytes never appear in a request line (CR and HTAB pass as blanks): binary, not HTTP.
    if ((b < SP && b !== HTAB && b !== CR) || b === 0x7f) return 'no';
  }
  if (lineEnd === -1) return 'prefix';
  const rest = buf.toString('latin1', i, lineEnd);
  if (AFTER_METHOD.test(rest)) return 'line';
  return buf.toString('latin1', methodStart, i) === 'GET' && AFTER_GET_09.test(rest) ? 'line' : 'no';
}

/**
 * Classifies `buf` (everything received so far). `ended`: the client will send no more (EOF or
 * timeout), so an undecided prefix is settled instead of 'need-more': a partial HTTP/2 preface is
 * judged by the HTTP/1 rules, a partial request line is opaque (no header can follow it). The
 * caller that ends on a timeout should first check `http1RequestLine` (see detect.ts): a client
 * still sending a request line must not be turned into opaque bytes.
 */
export function classify(buf: Buffer, ended = false): Classification {
  if (buf.length === 0) return ended ? OPAQUE : 'need-more';

  if (prefixCompatible(buf, H2_PREFACE)) {
    if (buf.length >= H2_PREFACE.length) return { protocol: 'http2', timedOut: false };
    if (!ended) return 'need-more';
  }

  if (buf[0] === 0x16) return classifyTls(buf, ended);

  switch (http1RequestLine(buf)) {
    case 'line':
      return HTTP1;
    case 'prefix':
      // A request line longer than we peek is still one; the HTTP parser enforces its own limits.
      if (buf.length >= MAX_DETECT_BYTES) return HTTP1;
      return ended ? OPAQUE : 'need-more';
    default:
      return OPAQUE;
  }
}

function classifyTls(buf: Buffer, ended: boolean): Classification {
  // Record header: type 0x16 (handshake), version 3.x, 2-byte length.
  if (buf.length < 3) return ended ? OPAQUE : 'need-more';
  if (buf[1] !== 0x03 || (buf[2] ?? 0xff) > 0x04) return OPAQUE;
  if (buf.length < 5) return ended ? OPAQUE : 'need-more';
  const recordLength = buf.readUInt16BE(3);
  if (buf.length < 5 + recordLength) {
    // A ClientHello larger than what we peek still is TLS; we just cannot read its SNI.
    if (ended || buf.length >= MAX_DETECT_BYTES) return { protocol: 'tls', timedOut: false };
    return 'need-more';
  }
  const hello = parseClientHello(buf.subarray(5, 5 + recordLength));
  if (!hello) return OPAQUE;
  return { protocol: 'tls', sni: hello.sni, alpn: hello.alpn, timedOut: false };
}

interface ClientHelloInfo {
  sni: string | undefined;
  alpn: string[] | undefined;
}

/** Reads SNI and ALPN out of a handshake message; undefined when it is not a well-formed ClientHello. */
export function parseClientHello(msg: Buffer): ClientHelloInfo | undefined {
  try {
    if (msg[0] !== 0x01) return undefined; // handshake type client_hello
    const length = msg.readUIntBE(1, 3);
    const body = msg.subarray(4, 4 + length);
    let off = 2 + 32; // client_version + random
    off += 1 + body.readUInt8(off); // session id
    off += 2 + body.readUInt16BE(off); // cipher suites
    off += 1 + body.readUInt8(off); // compression methods
    if (off >= body.length) return { sni: undefined, alpn: undefined };
    const extEnd = off + 2 + body.readUInt16BE(off);
    off += 2;
    let sni: string | undefined;
    let alpn: string[] | undefined;
    while (off + 4 <= extEnd && off + 4 <= body.length) {
      const type = body.readUInt16BE(off);
      const len = body.readUInt16BE(off + 2);
      const data = body.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      if (type === 0x0000) sni = readSni(data);
      else if (type === 0x0010) alpn = readAlpn(data);
    }
    return { sni, alpn };
  } catch {
    return undefined; // ran off the end: truncated or not a ClientHello
  }
}

function readSni(data: Buffer): string | undefined {
  let off = 2; // server_name_list length
  while (off + 3 <= data.length) {
    const nameType = data.readUInt8(off);
    const len = data.readUInt16BE(off + 1);
    if (nameType === 0) return data.subarray(off + 3, off + 3 + len).toString('latin1');
    off += 3 + len;
  }
  return undefined;
}

function readAlpn(data: Buffer): string[] {
  const out: string[] = [];
  let off = 2;
  while (off < data.length) {
    const len = data.readUInt8(off);
    out.push(data.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  return out;
}
