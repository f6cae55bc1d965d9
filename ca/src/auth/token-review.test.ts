import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { TokenReviewAuthenticator } from './token-review.js';
import { testAuthority } from '../testing/fixtures.js';

interface SeenRequest {
  method: string | undefined;
  path: string | undefined;
  authorization: string | undefined;
  body: { apiVersion?: string; kind?: string; spec?: { token?: string; audiences?: string[] } };
}

/** What the fake API server answers for a token: a TokenReview status, or an HTTP failure. */
type Answer = { status: object } | { httpStatus: number };

const SA_USER = { username: 'system:serviceaccount:default:web', uid: 'b7d1', groups: ['system:serviceaccounts', 'system:serviceaccounts:default'] };

const ANSWERS: Record<string, Answer> = {
  good: { status: { authenticated: true, user: SA_USER, audiences: ['tsmesh-ca'] } },
  expired: { status: { user: {}, error: '[invalid bearer token, service account token has expired]' } },
  'wrong-audience': { status: { authenticated: true, user: SA_USER, audiences: ['api'] } },
  'no-audiences': { status: { authenticated: true, user: SA_USER } },
  node: { status: { authenticated: true, user: { username: 'system:node:worker-1' }, audiences: ['tsmesh-ca'] } },
  malformed: { status: { authenticated: true, user: { username: 'system:serviceaccount:default' }, audiences: ['tsmesh-ca'] } },
  forbidden: { httpStatus: 403 },
  broken: { httpStatus: 500 },
};

/** A tiny HTTPS Kubernetes API server that only knows POST /apis/authentication.k8s.io/v1/tokenreviews. */
async function fakeApiServer(): Promise<{ server: Server; kubeConfig: KubeConfig; seen: SeenRequest[] }> {
  const authority = testAuthority();
  const serving = authority.issueServing([{ type: 'ip', value: '127.0.0.1' }], 3600);
  const seen: SeenRequest[] = [];
  const server = createServer({ cert: serving.certChainPem, key: serving.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as SeenRequest['body'];
      seen.push({ method: req.method, path: req.url, authorization: req.headers.authorization, body });
      const answer = req.url?.startsWith('/apis/authentication.k8s.io/v1/tokenreviews')
        ? ANSWERS[body.spec?.token ?? '']
        : { httpStatus: 404 };
      res.setHeader('content-type', 'application/json');
      if (answer === undefined || 'httpStatus' in answer) {
        const code = answer?.httpStatus ?? 404;
        res.writeHead(code).end(
          JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `fake failure ${code}`, code }),
        );
        return;
      }
      res.writeHead(201).end(
        JSON.stringify({
          kind: 'TokenReview',
          apiVersion: 'authentication.k8s.io/v1',
          metadata: { creationTimestamp: null },
          spec: body.spec,
          status: answer.status,
        }),
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: `https://127.0.0.1:${port}`, caData: Buffer.from(authority.trustBundle().join('')).toString('base64') }],
    users: [{ name: 'tsmesh-ca', token: 'ca-own-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'tsmesh-ca' }],
    currentContext: 'fake',
  });
  return { server, kubeConfig, seen };
}

describe('TokenReviewAuthenticator', () => {
  let api: Awaited<ReturnType<typeof fakeApiServer>>;
  let auth: TokenReviewAuthenticator;
  beforeAll(async () => {
    api = await fakeApiServer();
    auth = new TokenReviewAuthenticator(api.kubeConfig);
  });
  afterAll(() => api.server.close());

  it('maps an authenticated service account token to its identity', async () => {
    expect(await auth.authenticate('good')).toEqual({ ok: true, value: { namespace: 'default', serviceAccount: 'web' } });
  });

  it('asks the API server with its own credentials for the tsmesh-ca audience', async () => {
    await auth.authenticate('good');
    const last = api.seen[api.seen.length - 1];
    expect(last).toEqual({
      method: 'POST',
      path: '/apis/authentication.k8s.io/v1/tokenreviews',
      authorization: 'Bearer ca-own-token',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'good', audiences: ['tsmesh-ca'] } },
    });
  });

  it('refuses a token the API server does not authenticate, with its reason', async () => {
    const result = await auth.authenticate('expired');
    expect(!result.ok && [result.error.code, result.error.status]).toEqual(['TSMESH_ERR_TOKEN_INVALID', 401]);
    expect(!result.ok && result.error.message).toContain('service account token has expired');
  });

  it.each([['wrong-audience'], ['no-audiences']])('refuses a token whose audiences lack tsmesh-ca (%s)', async (token) => {
    const result = await auth.authenticate(token);
    expect(!result.ok && [result.error.code, result.error.status]).toEqual(['TSMESH_ERR_TOKEN_AUDIENCE', 401]);
  });

  it.each([['node'], ['malformed']])('refuses a username that is not a service account (%s)', async (token) => {
    const result = await auth.authenticate(token);
    expect(!result.ok && [result.error.code, result.error.status]).toEqual(['TSMESH_ERR_TOKEN_IDENTITY', 401]);
  });

  it.each([['forbidden'], ['broken']])('answers 503 when the API server fails the review (%s)', async (token) => {
    const result = await auth.authenticate(token);
    expect(!result.ok && [result.error.code, result.error.status]).toEqual(['TSMESH_ERR_TOKEN_REVIEW_UNAVAILABLE', 503]);
  });

  it('answers 503 when the API server cannot be reached', async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'gone', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'gone', cluster: 'gone', user: 'u' }],
      currentContext: 'gone',
    });
    const result = await new TokenReviewAuthenticator(kubeConfig).authenticate('good');
    expect(!result.ok && result.error.code).toBe('TSMESH_ERR_TOKEN_REVIEW_UNAVAILABLE');
  });
});
