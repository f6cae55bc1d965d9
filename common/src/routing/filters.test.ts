import fc from 'fast-check';
import { redirectLocation, rewritePath, withQuery, type RedirectSource } from './filters.js';
import { normalizePath } from './normalize.js';
import { compile, httpRoute, parent, backend, service, tableOf, request } from './testing/fixtures.js';
import { matchHttp } from './match.js';
import type { PathModifier, RequestRedirect } from './types.js';

const prefix = (value: string): PathModifier => ({ type: 'ReplacePrefixMatch', value });
const full = (value: string): PathModifier => ({ type: 'ReplaceFullPath', value });

/** The decision's modifier and prefix as compiled from a real route, so the table below checks parsing and rewriting together. */
function compiledRewrite(match: string, replace: string): (path: string) => string | undefined {
  const compiled = compile([
    service('demo', 'web'),
    httpRoute('demo', 'r', {
      parentRefs: [parent('web')],
      rules: [{ matches: [{ path: { type: 'PathPrefix', value: match } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: replace } } }], backendRefs: [backend('web')] }],
    }),
  ]);
  expect(compiled.warnings).toEqual([]);
  return (path) => {
    const decision = matchHttp(tableOf(compiled, 'demo', 'web'), request({ path }));
    if (decision?.urlRewrite?.path === undefined) throw new Error(`no rewrite for ${path}`);
    return rewritePath(path, decision.urlRewrite.path, decision.matchedPrefix);
  };
}

describe('rewritePath: ReplacePrefixMatch replaces whole path elements (the Gateway API table)', () => {
  it.each([
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo/', '/foo', '', '/'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '/', '/'],
    ['/foo', '/foo', '/', '/'],
    ['/foo/bar', '/foo', '/', '/bar'],
    ['/a/b', '/', '/x', '/x/a/b'],
  ])('%s matched by PathPrefix %s, replaced by %j, becomes %s', (path, match, replace, expected) => {
    expect(compiledRewrite(match, replace)(path)).toBe(expected);
  });

  it('replaces the full path with ReplaceFullPath, whatever matched', () => {
    expect(rewritePath('/any/thing', full('/fixed'), '/any')).toBe('/fixed');
    expect(rewritePath('/', full('/fixed/'), undefined)).toBe('/fixed/');
  });

  it('never produces "//" when the prefix is removed from a path with a trailing slash', () => {
    expect(rewritePath('/foo/', prefix(''), '/foo')).toBe('/');
    expect(rewritePath('/foo//', prefix(''), '/foo')).not.toContain('//');
  });

  it('does not let an encoded dot in the request bring a dot segment back after the rewrite', () => {
    // requestView normalises first; a path that reaches the rewrite unnormalised is normalised on the way out.
    expect(rewritePath('/foo/%2e%2e/etc', prefix('/x'), '/foo')).toBe('/etc');
    expect(rewritePath('/foo/..;/etc', prefix('/x'), '/foo')).toBeUndefined();
  });
});

const segment = fc.oneof(
  fc.constantFrom('.', '..', '', '%2e', '%2E%2e', 'a', 'foo', 'bar', '~u', '%41', 'x.y', '..a'),
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,6}$/),
);
const rawPath = fc.array(segment, { minLength: 0, maxLength: 8 }).map((s) => `/${s.join('/')}`);
/** A request path as routing hands it over: normalised. */
const normalPath = rawPath.map((p) => {
  const n = normalizePath(p);
  return n.ok ? n.path : '/';
});
/** A modifier value as parsing accepts it: a normalised clean path (prefixes held without a trailing slash). */
const cleanValue = fc.array(fc.stringMatching(/^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,5}$/), { maxLength: 4 }).map((s) => `/${s.join('/')}`);
const query = fc.option(fc.stringMatching(/^[A-Za-z0-9=&%./_-]{0,20}$/), { nil: undefined });

function hasDotSegment(path: string): boolean {
  return path.split('/').some((s) => s === '.' || s === '..' || /^%2e(%2e)?$/i.test(s) || s === '.%2e' || s === '%2e.');
}

