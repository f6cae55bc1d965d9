// Property-based tests of the frame reader: random and mutated byte streams, cut at random
// points, never throw out of the connection, never hand on a malformed request, and never hold
// more than the limits allow.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { H2Connection, type H2ConnectionOwner } from './connection.js';
import { CLIENT_PREFACE, frameHeader, Flag, FrameType, settingsFrame } from './frame.js';
import { HpackEncoder } from './hpack/index.js';
import { h2Limits } from './limits.js';
import type { H2Stream } from './stream.js';

/** Enough of net.Socket for a connection: writes are collected, reads are pushed by the test. */
class FakeSocket extends EventEmitter {
  written = 0;
  destroyed = false;
  writableEnded = false;
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  write(buf: Buffer): boolean {
    this.written += buf.length;
    return true;
  }
  cork(): void {}
  uncork(): void {}
  end(): void {
    this.writableEnded = true;
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
  setNoDelay(): void {}
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** An oracle written apart from validate.ts: what a request handed on must look like. */
function wellFormed(fields: readonly string[]): boolean {
  let regular = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (/[\0\r\n]/.test(value)) return false;
    if (name.startsWith(':')) {
      if (regular || ![':method', ':scheme', ':path', ':authority', ':protocol'].includes(name)) return false;
    } else {
      regular = true;
      if (!TCHAR.test(name)) return false;
      if (['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'].includes(name)) return false;
      if (name === 'te' && value !== 'trailers') return false;
    }
  }
  return fields.includes(':method');
}

interface Run {
  conn: H2Connection;
  socket: FakeSocket;
  handedOn: string[][];
  counted: string[];
}

function start(): Run {
  const socket = new FakeSocket();
  const handedOn: string[][] = [];
  const owner: H2ConnectionOwner = {
    onStream: (stream: H2Stream, _head, fields) => {
      handedOn.push(fields);
      stream.handler = {
        onHeaders: () => undefined,
        onData: (s, data) => s.conn.consumed(s, data.length),
        onTrailers: () => undefined,
        onReset: () => undefined,
        onClose: () => undefined,
      };
    },
  };
  const counted: string[] = [];
  const limits = h2Limits({ maxConcurrentStreams: 20, idleTimeoutMs: 0, streamIdleTimeoutMs: 0, prefaceTimeoutMs: 0 });
  const conn = new H2Connection(socket as unknown as Socket, 'server', limits, owner, { protection: (kind) => counted.push(kind) });
  conn.start();
  return { conn, socket, handedOn, counted };
}

function feed(run: Run, bytes: Buffer, cuts: number[]): void {
  let offset = 0;
  for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
    if (cut <= offset) continue;
    run.socket.emit('data', bytes.subarray(offset, cut));
    offset = cut;
  }
}

const encoder = (): HpackEncoder => new HpackEncoder({ huffman: false });

/** A frame: any type (unknown ones too), any flags, a small stream id, a payload. */
const anyFrame = fc.record({
  type: fc.integer({ min: 0, max: 12 }),
  flags: fc.integer({ min: 0, max: 255 }),
  stream: fc.integer({ min: 0, max: 9 }),
  payload: fc.uint8Array({ maxLength: 64 }),
});

const fieldName = fc.oneof(fc.constantFrom('x-a', 'content-type', 'te', 'connection', 'Host', 'x-Up', ':path', ':status', ':foo', 'content-length', ''), fc.string({ maxLength: 6 }));
const fieldValue = fc.oneof(fc.constantFrom('1', 'trailers', 'a\r\nb', '/x', 'GET', ' pad'), fc.string({ maxLength: 8 }));
/** Header lists that are often valid and often subtly not. */
const headerList = fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 8 }).map((extra) => {
  const base = [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'a'];
  return [...base, ...extra.flat()];
});

