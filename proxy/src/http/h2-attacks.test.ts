// Adversarial HTTP/2 clients against a whole running sidecar (outbound port) with real upstreams
// (node:http2 servers, and nginx): each attack must fail, leave legitimate traffic unaffected and,
// where a protection of h2/limits.ts applies, be counted in tsmesh_h2_protection_total.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import http2 from 'node:http2';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { ErrorCode, Flag, FRAME_HEADER_LENGTH, frameHeader, FrameType, rstStreamFrame, Setting } from '../h2/frame.js';
import { writeInteger } from '../h2/hpack/encoder.js';
import { field, RawPeer, type ReceivedFrame } from '../h2/testing/raw-peer.js';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile } from '../testing/mesh.js';
import { startNginx, type Nginx } from '../testing/nginx.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, listenH2, once, pause, payload, sha256, type Listening } from '../testing/servers.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const { HTTP2_HEADER_STATUS } = http2.constants;

// ---- what the sidecar counted, and what the process holds ----

type Counts = Record<string, number>;

/** tsmesh_h2_protection_total{direction="outbound"} by kind, from the health port's /metrics. */
async function protections(proxy: RunningProxy): Promise<Counts> {
  const res = await fetchText(proxy.ports.health, '/metrics');
  if (res.status !== 200) throw new Error(`/metrics: HTTP ${res.status}`);
  const counts: Counts = {};
  for (const m of res.body.matchAll(/^tsmesh_h2_protection_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (labels.direction === 'outbound' && labels.kind) counts[labels.kind] = Number(m[2]);
  }
  return counts;
}

const delta = (before: Counts, after: Counts, kind: string): number => (after[kind] ?? 0) - (before[kind] ?? 0);

/** node's gc(), exposed at run time when the process was not started with --expose-gc. */
const collect: (() => void) | undefined = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
})();

/** JS heap plus Buffers (where the sidecar keeps frames), after a full collection when one is available. */
async function heldMemory(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collect?.();
    await pause(20);
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** The highest heap + Buffers seen, sampled every 10 ms until stopped (no collection forced). */
function peakMemory(): { stop(): number } {
  let peak = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.heapUsed + m.external);
  };
  sample();
  const timer = setInterval(sample, 10);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

const mib = (bytes: number): string => `${(bytes / MIB).toFixed(1)} MiB`;

// ---- clients ----

const sessions: http2.ClientHttp2Session[] = [];
const peers: RawPeer[] = [];

async function h2Client(port: number, settings: http2.Settings = {}): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings });
  session.on('error', () => undefined);
  sessions.push(session);
  await once(session, 'connect');
  return session;
}

async function rawPeer(port: number): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  peers.push(peer);
  return peer;
}

interface Fetched {
  readonly status: number;
  readonly body: Buffer;
  readonly ms: number;
  readonly error?: string;
}

/** One GET on `session`; never rejects (an error or timeout is status 0 with `error`). */
function get(session: http2.ClientHttp2Session, path: string, timeoutMs = 5000): Promise<Fetched> {
  const started = performance.now();
  return new Promise((resolve) => {
    let status = 0;
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ status, body: Buffer.concat(chunks), ms: performance.now() - started, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      finish(`no answer within ${timeoutMs} ms`);
    }, timeoutMs);
    const req = session.request({ ':path': path });
    req.on('response', (h) => (status = Number(h[HTTP2_HEADER_STATUS])));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (e: Error) => finish(e.message));
    req.on('close', () => finish(req.rstCode ? `reset ${req.rstCode}` : undefined));
  });
}

/** A request `every` ms until `stop()`; each answer is recorded (the good client beside an attack). */
function steadyClient(session: http2.ClientHttp2Session, path: string, every: number): { stop(): Promise<Fetched[]> } {
  const answers: Array<Promise<Fetched>> = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      answers.push(get(session, path));
      await pause(every);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return Promise.all(answers);
    },
  };
}

/** The failures among `answers`, as readable lines (empty when all were 200 within `maxMs`). */
function failures(answers: readonly Fetched[], maxMs: number, body?: string): string[] {
  return answers
    .filter((a) => a.status !== 200 || a.ms >= maxMs || (body !== undefined && sha256(a.body) !== body))
    .map((a) => `status ${a.status} in ${a.ms.toFixed(0)} ms${a.error ? ` (${a.error})` : ''}${body !== undefined && sha256(a.body) !== body ? ` body ${a.body.length} octets, wrong sha256` : ''}`);
}

