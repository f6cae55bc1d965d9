import { afterEach, describe, expect, it } from '@jest/globals';
import { buildSnapshot, type KubeObject, type MeshProvider, type MeshSnapshot } from '@tsmesh/common';
import { pino } from 'pino';
import { ACCEPTED_MESSAGE, AuthorizationStatusWriter, authorizationStatusPath, desiredConditions, reviewAuthorization } from './authorization.js';
import type { StatusClient } from './writer.js';

const policy = (name: string, spec: unknown, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'security.tsmesh.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: 'shop', generation: 3, resourceVersion: '7' },
  spec,
  ...extra,
});

const pod = (name: string, labels: Record<string, string>, namespace = 'shop'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, labels },
  spec: { containers: [{ name: 'app', image: 'app' }] },
  status: { podIP: '10.1.0.7', phase: 'Running' },
});

class FakeProvider implements MeshProvider {
  private listeners = new Set<(s: MeshSnapshot) => void>();
  constructor(private snapshot: MeshSnapshot) {}
  start(): never {
    throw new Error('not used');
  }
  current(): MeshSnapshot {
    return this.snapshot;
  }
  subscribe(listener: (s: MeshSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
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

const writers: AuthorizationStatusWriter[] = [];
afterEach(async () => {
  await Promise.all(writers.splice(0).map((w) => w.close()));
});

describe('AuthorizationStatusWriter', () => {
  it('marks a policy in the mesh Accepted and a refused one not, with the reason naming the field', async () => {
    const good = policy('good', { rules: [{}] });
    const bad = policy('bad', { action: 'CUSTOM' });
    const client = new RecordingClient();
    const writer = new AuthorizationStatusWriter(new FakeProvider(buildSnapshot([pod('web-1', { app: 'web' }), good])), client, {
      debounceMs: 1,
      log: pino({ level: 'silent' }),
      rejected: { rejected: (kind) => (kind === 'AuthorizationPolicy' ? [{ object: bad, reason: 'spec.action: must be one of ALLOW, DENY, AUDIT, got "CUSTOM"' }] : []) },
      now: () => new Date('2026-01-01T00:00:00Z'),
    });
    writers.push(writer);
    writer.start();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writer.idle();
    expect(client.writes.map((w) => [w.path, w.body['status']])).toEqual([
      [authorizationStatusPath('shop', 'good'), { conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: ACCEPTED_MESSAGE, observedGeneration: 3, lastTransitionTime: '2026-01-01T00:00:00Z' }] }],
      [
        authorizationStatusPath('shop', 'bad'),
        { conditions: [{ type: 'Accepted', status: 'False', reason: 'Invalid', message: 'left out of the mesh: spec.action: must be one of ALLOW, DENY, AUDIT, got "CUSTOM"', observedGeneration: 3, lastTransitionTime: '2026-01-01T00:00:00Z' }] },
      ],
    ]);
    // The write is conditional on the version it read.
    expect(client.writes[0]?.body.metadata['resourceVersion']).toBe('7');
  });

  it('writes nothing when the condition is already there, and keeps lastTransitionTime while the status holds', () => {
    const written = policy('p', {}, { status: { conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: ACCEPTED_MESSAGE, observedGeneration: 3, lastTransitionTime: '2025-01-01T00:00:00Z' }] } });
    expect(desiredConditions(written, true, ACCEPTED_MESSAGE, '2026-01-01T00:00:00Z')).toBeUndefined();
    const newer = { ...written, metadata: { ...written.metadata, generation: 4 } };
    expect(desiredConditions(newer, true, ACCEPTED_MESSAGE, '2026-01-01T00:00:00Z')).toEqual([expect.objectContaining({ observedGeneration: 4, lastTransitionTime: '2025-01-01T00:00:00Z' })]);
    expect(desiredConditions(newer, false, 'left out', '2026-01-01T00:00:00Z')).toEqual([expect.objectContaining({ status: 'False', lastTransitionTime: '2026-01-01T00:00:00Z' })]);
  });

  it('marks a policy that selects no pod NoMatchingWorkload, and still writes Accepted for one that does', async () => {
    const lonely = policy('lonely', { selector: { matchLabels: { app: 'gone' } } });
    const web = policy('web', { selector: { matchLabels: { app: 'web' } } });
    const client = new RecordingClient();
    const writer = new AuthorizationStatusWriter(new FakeProvider(buildSnapshot([pod('web-1', { app: 'web' }), lonely, web])), client, {
      debounceMs: 1,
      log: pino({ level: 'silent' }),
      now: () => new Date('2026-01-01T00:00:00Z'),
    });
    writers.push(writer);
    writer.start();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writer.idle();
    const conditions = Object.fromEntries(client.writes.map((w) => [w.body.metadata.name, (w.body['status'] as { conditions: Array<Record<string, unknown>> }).conditions[0]]));
    expect(conditions['web']).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(conditions['lonely']).toMatchObject({
      status: 'False',
      reason: 'NoMatchingWorkload',
      message: 'spec.selector matches no workload of namespace shop: no pod there has app=gone (it applies as soon as one does)',
    });
  });
});

describe('reviewAuthorization', () => {
  const root = 'tsmesh-system';
  const inRoot = (name: string, spec: unknown): KubeObject => ({ ...policy(name, spec), metadata: { name, namespace: root } });

  it('selects by the sidecar rule: the namespace, or every namespace from the root namespace', () => {
    const elsewhere = buildSnapshot([pod('web-1', { app: 'web' }, 'other')]);
    expect(reviewAuthorization(policy('ns-wide', {}), elsewhere, root)?.message).toBe('spec.selector matches no workload of namespace shop: no pod runs there (it applies as soon as one does)');
    expect(reviewAuthorization(policy('ns-wide', {}), buildSnapshot([pod('a-1', {})]), root)).toBeUndefined();
    expect(reviewAuthorization(inRoot('mesh-wide', {}), elsewhere, root)).toBeUndefined();
    expect(reviewAuthorization(inRoot('web-anywhere', { selector: { matchLabels: { app: 'web' } } }), elsewhere, root)).toBeUndefined();
    expect(reviewAuthorization(inRoot('api-anywhere', { selector: { matchLabels: { app: 'api' } } }), elsewhere, root)?.message).toBe(
      'spec.selector matches no workload of the mesh: no pod there has app=api (it applies as soon as one does)',
    );
    expect(reviewAuthorization(inRoot('mesh-wide', {}), buildSnapshot([]), root)?.reason).toBe('NoMatchingWorkload');
  });

  it('leaves an invalid policy to the validator (its reason is Invalid, written from the rejected list)', () => {
    expect(reviewAuthorization(policy('bad', { action: 'CUSTOM' }), buildSnapshot([]), root)).toBeUndefined();
  });
});
