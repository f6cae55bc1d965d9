// Snapshot delivery as every MeshProvider does it: to each subscriber, in order, past one that throws.
import { describe, expect, it } from '@jest/globals';
import type { Logger } from '../logger.js';
import { SnapshotListeners } from './listeners.js';
import type { MeshSnapshot } from './types.js';

const snapshot = { version: 'v1' } as unknown as MeshSnapshot;

function recordingLog(): { log: Logger; errors: unknown[][] } {
  const errors: unknown[][] = [];
  return { log: { error: (...args: unknown[]) => errors.push(args) } as unknown as Logger, errors };
}

describe('SnapshotListeners', () => {
  it('gives the snapshot to every listener, and to none after it unsubscribed', () => {
    const listeners = new SnapshotListeners();
    const seen: string[] = [];
    listeners.add((s) => seen.push(`a:${s.version}`));
    const off = listeners.add((s) => seen.push(`b:${s.version}`));
    listeners.deliver(snapshot, recordingLog().log);
    off();
    listeners.deliver(snapshot, recordingLog().log);
    expect(seen).toEqual(['a:v1', 'b:v1', 'a:v1']);
  });

  it('logs a listener that throws and still calls the ones after it', () => {
    const listeners = new SnapshotListeners();
    const boom = new Error('boom');
    const seen: string[] = [];
    listeners.add(() => {
      throw boom;
    });
    listeners.add((s) => seen.push(s.version));
    const { log, errors } = recordingLog();
    listeners.deliver(snapshot, log);
    expect(seen).toEqual(['v1']);
    expect(errors).toEqual([[{ err: boom }, 'a mesh snapshot listener threw']]);
  });
});
