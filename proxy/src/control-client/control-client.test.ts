// ControlPlaneSource against a scripted control plane: a real HTTP/2 server with mutual TLS, whose
// certificates come from a real tsmesh CA, answering each stream as the test says.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { generateWorkloadCsr, parseCaConfig, requestCertificate, startCa, type RunningCa } from '@tsmesh/ca';
import { LineDecoder, encodeMessage, parseClientMessage, type ClientMessage, type KubeObject, type MeshSnapshot } from '@tsmesh/common';
import { pino } from 'pino';
import { closedPort } from '../testing/servers.js';
import { ControlPlaneSource, type ControlPlaneSourceOptions } from './control-client.js';
import { DISCOVERY_ERRORS } from '../errors.js';

const quiet = pino({ level: 'silent' });
const CONTROL_ID = 'spiffe://cluster.local/ns/tsmesh-system/sa/tsmesh-control';
// Captured before any test fakes timers: waiting for the network must use real time.
const realSetTimeout = setTimeout;
const realNow = Date.now;
const pause = (ms: number): Promise<void> => new Promise((resolve) => realSetTimeout(resolve, ms));

async function eventually<T>(probe: () => T | undefined | false, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = realNow() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (realNow() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(10);
  }
}

/** Fakes the clock and timers (the source's retry and start timers, Date); the network stays real. */
function fakeClock(): void {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
}

interface Pem {
  keyPem: string;
  certPem: string;
  bundlePem: string;
}

const service = (name: string, port: unknown = 80): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop' },
  spec: { clusterIP: '10.96.0.1', ports: [{ name: 'http', port }] },
});

/** One stream as the scripted control plane sees it. */
interface StreamCall {
  readonly stream: ServerHttp2Stream;
  readonly received: ClientMessage[];
  readonly at: number;
}

/** A control plane that answers each stream with `script(call, index)`. */
class ScriptedControlPlane {
  readonly calls: StreamCall[] = [];
  private readonly server: Http2SecureServer;

  private constructor(pem: Pem, script: (call: StreamCall, index: number) => void) {
    this.server = createSecureServer({ key: pem.keyPem, cert: pem.certPem, ca: pem.bundlePem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
    this.server.on('stream', (stream) => {
      const call: StreamCall = { stream, received: [], at: Date.now() };
      const decoder = new LineDecoder(64 * 1024);
      stream.on('data', (chunk: Buffer) => {
        const lines = decoder.push(chunk);
        for (const line of lines.ok ? lines.value : []) {
          const message = parseClientMessage(line);
          if (message.ok) call.received.push(message.value);
        }
      });
      stream.on('error', () => undefined);
      this.calls.push(call);
      script(call, this.calls.length - 1);
    });
  }

  static async start(pem: Pem, script: (call: StreamCall, index: number) => void): Promise<ScriptedControlPlane> {
    const plane = new ScriptedControlPlane(pem, script);
    await new Promise<void>((resolve) => plane.server.listen(0, '127.0.0.1', resolve));
    return plane;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const call of this.calls) call.stream.session?.destroy();
    });
  }
}

/**
 * Runs `work` and answers the longest the event loop held the main thread without running a 2 ms
 * timer meanwhile, in milliseconds of the main thread's own CPU time: time the thread spent
 * descheduled on a busy machine is not a stall the code caused, so it does not count.
 */
async function longestStall(work: () => Promise<void>): Promise<number> {
  const cpuMs = (): number => {
    const { user, system } = process.threadCpuUsage();
    return (user + system) / 1000;
  };
  let last = cpuMs();
  let longest = 0;
  const tick = setInterval(() => {
    const now = cpuMs();
    longest = Math.max(longest, now - last);
    last = now;
  }, 2);
  try {
    await work();
  } finally {
    clearInterval(tick);
  }
  return Math.max(longest, cpuMs() - last);
}