const maxMs = (answers: readonly Fetched[]): number => Math.max(...answers.map((a) => a.ms));

// ---- frames by hand ----

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/**
 * A GET's header block from the static table and literals without indexing only: it leaves the
 * HPACK dynamic table alone, so it may be written any number of times, next to hand-made blocks.
 */
function staticGet(path: string): Buffer {
  const p = latin1(path);
  if (p.length > 126) throw new Error('path too long for a one-octet length');
  // :method GET (2), :scheme http (6), :path (name 4) literal, :authority (name 1) literal.
  return Buffer.concat([Buffer.from([0x82, 0x86, 0x04, p.length]), p, Buffer.from([0x01, 3]), latin1('svc')]);
}

function headersFrame(id: number, block: Buffer, flags: number): Buffer {
  return Buffer.concat([frameHeader(block.length, FrameType.HEADERS, flags, id), block]);
}

/** `count` streams from `firstId`, each HEADERS (END_STREAM) then RST_STREAM(CANCEL): one write. */
function openAndCancel(firstId: number, count: number, block: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0, id = firstId; i < count; i++, id += 2) parts.push(headersFrame(id, block, Flag.END_HEADERS | Flag.END_STREAM), rstStreamFrame(id, ErrorCode.CANCEL));
  return Buffer.concat(parts);
}

/** `count` copies of one frame, for floods. */
function repeated(type: number, flags: number, stream: number, framePayload: Buffer, count: number): Buffer {
  const one = Buffer.concat([frameHeader(framePayload.length, type, flags, stream), framePayload]);
  return Buffer.concat(Array.from({ length: count }, () => one));
}

/** A literal field with incremental indexing and a new name (RFC 7541 6.2.1): it enters the dynamic table. */
function indexedLiteral(name: string, value: string): Buffer {
  const head = Buffer.alloc(16);
  let pos = 0;
  head[pos++] = 0x40;
  pos = writeInteger(head, pos, name.length, 7, 0);
  const n = latin1(name);
  const lengthOfValue = Buffer.alloc(8);
  const vpos = writeInteger(lengthOfValue, 0, value.length, 7, 0);
  return Buffer.concat([head.subarray(0, pos), n, lengthOfValue.subarray(0, vpos), latin1(value)]);
}

const isGoaway = (f: ReceivedFrame): boolean => f.type === FrameType.GOAWAY;
const goawayOf = (peer: RawPeer): ReceivedFrame | undefined => peer.frames.find(isGoaway);
const ended = (peer: RawPeer, id: number): boolean => peer.frames.some((f) => f.stream === id && (f.type === FrameType.DATA || f.type === FrameType.HEADERS) && (f.flags & Flag.END_STREAM) !== 0);

/** Waits until the socket can take more, or is gone. */
async function drained(peer: RawPeer): Promise<void> {
  if (peer.closed || !peer.socket.writableNeedDrain) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      peer.socket.off('drain', done);
      peer.socket.off('close', done);
      resolve();
    };
    peer.socket.once('drain', done);
    peer.socket.once('close', done);
  });
}

