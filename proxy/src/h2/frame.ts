// HTTP/2 frame layout (RFC 9113 §4, §6): type, flag, error-code and setting numbers, and the
// builders of the frames the connection writes. Payloads stay views of the bytes read; only the
// 9-octet headers are allocated.

export const FRAME_HEADER_LENGTH = 9;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** RFC 9113 §7. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const ERROR_NAMES = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

export function errorName(code: number): string {
  return ERROR_NAMES.get(code) ?? `0x${code.toString(16)}`;
}

/** RFC 9113 §6.5.2. */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 0x7fff_ffff;
export const MIN_MAX_FRAME_SIZE = 16_384;
export const MAX_MAX_FRAME_SIZE = 16_777_215;

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  h[0] = (length >>> 16) & 0xff;
  h[1] = (length >>> 8) & 0xff;
  h[2] = length & 0xff;
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & MAX_WINDOW, 5);
  return h;
}

/** A whole frame whose payload is a few 32-bit words (RST_STREAM, WINDOW_UPDATE, GOAWAY's head). */
function wordsFrame(type: number, flags: number, streamId: number, words: readonly number[], extra?: Buffer): Buffer {
  const length = words.length * 4 + (extra?.length ?? 0);
  const f = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + length);
  f[0] = (length >>> 16) & 0xff;
  f[1] = (length >>> 8) & 0xff;
  f[2] = length & 0xff;
  f[3] = type;
  f[4] = flags;
  f.writeUInt32BE(streamId, 5);
  for (let i = 0; i < words.length; i++) f.writeUInt32BE(words[i] ?? 0, FRAME_HEADER_LENGTH + i * 4);
  if (extra) extra.copy(f, FRAME_HEADER_LENGTH + words.length * 4);
  return f;
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  return wordsFrame(FrameType.RST_STREAM, 0, streamId, [code]);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  return wordsFrame(FrameType.WINDOW_UPDATE, 0, streamId, [increment]);
}

export function goawayFrame(lastStreamId: number, code: number, debug?: string): Buffer {
  return wordsFrame(FrameType.GOAWAY, 0, 0, [lastStreamId & MAX_WINDOW, code], debug ? Buffer.from(debug.slice(0, 200), 'latin1') : undefined);
}

export function pingFrame(opaque: Uint8Array, ack: boolean): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 8);
  f.fill(0, 0, FRAME_HEADER_LENGTH);
  f[2] = 8;
  f[3] = FrameType.PING;
  f[4] = ack ? Flag.ACK : 0;
  f.set(opaque.subarray(0, 8), FRAME_HEADER_LENGTH);
  return f;
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + settings.length * 6);
  const length = settings.length * 6;
  f[0] = 0;
  f[1] = (length >>> 8) & 0xff;
  f[2] = length & 0xff;
  f[3] = FrameType.SETTINGS;
  f[4] = 0;
  f.writeUInt32BE(0, 5);
  settings.forEach(([id, value], i) => {
    f.writeUInt16BE(id, FRAME_HEADER_LENGTH + i * 6);
    f.writeUInt32BE(value >>> 0, FRAME_HEADER_LENGTH + i * 6 + 2);
  });
  return f;
}

export const SETTINGS_ACK = (() => {
  const f = Buffer.alloc(FRAME_HEADER_LENGTH);
  f[3] = FrameType.SETTINGS;
  f[4] = Flag.ACK;
  return f;
})();

/**
 * HEADERS (+ CONTINUATION when the block is larger than the peer's frame size) for one header
 * block, as buffers to write in order.
 */
export function headerFrames(streamId: number, block: Buffer, endStream: boolean, maxFrameSize: number): Buffer[] {
  if (block.length <= maxFrameSize) {
    const h = frameHeader(block.length, FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId);
    return [h, block];
  }
  const out: Buffer[] = [];
  let offset = 0;
  let first = true;
  while (offset < block.length) {
    const end = Math.min(block.length, offset + maxFrameSize);
    const last = end === block.length;
    const type = first ? FrameType.HEADERS : FrameType.CONTINUATION;
    const flags = (last ? Flag.END_HEADERS : 0) | (first && endStream ? Flag.END_STREAM : 0);
    out.push(frameHeader(end - offset, type, flags, streamId), block.subarray(offset, end));
    offset = end;
    first = false;
  }
  return out;
}
