import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '@tsmesh/common';
import { snapshotFromLine, snapshotFromMessage } from './apply.js';
import { DISCOVERY_ERRORS } from '../errors.js';

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

describe('snapshotFromLine', () => {
  const line = (objects: unknown[], version = 'v4'): Buffer => Buffer.from(JSON.stringify({ type: 'snapshot', version, objects }));
  const nested = (levels: number): unknown => {
    let value: unknown = 1;
    for (let i = 0; i < levels; i++) value = { a: value };
    return value;
  };
  const deep = (levels: number): KubeObject => ({ ...service('web'), spec: { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80 }], extra: nested(levels) } });

  it('checks every object, as snapshotFromMessage does', () => {
    const result = snapshotFromLine(line([service('web')]), 64, 'v4');
    expect(result.ok && result.value.objects.map((o) => o.object.metadata.name)).toEqual(['web']);
    const refused = snapshotFromLine(line([service('bad', 'eighty')]), 64, 'v4');
    expect(!refused.ok && refused.error).toMatchObject({ kind: 'rejected', version: 'v4', error: { code: DISCOVERY_ERRORS.SNAPSHOT_REJECTED } });
  });

  it('refuses objects nested deeper than the limit before parsing, for the version the line names', () => {
    // The Service is level 1, its spec 2, the value of `extra` 3: 62 levels of it reach 64.
    expect(snapshotFromLine(line([deep(62)]), 64, 'v4').ok).toBe(true);
    const refused = snapshotFromLine(line([deep(63)]), 64, 'v4');
    expect(!refused.ok && refused.error).toEqual({
      kind: 'rejected',
      version: 'v4',
      error: expect.objectContaining({ code: DISCOVERY_ERRORS.SNAPSHOT_TOO_DEEP, message: 'snapshot v4: objects nest deeper than 64 levels (the depth limit), refused before parsing' }),
    });
  });

  it('calls a line that is not the protocol malformed', () => {
    const refused = snapshotFromLine(Buffer.from('this is not json'), 64, undefined);
    expect(!refused.ok && refused.error).toMatchObject({ kind: 'malformed', error: { code: DISCOVERY_ERRORS.CONTROL_PROTOCOL, message: expect.stringContaining('not JSON') } });
    const deepWithoutVersion = snapshotFromLine(Buffer.from('['.repeat(100)), 64, undefined);
    expect(!deepWithoutVersion.ok && deepWithoutVersion.error.kind).toBe('malformed');
  });
});