/** A SETTINGS payload's value for `id`, if present. */
function settingOf(frame: ReceivedFrame, id: number): number | undefined {
  for (let i = 0; i + 6 <= frame.payload.length; i += 6) if (frame.payload.readUInt16BE(i) === id) return frame.payload.readUInt32BE(i + 2);
  return undefined;
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;

/** TCP sockets in CLOSE-WAIT with `port` at either end. */
function closeWaitOn(port: number): string[] {
  const out = execFileSync('ss', ['-tanH', 'state', 'close-wait'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.trim().split(/\s+/).some((col) => col.endsWith(`:${port}`)));
}

afterEach(() => {
  for (const session of sessions.splice(0)) session.destroy();
  for (const peer of peers.splice(0)) peer.close();
});

// ---- upstreams ----

interface Upstream {
  readonly listening: Listening<http2.Http2Server>;
  /** Streams seen, by :path. */
  readonly seen: Map<string, number>;
}

async function upstream(name: string, big?: Buffer, written?: number[]): Promise<Upstream> {
  const seen = new Map<string, number>();
  const listening = await listenH2((stream, headers) => {
    const path = String(headers[':path']);
    seen.set(path, (seen.get(path) ?? 0) + 1);
    stream.resume();
    if (path !== '/big' || !big) {
      stream.respond({ ':status': 200, 'x-upstream': name });
      stream.end(name);
      return;
    }
    // A big body written as fast as flow control lets it: what it got out is recorded.
    stream.respond({ ':status': 200, 'content-length': String(big.length) });
    const slot = written ? written.push(0) - 1 : -1;
    const closed = new Promise<void>((resolve) => stream.once('close', resolve));
    void (async () => {
      for (let offset = 0; offset < big.length && !stream.destroyed; offset += 64 * KIB) {
        const chunk = big.subarray(offset, offset + 64 * KIB);
        const more = stream.write(chunk);
        if (written) written[slot]! += chunk.length;
        if (!more) await Promise.race([once(stream, 'drain', 60_000).catch(() => undefined), closed]);
      }
      if (!stream.destroyed) stream.end();
    })();
  });
  return { listening, seen };
}

const streamsAt = (upstreams: readonly Upstream[], path: string): number => upstreams.reduce((n, u) => n + (u.seen.get(path) ?? 0), 0);

describe('HTTP/2 attacks on a sidecar in front of two node:http2 upstreams', () => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let upstreams: Upstream[];

  beforeAll(async () => {
    upstreams = await Promise.all(['a', 'b'].map((name) => upstream(name)));
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: upstreams.map((u) => u.listening.port) }]);
    proxy = await startTestProxy(mesh.path);
    // Upstream connections pooled, code paths warm: memory figures below are the attack's.
    const session = await h2Client(proxy.ports.outbound);
    await Promise.all(Array.from({ length: 10 }, () => get(session, '/warm-up')));
    session.destroy();
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all((upstreams ?? []).map((u) => u.listening.close()));
    mesh?.remove();
  });

  test('Rapid Reset (CVE-2023-44487) for 10 s: attackers are cut with ENHANCE_YOUR_CALM, almost none of their streams reach an upstream, a good client is answered 200 within 1 s throughout, and memory comes back', async () => {
    const port = proxy.ports.outbound;
    const before = await protections(proxy);
    const memoryBefore = await heldMemory();
    const block = staticGet('/rapid-reset');
    const BATCH = 100;
    const ATTACKERS = 4;
    const stats = { connections: 0, written: 0, processed: 0, goaways: new Map<number, number>(), uncut: 0 };
    const until = Date.now() + 10_000;

    const attacker = async (): Promise<void> => {
      while (Date.now() < until) {
        const peer = await RawPeer.connect(port).catch(() => undefined);
        if (!peer) {
          await pause(5);
          continue;
        }
        stats.connections++;
        peer.preface();
        let id = 1;
        while (!peer.closed && !goawayOf(peer) && Date.now() < until) {
          peer.socket.write(openAndCancel(id, BATCH, block));
          id += 2 * BATCH;
          stats.written += BATCH;
          await drained(peer);
          await new Promise((resolve) => setImmediate(resolve));
        }
        if (!goawayOf(peer) && !peer.closed) await peer.waitFor(isGoaway, 1000).catch(() => undefined);
        const goaway = goawayOf(peer);
        if (goaway) {
          const code = goaway.payload.readUInt32BE(4);
          stats.goaways.set(code, (stats.goaways.get(code) ?? 0) + 1);
          // Streams up to the GOAWAY's last stream id are the ones the sidecar took in.
          stats.processed += (goaway.payload.readUInt32BE(0) + 1) / 2;
        } else if (Date.now() < until) stats.uncut++;
        peer.close();
      }
    };

    const session = await h2Client(port);
    const good = steadyClient(session, '/good', 50);
    await Promise.all(Array.from({ length: ATTACKERS }, attacker));
    const answers = await good.stop();
    const after = await protections(proxy);

    // Memory: once the attackers are gone, what they made the sidecar hold is released.
    await pause(3000);
    const memoryAfter = await heldMemory();
    const reached = streamsAt(upstreams, '/rapid-reset');
    const latency = maxMs(answers);
    console.log(
      `Rapid Reset: ${stats.connections} attacker connections, ${stats.written} streams written, ${stats.processed} taken in before GOAWAY, ` +
        `${reached} reached an upstream (${((100 * reached) / Math.max(1, stats.processed)).toFixed(2)}%); GOAWAY codes ${JSON.stringify([...stats.goaways])}; ` +
        `good client: ${answers.length} requests, max ${latency.toFixed(0)} ms; memory ${mib(memoryBefore)} -> ${mib(memoryAfter)}; rapid_reset counted ${delta(before, after, 'rapid_reset')}`,
    );

    expect(failures(answers, 1000)).toEqual([]);
    expect(answers.length).toBeGreaterThan(150);
    expect(stats.processed).toBeGreaterThan(10_000);
    expect(reached).toBeLessThan(stats.processed * 0.05);
    // The attack's streams were valid requests (the same block reaches an upstream when not reset, see the HPACK test).
    expect(delta(before, after, 'malformed_headers')).toBe(0);
    // Every attacker connection that ran its course was cut, and always for the same reason.
    expect([...stats.goaways.keys()]).toEqual([ErrorCode.ENHANCE_YOUR_CALM]);
    expect(stats.uncut).toBe(0);
    expect(delta(before, after, 'rapid_reset')).toBeGreaterThanOrEqual(stats.goaways.get(ErrorCode.ENHANCE_YOUR_CALM) ?? 1);
    expect(memoryAfter).toBeLessThan(memoryBefore + 50 * MIB);
  }, 40_000);

  test('CONTINUATION flood: an endless header block is cut with ENHANCE_YOUR_CALM within a second and holds no memory, while another client is served', async () => {
    const port = proxy.ports.outbound;
    const before = await protections(proxy);
    const memoryBefore = await heldMemory();
    const peak = peakMemory();
    const session = await h2Client(port);
    const good = steadyClient(session, '/good', 20);

    // Two floods: many small CONTINUATION frames (the frame count limit), and full-size ones (the block size limit).
    const flood = async (fragment: Buffer): Promise<{ ms: number; frames: number; code: number | undefined }> => {
      const peer = await rawPeer(port);
      peer.preface();
      await peer.waitFor((f) => f.type === FrameType.SETTINGS);
      const started = performance.now();
      peer.socket.write(headersFrame(1, staticGet('/continuation'), Flag.END_STREAM));
      const batch = repeated(FrameType.CONTINUATION, 0, 1, fragment, Math.max(1, Math.floor((256 * KIB) / (fragment.length + FRAME_HEADER_LENGTH))));
      const frames = batch.length / (fragment.length + FRAME_HEADER_LENGTH);
      let written = 0;
      while (!peer.closed && !goawayOf(peer) && performance.now() - started < 5000) {
        peer.socket.write(batch);
        written += frames;
        await drained(peer);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const goaway = await peer.waitFor(isGoaway, 1000).catch(() => undefined);
      return { ms: performance.now() - started, frames: written, code: goaway?.payload.readUInt32BE(4) };
    };
    const small = await flood(Buffer.from([0x40, 1, 0x61, 1, 0x62]));
    const large = await flood(Buffer.alloc(16_384, 0x61));
    const answers = await good.stop();
    const after = await protections(proxy);
    const peakGrowth = peak.stop() - memoryBefore;
    const memoryAfter = await heldMemory();
    console.log(
      `CONTINUATION flood: small frames cut after ${small.ms.toFixed(0)} ms (${small.frames} written, GOAWAY ${small.code}), ` +
        `16 KiB frames cut after ${large.ms.toFixed(0)} ms (${large.frames} written, GOAWAY ${large.code}); peak growth ${mib(peakGrowth)}, ` +
        `memory ${mib(memoryBefore)} -> ${mib(memoryAfter)}; good client max ${maxMs(answers).toFixed(0)} ms`,
    );

    expect(small.code).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(large.code).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(small.ms).toBeLessThan(1000);
    expect(large.ms).toBeLessThan(1000);
    expect(delta(before, after, 'continuation_flood')).toBeGreaterThanOrEqual(1);
    expect(delta(before, after, 'header_block_too_large')).toBeGreaterThanOrEqual(1);
    expect(streamsAt(upstreams, '/continuation')).toBe(0);
    expect(peakGrowth).toBeLessThan(8 * MIB);
    expect(memoryAfter).toBeLessThan(memoryBefore + 4 * MIB);
    expect(failures(answers, 1000)).toEqual([]);
    expect((await get(session, '/after')).status).toBe(200);
  });

  test('HPACK bomb: blocks that repeat a 4000-octet dynamic-table entry a thousand times each get 431, while the same connection and others go on and memory stays flat', async () => {
    const port = proxy.ports.outbound;
    const before = await protections(proxy);
    const memoryBefore = await heldMemory();
    const peak = peakMemory();
    const session = await h2Client(port);
    const good = steadyClient(session, '/good', 20);
    const BOMBS = 20;
    const REFS = 1000;

    const peer = await rawPeer(port);
    peer.preface();
    // Stream 1 puts x-bomb (4000 octets, 4038 with its overhead: the whole 4096-octet table) into the table.
    const seed = Buffer.concat([staticGet('/hpack/seed'), indexedLiteral('x-bomb', 'B'.repeat(4000))]);
    peer.socket.write(headersFrame(1, seed, Flag.END_HEADERS | Flag.END_STREAM));
    expect(field(await peer.responseHeaders(1), ':status')).toBe('200');
    // Each bomb is ~1 KB on the wire and 4 MB as a header list (index 62: the newest dynamic entry).
    // A normal request follows each bomb on the same connection.
    const bombIds: number[] = [];
    const normalIds: number[] = [];
    for (let i = 0; i < BOMBS; i++) {
      const bombId = 3 + 4 * i;
      const normalId = bombId + 2;
      bombIds.push(bombId);
      normalIds.push(normalId);
      const bomb = Buffer.concat([staticGet('/hpack/bomb'), Buffer.alloc(REFS, 0x80 | 62)]);
      peer.socket.write(Buffer.concat([headersFrame(bombId, bomb, Flag.END_HEADERS | Flag.END_STREAM), headersFrame(normalId, staticGet('/hpack/normal'), Flag.END_HEADERS | Flag.END_STREAM)]));
    }
    const bombStatus = await Promise.all(bombIds.map(async (id) => field(await peer.responseHeaders(id), ':status')));
    const normalStatus = await Promise.all(normalIds.map(async (id) => field(await peer.responseHeaders(id), ':status')));
    await eventually(() => normalIds.every((id) => ended(peer, id)), 'the normal streams to end');
    const answers = await good.stop();
    const after = await protections(proxy);
    const peakGrowth = peak.stop() - memoryBefore;
    const memoryAfter = await heldMemory();
    console.log(`HPACK bomb: ${BOMBS} x ${REFS} references to a 4038-octet entry; peak growth ${mib(peakGrowth)}, memory ${mib(memoryBefore)} -> ${mib(memoryAfter)}; header_list_too_large counted ${delta(before, after, 'header_list_too_large')}`);

    expect(bombStatus).toEqual(Array(BOMBS).fill('431'));
    expect(normalStatus).toEqual(Array(BOMBS).fill('200'));
    expect(goawayOf(peer)).toBeUndefined();
    expect(peer.closed).toBe(false);
    expect(streamsAt(upstreams, '/hpack/bomb')).toBe(0);
    expect(streamsAt(upstreams, '/hpack/normal')).toBe(BOMBS);
    expect(delta(before, after, 'header_list_too_large')).toBe(BOMBS);
    expect(peakGrowth).toBeLessThan(32 * MIB);
    expect(memoryAfter).toBeLessThan(memoryBefore + 4 * MIB);
    expect(failures(answers, 1000)).toEqual([]);
  });

  test('PING and SETTINGS floods from peers that never read the ACKs are cut (ENHANCE_YOUR_CALM), and a client on another connection is served meanwhile', async () => {
    const port = proxy.ports.outbound;
    const before = await protections(proxy);
    const session = await h2Client(port);
    const good = steadyClient(session, '/good', 20);

    const flood = async (frames: Buffer, type: number): Promise<{ written: number; acks: number; closed: boolean; code: number | undefined }> => {
      const peer = await rawPeer(port);
      peer.preface();
      await peer.waitFor((f) => f.type === FrameType.SETTINGS);
      peer.pauseReading();
      let written = 0;
      // Many thousands of frames (up to 200,000), as fast as the socket takes them.
      for (let i = 0; i < 200 && !peer.closed; i++) {
        peer.socket.write(frames);
        written += 1000;
        await drained(peer);
        await new Promise((resolve) => setImmediate(resolve));
      }
      peer.socket.resume();
      await peer.closedBy(5000).catch(() => undefined);
      const acks = peer.frames.filter((f) => f.type === type && (f.flags & Flag.ACK) !== 0).length;
      return { written, acks, closed: peer.closed, code: goawayOf(peer)?.payload.readUInt32BE(4) };
    };
    const [ping, settings] = await Promise.all([
      flood(repeated(FrameType.PING, 0, 0, Buffer.from('flooding'), 1000), FrameType.PING),
      flood(repeated(FrameType.SETTINGS, 0, 0, Buffer.alloc(0), 1000), FrameType.SETTINGS),
    ]);
    const answers = await good.stop();
    const after = await protections(proxy);
    const cut = delta(before, after, 'control_flood') + delta(before, after, 'outbound_buffer');
    console.log(
      `PING flood: ${ping.written} written, ${ping.acks} ACKed, closed ${ping.closed}, GOAWAY ${ping.code}; SETTINGS flood: ${settings.written} written, ${settings.acks} ACKed, closed ${settings.closed}, GOAWAY ${settings.code}; ` +
        `control_flood +${delta(before, after, 'control_flood')}, outbound_buffer +${delta(before, after, 'outbound_buffer')}; good client max ${maxMs(answers).toFixed(0)} ms`,
    );

    for (const attack of [ping, settings]) {
      expect(attack.closed).toBe(true);
      // The GOAWAY may be lost if the socket was destroyed unread; when it came, it said why.
      if (attack.code !== undefined) expect(attack.code).toBe(ErrorCode.ENHANCE_YOUR_CALM);
      // The sidecar stopped answering early in the flood (it ACKs a burst, then cuts).
      expect(attack.acks).toBeLessThan(attack.written / 20);
    }
    expect(cut).toBeGreaterThanOrEqual(2);
    expect(failures(answers, 1000)).toEqual([]);
    expect(answers.length).toBeGreaterThan(0);
  });

  test('1,200 clients that send a request and close with FIN each get their whole response, and leave no file descriptor or CLOSE-WAIT socket behind', async () => {
    const port = proxy.ports.outbound;
    const before = await protections(proxy);
    const fdsBefore = fdCount();
    const problems: string[] = [];
    let answered = 0;
    const client = async (): Promise<void> => {
      const peer = await RawPeer.connect(port);
      try {
        peer.preface().headers(1, RawPeer.get('/fin'), true);
        peer.socket.end();
        const status = field(await peer.responseHeaders(1, 10_000), ':status');
        await peer.waitFor((f) => f.stream === 1 && (f.flags & Flag.END_STREAM) !== 0 && (f.type === FrameType.DATA || f.type === FrameType.HEADERS), 10_000, 'the end of the response');
        const body = Buffer.concat(peer.frames.filter((f) => f.type === FrameType.DATA && f.stream === 1).map((f) => f.payload)).toString();
        if (status !== '200' || !['a', 'b'].includes(body)) problems.push(`status ${status} body ${JSON.stringify(body)}`);
        else answered++;
        await peer.closedBy(10_000);
      } catch (error) {
        problems.push((error as Error).message);
      } finally {
        peer.close();
      }
    };
    for (let batch = 0; batch < 12; batch++) await Promise.all(Array.from({ length: 100 }, client));

    const settled = await eventually(() => fdCount() <= fdsBefore + 20 && closeWaitOn(port).length === 0, 'descriptors and CLOSE-WAIT sockets to go', 5000).catch(() => false);
    const fdsAfter = fdCount();
    const closeWait = closeWaitOn(port);
    const after = await protections(proxy);
    console.log(`FIN clients: ${answered} of 1200 answered; fds ${fdsBefore} -> ${fdsAfter}; CLOSE-WAIT on :${port}: ${closeWait.length}; settled ${settled}`);

    expect(problems.slice(0, 10)).toEqual([]);
    expect(answered).toBe(1200);
    expect(streamsAt(upstreams, '/fin')).toBe(1200);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore + 20);
    expect(closeWait).toEqual([]);
    // Well-behaved clients that half-close are not counted as attacks.
    expect(Object.keys(after).filter((kind) => delta(before, after, kind) > 0)).toEqual([]);
  }, 60_000);

  test('one 70 KiB header block among 10 in-flight streams gets 431, and the other 9 are answered 200 by the upstream', async () => {
    const before = await protections(proxy);
    const peer = await rawPeer(proxy.ports.outbound);
    peer.preface();
    const ids = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19];
    for (const id of ids) {
      const fields = id === 7 ? [...RawPeer.get('/big-header'), 'x-big', 'b'.repeat(70 * KIB)] : RawPeer.get('/ten');
      const block = peer.encoder.encode(fields);
      // Split into HEADERS + CONTINUATION frames within the default frame size.
      for (let off = 0; off < block.length; off += 16_384) {
        const last = off + 16_384 >= block.length;
        peer.frame(off === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, (last ? Flag.END_HEADERS : 0) | (off === 0 ? Flag.END_STREAM : 0), id, block.subarray(off, off + 16_384));
      }
    }
    const statuses = await Promise.all(ids.map(async (id) => field(await peer.responseHeaders(id), ':status')));
    await eventually(() => ids.every((id) => ended(peer, id)), 'every stream to end');
    const after = await protections(proxy);

    expect(statuses).toEqual(ids.map((id) => (id === 7 ? '431' : '200')));
    expect(ids.filter((id) => id !== 7).map((id) => field(peer.frames.find((f) => f.type === FrameType.HEADERS && f.stream === id)?.headers ?? [], 'x-upstream'))).toEqual(
      expect.arrayContaining(['a', 'b']),
    );
    expect(streamsAt(upstreams, '/big-header')).toBe(0);
    expect(streamsAt(upstreams, '/ten')).toBe(9);
    expect(goawayOf(peer)).toBeUndefined();
    expect(delta(before, after, 'header_list_too_large')).toBe(1);
  });
});

