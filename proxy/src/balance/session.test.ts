import { describe, expect, it } from '@jest/globals';
import type { SessionPersistence } from '@tsmesh/common';
import type { HttpRequestInfo } from '../http/context.js';
import { BalancedCluster, type BalancedEndpoint } from './index.js';
import { DEFAULT_SESSION_NAME, SessionAffinity } from './session.js';

const endpoints: BalancedEndpoint[] = [1, 2, 3].map((i) => ({ key: `10.0.0.${i}:80`, address: `10.0.0.${i}`, port: 80 }));
const cookie = (over: Partial<SessionPersistence> = {}): SessionPersistence => ({
  sessionName: undefined,
  absoluteTimeoutMs: undefined,
  idleTimeoutMs: undefined,
  type: 'Cookie',
  cookieLifetimeType: undefined,
  ...over,
});
const request = (headers: Record<string, string>): HttpRequestInfo => ({ method: 'GET', url: '/', authority: 'web', header: (name) => headers[name] });

function cluster(): BalancedCluster<BalancedEndpoint> {
  const { cluster } = BalancedCluster.create<BalancedEndpoint>({ name: 'shop/web:80', loadBalancer: 'round-robin' });
  cluster.setEndpoints(endpoints);
  return cluster;
}

function tokenOf(setCookie: string): string {
  return /^[^=]+=([^;]*)/.exec(setCookie)?.[1] ?? '';
}

describe('SessionAffinity (cookie)', () => {
  it('issues a cookie named by sessionName (or the tsmesh default) that names the endpoint opaquely', () => {
    const c = cluster();
    const named = new SessionAffinity('shop/web:80', cookie({ sessionName: 'shop-session' }));
    const header = named.responseHeader(undefined, '10.0.0.2:80');
    expect(header?.[0]).toBe('set-cookie');
    expect(header?.[1]).toMatch(/^shop-session=[A-Za-z0-9_-]{16,}; Path=\/; HttpOnly$/);
    expect(header?.[1]).not.toContain('10.0.0.2');
    expect(new SessionAffinity('shop/web:80', cookie()).responseHeader(undefined, '10.0.0.2:80')?.[1]).toMatch(new RegExp(`^${DEFAULT_SESSION_NAME}=`));
    c.close();
  });

  it('sends a request carrying the cookie to the endpoint it names, and does not re-issue it', () => {
    const c = cluster();
    const session = new SessionAffinity('shop/web:80', cookie());
    const token = tokenOf(session.responseHeader(undefined, '10.0.0.3:80')?.[1] ?? '');
    const ctx = session.pickContext(request({ cookie: `a=1; ${DEFAULT_SESSION_NAME}=${token}` }), c.endpoints, undefined);
    expect(ctx?.prefer).toBe('10.0.0.3:80');
    for (let i = 0; i < 6; i++) {
      const picked = c.pick(ctx);
      if (!picked.ok) throw picked.error;
      expect(picked.value.endpoint.key).toBe('10.0.0.3:80');
      picked.value.release();
    }
    expect(session.responseHeader(ctx?.prefer, '10.0.0.3:80')).toBeUndefined();
    c.close();
  });

  it('ignores a forged or foreign token: it names no endpoint of this Service', () => {
    const c = cluster();
    const other = new SessionAffinity('shop/other:80', cookie());
    const foreign = tokenOf(other.responseHeader(undefined, '10.0.0.3:80')?.[1] ?? '');
    const session = new SessionAffinity('shop/web:80', cookie());
    expect(session.pickContext(request({ cookie: `${DEFAULT_SESSION_NAME}=${foreign}` }), c.endpoints, undefined)).toBeUndefined();
    expect(session.pickContext(request({ cookie: `${DEFAULT_SESSION_NAME}=10.9.9.9:80` }), c.endpoints, undefined)).toBeUndefined();
    c.close();
  });

  it('balances normally and re-issues when the named endpoint left the Service or is ejected', () => {
    const c = cluster();
    const session = new SessionAffinity('shop/web:80', cookie());
    const token = tokenOf(session.responseHeader(undefined, '10.0.0.1:80')?.[1] ?? '');
    c.setEndpoints(endpoints.slice(1));
    expect(session.pickContext(request({ cookie: `${DEFAULT_SESSION_NAME}=${token}` }), c.endpoints, undefined)).toBeUndefined();
    // Back in the Service but ejected: the pick goes elsewhere, and the answer re-issues the cookie.
    c.setEndpoints(endpoints);
    c.configureHealth({ consecutiveFailures: 1, baseEjectionMs: 60_000, maxEjectionPercent: 100 });
    c.reportFailure('10.0.0.1:80');
    const ctx = session.pickContext(request({ cookie: `${DEFAULT_SESSION_NAME}=${token}` }), c.endpoints, undefined);
    const picked = c.pick(ctx);
    if (!picked.ok) throw picked.error;
    expect(picked.value.endpoint.key).not.toBe('10.0.0.1:80');
    expect(session.responseHeader(ctx?.prefer, picked.value.endpoint.key)?.[1]).toMatch(new RegExp(`^${DEFAULT_SESSION_NAME}=`));
    picked.value.release();
    c.close();
  });

  it('maps absoluteTimeout onto Max-Age for a Permanent cookie, and none for a Session cookie', () => {
    expect(new SessionAffinity('s', cookie({ absoluteTimeoutMs: 3_600_500, cookieLifetimeType: 'Permanent' })).responseHeader(undefined, 'k')?.[1]).toMatch(/; Max-Age=3600; /);
    expect(new SessionAffinity('s', cookie({ absoluteTimeoutMs: 3_600_000 })).responseHeader(undefined, 'k')?.[1]).toMatch(/; Max-Age=3600; /);
    expect(new SessionAffinity('s', cookie({ absoluteTimeoutMs: 3_600_000, cookieLifetimeType: 'Session' })).responseHeader(undefined, 'k')?.[1]).not.toContain('Max-Age');
  });

  it('keeps the consistent-hash key beside the preference', () => {
    const c = cluster();
    const session = new SessionAffinity('shop/web:80', cookie());
    const token = tokenOf(session.responseHeader(undefined, '10.0.0.2:80')?.[1] ?? '');
    expect(session.pickContext(request({ cookie: `${DEFAULT_SESSION_NAME}=${token}` }), c.endpoints, { hashKey: 'u1' })).toEqual({ hashKey: 'u1', prefer: '10.0.0.2:80' });
    expect(session.pickContext(request({}), c.endpoints, { hashKey: 'u1' })).toEqual({ hashKey: 'u1' });
    c.close();
  });
});

describe('SessionAffinity (header)', () => {
  it('answers with the session header and follows it on later requests', () => {
    const c = cluster();
    const session = new SessionAffinity('shop/web:80', cookie({ type: 'Header', sessionName: 'X-Session' }));
    const header = session.responseHeader(undefined, '10.0.0.2:80');
    expect(header?.[0]).toBe('x-session');
    const ctx = session.pickContext(request({ 'x-session': header?.[1] ?? '' }), c.endpoints, undefined);
    expect(ctx?.prefer).toBe('10.0.0.2:80');
    c.close();
  });
});

describe('BalancedCluster.pick with a preference', () => {
  it('still avoids an endpoint a retry has tried, even when preferred', () => {
    const c = cluster();
    const picked = c.pick({ prefer: '10.0.0.1:80', avoid: ['10.0.0.1:80'] });
    if (!picked.ok) throw picked.error;
    expect(picked.value.endpoint.key).not.toBe('10.0.0.1:80');
    picked.value.release();
    c.close();
  });
});
