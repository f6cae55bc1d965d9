// Protocol detection, the pure part: classifies the first bytes a client sent (HTTP/1.x,
// HTTP/2 prior knowledge, TLS ClientHello with SNI/ALPN, or opaque) or asks for more bytes.

export type DetectedProtocol = 'http1' | 'http2' | 'tls' | 'opaque';

export interface Detection {
  readonly protocol: DetectedProtocol;
  /** TLS only: the server name the client asked for. */
  readonly sni?: string | undefined;
  /** TLS only: the ALPN protocols the client offered. */
  readonly alpn?: readonly string[] | undefined;
  /** True when the client sent nothing (or too little) before the detection timeout. */
  readonly timedOut: boolean;
}

export type Classification = Detection | 'need-more';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

// RFC 9110 methods plus the WebDAV and PATCH ones seen in practice.
const HTTP1_METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'MKACTIVITY',
  'CHECKOUT', 'MERGE', 'SEARCH', 'PURGE', 'LINK', 'UNLINK',
].map((m) => Buffer.from(`${m} `, 'latin1'));

/** The most bytes detection waits for (a full ClientHello record fits in 16 KiB + header). */
export const MAX_DETECT_BYTES = 16 * 1024 + 5;

const OPAQUE: Detection = { protocol: 'opaque', timedOut: false };

/** Whether `a` is a prefix of `b` or `b` of `a` (compared over the shorter length). */
function prefixCompatible(buf: Buffer, token: Buffer): boolean {
  const n = Math.min(buf.length, token.length);
  return buf.compare(token, 0, n, 0, n) === 0;
}

/**
 * Classifies `buf` (everything received so far). `ended`: the client will send no more (EOF or
 * timeout), so an undecided prefix is settled as opaque instead of 'need-more'.
 */
export function classify(buf: Buffer, ended = false): Classification {
  if (buf.length === 0) return ended ? OPAQUE : 'need-more';

  if (prefixCompatible(buf, H2_PREFACE)) {
    if (buf.length >= H2_PREFACE.length) return { protocol: 'http2', timedOut: false };
    return ended ? OPAQUE : 'need-more';
  }

  if (buf[0] === 0x16) return classifyTls(buf, ended);

  let maybeHttp1 = false;
  for (const method of HTTP1_METHODS) {
    if (!prefixCompatible(buf, method)) continue;
    if (buf.length >= method.length) return { protocol: 'http1', timedOut: false };
    maybeHttp1 = true;
  }
  if (maybeHttp1 && !ended) return 'need-more';
  return OPAQUE;
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
