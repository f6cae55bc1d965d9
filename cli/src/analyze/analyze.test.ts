// The engine: every analyzer runs, findings come most severe first, narrowed to one namespace on
// request; objects the mesh refuses are findings of their own (TSM0001).
import { describe, expect, it } from '@jest/globals';
import { SUPPORTED_KINDS } from '@tsmesh/common';
import { ANALYZERS, analyze, fails } from './analyze.js';
import { MESSAGE_TYPES, message } from './messages.js';
import { brief, findings, namespace, peerAuthentication, route, service } from './testing.js';

describe('analyze', () => {
  it('registers an analyzer for every message type, each type once', () => {
    const reported = ANALYZERS.flatMap((a) => a.reports);
    expect([...reported].sort()).toEqual(Object.keys(MESSAGE_TYPES).sort());
    const codes = Object.values(MESSAGE_TYPES).map((t) => t.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^TSM0\d{3}$/);
  });

  it('TSM0001: reports each object the mesh refuses, with the validator\'s reason', () => {
    const found = analyze({
      objects: [],
      invalid: [{ kind: 'HTTPRoute', namespace: 'shop', name: 'broken', reason: 'spec.parentRefs: must be a list' }],
      complete: new Set(SUPPORTED_KINDS),
      rootNamespace: 'tsmesh-system',
    });
    expect(brief(found)).toEqual(['TSM0001 HTTPRoute shop/broken']);
    expect(found[0]).toMatchObject({ severity: 'Error', text: 'is invalid and left out of the mesh: spec.parentRefs: must be a list' });
  });

  it('sorts findings by severity, then code, then object', () => {
    const found = findings([
      namespace('z', { 'tsmesh-injection': 'yes' }),
      service('shop', 'web', [80]),
      route('HTTPRoute', 'shop', 'b', [{ kind: 'Service', group: '', name: 'web' }], [{ name: 'gone', port: 80 }]),
      route('HTTPRoute', 'shop', 'a', [{ kind: 'Service', group: '', name: 'web' }], [{ name: 'gone', port: 80 }]),
      peerAuthentication('shop', 'one', 'STRICT', undefined, '2026-01-01T00:00:00Z'),
      peerAuthentication('shop', 'two', 'STRICT', undefined, '2026-01-02T00:00:00Z'),
    ]);
    expect(brief(found)).toEqual(['TSM0101 HTTPRoute shop/a', 'TSM0101 HTTPRoute shop/b', 'TSM0201 PeerAuthentication shop/two', 'TSM0402 Namespace z']);
  });

  it('narrows findings to one namespace, a Namespace object counting as its own', () => {
    const input = { objects: [], invalid: [], complete: new Set(SUPPORTED_KINDS), rootNamespace: 'tsmesh-system' };
    const all = analyze({ ...input, invalid: [{ kind: 'Service', namespace: 'a', name: 's', reason: 'r' }, { kind: 'Namespace', namespace: undefined, name: 'a', reason: 'r' }, { kind: 'Service', namespace: 'b', name: 's', reason: 'r' }] }, { namespace: 'a' });
    expect(brief(all)).toEqual(['TSM0001 Namespace a', 'TSM0001 Service a/s']);
  });

  it('fails at the threshold asked: errors by default, warnings with --fail-on warning', () => {
    const warning = message('unknownAnnotation', { kind: 'Pod', namespace: 'a', name: 'p' }, 'x');
    const info = message('meshBackendNotGranted', { kind: 'HTTPRoute', namespace: 'a', name: 'r' }, 'x');
    const error = message('backendServiceNotFound', { kind: 'HTTPRoute', namespace: 'a', name: 'r' }, 'x');
    expect(fails([warning, info], 'Error')).toBe(false);
    expect(fails([warning, info], 'Warning')).toBe(true);
    expect(fails([info], 'Warning')).toBe(false);
    expect(fails([info], 'Info')).toBe(true);
    expect(fails([error], 'Error')).toBe(true);
    expect(fails([], 'Info')).toBe(false);
  });
});