describe('rewritePath: properties', () => {
  it('always gives an absolute path without "//" or a dot segment, and keeps the query', () => {
    fc.assert(
      fc.property(normalPath, cleanValue, fc.boolean(), query, (path, value, isPrefix, q) => {
        // The matched prefix is a leading run of the path's elements, as a PathPrefix match guarantees.
        const elements = path.split('/').slice(1);
        const cut = elements.length === 0 ? 0 : Math.floor(elements.length / 2);
        const matched = cut === 0 ? '' : `/${elements.slice(0, cut).join('/')}`;
        const modifier = isPrefix ? prefix(value === '/' ? '' : value.replace(/\/$/, '')) : full(value);
        const out = rewritePath(path, modifier, matched);
        expect(out).toBeDefined();
        expect(out!.startsWith('/')).toBe(true);
        expect(out).not.toContain('//');
        expect(hasDotSegment(out!)).toBe(false);
        const target = withQuery(out!, q);
        expect(target.slice(out!.length)).toBe(q === undefined ? '' : `?${q}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('never reintroduces a dot segment even from paths that were not normalised', () => {
    fc.assert(
      fc.property(rawPath, cleanValue, (path, value) => {
        const out = rewritePath(path, prefix(value === '/' ? '' : value), '');
        if (out !== undefined) {
          expect(out.startsWith('/')).toBe(true);
          expect(hasDotSegment(out)).toBe(false);
          expect(out).not.toContain('//');
        }
      }),
      { numRuns: 2000 },
    );
  });
});

const source = (over: Partial<RedirectSource> = {}): RedirectSource => ({
  scheme: 'http',
  authority: 'web.demo:8080',
  fallbackHost: 'web.demo.svc.cluster.local',
  path: '/old/page',
  query: 'a=1',
  servicePort: 8080,
  matchedPrefix: '/old',
  ...over,
});
const redirect = (over: Partial<RequestRedirect> = {}): RequestRedirect => ({ scheme: undefined, hostname: undefined, port: undefined, path: undefined, statusCode: 302, ...over });

describe('redirectLocation', () => {
  it('keeps what the filter does not set, with the Service port when no scheme is set', () => {
    expect(redirectLocation(redirect(), source())).toBe('http://web.demo:8080/old/page?a=1');
  });

  it('drops the port that is the default of the scheme', () => {
    expect(redirectLocation(redirect(), source({ servicePort: 80 }))).toBe('http://web.demo/old/page?a=1');
    expect(redirectLocation(redirect({ scheme: 'https' }), source())).toBe('https://web.demo/old/page?a=1');
    expect(redirectLocation(redirect({ scheme: 'https', port: 443 }), source())).toBe('https://web.demo/old/page?a=1');
    expect(redirectLocation(redirect({ scheme: 'http', port: 80 }), source())).toBe('http://web.demo/old/page?a=1');
  });

  it('derives the port from a scheme set by the filter, and keeps a port the filter sets', () => {
    expect(redirectLocation(redirect({ scheme: 'http' }), source())).toBe('http://web.demo/old/page?a=1');
    expect(redirectLocation(redirect({ scheme: 'https', port: 8443 }), source())).toBe('https://web.demo:8443/old/page?a=1');
    expect(redirectLocation(redirect({ port: 443 }), source())).toBe('http://web.demo:443/old/page?a=1');
    expect(redirectLocation(redirect({ port: 80, scheme: 'https' }), source())).toBe('https://web.demo:80/old/page?a=1');
  });

  it('sets the hostname and rewrites the path', () => {
    expect(redirectLocation(redirect({ hostname: 'new.example', path: prefix('/new') }), source())).toBe('http://new.example:8080/new/page?a=1');
    expect(redirectLocation(redirect({ path: full('/') }), source({ query: undefined }))).toBe('http://web.demo:8080/');
  });

  it('names the request host without case, port or trailing dot, and IPv6 hosts in brackets', () => {
    expect(redirectLocation(redirect(), source({ authority: 'WEB.Demo.:8080' }))).toBe('http://web.demo:8080/old/page?a=1');
    expect(redirectLocation(redirect(), source({ authority: '[FD00::1]:8080' }))).toBe('http://[fd00::1]:8080/old/page?a=1');
  });

  it.each([
    ['no Host', ''],
    ['a Host with a path in it', 'evil.example/x'],
    ['a Host with userinfo', 'user@evil.example'],
    ['a Host with a space', 'a b'],
    ['a Host with a backslash', 'evil.example\\x'],
  ])('names the Service instead of %s', (_what, authority) => {
    expect(redirectLocation(redirect(), source({ authority }))).toBe('http://web.demo.svc.cluster.local:8080/old/page?a=1');
  });
});