/** `count` Services with distinct cluster IPs. */
const services = (count: number): KubeObject[] =>
  Array.from({ length: count }, (_, i) => ({ ...service(`svc-${i}`), spec: { clusterIP: `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, ports: [{ name: 'http', port: 80 }] } }));

const snapshot = (call: StreamCall, version: string, objects: KubeObject[]): void => {
  if (!call.stream.headersSent) call.stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
  call.stream.write(encodeMessage({ type: 'snapshot', version, objects }));
};

describe('ControlPlaneSource', () => {
  let dir: string;
  let ca: RunningCa;
  let serving: Pem;
  let workload: Pem;
  let planes: ScriptedControlPlane[] = [];
  let sources: ControlPlaneSource[] = [];

  async function issue(token: string, spiffeId: string): Promise<Pem> {
    const { keyPem, csrPem } = generateWorkloadCsr(spiffeId);
    const answer = await requestCertificate({ caAddr: `127.0.0.1:${ca.address.port}`, token, trustBundlePem: ca.trustBundlePem, csrPem });
    if (!answer.ok) throw answer.error;
    return { keyPem, certPem: answer.value.certChain.join(''), bundlePem: answer.value.trustBundle.join('') };
  }

  const contextOf = (pem: Pem): SecureContext =>
    createSecureContext({ key: pem.keyPem, cert: pem.certPem, ca: pem.bundlePem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-control-client-'));
    writeFileSync(
      join(dir, 'tokens.yaml'),
      '- {token: web, namespace: shop, serviceAccount: web}\n- {token: control, namespace: tsmesh-system, serviceAccount: tsmesh-control}\n',
    );
    ca = await startCa(parseCaConfig(['--state-dir', join(dir, 'state'), '--token-file', join(dir, 'tokens.yaml'), '--listen', '127.0.0.1:0'], {}), {
      log: quiet,
      auditLog: quiet,
    });
    serving = await issue('control', CONTROL_ID);
    workload = await issue('web', 'spiffe://cluster.local/ns/shop/sa/web');
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await Promise.all(planes.map((p) => p.close()));
    sources = [];
    planes = [];
    // After close: the sources cleared their (possibly fake) timers with the same clock that set them.
    jest.useRealTimers();
  });

  afterAll(async () => {
    await ca.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function plane(script: (call: StreamCall, index: number) => void): Promise<ScriptedControlPlane> {
    const started = await ScriptedControlPlane.start(serving, script);
    planes.push(started);
    return started;
  }

  function source(port: number, options: Partial<ControlPlaneSourceOptions> = {}): ControlPlaneSource {
    const context = contextOf(workload);
    const created = new ControlPlaneSource({
      controlAddr: `127.0.0.1:${port}`,
      tlsSource: { clientContext: () => context },
      serverIdentity: CONTROL_ID,
      backoff: { baseMs: 100, maxMs: 1000 },
      startTimeoutMs: 3000,
      log: quiet,
      ...options,
    });
    sources.push(created);
    return created;
  }

  async function started(s: ControlPlaneSource): Promise<MeshSnapshot> {
    const result = await s.start();
    if (!result.ok) throw result.error;
    return result.value;
  }

  it('applies snapshots, NACKs one with an invalid object, keeps the last good one and ACKs the next', async () => {
    const control = await plane((call) => snapshot(call, 'v1', [service('web')]));
    const s = source(control.port);
    const updates: string[] = [];
    s.subscribe((next) => updates.push(next.version));
    expect((await started(s)).version).toBe('v1');
    const call = await eventually(() => control.calls[0], 'the stream');
    await eventually(() => call.received.length === 1, 'the first ack');

    snapshot(call, 'v2', [service('web'), service('bad', 'eighty')]);
    await eventually(() => call.received.length === 2, 'the NACK');
    expect(s.current()?.version).toBe('v1');
    expect(s.status().lastRejected).toMatchObject({ version: 'v2' });

    snapshot(call, 'v3', [service('web'), service('api')]);
    await eventually(() => call.received.length === 3, 'the next ack');
    expect(call.received).toEqual([
      { type: 'ack', version: 'v1' },
      { type: 'nack', version: 'v2', error: expect.stringMatching(/^snapshot v2: 1 invalid object: Service shop\/bad: spec\.ports\[0\]\.port/) },
      { type: 'ack', version: 'v3' },
    ]);
    expect(updates).toEqual(['v3']);
    expect(s.current()?.service('shop', 'api')).toBeDefined();
    expect(s.status()).toMatchObject({ connected: true, lastAppliedVersion: 'v3', consecutiveFailures: 0 });
  });

  it('waits for its workload certificate and connects as soon as one arrives', async () => {
    const control = await plane((call) => snapshot(call, 'v1', []));
    const certificate: { context?: SecureContext } = {};
    const listeners = new Set<() => void>();
    const s = source(control.port, {
      tlsSource: {
        clientContext: () => certificate.context,
        onChange: (listener) => {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      },
      backoff: { baseMs: 60_000, maxMs: 60_000 },
    });
    const starting = s.start();
    await eventually(() => s.status().lastError?.code === DISCOVERY_ERRORS.CONTROL_NO_IDENTITY, 'the missing certificate');
    certificate.context = contextOf(workload);
    for (const listener of listeners) listener();
    const result = await starting;
    expect(result.ok).toBe(true);
  });

  it('backs off exponentially while the control plane refuses, and says why', async () => {
    // The network is real but the clock is fake: it moves only when the test says, so each retry
    // is seen to wait exactly its delay (not 1 ms less, not at all more), however loaded the machine.
    fakeClock();
    const control = await plane((call) => {
      call.stream.respond({ ':status': 503, 'content-type': 'application/json' });
      call.stream.end(JSON.stringify({ error: { code: 'TSMESH_ERR_UNAVAILABLE', message: 'no mesh snapshot yet' } }));
    });
    const s = source(control.port, { random: () => 0, startTimeoutMs: 60_000 });
    void s.start();
    // A retry is pending (nextAttemptAt) only once the refusal was handled; connect() clears it.
    const refusalHandled = (what: string): Promise<string> => eventually(() => s.status().nextAttemptAt, what);
    // random 0: each delay is half its window, the window doubling from 100 ms.
    for (const delay of [50, 100, 200, 400]) {
      const nextAttemptAt = await refusalHandled(`refusal ${control.calls.length + 1}`);
      const attempts = control.calls.length;
      expect(s.status().consecutiveFailures).toBe(attempts);
      expect(Date.parse(nextAttemptAt) - Date.now()).toBe(delay);
      await jest.advanceTimersByTimeAsync(delay - 1);
      expect(s.status().nextAttemptAt).toBe(nextAttemptAt);
      expect(control.calls).toHaveLength(attempts);
      await jest.advanceTimersByTimeAsync(1);
      expect(s.status().nextAttemptAt).toBeUndefined();
      await eventually(() => control.calls.length === attempts + 1, `attempt ${attempts + 1}`);
    }
    await refusalHandled('the fifth refusal');
    // When the control plane saw each stream, on the same (fake) clock.
    const gaps = control.calls.slice(1).map((call, i) => call.at - (control.calls[i]?.at ?? 0));
    expect(gaps).toEqual([50, 100, 200, 400]);
    expect(s.status()).toMatchObject({
      connected: false,
      consecutiveFailures: 5,
      lastError: { code: DISCOVERY_ERRORS.CONTROL_REFUSED, message: 'the control plane refused the stream (HTTP 503): TSMESH_ERR_UNAVAILABLE: no mesh snapshot yet' },
    });
  });

  it('drops a control plane that sends something that is not the protocol, and connects again', async () => {
    const control = await plane((call, index) => {
      if (index === 0) {
        call.stream.respond({ ':status': 200 });
        call.stream.write('this is not json\n');
      } else {
        snapshot(call, 'v1', []);
      }
    });
    const s = source(control.port);
    expect((await started(s)).version).toBe('v1');
    expect(control.calls).toHaveLength(2);
  });

  it('gives up starting after the timeout, naming the last failure, and stops', async () => {
    // Not a control plane's port after it closed: another test worker's listener could take that one.
    const port = await closedPort();
    // Fake clock: the start timeout fires when the test says, after the first refusal was seen
    // (real time would let a stalled machine fire it before the refused connection is even noticed).
    fakeClock();
    const s = source(port, { startTimeoutMs: 400 });
    const starting = s.start();
    await eventually(() => s.status().lastError?.message.includes('ECONNREFUSED'), 'the refused connection');
    let settled = false;
    void starting.then(() => (settled = true));
    await jest.advanceTimersByTimeAsync(399);
    expect(settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    const result = await starting;
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(DISCOVERY_ERRORS.CONTROL_START_TIMEOUT);
    expect(result.error.message).toMatch(new RegExp(`^no mesh snapshot from the control plane at 127\\.0\\.0\\.1:${port} within 0\\.4s; last error: .*ECONNREFUSED`));
    expect(s.status().nextAttemptAt).toBeUndefined();
  });

  it('refuses an address that is not host:port', async () => {
    const result = await source(0, { controlAddr: 'tsmesh-control' }).start();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatchObject({ code: DISCOVERY_ERRORS.CONTROL_ADDR, message: expect.stringContaining('"tsmesh-control" is not host:port') });
  });

  it('delivers nothing after close', async () => {
    const control = await plane((call) => snapshot(call, 'v1', []));
    const s = source(control.port);
    await started(s);
    const updates: string[] = [];
    s.subscribe((next) => updates.push(next.version));
    await s.close();
    const call = control.calls[0];
    if (call !== undefined && !call.stream.destroyed) snapshot(call, 'v2', []);
    await pause(100);
    expect(updates).toEqual([]);
    expect(s.status().connected).toBe(false);
  });

  describe('limits', () => {
    it('NACKs a snapshot over the size limit unread, stays connected, and applies the next', async () => {
      const control = await plane((call) => snapshot(call, 'v1', [service('web')]));
      const s = source(control.port, { maxMessageBytes: 4096 });
      await started(s);
      const call = await eventually(() => control.calls[0], 'the stream');
      await eventually(() => call.received.length === 1, 'the first ack');
      const large = services(60);
      const size = Buffer.byteLength(JSON.stringify({ type: 'snapshot', version: 'v2', objects: large }));
      snapshot(call, 'v2', large);
      snapshot(call, 'v3', [service('web'), service('api')]);
      await eventually(() => call.received.length === 3, 'the NACK and the next ack');
      expect(call.received.slice(1)).toEqual([
        { type: 'nack', version: 'v2', error: `snapshot v2: ${(size / 1024).toFixed(1)} KiB (${size} bytes), over the size limit of 4 KiB` },
        { type: 'ack', version: 'v3' },
      ]);
      expect(s.status().lastRejected).toMatchObject({ version: 'v2' });
      expect(s.current()?.version).toBe('v3');
      expect(control.calls).toHaveLength(1);
    });

    it('NACKs a snapshot whose objects nest deeper than the limit, before parsing, small or large', async () => {
      const control = await plane((call) => snapshot(call, 'v1', [service('web')]));
      const s = source(control.port);
      await started(s);
      const call = await eventually(() => control.calls[0], 'the stream');
      await eventually(() => call.received.length === 1, 'the first ack');
      let nested: unknown = 1;
      for (let i = 0; i < 100; i++) nested = { a: nested };
      snapshot(call, 'v2', [{ ...service('deep'), spec: { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80 }], extra: nested } }]);
      // 1 MiB of brackets: decoded in a worker, refused there before JSON.parse.
      call.stream.write(`{"type":"snapshot","version":"v3","objects":[${'['.repeat(1024 * 1024)}\n`);
      await eventually(() => call.received.length === 3, 'two NACKs', 15_000);
      snapshot(call, 'v4', [service('web'), service('api')]);
      await eventually(() => call.received.length === 4, 'the ack');
      const deep = (version: string): string => `snapshot ${version}: objects nest deeper than 64 levels (the depth limit), refused before parsing`;
      expect(call.received.slice(1)).toEqual([
        { type: 'nack', version: 'v2', error: deep('v2') },
        { type: 'nack', version: 'v3', error: deep('v3') },
        { type: 'ack', version: 'v4' },
      ]);
      expect(s.current()?.version).toBe('v4');
    });

    it('answers the newest of the snapshots that arrive while one is parsed, skipping those it replaced', async () => {
      const control = await plane((call) => snapshot(call, 'v1', [service('web')]));
      const s = source(control.port);
      await started(s);
      const call = await eventually(() => control.calls[0], 'the stream');
      await eventually(() => call.received.length === 1, 'the first ack');
      snapshot(call, 'v2', services(5000));
      await pause(50);
      snapshot(call, 'v3', [service('web'), service('api')]);
      snapshot(call, 'v4', [service('web'), service('shop')]);
      await eventually(() => call.received.some((m) => m.version === 'v4'), 'the ack of v4', 15_000);
      expect(call.received.map((m) => `${m.type} ${m.version}`)).toEqual(['ack v1', 'ack v2', 'ack v4']);
      expect(s.current()?.version).toBe('v4');
    });

    it('parses a large snapshot off the event loop', async () => {
      const control = await plane((call) => snapshot(call, 'v1', [service('web')]));
      const s = source(control.port);
      await started(s);
      const call = await eventually(() => control.calls[0], 'the stream');
      await eventually(() => call.received.length === 1, 'the first ack');
      const line = encodeMessage({ type: 'snapshot', version: 'v2', objects: services(40_000) });
      const stall = await longestStall(async () => {
        call.stream.write(line);
        await eventually(() => call.received.length === 2, 'the ack of the large snapshot', 30_000);
      });
      expect(call.received[1]).toEqual({ type: 'ack', version: 'v2' });
      expect(s.current()?.services).toHaveLength(40_000);
      // Parsed, validated and indexed on the loop, these 4.8 MB held it for about 800 ms (under Jest);
      // now the objects come in batches and the indexes are built in slices (about 40 ms).
      expect(stall).toBeLessThan(100);
    }, 40_000);
  });
});
