// A raw HTTP/2 peer for tests: writes any frame, well-formed or not, and records every frame the
// other side sends, decoded far enough to assert on (type, flags, stream, error code, headers).
import net from 'node:net';
import { HpackDecoder, HpackEncoder } from '../hpack/index.js';
import { CLIENT_PREFACE, FRAME_HEADER_LENGTH, frameHeader, FrameType, Flag, settingsFrame } from '../frame.js';

export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
  /** Decoded header list of HEADERS (+CONTINUATION) frames. */
  headers?: string[];
}

export class RawPeer {
  readonly frames: ReceivedFrame[] = [];
  readonly encoder = new HpackEncoder();
  private readonly decoder = new HpackDecoder({ maxHeaderListSize: 1 << 24 });
  private pending = Buffer.alloc(0);
  private block: { stream: number; parts: Buffer[]; flags: number } | undefined;
  private waiters: Array<() => void> = [];
  closed = false;
  reading = true;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawPeer> {
    const socket = net.connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawPeer(socket);
  }

  /** Client preface and an (optionally empty) SETTINGS frame. */
  preface(settings: ReadonlyArray<readonly [number, number]> = []): this {
    this.socket.write(CLIENT_PREFACE);
    this.socket.write(settingsFrame(settings));
    return this;
  }

  frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): this {
    this.socket.write(Buffer.concat([frameHeader(payload.length, type, flags, stream), payload]));
    return this;
  }

  headers(stream: number, fields: readonly string[], endStream = true): this {
    const block = this.encoder.encode(fields);
    return this.frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), stream, block);
  }

  /** A GET request's fields. */
  static get(path = '/', authority = 'svc'): string[] {
    return [':method', 'GET', ':scheme', 'http', ':path', path, ':authority', authority];
  }

  data(stream: number, data: Buffer | string, endStream = false): this {
    return this.frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, stream, Buffer.from(data));
  }

  rst(stream: number, code: number): this {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(code);
    return this.frame(FrameType.RST_STREAM, 0, stream, p);
  }

  windowUpdate(stream: number, increment: number): this {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(increment);
    return this.frame(FrameType.WINDOW_UPDATE, 0, stream, p);
  }

  settingsAck(): this {
    return this.frame(FrameType.SETTINGS, Flag.ACK, 0);
  }

  /** Stops reading the socket (the kernel buffers fill, the other side's writes back up). */
  pauseReading(): void {
    this.reading = false;
    this.socket.pause();
  }

  /** Resolves with the first received frame matching `match`, waiting up to `timeoutMs`. */
  async waitFor(match: (f: ReceivedFrame) => boolean, timeoutMs = 5000, what = 'frame'): Promise<ReceivedFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found) return found;
      if (this.closed) throw new Error(`connection closed before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; got ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The GOAWAY frame's error code, once one arrives. */
  async goawayCode(timeoutMs = 5000): Promise<number> {
    const f = await this.waitFor((x) => x.type === FrameType.GOAWAY, timeoutMs, 'GOAWAY');
    return f.payload.readUInt32BE(4);
  }

  async rstCode(stream: number, timeoutMs = 5000): Promise<number> {
    const f = await this.waitFor((x) => x.type === FrameType.RST_STREAM && x.stream === stream, timeoutMs, `RST_STREAM on ${stream}`);
    return f.payload.readUInt32BE(0);
  }

  async responseHeaders(stream: number, timeoutMs = 5000): Promise<string[]> {
    const f = await this.waitFor((x) => x.type === FrameType.HEADERS && x.stream === stream, timeoutMs, `HEADERS on ${stream}`);
    return f.headers ?? [];
  }

  async closedBy(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  describe(): string {
    return this.frames.map((f) => `${f.type}/${f.flags}@${f.stream}`).join(' ') || 'nothing';
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private onData(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= FRAME_HEADER_LENGTH) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < FRAME_HEADER_LENGTH + length) break;
      const frame: ReceivedFrame = {
        type: this.pending[3]!,
        flags: this.pending[4]!,
        stream: this.pending.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.pending.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + length)),
      };
      this.pending = this.pending.subarray(FRAME_HEADER_LENGTH + length);
      this.onFrame(frame);
    }
    this.wake();
  }

  private onFrame(frame: ReceivedFrame): void {
    if (frame.type === FrameType.HEADERS || frame.type === FrameType.CONTINUATION) {
      if (frame.type === FrameType.HEADERS) {
        let p = frame.payload;
        if (frame.flags & Flag.PADDED) p = p.subarray(1, p.length - p[0]!);
        if (frame.flags & Flag.PRIORITY) p = p.subarray(5);
        this.block = { stream: frame.stream, parts: [p], flags: frame.flags };
      } else this.block?.parts.push(frame.payload);
      if (frame.flags & Flag.END_HEADERS && this.block) {
        const decoded = this.decoder.decode(Buffer.concat(this.block.parts));
        const merged: ReceivedFrame = { type: FrameType.HEADERS, flags: this.block.flags | Flag.END_HEADERS, stream: this.block.stream, payload: frame.payload, headers: decoded.ok ? decoded.headers : [] };
        this.block = undefined;
        this.frames.push(merged);
      }
      return;
    }
    this.frames.push(frame);
  }
}

/** The value of a field in a decoded list. */
export function field(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
