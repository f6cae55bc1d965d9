import { parseServiceAccountUsername, spiffeIdOf } from './identity.js';

describe('parseServiceAccountUsername', () => {
  it('reads namespace and service account from a service account username', () => {
    expect(parseServiceAccountUsername('system:serviceaccount:shop:cart-v2')).toEqual({
      ok: true,
      value: { namespace: 'shop', serviceAccount: 'cart-v2' },
    });
  });

  it.each([
    ['a human user', 'alice@example.com'],
    ['a node', 'system:node:worker-1'],
    ['a missing service account', 'system:serviceaccount:shop'],
    ['an empty service account', 'system:serviceaccount:shop:'],
    ['an extra segment', 'system:serviceaccount:shop:cart:extra'],
    ['an upper-case namespace', 'system:serviceaccount:Shop:cart'],
    ['a slash that would bend the SPIFFE path', 'system:serviceaccount:shop:cart/sa/admin'],
  ])('refuses %s with TSMESH_ERR_TOKEN_IDENTITY', (_what, username) => {
    const result = parseServiceAccountUsername(username);
    expect(!result.ok && [result.error.code, result.error.status]).toEqual(['TSMESH_ERR_TOKEN_IDENTITY', 401]);
  });
});

describe('spiffeIdOf', () => {
  it('builds spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>', () => {
    expect(spiffeIdOf('cluster.local', { namespace: 'shop', serviceAccount: 'cart' })).toBe('spiffe://cluster.local/ns/shop/sa/cart');
  });
});
