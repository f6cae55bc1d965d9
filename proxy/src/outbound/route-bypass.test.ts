// An HTTPRoute applies to every HTTP request a workload sends to the Service it is attached to.
// Through a running sidecar (explicit-port mode), a client tries every way of getting a request to
// the Service's own endpoints past the rule (which sends everything to another Service): each
// request must be routed by the rule or refused, never carried as TCP.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile, testMeshYaml } from '../testing/mesh.js';
import { SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { forgedRequest, rawExchange, recordingApp, type RawStep, type RecordingApp } from '../testing/raw-http.js';

describe('Outbound: no request passes an HTTPRoute as TCP', () => {
  let direct: RecordingApp;
  let routed: RecordingApp;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;

  beforeAll(async () => {
    direct = await recordingApp('direct');
    routed = await recordingApp('routed');
    mesh = new TestMeshFile([]);
    const route = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'everything-to-v2', namespace: 'default' },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'web', port: SERVICE_PORT }],
        rules: [{ backendRefs: [{ name: 'web-v2', port: SERVICE_PORT }] }],
      },
    };
    mesh.writeText(
      `${testMeshYaml([
        { name: 'web', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [direct.listening.port] },
        { name: 'web-v2', clusterIP: '10.96.0.11', port: SERVICE_PORT, endpoints: [routed.listening.port] },
      ])}---\n${stringify(route)}`,
    );
    proxy = await startTestProxy(mesh.path, { args: ['--detect-timeout', '300ms'] });
  });

  afterAll(async () => {
    await proxy.close();
    await Promise.all([direct.listening.close(), routed.listening.close()]);
    mesh.remove();
  });

  /** Sends `steps` to the Service through the outbound port; checks nothing reached the Service's own endpoint. */
  async function attempt(steps: readonly RawStep[]): Promise<string> {
    const before = direct.received().length;
    const answer = await rawExchange(proxy.ports.outbound, steps);
    expect(direct.received().slice(before)).toBe('');
    return answer;
  }

  test('a plain request is routed by the rule (the baseline)', async () => {
    expect(await attempt([forgedRequest('GET', '/')])).toMatch(/^HTTP\/1\.1 200 [\s\S]*routed$/);
  });

  test('a request after an empty line is routed by the rule', async () => {
    expect(await attempt(['\r\n', forgedRequest('GET', '/')])).toMatch(/^HTTP\/1\.1 200 [\s\S]*routed$/);
  });

  test('a request that pauses 400 ms after its first byte is routed by the rule', async () => {
    const request = forgedRequest('GET', '/');
    expect(await attempt([request.slice(0, 1), { pauseMs: 400 }, request.slice(1)])).toMatch(/^HTTP\/1\.1 200 [\s\S]*routed$/);
  });

  test.each(['NOTIFY', 'QUERY', 'SUBSCRIBE'])('a request with the method %s is routed by the rule', async (method) => {
    expect(await attempt([forgedRequest(method, '/')])).toMatch(/^HTTP\/1\.1 200 [\s\S]*routed$/);
  });

  test.each(['get', 'BAN'])('a request with the odd but token-shaped method %s is routed or refused, never carried as TCP', async (method) => {
    expect(await attempt([forgedRequest(method, '/')])).toMatch(/^HTTP\/1\.1 (200 [\s\S]*routed|400 [\s\S]*)$/);
  });

  test('a client that is silent past the detection timeout and then sends a request is routed by the rule', async () => {
    expect(await attempt([{ pauseMs: 500 }, forgedRequest('GET', '/')])).toMatch(/^HTTP\/1\.1 200 [\s\S]*routed$/);
  });

  test('a request line left unfinished past the request-line limit is refused (408)', async () => {
    expect(await attempt(['GET / HTT', { pauseMs: 5_600 }, 'P/1.1\r\nhost: web\r\n\r\n'])).toMatch(/^(HTTP\/1\.1 408 [\s\S]*)?$/);
  }, 20_000);
});
