// The application learns who called from x-forwarded-client-cert, which only the sidecar may set.
// Through a running sidecar (explicit-port mode), a plaintext client tries every way of getting its
// own copy of that header to the application as unparsed bytes: none may reach it.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile } from '../testing/mesh.js';
import { fetchText, SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { FORGED_XFCC, forgedRequest, rawExchange, recordingApp, type RawStep, type RecordingApp } from '../testing/raw-http.js';

const REFUSED_OR_ANSWERED = /^HTTP\/1\.1 (200|400|408) /;

describe('Inbound: a client cannot forge its caller identity', () => {
  let app: RecordingApp;
  let mesh: TestMeshFile;
  let undeclared: RunningProxy;
  let declared: RunningProxy;

  beforeAll(async () => {
    app = await recordingApp('app');
    // The same app port twice: once undeclared (detected), once declared HTTP by its Service's port name.
    mesh = new TestMeshFile([{ name: 'web', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [app.listening.port] }]);
    undeclared = await startTestProxy(mesh.path, { inboundTarget: `127.0.0.1:${app.listening.port}`, args: ['--detect-timeout', '300ms'] });
    const declaredMesh = new TestMeshFile([{ name: 'web', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName: 'http-web', endpoints: [app.listening.port] }]);
    declared = await startTestProxy(declaredMesh.path, {
      inboundTarget: `127.0.0.1:${app.listening.port}`,
      env: { TSMESH_POD_IP: '127.0.0.1' },
      args: ['--detect-timeout', '300ms'],
    });
    declaredMesh.remove();
  });

  afterAll(async () => {
    await Promise.all([undeclared.close(), declared.close()]);
    await app.listening.close();
    mesh.remove();
  });

  /** Sends `steps` through the inbound port of `proxy`; checks the app never saw the forged identity. */
  async function attempt(proxy: RunningProxy, steps: readonly RawStep[]): Promise<string> {
    const before = app.received().length;
    const answer = await rawExchange(proxy.ports.inbound, steps);
    const seen = app.received().slice(before);
    expect(seen).not.toContain('kube-system/sa/admin');
    expect(seen.toLowerCase()).not.toContain('x-forwarded-client-cert');
    return answer;
  }

  test('a request after an empty line (RFC 9112 §2.2) is parsed as HTTP: the app gets it without the client’s header', async () => {
    const answer = await attempt(undeclared, ['\r\n', forgedRequest('GET')]);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(app.heads().at(-1)).toMatch(/^GET \/admin HTTP\/1\.1\r\n/);
  });

  test('a request that pauses 400 ms after its first byte is still parsed as HTTP', async () => {
    const request = forgedRequest('GET');
    const answer = await attempt(undeclared, [request.slice(0, 1), { pauseMs: 400 }, request.slice(1)]);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  });

  test.each(['NOTIFY', 'QUERY', 'SUBSCRIBE'])('a request with the method %s, unknown to the old detector, is parsed as HTTP', async (method) => {
    const answer = await attempt(undeclared, [forgedRequest(method)]);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(app.heads().at(-1)).toMatch(new RegExp(`^${method} /admin HTTP/1\\.1\\r\\n`));
  });

  test.each(['get', 'BAN', 'X-TOKEN!'])('a request with the odd but token-shaped method %s goes to the HTTP parser, never to the app as bytes', async (method) => {
    const answer = await attempt(undeclared, [forgedRequest(method)]);
    expect(answer).toMatch(REFUSED_OR_ANSWERED);
  });

  test('a client that is silent past the detection timeout and then sends HTTP is parsed as HTTP', async () => {
    const answer = await attempt(undeclared, [{ pauseMs: 500 }, forgedRequest('GET')]);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  });

  test('a request line left unfinished past the request-line limit is refused (408), never passed on', async () => {
    const answer = await attempt(undeclared, ['GET /admin HTT', { pauseMs: 5_600 }, 'P/1.1\r\nx-forwarded-client-cert: ' + FORGED_XFCC + '\r\n\r\n']);
    expect(answer).toMatch(/^(HTTP\/1\.1 408 [\s\S]*)?$/);
  }, 20_000);

  test('on a port its Service declares HTTP, a silent client and garbage both meet the HTTP parser (400), never the app', async () => {
    const garbage = await attempt(declared, [{ pauseMs: 500 }, '\u0000\u0001binary\r\nx-forwarded-client-cert: ' + FORGED_XFCC + '\r\n\r\n']);
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    const ok = await attempt(declared, [forgedRequest('NOTIFY')]);
    expect(ok).toMatch(/^HTTP\/1\.1 200 /);
  });

  test('a well-formed request still reaches the app, without any x-forwarded-client-cert from a plaintext client', async () => {
    const res = await fetchText(undeclared.ports.inbound, '/hello', { headers: { 'x-forwarded-client-cert': FORGED_XFCC } });
    expect(res.status).toBe(200);
    expect(app.heads().at(-1)?.toLowerCase()).not.toContain('x-forwarded-client-cert');
  });
});
