// Tests only: a stand-in API server for the self-managed certificate: Secrets and MutatingWebhookConfigurations
// with resourceVersions, 409 on a stale update, JSON patch with test ops, and switchable outages.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

type Json = Record<string, unknown>;

export interface FakeApiServer {
  readonly url: string;
  readonly kubeConfig: KubeConfig;
  readonly secrets: Map<string, Json>;
  readonly webhooks: Map<string, Json>;
  /** Requests seen, as "METHOD path". */
  readonly requests: string[];
  /** While true every request gets 503. */
  down: boolean;
  /** Every entry's caBundle (base64) of a configuration. */
  caBundles(name: string): string[];
  /** Sets every entry's caBundle, as someone else would. */
  overwrite(name: string, caBundle: string): void;
  close(): Promise<void>;
}

function status(response: ServerResponse, code: number, reason: string, message: string): void {
  response.statusCode = code;
  response.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }));
}

async function body(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString() || 'null');
}

function webhookConfiguration(name: string, entries: number): Json {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name, resourceVersion: '1' },
    webhooks: Array.from({ length: entries }, (_, i) => ({
      name: `w${i}.sidecar-injector.tsmesh.io`,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      clientConfig: { service: { name: 'tsmesh-injector', namespace: 'tsmesh-system', path: '/inject', port: 15017 } },
    })),
  };
}

export async function startFakeApiServer(webhookNames: readonly string[] = ['tsmesh-sidecar-injector']): Promise<FakeApiServer> {
  let version = 10;
  const secrets = new Map<string, Json>();
  const webhooks = new Map<string, Json>(webhookNames.map((n) => [n, webhookConfiguration(n, 2)]));
  const requests: string[] = [];
  const meta = (object: Json) => object.metadata as Json;
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '').split('?')[0] ?? '';
    requests.push(`${request.method} ${path}`);
    response.setHeader('content-type', 'application/json');
    if (fake.down) return status(response, 503, 'ServiceUnavailable', 'the fake API server is down');
    const secret = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/.exec(path);
    if (secret) {
      const [, namespace, name] = secret;
      if (request.method === 'POST') {
        const object = (await body(request)) as Json;
        const key = `${namespace}/${String(meta(object).name)}`;
        if (secrets.has(key)) return status(response, 409, 'AlreadyExists', `secrets "${key}" already exists`);
        meta(object).resourceVersion = String(++version);
        secrets.set(key, object);
        response.statusCode = 201;
        return response.end(JSON.stringify(object));
      }
      const key = `${namespace}/${name}`;
      const found = secrets.get(key);
      if (found === undefined) return status(response, 404, 'NotFound', `secrets "${name}" not found`);
      if (request.method === 'GET') return response.end(JSON.stringify(found));
      if (request.method === 'PUT') {
        const object = (await body(request)) as Json;
        if (meta(object).resourceVersion !== meta(found).resourceVersion) return status(response, 409, 'Conflict', 'the object has been modified');
        meta(object).resourceVersion = String(++version);
        secrets.set(key, object);
        return response.end(JSON.stringify(object));
      }
    }
    const hook = /^\/apis\/admissionregistration\.k8s\.io\/v1\/mutatingwebhookconfigurations\/([^/]+)$/.exec(path);
    if (hook) {
      const name = hook[1] ?? '';
      const found = webhooks.get(name);
      if (found === undefined) return status(response, 404, 'NotFound', `mutatingwebhookconfigurations "${name}" not found`);
      if (request.method === 'GET') return response.end(JSON.stringify(found));
      if (request.method === 'PATCH') {
        if (request.headers['content-type'] !== 'application/json-patch+json') return status(response, 415, 'UnsupportedMediaType', 'json patch only');
        const copy = structuredClone(found);
        for (const op of (await body(request)) as { op: string; path: string; value: unknown }[]) {
          const parts = op.path.split('/').slice(1);
          const last = parts.pop() ?? '';
          let target = copy as Record<string, unknown>;
          for (const part of parts) target = target[part] as Record<string, unknown>;
          if (op.op === 'test' && target[last] !== op.value) return status(response, 422, 'Invalid', `test failed at ${op.path}`);
          if (op.op === 'add' || op.op === 'replace') target[last] = op.value;
        }
        meta(copy).resourceVersion = String(++version);
        webhooks.set(name, copy);
        return response.end(JSON.stringify(copy));
      }
    }
    status(response, 404, 'NotFound', `no route for ${request.method} ${path}`);
  };
  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => status(response, 500, 'InternalError', String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'injector', token: 'secret' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'injector' }],
    currentContext: 'fake',
  });
  const fake: FakeApiServer = {
    url,
    kubeConfig,
    secrets,
    webhooks,
    requests,
    down: false,
    caBundles: (name) => ((webhooks.get(name)?.webhooks ?? []) as { clientConfig: { caBundle?: string } }[]).map((w) => w.clientConfig.caBundle ?? ''),
    overwrite(name, caBundle) {
      const object = webhooks.get(name)!;
      for (const w of object.webhooks as { clientConfig: { caBundle?: string } }[]) w.clientConfig.caBundle = caBundle;
      meta(object).resourceVersion = String(++version);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}
