// H2Connection (server side) against a raw peer that writes frames by hand: conformance by RFC 9113
// section, and one test per protection of limits.ts.
import net from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { H2Connection, type H2ConnectionOwner } from './connection.js';
import { ErrorCode, Flag, FrameType, Setting } from './frame.js';
import { h2Limits, type H2Limits, type H2ProtectionKind } from './limits.js';
import type { H2Stream, H2StreamHandler } from './stream.js';
import { field, RawPeer } from './testing/raw-peer.js';

/** Answers every request with 200 and `path:<path> body:<bytes received>`, after the request ends. */
class EchoOwner implements H2ConnectionOwner {
  streams = 0;
  readonly counted: H2ProtectionKind[] = [];
  onStream(stream: H2Stream, head: { path: string | undefined }, _fields: string[], endStream: boolean): void {
    this.streams++;
    let received = 0;
    const answer = (): void => {
      stream.conn.sendHeaders(stream, [':status', '200', 'x-path', head.path ?? ''], false);
      stream.write(Buffer.from(`body:${received}`), true);
    };
    const handler: H2StreamHandler = {
      onHeaders: () => undefined,
      onData: (s, data, end) => {
        received += data.length;
        s.conn.consumed(s, data.length);
        if (end) answer();
      },
      onTrailers: () => answer(),
      onReset: () => undefined,
      onClose: () => undefined,
    };
    stream.handler = handler;
    if (endStream) answer();
  }
}

const servers: net.Server[] = [];
const peers: RawPeer[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
  for (const s of servers.splice(0)) s.close();
});

async function serve(limits: Partial<H2Limits> = {}, owner = new EchoOwner()): Promise<{ peer: RawPeer; owner: EchoOwner; conns: H2Connection[] }> {
  const conns: H2Connection[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const conn = new H2Connection(socket, 'server', h2Limits(limits), owner, { protection: (k) => owner.counted.push(k) });
    conns.push(conn);
    conn.start();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const peer = await RawPeer.connect((server.address() as net.AddressInfo).port);
  peers.push(peer);
  return { peer, owner, conns };
}

const setting = (id: number, value: number): Buffer => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(id);
  b.writeUInt32BE(value >>> 0, 2);
  return b;
};
const body = (frames: RawPeer['frames'], stream: number): string =>
  Buffer.concat(frames.filter((f) => f.type === FrameType.DATA && f.stream === stream).map((f) => f.payload)).toString();

describe('RFC 9113 3.4 connection preface', () => {
  it('answers a good preface with its SETTINGS and an ACK of the peer\'s', async () => {
    const { peer } = await serve();
    peer.preface();
    await peer.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0);
    await peer.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0);
  });

  it('closes a connection that does not start with the client preface', async () => {
    const { peer } = await serve();
    peer.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(await peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
    await peer.closedBy();
  });

  it('requires SETTINGS as the first frame', async () => {
    const { peer } = await serve();
    peer.socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    peer.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
    expect(await peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });
});

describe('RFC 9113 4.2 frame size', () => {
  it('refuses a frame over SETTINGS_MAX_FRAME_SIZE with FRAME_SIZE_ERROR', async () => {
    const { peer } = await serve();
    peer.preface().headers(1, RawPeer.get(), false).data(1, Buffer.alloc(16_385), true);
    expect(await peer.goawayCode()).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });
});

