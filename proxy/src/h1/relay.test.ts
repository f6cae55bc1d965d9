// The HTTP/1.1 relay against hostile peers, through a running sidecar, on both engines: requests
// the parser must refuse, heads that arrive a byte at a time, bodies longer than they say, and
// endpoints whose responses lie about their length or stop in the middle.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { HTTP1_ENGINES } from '../config.js';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile } from '../testing/mesh.js';
import { adminJson, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, listenTcp, once, pause, type Listening } from '../testing/servers.js';

/** Raw request bytes on a fresh connection; resolves with everything the sidecar sent back before closing. */
async function exchange(port: number, parts: readonly string[], gapMs = 0): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  const closed = once(socket, 'close', 10_000);
  await once(socket, 'connect');
  for (const part of parts) {
    socket.write(part);
    if (gapMs) await pause(gapMs);
  }
  await closed;
  return text;
}

/**
 * An endpoint scripted per request path, recording every byte it receives: `/lie` answers with
 * more bytes than its Content-Length (a whole forged response), `/cut` closes after part of its
 * body, anything else answers `ok <path> <body length>` after reading a Content-Length body.
 */
function scriptedEndpoint(received: Buffer[]): Promise<Listening<net.Server>> {
  return listenTcp((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.subarray(0, end).toString('latin1');
        const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
        // A chunked body (no test sends "\r\n0\r\n" inside one) ends after its last chunk and trailers.
        const lastChunk = chunked ? buffered.indexOf('\r\n0\r\n', end + 2) : -1;
        const last = lastChunk < 0 ? -1 : buffered.indexOf('\r\n\r\n', lastChunk + 3);
        if (chunked && last < 0) return;
        const length = chunked ? last + 4 - (end + 4) : Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const path = head.split(' ')[1] ?? '';
        buffered = buffered.subarray(end + 4 + length);
        if (path === '/switch') socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: other\r\n\r\nafter the switch');
        else if (path === '/lie') socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nPOISON');
        else if (path === '/cut') {
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial');
          setTimeout(() => socket.end(), 50);
        } else {
          const body = `ok ${path} ${length}`;
          socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
        }
      }
    });
  });
}

