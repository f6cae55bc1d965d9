import { describe, expect, it } from '@jest/globals';
import { parseWorkloadId } from './identity.js';

describe('parseWorkloadId', () => {
  it('reads the namespace and service account of a tsmesh SPIFFE ID', () => {
    expect(parseWorkloadId('spiffe://cluster.local/ns/shop/sa/web.v2')).toEqual({
      ok: true,
      value: { spiffeId: 'spiffe://cluster.local/ns/shop/sa/web.v2', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web.v2' },
    });
  });

  it.each([
    'spiffe://cluster.local/ns/shop',
    'spiffe://cluster.local/ns/shop/sa/web/extra',
    'spiffe://Cluster.local/ns/shop/sa/web',
    'spiffe://cluster.local:8443/ns/shop/sa/web',
    'spiffe://cluster.local/ns/Shop/sa/web',
    'spiffe://cluster.local/ns/shop/sa/web?x=1',
    'https://cluster.local/ns/shop/sa/web',
    `spiffe://cluster.local/ns/shop/sa/${'a'.repeat(254)}`,
  ])('refuses %s', (uri) => {
    const result = parseWorkloadId(uri);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/is not spiffe:\/\/<trust-domain>\/ns\/<namespace>\/sa\/<service-account>/);
  });
});
