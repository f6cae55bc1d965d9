// TSM0201, TSM0202: PeerAuthentications competing at one level, where only the oldest counts.
import { describe, expect, it } from '@jest/globals';
import { brief, findings, peerAuthentication, pod } from '../testing.js';

describe('peer-authentication analyzer', () => {
  it('TSM0201: reports every namespace-wide policy but the oldest in one namespace, naming the one that counts', () => {
    const found = findings([
      peerAuthentication('shop', 'strict', 'STRICT', undefined, '2026-01-01T00:00:00Z'),
      peerAuthentication('shop', 'relaxed', 'PERMISSIVE', undefined, '2026-02-01T00:00:00Z'),
      peerAuthentication('other', 'only', 'STRICT'),
    ]);
    expect(brief(found)).toEqual(['TSM0201 PeerAuthentication shop/relaxed']);
    expect(found[0]?.text).toBe(
      'is namespace-wide in shop, as is PeerAuthentication shop/strict: only the oldest (by creationTimestamp, then name), shop/strict (STRICT), counts and this one (PERMISSIVE) is ignored',
    );
  });

  it('TSM0201: calls two selector-less policies of the root namespace mesh-wide; an empty selector counts as none', () => {
    const found = findings([peerAuthentication('tsmesh-system', 'a', 'STRICT'), peerAuthentication('tsmesh-system', 'b', 'PERMISSIVE', {})]);
    expect(brief(found)).toEqual(['TSM0201 PeerAuthentication tsmesh-system/b']);
    expect(found[0]?.text).toMatch(/^is mesh-wide, as is PeerAuthentication tsmesh-system\/a/);
  });

  it('TSM0202: reports two selector policies when one selector contains the other, with no pod needed', () => {
    const found = findings([peerAuthentication('shop', 'web', 'STRICT', { app: 'web' }, '2026-01-01T00:00:00Z'), peerAuthentication('shop', 'web-v1', 'DISABLE', { app: 'web', version: 'v1' }, '2026-03-01T00:00:00Z')]);
    expect(brief(found)).toEqual(['TSM0202 PeerAuthentication shop/web-v1']);
    expect(found[0]?.severity).toBe('Warning');
  });

  it('TSM0202: reports two selector policies a pod matches both of, naming the pods', () => {
    const objects = [peerAuthentication('shop', 'by-app', 'STRICT', { app: 'web' }, '2026-01-01T00:00:00Z'), peerAuthentication('shop', 'by-tier', 'PERMISSIVE', { tier: 'front' }, '2026-03-01T00:00:00Z')];
    expect(findings(objects)).toEqual([]);
    expect(findings([...objects, pod('shop', 'api-0', { app: 'api', tier: 'front' }, { meshed: true })])).toEqual([]);
    const found = findings([...objects, pod('shop', 'web-0', { app: 'web', tier: 'front' }, { meshed: true })]);
    expect(brief(found)).toEqual(['TSM0202 PeerAuthentication shop/by-tier']);
    expect(found[0]?.text).toBe('selects the same workloads as PeerAuthentication shop/by-app (pods web-0): only the older, shop/by-app (STRICT), counts for them and this one (PERMISSIVE) is ignored there');
  });

  it('TSM0202: does not compare policies of different namespaces', () => {
    expect(findings([peerAuthentication('shop', 'a', 'STRICT', { app: 'web' }), peerAuthentication('other', 'b', 'STRICT', { app: 'web' })])).toEqual([]);
  });
});