describe('a sidecar in front of nginx, held by 1,000 zero-window streams', () => {
  const FILE = payload(MIB);
  const FILE_SHA = sha256(FILE);
  let nginx: Nginx | undefined;
  let mesh: TestMeshFile | undefined;
  let proxy: RunningProxy | undefined;

  beforeAll(async () => {
    nginx = await startNginx({ files: { 'big.bin': FILE } });
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [nginx.port] }]);
    proxy = await startTestProxy(mesh.path);
  });

  afterAll(async () => {
    await proxy?.close();
    await nginx?.close();
    mesh?.remove();
  });

  test('1,000 zero-window streams for a 1 MiB file do not slow a normal client fetching it 20 times, nor the requests after the attacker leaves', async () => {
    const port = proxy!.ports.outbound;
    const WANTED = 1000;
    const warm = await h2Client(port, { initialWindowSize: 4 * MIB });
    expect(failures([await get(warm, '/big.bin')], 5000, FILE_SHA)).toEqual([]);
    const memoryBefore = await heldMemory();

    // The first connection tells the sidecar's per-connection stream limit.
    const first = await rawPeer(port);
    first.preface([[Setting.INITIAL_WINDOW_SIZE, 0]]);
    const theirs = await first.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0);
    const perConnection = Math.min(WANTED, settingOf(theirs, Setting.MAX_CONCURRENT_STREAMS) ?? WANTED);
    const attackers = [first];
    while (attackers.length * perConnection < WANTED) {
      const peer = await rawPeer(port);
      peer.preface([[Setting.INITIAL_WINDOW_SIZE, 0]]);
      attackers.push(peer);
    }
    let opened = 0;
    for (const peer of attackers) {
      peer.settingsAck();
      for (let id = 1; id < 2 * perConnection && opened < WANTED; id += 2, opened++) peer.headers(id, RawPeer.get('/big.bin'));
    }
    const responseHeaders = (peer: RawPeer): ReceivedFrame[] => peer.frames.filter((f) => f.type === FrameType.HEADERS);
    await eventually(() => attackers.reduce((n, p) => n + responseHeaders(p).length, 0) >= WANTED, 'every attacker stream to be answered', 15_000);
    const statuses = new Set(attackers.flatMap((p) => responseHeaders(p).map((f) => field(f.headers ?? [], ':status'))));
    const dataToAttacker = attackers.reduce((n, p) => n + p.frames.filter((f) => f.type === FrameType.DATA).reduce((m, f) => m + f.payload.length, 0), 0);
    // Let nginx fill whatever the sidecar lets it.
    await pause(1000);
    const memoryHeld = await heldMemory();

    const during: Fetched[] = [];
    const session = await h2Client(port, { initialWindowSize: 4 * MIB });
    for (let i = 0; i < 20; i++) during.push(await get(session, '/big.bin', 10_000));

    const memoryDuring = await heldMemory();
    for (const peer of attackers) peer.close();
    await eventually(async () => closeWaitOn(port).length === 0 && (await heldMemory()) < memoryBefore + 50 * MIB, 'the attacker connections and their held responses to be released', 10_000).catch(() => undefined);
    const memoryAfter = await heldMemory();
    const closeWait = closeWaitOn(port);
    const later: Fetched[] = [];
    for (let i = 0; i < 5; i++) later.push(await get(session, '/big.bin', 10_000));
    console.log(
      `zero-window: ${opened} streams over ${attackers.length} connection(s) (sidecar limit ${perConnection}/connection), ${dataToAttacker} DATA octets sent to the attacker; ` +
        `memory ${mib(memoryBefore)} -> ${mib(memoryHeld)} held -> ${mib(memoryDuring)} after the good fetches -> ${mib(memoryAfter)} 10 s after the attacker left; ` +
        `CLOSE-WAIT on :${port} then: ${closeWait.length}; good fetches max ${maxMs(during).toFixed(0)} ms during, ${maxMs(later).toFixed(0)} ms after`,
    );

    expect(opened).toBe(WANTED);
    expect([...statuses]).toEqual(['200']);
    expect(dataToAttacker).toBe(0);
    expect(failures(during, 3000, FILE_SHA)).toEqual([]);
    expect(failures(later, 3000, FILE_SHA)).toEqual([]);
    // Gone means gone: the sidecar closes its side and lets go of what it held for the attacker.
    expect(closeWait).toEqual([]);
    expect(memoryAfter).toBeLessThan(memoryBefore + 50 * MIB);
  }, 60_000);
});

