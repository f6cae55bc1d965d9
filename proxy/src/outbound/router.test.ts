// Route matching through a running sidecar (outbound, explicit-port mode), over HTTP/1.1 and
// HTTP/2: the path is normalised once (dot segments, merged slashes, decoded unreserved
// characters, escaped slashes refused) and the endpoint receives the path the route matched; Host
// rules match `:authority` or Host case-insensitively without the port; a route regex cannot stall
// the sidecar.
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { testMeshYaml, TestMeshFile } from '../testing/mesh.js';
import { SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { listenH2, listenHttp, once, type Listening } from '../testing/servers.js';

/** What the endpoint saw of one request. */
interface Seen {
  readonly path: string;
  readonly host: string | undefined;
}

interface Answer {
  readonly status: number;
  /** The endpoint's view when the request reached it. */
  readonly seen: Seen | undefined;
}

/** The only route of the Service: `/public` (and a Host rule, and a regex rule) go to the Service itself. */
function meshText(endpointPort: number): string {
  const route = {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'public-only', namespace: 'default' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'svc', port: SERVICE_PORT }],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/public' } }], backendRefs: [{ name: 'svc', port: SERVICE_PORT }] },
        { matches: [{ path: { type: 'Exact', value: '/vip' }, headers: [{ name: 'Host', value: 'vip.rt' }] }], backendRefs: [{ name: 'svc', port: SERVICE_PORT }] },
        { matches: [{ path: { type: 'RegularExpression', value: '/api/(\\w|\\d)+x' } }], backendRefs: [{ name: 'svc', port: SERVICE_PORT }] },
      ],
    },
  };
  return `${testMeshYaml([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [endpointPort] }])}---\n${stringify(route)}`;
}

/** One HTTP/1.1 request written byte for byte (no client library tidies the target), `Connection: close`. */
function rawH1(port: number, target: string, host = 'svc'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      resolve({ status, seen: status === 200 ? (JSON.parse(body) as Seen) : undefined });
    });
    socket.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

/** One HTTP/2 stream; `headers` may add `host` or replace `:authority`. */
function h2Call(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const req = session.request({ ':method': 'GET', ':path': path, ...headers });
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('close', () => resolve({ status, seen: status === 200 ? (JSON.parse(Buffer.concat(chunks).toString()) as Seen) : undefined }));
  });
}

// The ten path probes: what reaches the endpoint (the normalised path) or the proxy's own answer.
// 404: the normalised path leaves `/public`, so no rule matches. 400: an encoded `/` or `\` is
// refused (the escaped-slash policy), since an endpoint that decodes it would resolve `..` again.
const PROBES: ReadonlyArray<readonly [string, number, string | undefined]> = [
  ['/public/../admin', 404, undefined],
  ['/public/%2e%2e/admin', 404, undefined],
  ['/public/%2E%2E/admin', 404, undefined],
  ['/public/.%2e/admin', 404, undefined],
  ['/public//../admin', 404, undefined],
  ['/public/..%2Fadmin', 400, undefined],
  ['/public/%2e%2e%2fadmin', 400, undefined],
  ['/public/./admin', 200, '/public/admin'],
  ['/public/%2fadmin', 400, undefined],
  ['/public/a/../b', 200, '/public/b'],
  // Beyond the ten: a raw `\`, and a dot segment with `;` parameters (Tomcat reads `..;` as `..`).
  ['/public/..\\admin', 400, undefined],
  ['/public/..;/admin', 400, undefined],
];

/** Whatever the answer, the endpoint only ever sees a clean path under `/public`. */
function expectNoEscape(answer: Answer): void {
  if (answer.seen === undefined) return;
  expect(answer.seen.path).toMatch(/^\/public(\/|$)/);
  expect(answer.seen.path).not.toMatch(/\/\.\.?(\/|$)|\/\/|%2e|%2f|%5c/i);
}

