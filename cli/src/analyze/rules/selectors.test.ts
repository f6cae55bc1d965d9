// TSM0501, TSM0502: policies whose selector matches no pod they may select.
import { describe, expect, it } from '@jest/globals';
import { authorizationPolicy, brief, findings, pod, rateLimitPolicy } from '../testing.js';

describe('selector analyzer', () => {
  const pods = [pod('shop', 'web-0', { app: 'web' }, { meshed: true })];

  it('TSM0501: reports an AuthorizationPolicy whose selector matches no pod of its namespace', () => {
    const found = findings([...pods, authorizationPolicy('shop', 'typo', { app: 'wbe' }), authorizationPolicy('shop', 'ok', { app: 'web' }), authorizationPolicy('shop', 'namespace-wide')]);
    expect(brief(found)).toEqual(['TSM0501 AuthorizationPolicy shop/typo']);
    expect(found[0]?.text).toBe('selector app=wbe matches no pod in namespace shop (a policy selects pods of its own namespace only, unless it is in tsmesh-system): it applies to nothing');
  });

  it('TSM0501: a selector in another namespace than the pods selects nothing; one in the root namespace selects them', () => {
    expect(brief(findings([...pods, authorizationPolicy('other', 'p', { app: 'web' })]))).toEqual(['TSM0501 AuthorizationPolicy other/p']);
    expect(findings([...pods, authorizationPolicy('tsmesh-system', 'p', { app: 'web' })])).toEqual([]);
  });

  it('TSM0502: reports an HTTPLocalRateLimitPolicy whose selector matches no pod', () => {
    const found = findings([...pods, rateLimitPolicy('shop', 'limit', { app: 'api' }), rateLimitPolicy('shop', 'fine', { app: 'web' })]);
    expect(brief(found)).toEqual(['TSM0502 HTTPLocalRateLimitPolicy shop/limit']);
    expect(found[0]?.severity).toBe('Warning');
  });

  it('judges no selector when the input holds no Pod at all (files of policies alone)', () => {
    expect(findings([authorizationPolicy('shop', 'typo', { app: 'wbe' }), rateLimitPolicy('shop', 'limit', { app: 'api' })])).toEqual([]);
  });
});
