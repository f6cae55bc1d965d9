import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { HttpMethod } from '@kubernetes/client-node';
import { CONTROL_ERRORS } from '../errors.js';
import { FakeApiServer } from '../testing/fake-apiserver.js';
import { service } from '../testing/fixtures.js';
import { KubeApiError, KubeHttp, listResource, type RequestOptions } from './kube-http.js';
import { WATCHED_RESOURCES, type WatchedResource } from './resources.js';

const services = WATCHED_RESOURCES.find((r) => r.kind === 'Service') as WatchedResource;

describe('KubeHttp and listResource', () => {
  let fake: FakeApiServer;

  beforeEach(async () => {
    fake = await FakeApiServer.start({ token: 't' });
  });

  afterEach(async () => {
    await fake.close();
  });

  it('lists every page into one list with apiVersion and kind on each item', async () => {
    for (const name of ['a', 'b', 'c']) fake.create(service(name));
    const list = await listResource(new KubeHttp(fake.kubeConfig()), services, { pageSize: 2 });
    expect(list.items.map((i) => [i.kind, i.apiVersion, i.metadata?.name])).toEqual([
      ['Service', 'v1', 'a'],
      ['Service', 'v1', 'b'],
      ['Service', 'v1', 'c'],
    ]);
    expect(list.metadata?.resourceVersion).toBe('3');
    expect(fake.requestsFor('/api/v1/services').map((r) => r.query['limit'])).toEqual(['2', '2']);
  });

  it('starts the list over when a continue token expires mid-way', async () => {
    for (const name of ['a', 'b', 'c']) fake.create(service(name));
    let pages = 0;
    class CompactingHttp extends KubeHttp {
      override async request(method: HttpMethod, path: string, options?: RequestOptions): Promise<unknown> {
        const answer = await super.request(method, path, options);
        if ((pages += 1) === 1) {
          fake.compact();
          fake.create(service('d'));
        }
        return answer;
      }
    }
    const list = await listResource(new CompactingHttp(fake.kubeConfig()), services, { pageSize: 2 });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(fake.requestsFor('/api/v1/services').map((r) => r.status)).toEqual([200, 410, 200, 200]);
  });

  it('turns an error answer into a KubeApiError with the status code and reason', async () => {
    const http = new KubeHttp(fake.kubeConfig());
    const failure = await http.request(HttpMethod.GET, '/apis/example.com/v1/widgets').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KubeApiError);
    expect(failure).toMatchObject({ statusCode: 404, reason: 'NotFound', code: CONTROL_ERRORS.KUBE_API });
    expect((failure as Error).message).toBe('GET /apis/example.com/v1/widgets: 404 NotFound: the server could not find the requested resource');
  });

  it('sends the kubeconfig credentials', async () => {
    const refused = await new KubeHttp(fake.kubeConfig('wrong')).request(HttpMethod.GET, '/api/v1/pods').catch((error: unknown) => error);
    expect(refused).toMatchObject({ statusCode: 401 });
  });

  it('reports an unreachable server with status 0 and the reason', async () => {
    const http = new KubeHttp(fake.kubeConfig());
    await fake.close();
    const failure = await http.request(HttpMethod.GET, '/api/v1/pods').catch((error: unknown) => error);
    expect(failure).toMatchObject({ statusCode: 0 });
    expect((failure as Error).message).toMatch(/^GET \/api\/v1\/pods: fetch failed: connect ECONNREFUSED/);
    fake = await FakeApiServer.start();
  });
});
