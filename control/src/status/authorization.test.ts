import { afterEach, describe, expect, it } from '@jest/globals';
import { buildSnapshot, type KubeObject, type MeshProvider, type MeshSnapshot } from '@tsmesh/common';
import { pino } from 'pino';
import { ACCEPTED_MESSAGE, AuthorizationStatusWriter, authorizationStatusPath, desiredConditions } from './authorization.js';
import type { StatusClient } from './writer.js';

const policy = (name: string, spec: unknown, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'security.tsmesh.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: 'shop', generation: 3, resourceVersion: '7' },
  spec,
  ...extra,
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
    const writer = new AuthorizationStatusWriter(new FakeProvider(buildSnapshot([good])), client, {
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
});