describe('a slow reader in front of one node:http2 upstream', () => {
  const BIG = payload(10 * MIB);
  const written: number[] = [];
  let up: Upstream;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;

  beforeAll(async () => {
    up = await upstream('only', BIG, written);
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [up.listening.port] }]);
    proxy = await startTestProxy(mesh.path);
  });

  afterAll(async () => {
    await proxy?.close();
    await up?.listening.close();
    mesh?.remove();
  });

  test('clients that stop reading a 10 MiB response hold neither the shared upstream connection nor more than a bounded buffer in the sidecar', async () => {
    const port = proxy.ports.outbound;
    const others = await h2Client(port);
    expect(failures([await get(others, '/warm-up')], 1000)).toEqual([]);
    const memoryBefore = await heldMemory();

    // One stops reading its stream (flow control: no WINDOW_UPDATE) ...
    const stalling = await h2Client(port);
    const paused = stalling.request({ ':path': '/big' });
    paused.on('error', () => undefined);
    paused.pause();
    await once(paused, 'response');
    // ... one grants every window there is and stops reading its socket (only TCP holds it back).
    const deaf = await rawPeer(port);
    deaf.preface([[Setting.INITIAL_WINDOW_SIZE, 0x7fffffff]]).windowUpdate(0, 0x7fffffff - 65_535).headers(1, RawPeer.get('/big'));
    await deaf.responseHeaders(1);
    deaf.pauseReading();

    const answers: Fetched[] = [];
    const started = Date.now();
    while (Date.now() - started < 2000) {
      answers.push(await get(others, '/small'));
      await pause(50);
    }
    const memoryStalled = await heldMemory();
    const sent = [...written];
    console.log(`slow readers: upstream wrote ${sent.map((n) => mib(n)).join(' and ')} of 10 MiB; memory ${mib(memoryBefore)} -> ${mib(memoryStalled)} after 2 s; others: ${answers.length} requests, max ${maxMs(answers).toFixed(0)} ms`);

    expect(sent).toHaveLength(2);
    // Both big responses were held back at the upstream, not drained into the sidecar.
    for (const n of sent) expect(n).toBeLessThan(BIG.length);
    expect(failures(answers, 1000)).toEqual([]);
    // Every stream went over the one pooled upstream connection.
    expect(up.listening.accepted).toBe(1);
    expect(memoryStalled - memoryBefore).toBeLessThan(10 * MIB);
  });
});
