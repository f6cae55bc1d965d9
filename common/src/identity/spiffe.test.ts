import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { formatSpiffeId, isNamespaceName, isServiceAccountName, isTrustDomain, parseSpiffeId, principalOf } from './spiffe.js';

describe('parseSpiffeId', () => {
  it('reads the trust domain, namespace and service account of a tsmesh ID', () => {
    expect(parseSpiffeId('spiffe://cluster.local/ns/shop/sa/web.v2')).toEqual({ ok: true, value: { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web.v2' } });
  });

  it.each([
    ['spiffe://Cluster.local/ns/shop/sa/web', 'the trust domain must be lowercase'],
    ['spiffe://cluster.local:8443/ns/shop/sa/web', 'a port is not allowed'],
    ['spiffe://user@cluster.local/ns/shop/sa/web', 'userinfo is not allowed'],
    ['spiffe://cluster.local/ns/Shop/sa/web', '"Shop" is not a valid namespace name'],
    ['spiffe://cluster.local/ns/shop/sa/web?x=1', 'a query or fragment is not allowed'],
    ['spiffe://cluster.local/ns/shop/sa/w%65b', 'percent-encoding is not allowed'],
    ['spiffe://cluster.local/ns/shop/sa/web/extra', 'the path must be /ns/<namespace>/sa/<service-account>'],
    ['spiffe://cluster.local/sa/web/ns/shop', 'the path must be /ns/<namespace>/sa/<service-account>'],
    ['https://cluster.local/ns/shop/sa/web', 'the scheme must be "spiffe://"'],
    [`spiffe://cluster.local/ns/shop/sa/${'a'.repeat(254)}`, 'is not a valid service account name'],
    [`spiffe://cluster.local/ns/shop/sa/${'a'.repeat(3000)}`, 'longer than 2048 characters'],
  ])('refuses %s, saying why', (uri, why) => {
    const parsed = parseSpiffeId(uri);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error).toContain(why);
      expect(parsed.error.length).toBeLessThan(400);
    }
  });

  it('round-trips every valid identity through formatSpiffeId (property)', () => {
    const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9._-]{1,40}$/), label, fc.array(label, { minLength: 1, maxLength: 3 }), (trustDomain, namespace, parts) => {
        const identity = { trustDomain, namespace, serviceAccount: parts.join('.') };
        expect(parseSpiffeId(formatSpiffeId(identity))).toEqual({ ok: true, value: identity });
      }),
    );
  });

  it('never throws on arbitrary text (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (text) => void parseSpiffeId(`spiffe://${text}`)));
  });
});

describe('formatSpiffeId', () => {
  it('refuses a part that is not a valid name, naming it', () => {
    expect(() => formatSpiffeId({ trustDomain: 'cluster.local', namespace: 'Shop', serviceAccount: 'web' })).toThrow('"Shop" is not a valid Kubernetes namespace name');
    expect(() => formatSpiffeId({ trustDomain: 'a b', namespace: 'shop', serviceAccount: 'web' })).toThrow('"a b" is not a valid SPIFFE trust domain');
  });
});

describe('the name rules', () => {
  it('follow DNS-1123 for namespaces (a label, ≤ 63) and service accounts (a subdomain, ≤ 253)', () => {
    expect(isNamespaceName('a'.repeat(63))).toBe(true);
    expect(isNamespaceName('a'.repeat(64))).toBe(false);
    expect(isNamespaceName('web.v2')).toBe(false);
    expect(isServiceAccountName('web.v2')).toBe(true);
    expect(isServiceAccountName('a'.repeat(254))).toBe(false);
    expect(isTrustDomain('cluster.local')).toBe(true);
    expect(isTrustDomain('')).toBe(false);
  });
});

describe('principalOf', () => {
  it("gives Istio's principal (the ID without the scheme) and the namespace, and nothing for what is not a tsmesh ID", () => {
    expect(principalOf('spiffe://cluster.local/ns/shop/sa/frontend')).toEqual({ principal: 'cluster.local/ns/shop/sa/frontend', namespace: 'shop' });
    expect(principalOf(undefined)).toEqual({ principal: undefined, namespace: undefined });
    expect(principalOf('spiffe://cluster.local/other/path')).toEqual({ principal: undefined, namespace: undefined });
  });
});
