import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { kubeNamespaceLabels, kubernetesVersion } from './kube.js';

/** A stand-in API server: GET /api/v1/namespaces/<name> and GET /version. */
function fakeApiServer(): Promise<{ server: Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    response.setHeader('content-type', 'application/json');
    const namespace = /^\/api\/v1\/namespaces\/([^/?]+)/.exec(request.url ?? '')?.[1];
    if (namespace === 'shop') {
      response.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'tsmesh-injection': 'enabled' } } }));
    } else if (namespace === 'bare') {
      response.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bare' } }));
    } else if (request.url === '/version') {
      response.end(JSON.stringify({ major: '1', minor: '30', gitVersion: 'v1.30.2', gitCommit: 'x', gitTreeState: 'clean', buildDate: '2024-06-11T00:00:00Z', goVersion: 'go1.22', compiler: 'gc', platform: 'linux/amd64' }));
    } else {
      response.statusCode = 404;
      response.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `namespaces "${namespace}" not found`, reason: 'NotFound', code: 404 }));
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests });
    });
  });
}

function kubeConfigFor(url: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'tester', token: 'secret' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'tester' }],
    currentContext: 'fake',
  });
  return config;
}

describe('the Kubernetes-backed lookups', () => {
  let api: Awaited<ReturnType<typeof fakeApiServer>>;
  beforeAll(async () => {
    api = await fakeApiServer();
  });
  afterAll(() => new Promise<void>((resolve) => api.server.close(() => resolve())));

  it('read a namespace\'s labels, {} when it has none', async () => {
    const labels = kubeNamespaceLabels(kubeConfigFor(api.url));
    expect(await labels.labels('shop')).toEqual({ ok: true, value: { 'tsmesh-injection': 'enabled' } });
    expect(await labels.labels('bare')).toEqual({ ok: true, value: {} });
    expect(api.requests).toContain('GET /api/v1/namespaces/shop');
  });

  it('turn a missing namespace into an error value', async () => {
    const result = await kubeNamespaceLabels(kubeConfigFor(api.url)).labels('gone');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe('TSMESH_ERR_INJECT_NAMESPACE_LOOKUP');
    expect(!result.ok && result.error.message).toMatch(/^cannot read the labels of namespace gone: /);
  });

  it('turn an unreachable API server into an error value', async () => {
    const result = await kubeNamespaceLabels(kubeConfigFor('http://127.0.0.1:1')).labels('shop');
    expect(result.ok).toBe(false);
  });

  it('read the server version', async () => {
    expect(await kubernetesVersion(kubeConfigFor(api.url))).toEqual({ ok: true, value: 'v1.30.2' });
  });
});
