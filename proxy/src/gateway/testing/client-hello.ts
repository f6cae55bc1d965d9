// Test ClientHellos: built field by field (RFC 8446 §4.1.2) so a test can break exactly one, cut
// into records of any size (§5.1), or captured from Node's own TLS client.
import net from 'node:net';
import tls from 'node:tls';

export interface Extension {
  readonly type: number;
  readonly data: Buffer;
}

export interface HelloParts {
  readonly version?: number;
  readonly sessionId?: Buffer;
  /** The cipher_suites vector's content (2 bytes per suite). */
  readonly suites?: Buffer;
  readonly compression?: Buffer;
  /** null: no extensions block at all (TLS 1.2 allows it). */
  readonly extensions?: readonly Extension[] | null;
  /** Bytes after the extensions, inside the message. */
  readonly trailing?: Buffer;
}

const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const vec8 = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length]), b]);
const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);

/** server_name with one host_name entry per name (RFC 6066 §3). */
export function sniExtension(...names: readonly string[]): Extension {
  const list = Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([0]), vec16(Buffer.from(n, 'latin1'))])));
  return { type: 0, data: vec16(list) };
}

/** server_name with raw entries: [name_type, bytes]. */
export function rawSniExtension(entries: readonly (readonly [number, Buffer])[]): Extension {
  return { type: 0, data: vec16(Buffer.concat(entries.map(([t, b]) => Buffer.concat([Buffer.from([t]), vec16(b)])))) };
}

/** application_layer_protocol_negotiation (RFC 7301 §3.1). */
export function alpnExtension(...protocols: readonly string[]): Extension {
  return { type: 16, data: vec16(Buffer.concat(protocols.map((p) => vec8(Buffer.from(p, 'latin1'))))) };
}

/** supported_versions offering TLS 1.3 and 1.2, so the hello looks like a modern one. */
export const SUPPORTED_VERSIONS: Extension = { type: 43, data: Buffer.from([4, 3, 4, 3, 3]) };

/** The ClientHello body (after the handshake header). */
export function clientHelloBody(parts: HelloParts = {}): Buffer {
  const extensions = parts.extensions === undefined ? [sniExtension('example.com'), SUPPORTED_VERSIONS] : parts.extensions;
  const ext = extensions === null ? Buffer.alloc(0) : vec16(Buffer.concat(extensions.map((e) => Buffer.concat([u16(e.type), vec16(e.data)]))));
  return Buffer.concat([
    u16(parts.version ?? 0x0303),
    Buffer.alloc(32, 7),
    vec8(parts.sessionId ?? Buffer.alloc(32, 1)),
    vec16(parts.suites ?? Buffer.from([0x13, 0x01, 0x13, 0x02])),
    vec8(parts.compression ?? Buffer.from([0])),
    ext,
    parts.trailing ?? Buffer.alloc(0),
  ]);
}

/** A handshake message: type, 24-bit length, body. */
export function handshake(body: Buffer, type = 1, declaredLength = body.length): Buffer {
  return Buffer.concat([Buffer.from([type, (declaredLength >> 16) & 0xff, (declaredLength >> 8) & 0xff, declaredLength & 0xff]), body]);
}

/** `message` cut into records of at most `fragment` bytes (content type 22 unless told). */
export function records(message: Buffer, fragment = 16384, contentType = 22, version = 0x0301): Buffer {
  const out: Buffer[] = [];
  for (let off = 0; off < message.length; off += fragment) {
    const piece = message.subarray(off, off + fragment);
    out.push(Buffer.concat([Buffer.from([contentType]), u16(version), u16(piece.length), piece]));
  }
  return Buffer.concat(out);
}

/** A whole ClientHello as it comes on the wire, in one record. */
export function clientHello(parts: HelloParts = {}): Buffer {
  return records(handshake(clientHelloBody(parts)));
}

/** The first flight Node's TLS client sends for `servername` (captured by a plain TCP server). */
export async function capturedClientHello(servername: string, alpn: readonly string[] = ['h2', 'http/1.1']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => {
    const client = tls.connect({ host: '127.0.0.1', port, servername, ALPNProtocols: [...alpn], rejectUnauthorized: false });
    client.on('error', () => resolve());
    client.on('close', () => resolve());
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return Buffer.concat(chunks);
}