describe('the frame reader under random input', () => {
  it('random frames after a good preface never throw, and nothing malformed is handed on', () => {
    fc.assert(
      fc.property(fc.array(anyFrame, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 6 }), (frames, cuts) => {
        const run = start();
        const bytes = Buffer.concat([
          CLIENT_PREFACE,
          settingsFrame([]),
          ...frames.map((f) => Buffer.concat([frameHeader(f.payload.length, f.type, f.flags, f.stream), Buffer.from(f.payload)])),
        ]);
        feed(run, bytes, cuts);
        for (const fields of run.handedOn) expect(wellFormed(fields)).toBe(true);
        // An exception inside the codec is caught (the connection alone pays) and counted: none may happen.
        expect(run.counted).not.toContain('internal_error');
        expect(run.conn.activeStreams).toBeLessThanOrEqual(20);
      }),
      { numRuns: 400 },
    );
  });

  it('header blocks of random fields: only well-formed requests are handed on, and the connection survives a bad one', () => {
    fc.assert(
      fc.property(fc.array(headerList, { minLength: 1, maxLength: 10 }), (lists) => {
        const run = start();
        const enc = encoder();
        const frames = lists.map((fields, i) => {
          const block = enc.encode(fields.map((s) => s));
          return Buffer.concat([frameHeader(block.length, FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 2 * i + 1), block]);
        });
        feed(run, Buffer.concat([CLIENT_PREFACE, settingsFrame([]), ...frames]), []);
        for (const fields of run.handedOn) expect(wellFormed(fields)).toBe(true);
        expect(run.counted).not.toContain('internal_error');
        // Bad requests are stream errors only: every well-formed one was handed on.
        expect(run.handedOn.length).toBe(lists.filter((l) => wellFormed(l) && validAuthorityAndTe(l)).length);
        expect(run.conn.dead).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('bit flips in a valid exchange never throw and never hand on a malformed request', () => {
    const enc = encoder();
    const valid = Buffer.concat([
      CLIENT_PREFACE,
      settingsFrame([[4, 100000]]),
      ...[1, 3, 5].map((id) => {
        const block = enc.encode([':method', 'POST', ':scheme', 'http', ':path', `/p${id}`, ':authority', 'svc', 'content-type', 'application/grpc', 'te', 'trailers']);
        const body = Buffer.from('hello world');
        return Buffer.concat([frameHeader(block.length, FrameType.HEADERS, Flag.END_HEADERS, id), block, frameHeader(body.length, FrameType.DATA, Flag.END_STREAM, id), body]);
      }),
    ]);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 4 }), (flips, cuts) => {
        const bytes = Buffer.from(valid);
        for (const [at, value] of flips) if (at >= CLIENT_PREFACE.length) bytes[at] = value;
        const run = start();
        feed(run, bytes, cuts);
        for (const fields of run.handedOn) expect(wellFormed(fields)).toBe(true);
        expect(run.counted).not.toContain('internal_error');
      }),
      { numRuns: 500 },
    );
  });

  it('a partial frame is never held beyond one frame of the advertised size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16_384 + 8 }), (size) => {
        const run = start();
        run.socket.emit('data', Buffer.concat([CLIENT_PREFACE, settingsFrame([])]));
        // Declares a frame over the limit: refused as soon as its header is read.
        run.socket.emit('data', frameHeader(16_385 + size, FrameType.DATA, 0, 1));
        expect(run.conn.dead).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
});

/** The checks validate.ts makes beyond the oracle's: the test counts only lists that pass both. */
function validAuthorityAndTe(fields: readonly string[]): boolean {
  const seen = new Set<string>();
  let hosts = 0;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name.startsWith(':') && seen.has(name)) return false;
    seen.add(name);
    if (name === 'host') {
      hosts++;
      if (value.toLowerCase() !== 'a') return false;
    }
    if (name === '') return false;
    // eslint-disable-next-line no-control-regex -- the control characters a header value may not hold
    if (value !== value.trim() || /[\x00-\x08\x0a-\x1f\x7f]/.test(value)) return false;
    if ([...value].some((c) => c.charCodeAt(0) > 0xff)) return false;
    if (name === 'content-length' && !/^\d{1,15}$/.test(value)) return false;
    if (name === 'content-length' && value !== '0') return false; // END_STREAM with a promised body
  }
  return hosts <= 1;
}