describe.each(HTTP1_ENGINES)('HTTP/1.1 against hostile peers (%s engine)', (engine) => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let endpoint: Listening<net.Server>;
  const received: Buffer[] = [];
  const upstreamText = (): string => Buffer.concat(received).toString('latin1');

  beforeAll(async () => {
    endpoint = await scriptedEndpoint(received);
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [endpoint.port] }]);
    proxy = await startTestProxy(mesh.path, { args: ['--http1-engine', engine] });
  });

  afterAll(async () => {
    await proxy?.close();
    await endpoint?.close();
    mesh?.remove();
  });

  test.each([
    ['an obs-folded header line', 'GET /fold HTTP/1.1\r\nhost: svc\r\nx-a: 1\r\n x-b: 2\r\n\r\n'],
    ['a chunk size that overflows', 'POST /overflow HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffff1\r\nx\r\n0\r\n\r\n'],
    ['an HTTP/1.1 request without Host', 'GET /nohost HTTP/1.1\r\nx-a: 1\r\n\r\n'],
    ['Transfer-Encoding other than chunked last', 'POST /te HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
  ])('refuses %s with 400 and forwards nothing', async (_what, raw) => {
    const before = upstreamText().length;
    const answer = await exchange(proxy.ports.outbound, [raw]);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    await pause(50);
    expect(upstreamText().slice(before)).not.toMatch(/\/fold|\/overflow|\/te |\/nohost/);
  });

  test('forwards a request whose head arrives one byte at a time, exactly once and whole', async () => {
    const raw = 'GET /bytewise?x=1 HTTP/1.1\r\nHost: svc\r\nX-Long-Header-Name: some value\r\nconnection: close\r\n\r\n';
    const answer = await exchange(proxy.ports.outbound, [...raw], 1);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('ok /bytewise?x=1 0');
    expect(upstreamText()).toMatch(/GET \/bytewise\?x=1 HTTP\/1\.1\r\n(?:.*\r\n)*X-Long-Header-Name: some value\r\n/);
  });

  test('forwards a method beyond the first 34 of llhttp (QUERY) under its own name, never as another method', async () => {
    const answer = await exchange(proxy.ports.outbound, ['QUERY /q HTTP/1.1\r\nhost: svc\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}']);
    expect(answer).toContain('ok /q 2');
    expect(upstreamText()).toContain('QUERY /q HTTP/1.1\r\n');
  });

  test('a body longer than its Content-Length: the excess is the next request, never body bytes on the upstream connection', async () => {
    const before = upstreamText().length;
    const answer = await exchange(proxy.ports.outbound, ['POST /short HTTP/1.1\r\nhost: svc\r\ncontent-length: 5\r\n\r\nhelloSMUGGLED /admin HTTP/1.1\r\n\r\n']);
    // The excess, parsed as a next request, is refused (node:http answers only that 400; the relay
    // first answers the valid request, whose body is the declared 5 bytes).
    expect(answer).toMatch(/HTTP\/1\.1 400 /);
    if (engine === 'relay') expect(answer).toMatch(/^HTTP\/1\.1 200 [^]*ok \/short 5/);
    await pause(50);
    expect(upstreamText().slice(before)).not.toContain('SMUGGLED');
  });

  test('a response longer than its Content-Length: the client gets the declared bytes, and the excess never answers another request', async () => {
    const lied = await exchange(proxy.ports.outbound, ['GET /lie HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n']);
    expect(lied).toMatch(/^HTTP\/1\.1 200 /);
    expect(lied.endsWith('\r\n\r\nhello')).toBe(true);
    expect(lied).not.toContain('POISON');
    // The next requests may reuse pooled connections: none may be answered by the forged response.
    for (let i = 0; i < 3; i++) {
      const next = await exchange(proxy.ports.outbound, [`GET /after${i} HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n`]);
      expect(next).toContain(`ok /after${i} 0`);
      expect(next).not.toContain('POISON');
    }
  });

  test('a response longer than its Content-Length never answers the next pipelined request of the same client', async () => {
    const answer = await exchange(proxy.ports.outbound, ['GET /lie HTTP/1.1\r\nhost: svc\r\n\r\nGET /next HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n']);
    expect(answer).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\nhello/);
    expect(answer).not.toContain('POISON');
    expect(answer).toContain('ok /next 0');
  });

  // The node engine leaves this client hanging (node's client emits 'upgrade', which h1.ts does not
  // listen for); h1.ts is being reworked elsewhere, so only the relay is held to it for now.
  (engine === 'relay' ? test : test.skip)('an endpoint that switches protocols unasked is a broken endpoint (502), and its bytes never reach the client', async () => {
    const answer = await exchange(proxy.ports.outbound, ['GET /switch HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n']);
    expect(answer).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer).not.toContain('after the switch');
  });

  test('an endpoint that closes mid-body: the client response is cut short, never completed', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: proxy.ports.outbound, path: '/cut', agent: false }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve('complete'));
        res.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
        res.on('aborted', () => resolve('aborted'));
      });
      req.on('error', (e) => resolve(`error ${e.message}`));
    });
    expect(outcome).not.toBe('complete');
    // The sidecar still serves.
    const next = await exchange(proxy.ports.outbound, ['GET /alive HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n']);
    expect(next).toContain('ok /alive 0');
  });

  (engine === 'relay' ? test : test.skip)('passes request trailers on, without the ones the mesh owns', async () => {
    const answer = await exchange(proxy.ports.outbound, [
      'POST /trailers HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n2\r\nhi\r\n0\r\nx-checksum: 1\r\nx-forwarded-client-cert: By=forged\r\n\r\n',
    ]);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    await eventually(() => upstreamText().includes('0\r\nx-checksum: 1\r\n\r\n'), 'the trailer upstream');
    expect(upstreamText()).not.toContain('By=forged');
  });

    test('answers pipelined requests with bodies in order, each body to its own request', async () => {
    const answer = await exchange(proxy.ports.outbound, [
      'POST /p1 HTTP/1.1\r\nhost: svc\r\ncontent-length: 3\r\n\r\nabcPOST /p2 HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\nGET /p3 HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
    ]);
    const bodies = [...answer.matchAll(/ok (\/p\d) (\d+)/g)].map((m) => `${m[1]} ${m[2]}`);
    // p2 reaches the endpoint chunked: 2\r\nde\r\n0\r\n\r\n is 12 bytes of framed body.
    expect(bodies).toEqual(['/p1 3', '/p2 12', '/p3 0']);
    await eventually(() => upstreamText().includes('2\r\nde\r\n0\r\n\r\n'), 'the chunked body, framed as chunked, upstream');
  });

  // node:http's Agent is not under the upstream layer; the relay's pool is.
  (engine === 'relay' ? test : test.skip)('its pooled upstream connections are counted in /clusters', async () => {
    await exchange(proxy.ports.outbound, ['GET /pooled HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n']);
    const clusters = await adminJson<Array<{ cluster: string; endpoints: Array<{ port: number; connections: { http1: number } }> }>>(proxy, '/clusters');
    const svc = clusters.find((c) => c.cluster === `default/svc:${SERVICE_PORT}`);
    expect(svc?.endpoints.find((e) => e.port === endpoint.port)?.connections.http1).toBeGreaterThanOrEqual(1);
  });
});