describe('Outbound routing over HTTP/1.1', () => {
  let endpoint: Listening<import('node:http').Server>;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;

  beforeAll(async () => {
    endpoint = await listenHttp((req, res) => {
      req.resume();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url, host: req.headers.host }));
    });
    mesh = new TestMeshFile([]);
    mesh.writeText(meshText(endpoint.port));
    proxy = await startTestProxy(mesh.path);
  });

  afterAll(async () => {
    await proxy?.close();
    await endpoint?.close();
    mesh?.remove();
  });

  test.each(PROBES)('never lets %j escape PathPrefix /public (answers %d, the endpoint sees %j)', async (target, status, forwarded) => {
    const answer = await rawH1(proxy.ports.outbound, target);
    expectNoEscape(answer);
    expect(answer.status).toBe(status);
    expect(answer.seen?.path).toBe(forwarded);
  });

  test('forwards the normalised path with the query string as sent', async () => {
    const answer = await rawH1(proxy.ports.outbound, '/public/%7Euser/./%41b?next=/../admin&x=%2e');
    expect(answer.status).toBe(200);
    expect(answer.seen?.path).toBe('/public/~user/Ab?next=/../admin&x=%2e');
  });

  test.each(['vip.rt', 'VIP.RT', 'vip.rt:80', 'Vip.Rt.'])('matches a Host rule for vip.rt with Host %j', async (host) => {
    const answer = await rawH1(proxy.ports.outbound, '/vip', host);
    expect(answer.status).toBe(200);
    // The Host header itself is forwarded as sent.
    expect(answer.seen?.host).toBe(host);
  });

  test('does not match a Host rule for another host', async () => {
    expect((await rawH1(proxy.ports.outbound, '/vip', 'other.rt')).status).toBe(404);
  });

  test('answers a route regex on a hostile path at once, and other requests meanwhile', async () => {
    // `(\w|\d)+x` on 30 digits backtracks 2^30 ways in a backtracking engine (seconds); RE2 is linear.
    const started = performance.now();
    const [hostile, other] = await Promise.all([rawH1(proxy.ports.outbound, `/api/${'1'.repeat(30)}`), rawH1(proxy.ports.outbound, '/public/ok')]);
    const elapsed = performance.now() - started;
    expect(hostile.status).toBe(404);
    expect(other.status).toBe(200);
    expect(elapsed).toBeLessThan(500);
    expect((await rawH1(proxy.ports.outbound, `/api/${'1'.repeat(30)}x`)).status).toBe(200);
  });
});

describe('Outbound routing over HTTP/2', () => {
  let endpoint: Listening<http2.Http2Server>;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let session: http2.ClientHttp2Session;

  beforeAll(async () => {
    endpoint = await listenH2((stream, headers) => {
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ path: headers[':path'], host: headers[':authority'] }));
    });
    mesh = new TestMeshFile([]);
    mesh.writeText(meshText(endpoint.port));
    proxy = await startTestProxy(mesh.path);
    session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    session.on('error', () => undefined);
    await once(session, 'connect');
  });

  afterAll(async () => {
    session?.destroy();
    await proxy?.close();
    await endpoint?.close();
    mesh?.remove();
  });

  test.each(PROBES)('never lets %j escape PathPrefix /public (answers %d, the endpoint sees %j)', async (path, status, forwarded) => {
    const answer = await h2Call(session, path);
    expectNoEscape(answer);
    expect(answer.status).toBe(status);
    expect(answer.seen?.path).toBe(forwarded);
  });

  test.each(['vip.rt', 'VIP.RT', 'vip.rt:80'])('matches a Host rule for vip.rt with :authority %j and no host header', async (authority) => {
    const answer = await h2Call(session, '/vip', { ':authority': authority });
    expect(answer.status).toBe(200);
    expect(answer.seen?.host).toBe(authority);
  });

  test('does not honour a host header that differs from :authority', async () => {
    const answer = await h2Call(session, '/vip', { ':authority': 'other.rt', host: 'vip.rt' });
    expect(answer.status).not.toBe(200);
    expect(answer.seen).toBeUndefined();
    // The connection survives the refused stream.
    expect((await h2Call(session, '/public/ok')).status).toBe(200);
  });

  test('answers a route regex on a hostile path at once, and other streams meanwhile', async () => {
    const started = performance.now();
    const [hostile, other] = await Promise.all([h2Call(session, `/api/${'1'.repeat(30)}`), h2Call(session, '/public/ok')]);
    const elapsed = performance.now() - started;
    expect(hostile.status).toBe(404);
    expect(other.status).toBe(200);
    expect(elapsed).toBeLessThan(500);
  });
});