describe('RFC 9113 6.2 HEADERS', () => {
  it('refuses HEADERS whose PRIORITY flag promises more octets than it has (found by the property test)', async () => {
    const { peer, owner } = await serve();
    peer.preface().frame(FrameType.HEADERS, Flag.PRIORITY | Flag.END_HEADERS, 1, Buffer.alloc(2));
    expect(await peer.goawayCode()).toBe(ErrorCode.FRAME_SIZE_ERROR);
    expect(owner.counted).not.toContain('internal_error');
  });

  it('refuses padding longer than the frame', async () => {
    const { peer } = await serve();
    peer.preface().frame(FrameType.HEADERS, Flag.PADDED | Flag.END_HEADERS, 1, Buffer.from([10, 0x82]));
    expect(await peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });
});

describe('RFC 9113 5.1 stream states', () => {
  it('serves a request and ends the stream', async () => {
    const { peer } = await serve();
    peer.preface().headers(1, RawPeer.get('/a'));
    const headers = await peer.responseHeaders(1);
    expect(field(headers, ':status')).toBe('200');
    expect(field(headers, 'x-path')).toBe('/a');
    await peer.waitFor((f) => f.type === FrameType.DATA && f.stream === 1 && (f.flags & Flag.END_STREAM) !== 0);
  });

  it('treats DATA on an idle stream as a connection error', async () => {
    const { peer } = await serve();
    peer.preface().data(5, 'x');
    expect(await peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('treats an even client stream id as a connection error (5.1.1)', async () => {
    const { peer } = await serve();
    peer.preface().headers(2, RawPeer.get());
    expect(await peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('treats RST_STREAM on an idle stream as a connection error', async () => {
    const { peer } = await serve();
    peer.preface().rst(7, ErrorCode.CANCEL);
    expect(await peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('answers DATA after END_STREAM with STREAM_CLOSED', async () => {
    const owner = new EchoOwner();
    // Never answers, so the stream stays half-closed (remote).
    owner.onStream = (stream) => {
      stream.handler = { onHeaders: () => undefined, onData: () => undefined, onTrailers: () => undefined, onReset: () => undefined, onClose: () => undefined };
    };
    const { peer } = await serve({}, owner);
    peer.preface().headers(1, RawPeer.get()).data(1, 'late');
    expect(await peer.rstCode(1)).toBe(ErrorCode.STREAM_CLOSED);
  });

  it('refuses streams over SETTINGS_MAX_CONCURRENT_STREAMS with REFUSED_STREAM (5.1.2)', async () => {
    const { peer, owner } = await serve({ maxConcurrentStreams: 2 });
    peer.preface();
    for (const id of [1, 3, 5]) peer.headers(id, [...RawPeer.get(), 'content-type', 'x'], false);
    expect(await peer.rstCode(5)).toBe(ErrorCode.REFUSED_STREAM);
    expect(owner.streams).toBe(2);
    expect(owner.counted).toContain('refused_stream');
  });
});

describe('RFC 9113 6.5 SETTINGS', () => {
  it.each([
    ['a length not a multiple of 6', Buffer.alloc(5), ErrorCode.FRAME_SIZE_ERROR],
    ['SETTINGS_ENABLE_PUSH of 2', setting(Setting.ENABLE_PUSH, 2), ErrorCode.PROTOCOL_ERROR],
    ['SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1', setting(Setting.INITIAL_WINDOW_SIZE, 0x80000000), ErrorCode.FLOW_CONTROL_ERROR],
    ['SETTINGS_MAX_FRAME_SIZE under 16384', setting(Setting.MAX_FRAME_SIZE, 100), ErrorCode.PROTOCOL_ERROR],
    ['SETTINGS_MAX_FRAME_SIZE over 2^24-1', setting(Setting.MAX_FRAME_SIZE, 1 << 24), ErrorCode.PROTOCOL_ERROR],
  ])('refuses %s', async (_what, payload, code) => {
    const { peer } = await serve();
    peer.preface().frame(FrameType.SETTINGS, 0, 0, payload);
    expect(await peer.goawayCode()).toBe(code);
  });

  it('refuses SETTINGS on a stream and an ACK with a payload', async () => {
    const a = await serve();
    a.peer.preface().frame(FrameType.SETTINGS, 0, 1, Buffer.alloc(0));
    expect(await a.peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
    const b = await serve();
    b.peer.preface().frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(6));
    expect(await b.peer.goawayCode()).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });

  it('ignores unknown settings', async () => {
    const { peer } = await serve();
    peer.preface().frame(FrameType.SETTINGS, 0, 0, setting(0x99, 7)).headers(1, RawPeer.get());
    expect(field(await peer.responseHeaders(1), ':status')).toBe('200');
  });
});

describe('RFC 9113 6.7 PING', () => {
  it('answers with an ACK carrying the same 8 octets', async () => {
    const { peer } = await serve();
    peer.preface().frame(FrameType.PING, 0, 0, Buffer.from('12345678'));
    const ack = await peer.waitFor((f) => f.type === FrameType.PING && (f.flags & Flag.ACK) !== 0);
    expect(ack.payload.toString()).toBe('12345678');
  });

  it('refuses a PING that is not 8 octets, or on a stream', async () => {
    const a = await serve();
    a.peer.preface().frame(FrameType.PING, 0, 0, Buffer.alloc(7));
    expect(await a.peer.goawayCode()).toBe(ErrorCode.FRAME_SIZE_ERROR);
    const b = await serve();
    b.peer.preface().frame(FrameType.PING, 0, 1, Buffer.alloc(8));
    expect(await b.peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });
});

describe('RFC 9113 6.8 GOAWAY', () => {
  it('a graceful GOAWAY lets the stream in flight finish, then closes', async () => {
    const owner = new EchoOwner();
    const { peer, conns } = await serve({}, owner);
    peer.preface().headers(1, [...RawPeer.get('/slow'), 'content-type', 'x'], false);
    await peer.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0);
    await new Promise((r) => setTimeout(r, 50));
    conns[0]!.goaway(ErrorCode.NO_ERROR);
    const goaway = await peer.waitFor((f) => f.type === FrameType.GOAWAY);
    expect(goaway.payload.readUInt32BE(0)).toBe(1);
    peer.data(1, 'abc', true);
    await peer.waitFor((f) => f.type === FrameType.DATA && f.stream === 1 && (f.flags & Flag.END_STREAM) !== 0);
    expect(body(peer.frames, 1)).toBe('body:3');
    await peer.closedBy();
  });
});

describe('RFC 9113 6.9 flow control', () => {
  it('refuses DATA beyond the stream window it advertised', async () => {
    const owner = new EchoOwner();
    owner.onStream = (stream) => {
      // Never consumes: the window is never granted back.
      stream.handler = { onHeaders: () => undefined, onData: () => undefined, onTrailers: () => undefined, onReset: () => undefined, onClose: () => undefined };
    };
    const { peer } = await serve({ streamWindow: 65_535 }, owner);
    peer.preface().headers(1, [...RawPeer.get(), 'content-type', 'x'], false);
    for (let i = 0; i < 4; i++) peer.data(1, Buffer.alloc(16_384));
    peer.data(1, Buffer.alloc(100));
    expect(await peer.rstCode(1)).toBe(ErrorCode.FLOW_CONTROL_ERROR);
  });

  it('sends no more than the window the peer gives, and the rest after WINDOW_UPDATE', async () => {
    const owner = new EchoOwner();
    owner.onStream = (stream) => {
      stream.handler = { onHeaders: () => undefined, onData: () => undefined, onTrailers: () => undefined, onReset: () => undefined, onClose: () => undefined };
      stream.conn.sendHeaders(stream, [':status', '200'], false);
      stream.write(Buffer.alloc(1000, 1), true);
    };
    const { peer } = await serve({}, owner);
    peer.preface([[Setting.INITIAL_WINDOW_SIZE, 300]]).headers(1, RawPeer.get());
    await peer.waitFor((f) => f.type === FrameType.DATA && f.stream === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(body(peer.frames, 1).length).toBe(300);
    peer.windowUpdate(1, 700);
    await peer.waitFor((f) => f.type === FrameType.DATA && (f.flags & Flag.END_STREAM) !== 0);
    expect(body(peer.frames, 1).length).toBe(1000);
  });

  it('a SETTINGS_INITIAL_WINDOW_SIZE change moves the window of open streams (6.9.2)', async () => {
    const owner = new EchoOwner();
    owner.onStream = (stream) => {
      stream.handler = { onHeaders: () => undefined, onData: () => undefined, onTrailers: () => undefined, onReset: () => undefined, onClose: () => undefined };
      stream.conn.sendHeaders(stream, [':status', '200'], false);
      stream.write(Buffer.alloc(500, 1), true);
    };
    const { peer } = await serve({}, owner);
    peer.preface([[Setting.INITIAL_WINDOW_SIZE, 100]]).headers(1, RawPeer.get());
    await peer.waitFor((f) => f.type === FrameType.DATA);
    peer.frame(FrameType.SETTINGS, 0, 0, setting(Setting.INITIAL_WINDOW_SIZE, 500));
    await peer.waitFor((f) => f.type === FrameType.DATA && (f.flags & Flag.END_STREAM) !== 0);
    expect(body(peer.frames, 1).length).toBe(500);
  });

  it('refuses a WINDOW_UPDATE of 0 on the connection, and a window over 2^31-1', async () => {
    const a = await serve();
    a.peer.preface().windowUpdate(0, 0);
    expect(await a.peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
    const b = await serve();
    b.peer.preface().windowUpdate(0, 0x7fffffff);
    expect(await b.peer.goawayCode()).toBe(ErrorCode.FLOW_CONTROL_ERROR);
  });

  it('grants the window back as the handler consumes, so a long upload completes', async () => {
    const { peer } = await serve({ streamWindow: 65_535 });
    peer.preface().headers(1, [...RawPeer.get('/up'), 'content-type', 'x'], false);
    let granted = 0;
    // Sends 1 MiB within the windows the server grants.
    let sent = 0;
    const total = 1 << 20;
    let window = 65_535;
    while (sent < total) {
      const n = Math.min(16_384, window, total - sent);
      if (n > 0) {
        peer.data(1, Buffer.alloc(n), sent + n === total);
        sent += n;
        window -= n;
        continue;
      }
      const before = peer.frames.length;
      await peer.waitFor((f) => f.type === FrameType.WINDOW_UPDATE && f.stream === 1 && peer.frames.indexOf(f) >= before);
      for (const f of peer.frames.slice(before)) if (f.type === FrameType.WINDOW_UPDATE && f.stream === 1) {
        window += f.payload.readUInt32BE(0);
        granted += f.payload.readUInt32BE(0);
      }
    }
    await peer.waitFor((f) => f.type === FrameType.DATA && (f.flags & Flag.END_STREAM) !== 0);
    expect(body(peer.frames, 1)).toBe(`body:${total}`);
    expect(granted).toBeGreaterThan(0);
  });
});

describe('RFC 9113 6.10 CONTINUATION', () => {
  it('joins a header block split over CONTINUATION frames', async () => {
    const { peer } = await serve();
    peer.preface();
    const block = peer.encoder.encode([...RawPeer.get('/split'), 'x-long', 'v'.repeat(3000)]);
    peer.frame(FrameType.HEADERS, Flag.END_STREAM, 1, block.subarray(0, 1000));
    peer.frame(FrameType.CONTINUATION, 0, 1, block.subarray(1000, 2000));
    peer.frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(2000));
    expect(field(await peer.responseHeaders(1), 'x-path')).toBe('/split');
  });

  it('refuses another frame in the middle of a header block', async () => {
    const { peer } = await serve();
    peer.preface();
    const block = peer.encoder.encode(RawPeer.get());
    peer.frame(FrameType.HEADERS, Flag.END_STREAM, 1, block.subarray(0, 3));
    peer.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
    expect(await peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('refuses a CONTINUATION without a header block in progress', async () => {
    const { peer } = await serve();
    peer.preface().frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, Buffer.alloc(1));
    expect(await peer.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });
});

describe('RFC 9113 8.1.1 and 8.2 malformed requests', () => {
  it('resets a request whose DATA disagrees with its content-length, never handing on more', async () => {
    const { peer } = await serve();
    peer.preface().headers(1, [...RawPeer.get('/cl'), 'content-length', '3'], false).data(1, 'abcdef', true);
    expect(await peer.rstCode(1)).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it.each([
    ['an uppercase name', [...RawPeer.get(), 'X-Up', '1']],
    ['a connection-specific field', [...RawPeer.get(), 'connection', 'close']],
    ['a missing :path', [':method', 'GET', ':scheme', 'http', ':authority', 'a']],
    ['a value with CR LF', [...RawPeer.get(), 'x-a', 'b\r\nx-forwarded-client-cert: forged']],
    [':authority and host that differ', [...RawPeer.get('/', 'public'), 'host', 'admin']],
  ])('resets a request with %s and never hands it on', async (_what, fields) => {
    const { peer, owner } = await serve();
    peer.preface().headers(1, fields);
    expect(await peer.rstCode(1)).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(owner.streams).toBe(0);
    expect(owner.counted).toContain('malformed_headers');
    // The connection goes on.
    peer.headers(3, RawPeer.get('/next'));
    expect(field(await peer.responseHeaders(3), 'x-path')).toBe('/next');
  });
});

describe('protections', () => {
  it('answers 431 to a header list over the limit, for that stream alone', async () => {
    const { peer, owner } = await serve();
    peer.preface();
    for (let id = 1; id <= 19; id += 2) {
      const fields = id === 7 ? [...RawPeer.get(`/${id}`), 'x-big', 'b'.repeat(70 * 1024)] : RawPeer.get(`/${id}`);
      const block = peer.encoder.encode(fields);
      // Big blocks go out as HEADERS + CONTINUATION frames within the frame size.
      for (let off = 0; off < block.length; off += 16_384) {
        const last = off + 16_384 >= block.length;
        peer.frame(off === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, (last ? Flag.END_HEADERS : 0) | (off === 0 ? Flag.END_STREAM : 0), id, block.subarray(off, off + 16_384));
      }
    }
    expect(field(await peer.responseHeaders(7), ':status')).toBe('431');
    for (const id of [1, 3, 5, 9, 11, 13, 15, 17, 19]) expect(field(await peer.responseHeaders(id), ':status')).toBe('200');
    expect(owner.streams).toBe(9);
    expect(owner.counted).toContain('header_list_too_large');
  });

  it('cuts a CONTINUATION flood with ENHANCE_YOUR_CALM', async () => {
    const { peer, owner } = await serve();
    peer.preface();
    peer.frame(FrameType.HEADERS, 0, 1, peer.encoder.encode(RawPeer.get()));
    for (let i = 0; i < 10_000 && !peer.closed; i++) peer.frame(FrameType.CONTINUATION, 0, 1, Buffer.from([0x40, 1, 0x61, 1, 0x62]));
    expect(await peer.goawayCode()).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(owner.counted).toContain('continuation_flood');
  });

  it('cuts a peer that resets streams faster than the reset rate (Rapid Reset)', async () => {
    const { peer, owner } = await serve({ resetBurst: 50, resetRate: 10 });
    peer.preface();
    for (let id = 1; id < 400; id += 2) peer.headers(id, [...RawPeer.get(), 'content-type', 'x'], false).rst(id, ErrorCode.CANCEL);
    expect(await peer.goawayCode()).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(owner.counted).toContain('rapid_reset');
  });

  it('keeps a busy multiplexed connection whose clients cancel some streams (a peer sidecar): only premature resets that are most of the streams count', async () => {
    const { peer, owner } = await serve({ resetBurst: 50, resetRate: 10, maxConcurrentStreams: 1000 });
    peer.preface();
    // 800 streams, one in five cancelled before its answer: 160 resets, three times the burst.
    let last = 0;
    for (let id = 1; id < 1600; id += 2) {
      if (id % 10 === 9) peer.headers(id, [...RawPeer.get(), 'content-type', 'x'], false).rst(id, ErrorCode.CANCEL);
      else peer.headers((last = id), RawPeer.get(), true);
    }
    expect(field(await peer.responseHeaders(last), ':status')).toBe('200');
    expect(peer.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
    expect(owner.counted).not.toContain('rapid_reset');
    // Answered streams the peer resets afterwards are not premature either.
    for (let id = 1601; id < 1801; id += 2) peer.headers(id, RawPeer.get(), true).rst(id, ErrorCode.CANCEL);
    peer.headers(1801, RawPeer.get(), true);
    expect(field(await peer.responseHeaders(1801), ':status')).toBe('200');
    expect(peer.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  });

  it('sends no RST_STREAM for a stream whose both sides have ended, even when a handler resets it while handling its last frame', async () => {
    // A relay that hears the last frame of one side and cancels "the other side" must not put a
    // RST_STREAM on the wire for a finished stream: peers count those (nghttp2 answered a stream of
    // them with GOAWAY INTERNAL_ERROR, and our own control budget cut the connection).
    const owner = new (class extends EchoOwner {
      override onStream(stream: H2Stream): void {
        this.streams++;
        stream.handler = {
          onHeaders: () => undefined,
          // The request's last frame: our side has ended already, so the stream is done.
          onData: (s, data, end) => {
            s.conn.consumed(s, data.length);
            if (end) s.reset(ErrorCode.CANCEL);
          },
          onTrailers: () => undefined,
          onReset: () => undefined,
          onClose: () => undefined,
        };
        // Answered in full before the request body ends.
        stream.conn.sendHeaders(stream, [':status', '200'], false);
        stream.write(Buffer.from('done'), true);
      }
    })();
    const { peer } = await serve({}, owner);
    peer.preface();
    peer.headers(1, [...RawPeer.get(), 'content-type', 'x'], false);
    expect(field(await peer.responseHeaders(1), ':status')).toBe('200');
    peer.frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('body'));
    await new Promise((r) => setTimeout(r, 100));
    expect(body(peer.frames, 1)).toBe('done');
    expect(peer.frames.filter((f) => f.type === FrameType.RST_STREAM)).toEqual([]);
  });

  it('cuts a PING flood with ENHANCE_YOUR_CALM', async () => {
    const { peer, owner } = await serve({ controlBurst: 100, controlRate: 10 });
    peer.preface();
    const ping = Buffer.concat(Array.from({ length: 500 }, () => Buffer.from([0, 0, 8, FrameType.PING, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])));
    peer.socket.write(ping);
    expect(await peer.goawayCode()).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(owner.counted).toContain('control_flood');
  });

  it('cuts a peer that floods SETTINGS and never reads the ACKs', async () => {
    const { peer, owner } = await serve({ controlBurst: 1e9, controlRate: 1e9, maxOutboundBuffer: 64 * 1024 });
    peer.preface();
    peer.pauseReading();
    const settings = Buffer.concat(Array.from({ length: 2000 }, () => Buffer.from([0, 0, 0, FrameType.SETTINGS, 0, 0, 0, 0, 0])));
    for (let i = 0; i < 200 && !peer.closed; i++) {
      peer.socket.write(settings);
      await new Promise((r) => setTimeout(r, 5));
      if (owner.counted.includes('outbound_buffer')) break;
    }
    expect(owner.counted).toContain('outbound_buffer');
  });

  it('closes a connection that sends nothing after connecting (preface timeout)', async () => {
    const { peer } = await serve({ prefaceTimeoutMs: 300 });
    await peer.closedBy(3000);
  });

  it('resets a stream with no progress after the stream idle timeout', async () => {
    const owner = new EchoOwner();
    const resets: number[] = [];
    owner.onStream = (stream) => {
      stream.handler = { onHeaders: () => undefined, onData: () => undefined, onTrailers: () => undefined, onReset: (_s, code) => resets.push(code), onClose: () => undefined };
    };
    const { peer } = await serve({ streamIdleTimeoutMs: 300 }, owner);
    peer.preface().headers(1, [...RawPeer.get(), 'content-type', 'x'], false);
    expect(await peer.rstCode(1, 3000)).toBe(ErrorCode.CANCEL);
    expect(resets).toEqual([ErrorCode.CANCEL]);
  });

  it('after a client FIN, resets the streams that can never finish and closes (zero window, unfinished body)', async () => {
    const owner = new EchoOwner();
    const resets: number[] = [];
    owner.onStream = (stream, head) => {
      stream.handler = { onHeaders: () => undefined, onData: () => undefined, onTrailers: () => undefined, onReset: (_s, code) => resets.push(code), onClose: () => undefined };
      if (head.path === '/big') {
        stream.conn.sendHeaders(stream, [':status', '200'], false);
        stream.write(Buffer.alloc(100_000), true);
      }
    };
    const { peer, conns } = await serve({}, owner);
    // Window 0: the response to /big can never be sent; /upload never ends its body.
    peer.preface([[Setting.INITIAL_WINDOW_SIZE, 0]]).headers(1, RawPeer.get('/big')).headers(3, [...RawPeer.get('/upload'), 'content-type', 'x'], false);
    await peer.waitFor((f) => f.type === FrameType.HEADERS && f.stream === 1);
    peer.socket.end();
    await peer.closedBy(2000);
    expect(conns[0]!.activeStreams).toBe(0);
    expect(resets.sort()).toEqual([ErrorCode.CANCEL, ErrorCode.CANCEL]);
  });

  it('closes the connection after a client FIN once its streams are done (no CLOSE_WAIT)', async () => {
    const { peer, conns } = await serve();
    peer.preface().headers(1, [...RawPeer.get('/fin'), 'content-type', 'x'], false);
    await peer.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0);
    peer.data(1, 'xy', true);
    peer.socket.end();
    await peer.waitFor((f) => f.type === FrameType.DATA && (f.flags & Flag.END_STREAM) !== 0);
    await peer.closedBy();
    expect(conns[0]!.dead).toBe(true);
    expect(conns[0]!.socket.destroyed || conns[0]!.socket.writableEnded).toBe(true);
  });
});
