import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { HttpRequestInfo } from '../http/context.js';
import { cookieValue, hashKeyOf, queryValue } from './hash-key.js';

function request(url: string, headers: Record<string, string> = {}): HttpRequestInfo {
  return { method: 'GET', url, authority: 'svc', header: (name) => headers[name] };
}

describe('hashKeyOf', () => {
  it('takes the key from a header (any case in the policy), a cookie, a query parameter or the client address', () => {
    const req = request('/cart?user=u1&x=2', { 'x-user': 'alice', cookie: 'session=s-9; theme=dark' });
    expect(hashKeyOf({ header: 'X-User' }, req, '10.0.0.7')).toBe('alice');
    expect(hashKeyOf({ cookie: 'session' }, req, '10.0.0.7')).toBe('s-9');
    expect(hashKeyOf({ queryParameter: 'user' }, req, '10.0.0.7')).toBe('u1');
    expect(hashKeyOf({ sourceIP: true }, req, '10.0.0.7')).toBe('10.0.0.7');
    expect(hashKeyOf(undefined, req, '10.0.0.7')).toBeUndefined();
  });

  it('has no key when the request lacks the source', () => {
    const req = request('/cart');
    expect([hashKeyOf({ header: 'x-user' }, req, undefined), hashKeyOf({ cookie: 'session' }, req, undefined), hashKeyOf({ queryParameter: 'user' }, req, undefined), hashKeyOf({ sourceIP: true }, req, undefined)]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe('cookieValue (RFC 6265 §4.2)', () => {
  it('finds a cookie among others, unquotes it, and takes the first of repeats', () => {
    expect(cookieValue('a=1; session="xyz"; b=2', 'session')).toBe('xyz');
    expect(cookieValue('session=1; session=2', 'session')).toBe('1');
    expect(cookieValue('a=1, session=3', 'session')).toBe('3'); // two Cookie fields joined
    expect(cookieValue('sessionid=1', 'session')).toBeUndefined();
    expect(cookieValue('novalue; session=', 'session')).toBe('');
  });

  it('never throws on any header', () => {
    fc.assert(fc.property(fc.string(), fc.string(), (header, name) => void cookieValue(header, name)));
  });
});

describe('queryValue', () => {
  it('decodes the first value and ignores the fragment', () => {
    expect(queryValue('/a?u=%41%20b&u=2#u=3', 'u')).toBe('A b');
    expect(queryValue('/a?v=1#u=3', 'u')).toBeUndefined();
    expect(queryValue('/a', 'u')).toBeUndefined();
  });

  it('never throws on any target', () => {
    fc.assert(fc.property(fc.string(), fc.string(), (url, name) => void queryValue(url, name)));
  });
});
