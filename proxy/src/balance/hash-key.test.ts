import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { HttpRequestInfo } from '../http/context.js';
import { cookieValue, hashKeyOf, pickContextOf, queryValue } from './hash-key.js';

function request(url: string, headers: Record<string, string> = {}): HttpRequestInfo {
  return { method: 'GET', url, authority: 'svc', header: (name) => headers[name] };
}

describe('hashKeyOf', () => {
  it('takes the key from a header (any case in the policy), a cookie, a query parameter or the client address', () => {
    const req = request('/cart?user=u1&x=2', { 'x-user': 'alice', cookie: 'session=s-9; theme=dark' });
    expect(hashKeyOf({ type: 'header', name: 'X-User' }, req, '10.0.0.7')).toBe('alice');
    expect(hashKeyOf({ type: 'cookie', name: 'session' }, req, '10.0.0.7')).toBe('s-9');
    expect(hashKeyOf({ type: 'queryParameter', name: 'user' }, req, '10.0.0.7')).toBe('u1');
    expect(hashKeyOf({ type: 'sourceIP' }, req, '10.0.0.7')).toBe('10.0.0.7');
    expect(hashKeyOf(undefined, req, '10.0.0.7')).toBeUndefined();
  });

  it('has no key when the request lacks the source', () => {
    const req = request('/cart');
    expect([hashKeyOf({ type: 'header', name: 'x-user' }, req, undefined), hashKeyOf({ type: 'cookie', name: 'session' }, req, undefined), hashKeyOf({ type: 'queryParameter', name: 'user' }, req, undefined), hashKeyOf({ type: 'sourceIP' }, req, undefined)]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe('pickContextOf', () => {
  it('is undefined without a source or a key, and carries the key otherwise', () => {
    const req = request('/a', { 'x-user': 'bob' });
    expect(pickContextOf(undefined, req, '10.0.0.1')).toBeUndefined();
    expect(pickContextOf({ type: 'header', name: 'x-other' }, req, '10.0.0.1')).toBeUndefined();
    expect(pickContextOf({ type: 'header', name: 'x-user' }, req, '10.0.0.1')).toEqual({ hashKey: 'bob' });
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
