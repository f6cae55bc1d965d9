import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '@tsmesh/common';
import { snapshotFromMessage } from './apply.js';
import { DISCOVERY_ERRORS } from './errors.js';

const service = (name: string, port: unknown = 80): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop' },
  spec: { clusterIP: '10.96.0.1', ports: [{ name: 'http', port }] },
});

describe('snapshotFromMessage', () => {
  it('builds a snapshot with the version the control plane gave', () => {
    const result = snapshotFromMessage({ type: 'snapshot', version: 'abc', objects: [service('web')] });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.version).toBe('abc');
    expect(result.value.service('shop', 'web')?.ports[0]?.port).toBe(80);
  });

  it('refuses the whole snapshot when one object is invalid, naming it and the field', () => {
    const result = snapshotFromMessage({ type: 'snapshot', version: 'v2', objects: [service('web'), service('bad', 'eighty')] });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(DISCOVERY_ERRORS.SNAPSHOT_REJECTED);
    expect(result.error.message).toMatch(/^snapshot v2: 1 invalid object: Service shop\/bad: spec\.ports\[0\]\.port: /);
  });

  it('lists the first five reasons and counts the rest', () => {
    const objects = Array.from({ length: 8 }, (_, i) => service(`bad-${i}`, -1));
    const result = snapshotFromMessage({ type: 'snapshot', version: 'v3', objects });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.message).toMatch(/^snapshot v3: 8 invalid objects: Service shop\/bad-0: .*Service shop\/bad-4: .*; and 3 more$/);
    expect(result.error.message).not.toContain('bad-5');
  });
});
