import { describe, expect, it } from '@jest/globals';
import { markNeverIndexed, type FieldList } from '../h2/hpack/index.js';
import type { UpstreamSelector } from '../upstream/selector.js';
import type { HttpConnectionContext, HttpRouteTarget } from './context.js';
import { redirectRawHeaders, responseFields, responseRawHeaders, upstreamRawHeaders } from './filters.js';

const base: HttpRouteTarget = { selector: {} as UpstreamSelector };
const ctx = { direction: 'outbound' } as unknown as HttpConnectionContext;
const edit = { set: [['x-frame', 'deny']] as const, add: [['x-route', 'r']] as const, remove: ['server'] };

describe('upstreamRawHeaders', () => {
  it("replaces every Host (any case) with URLRewrite's hostname, beside the route's own header edits", () => {
    const target: HttpRouteTarget = { ...base, authority: 'api.internal', requestHeaders: { set: [['Host', 'edited'], ['x-a', '1']], add: [], remove: [] } };
    expect(upstreamRawHeaders(['HOST', 'svc', 'host', 'dup', 'X-Keep', 'k'], target, ctx)).toEqual(['X-Keep', 'k', 'x-a', '1', 'host', 'api.internal']);
  });

  it('leaves the Host alone without a rewrite', () => {
    expect(upstreamRawHeaders(['Host', 'svc'], base, ctx)).toEqual(['Host', 'svc']);
  });
});

describe('response heads', () => {
  it('HTTP/1: sets, adds and removes; untouched without a ResponseHeaderModifier', () => {
    const raw = ['Server', 'nginx', 'X-Frame', 'allow', 'X-Route', 'backend', 'Content-Length', '2'];
    expect(responseRawHeaders(raw, { ...base, responseHeaders: edit })).toEqual(['X-Route', 'backend', 'Content-Length', '2', 'x-frame', 'deny', 'x-route', 'r']);
    expect(responseRawHeaders(raw, base)).toBe(raw);
    expect(responseRawHeaders(raw, undefined)).toBe(raw);
  });

  it('HTTP/2: pseudo-headers stay first and untouched, never-indexed values stay so', () => {
    const fields = [':status', '200', 'server', 'h2o', 'x-frame', 'allow', 'set-cookie', 'secret'];
    markNeverIndexed(fields, 'secret');
    const out = responseFields(fields, { ...base, responseHeaders: { ...edit, remove: ['server', ':status'] } });
    expect(out).toEqual([':status', '200', 'set-cookie', 'secret', 'x-frame', 'deny', 'x-route', 'r']);
    expect((out as FieldList).neverIndexed).toEqual(new Set(['secret']));
    expect(responseFields(fields, base)).toBe(fields);
  });

  it("a redirect's head: Location, an empty body and the route's response edits", () => {
    const target: HttpRouteTarget = { ...base, redirect: { status: 301, location: 'http://svc/new' }, responseHeaders: edit };
    expect(redirectRawHeaders(target)).toEqual(['location', 'http://svc/new', 'content-length', '0', 'x-frame', 'deny', 'x-route', 'r']);
  });
});
