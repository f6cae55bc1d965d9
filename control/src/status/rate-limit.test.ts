import { afterEach, describe, expect, it } from '@jest/globals';
import { buildSnapshot, type KubeObject, type MeshProvider, type MeshSnapshot } from '@tsmesh/common';
import { pino } from 'pino';
import { RATE_LIMIT_ACCEPTED_MESSAGE, RateLimitStatusWriter, rateLimitStatusPath, reviewRateLimit } from './rate-limit.js';
import type { StatusClient } from './writer.js';

const limit = (name: string, spec: unknown): KubeObject => ({
  apiVersion: 'policy.tsmesh.io/v1',
  kind: 'HTTPLocalRateLimitPolicy',
  metadata: { name, namespace: 'shop', generation: 2, resourceVersion: '9' },
  spec,
});

const pod = (name: string, labels: Record<string, string>, namespace = 'shop'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, labels },
  spec: { containers: [{ name: 'app', image: 'app' }] },
  status: { podIP: '10.1.0.7', phase: 'Running' },
});

class FakeProvider implements MeshProvider {
  constructor(private snapshot: MeshSnapshot) {}
  start(): never {
    throw new Error('not used');
  }
  current(): MeshSnapshot {
    return this.snapshot;
  }
  subscribe(): () => void {
    return () => undefined;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class RecordingClient implements StatusClient {
  readonly writes: Array<{ path: string; body: KubeObject }> = [];
  request(_method: unknown, path: string, options: { readonly body?: unknown }): Promise<unknown> {
    this.writes.push({ path, body: options.body as KubeObject });
    return Promise.resolve({});
  }
}

const writers: RateLimitStatusWriter[] = [];
afterEach(async () => {
  await Promise.all(writers.splice(0).map((w) => w.close()));
});

describe('RateLimitStatusWriter', () => {
  it('marks a policy that selects a workload Accepted, one whose selector matches nothing not (NoMatchingWorkload), and a refused one Invalid naming the field', async () => {
    const good = limit('good', { selector: { matchLabels: { app: 'web' } }, total: { requestsPerSecond: 5 } });
    const lonely = limit('lonely', { selector: { matchLabels: { app: 'gone' } }, total: { requestsPerSecond: 5 } });
    const bad = limit('bad', { overrides: [{ requestsPerSecond: 1, clientRefs: [{ kind: 'Deployment', name: 'x' }] }] });
    const client = new RecordingClient();
    const writer = new RateLimitStatusWriter(new FakeProvider(buildSnapshot([pod('web-1', { app: 'web' }), pod('gone-1', { app: 'gone' }, 'other'), good, lonely])), client, {
      debounceMs: 1,
      log: pino({ level: 'silent' }),
      rejected: { rejected: (kind) => (kind === 'HTTPLocalRateLimitPolicy' ? [{ object: bad, reason: 'spec.overrides[0].clientRefs[0].kind: must be ServiceAccount' }] : []) },
      now: () => new Date('2026-01-01T00:00:00Z'),
    });
    writers.push(writer);
    writer.start();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writer.idle();
    const condition = (status: string, reason: string, message: string): unknown => ({ conditions: [{ type: 'Accepted', status, reason, message, observedGeneration: 2, lastTransitionTime: '2026-01-01T00:00:00Z' }] });
    expect(client.writes.map((w) => [w.path, w.body['status']])).toEqual([
      [rateLimitStatusPath('shop', 'good'), condition('True', 'Accepted', RATE_LIMIT_ACCEPTED_MESSAGE)],
      [rateLimitStatusPath('shop', 'lonely'), condition('False', 'NoMatchingWorkload', 'spec.selector matches no workload of namespace shop: no pod there has app=gone (it applies as soon as one does)')],
      [rateLimitStatusPath('shop', 'bad'), condition('False', 'Invalid', 'left out of the mesh: spec.overrides[0].clientRefs[0].kind: must be ServiceAccount')],
    ]);
    expect(client.writes[0]?.path).toBe('/apis/policy.tsmesh.io/v1/namespaces/shop/httplocalratelimitpolicies/good/status');
  });

  it('a policy without selector selects its namespace: accepted when any pod runs there', () => {
    const all = limit('all', { total: { requestsPerSecond: 1 } });
    expect(reviewRateLimit(all, buildSnapshot([pod('web-1', { app: 'web' })]))).toBeUndefined();
    expect(reviewRateLimit(all, buildSnapshot([pod('x', {}, 'other')]))?.message).toBe('spec.selector matches no workload of namespace shop: no pod runs in it (it applies as soon as one does)');
  });

  it('a policy for a route that does not exist, or a rule the route does not have, is not accepted (NoMatchingRoute)', () => {
    const route = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'api', namespace: 'shop' }, spec: { parentRefs: [{ kind: 'Service', name: 'api' }], rules: [{ name: 'search' }] } };
    const web = pod('web-1', { app: 'web' });
    const forRoute = (r: unknown): KubeObject => limit('r', { route: r, total: { requestsPerSecond: 1 } });
    expect(reviewRateLimit(forRoute({ name: 'api', ruleName: 'search' }), buildSnapshot([web, route]))).toBeUndefined();
    expect(reviewRateLimit(forRoute({ name: 'api' }), buildSnapshot([web, route]))).toBeUndefined();
    expect(reviewRateLimit(forRoute({ name: 'gone' }), buildSnapshot([web, route]))).toEqual({ reason: 'NoMatchingRoute', message: 'spec.route: no HTTPRoute shop/gone (it applies as soon as there is one)' });
    expect(reviewRateLimit(forRoute({ kind: 'GRPCRoute', name: 'api' }), buildSnapshot([web, route]))?.reason).toBe('NoMatchingRoute');
    expect(reviewRateLimit(forRoute({ name: 'api', ruleName: 'other' }), buildSnapshot([web, route]))).toEqual({ reason: 'NoMatchingRoute', message: 'spec.route.ruleName: HTTPRoute shop/api has no rule named other' });
  });
});
