import fc from 'fast-check';
import { normalizeHost, normalizePath, requestView, type NormalizeOptions, type RawHttpRequest } from './normalize.js';

const KEEP: NormalizeOptions = { escapedSlashes: 'keep' };

function normal(path: string, options?: NormalizeOptions): string {
  const result = normalizePath(path, options);
  if (!result.ok) throw new Error(`expected ${path} to normalise: ${result.reason}`);
  return result.path;
}

/** RFC 3986 §5.2.4 exactly as written (steps A-E on an input and an output buffer): the oracle. */
function rfcRemoveDotSegments(path: string): string {
  let input = path;
  let output = '';
  while (input.length > 0) {
    if (input.startsWith('../')) input = input.slice(3);
    else if (input.startsWith('./')) input = input.slice(2);
    else if (input.startsWith('/./')) input = input.slice(2);
    else if (input === '/.') input = '/';
    else if (input.startsWith('/../')) {
      input = input.slice(3);
      output = output.slice(0, Math.max(0, output.lastIndexOf('/')));
    } else if (input === '/..') {
      input = '/';
      output = output.slice(0, Math.max(0, output.lastIndexOf('/')));
    } else if (input === '.' || input === '..') input = '';
    else {
      const next = input.indexOf('/', 1);
      const segment = next === -1 ? input : input.slice(0, next);
      output += segment;
      input = input.slice(segment.length);
    }
  }
  return output;
}

/** Decodes escaped unreserved characters and upper-cases the other escapes (RFC 3986 §6.2.2.1-2). */
function decodeUnreserved(path: string): string {
  return path.replace(/%([0-9a-f]{2})/gi, (escape, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : escape.toUpperCase();
  });
}

describe('normalizePath: RFC 3986 §5.2.4 remove_dot_segments', () => {
  it('follows the worked example of §5.2.4', () => {
    expect(normal('/a/b/c/./../../g')).toBe('/a/g');
  });

  // §5.4.1 and §5.4.2 with base path /b/c/d;p: the merged paths (§5.2.3) and their results.
  it.each([
    ['/b/c/g', '/b/c/g'],
    ['/b/c/./g', '/b/c/g'],
    ['/b/c/g/', '/b/c/g/'],
    ['/b/c/.', '/b/c/'],
    ['/b/c/./', '/b/c/'],
    ['/b/c/..', '/b/'],
    ['/b/c/../', '/b/'],
    ['/b/c/../g', '/b/g'],
    ['/b/c/../..', '/'],
    ['/b/c/../../', '/'],
    ['/b/c/../../g', '/g'],
    ['/b/c/../../../g', '/g'],
    ['/b/c/../../../../g', '/g'],
    ['/./g', '/g'],
    ['/../g', '/g'],
    ['/b/c/g.', '/b/c/g.'],
    ['/b/c/.g', '/b/c/.g'],
    ['/b/c/g..', '/b/c/g..'],
    ['/b/c/..g', '/b/c/..g'],
    ['/b/c/./../g', '/b/g'],
    ['/b/c/./g/.', '/b/c/g/'],
    ['/b/c/g/./h', '/b/c/g/h'],
    ['/b/c/g/../h', '/b/c/h'],
    ['/b/c/g;x=1/./y', '/b/c/g;x=1/y'],
    ['/b/c/g;x=1/../y', '/b/c/y'],
  ])('%s → %s', (path, expected) => {
    expect(normal(path)).toBe(expected);
  });
});

describe('normalizePath: the rest of the BASE normalisation', () => {
  it.each([
    ['merges runs of slashes before removing dot segments', '/public//../admin', '/admin'],
    ['merges a leading run of slashes', '//a///b//', '/a/b/'],
    ['decodes percent-encoded unreserved characters', '/%7Euser/%41%62c-%5F%2E', '/~user/Abc-_.'],
    ['decodes an encoded dot segment, then removes it', '/public/%2e%2e/admin', '/admin'],
    ['reads mixed encoded and plain dots as a dot segment', '/public/.%2E/admin', '/admin'],
    ['upper-cases the hex of the escapes it keeps', '/a%c3%a9/%20b', '/a%C3%A9/%20b'],
    ['decodes only once (%252e is "%2e" text, not a dot)', '/public/%252e%252e/admin', '/public/%252e%252e/admin'],
    ['leaves path parameters and other characters alone', '/a;b=c/d:e@f!$&\'()*+,=', '/a;b=c/d:e@f!$&\'()*+,='],
  ])('%s: %s → %s', (_what, path, expected) => {
    expect(normal(path)).toBe(expected);
  });

  it('returns a clean path as the very same string', () => {
    const path = '/api/v1/users/42.json';
    const result = normalizePath(path);
    expect(result.ok && result.path).toBe(path);
  });

  it.each([
    ['/public/..%2Fadmin', 'an encoded "/" (%2F)'],
    ['/public/%2e%2e%2fadmin', 'an encoded "/" (%2F)'],
    ['/public/%5cadmin', 'an encoded "\\" (%5C)'],
    ['/public/..\\admin', 'the path contains "\\"'],
    ['/public/%zz', 'a "%" not followed by two hex digits'],
    ['/public/%2', 'a "%" not followed by two hex digits'],
    ['/public/..;/admin', 'a "." or ".." segment with ";" parameters'],
    ['/public/%2e%2e;x=1/admin', 'a "." or ".." segment with ";" parameters'],
    ['/public/.;/admin', 'a "." or ".." segment with ";" parameters'],
    ['public', 'does not start with "/"'],
    ['', 'does not start with "/"'],
  ])('refuses %j (%s) under the default escaped-slash policy', (path, reason) => {
    const result = normalizePath(path);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });

  it('keeps encoded slashes as one segment character under the keep policy', () => {
    expect(normal('/public/..%2fadmin', KEEP)).toBe('/public/..%2Fadmin');
    expect(normal('/a/%5c/../b', KEEP)).toBe('/a/b');
    expect(normalizePath('/public/%zz', KEEP).ok).toBe(false);
  });
});

describe('normalizePath: properties', () => {
  const piece = fc.constantFrom('a', 'B', '0', '.', '..', '/', '//', '%2e', '%2E', '%2f', '%5C', '\\', '%41', '%7e', '%7E', '%20', '%c3', '%25', '%', '%g1', '~', '-', ';', '=', 'é');
  const path = fc.array(piece, { maxLength: 24 }).map((pieces) => `/${pieces.join('')}`);
  const options = fc.constantFrom<NormalizeOptions>({ escapedSlashes: 'reject' }, KEEP);

  it('is idempotent: normalise(normalise(p)) = normalise(p)', () => {
    fc.assert(
      fc.property(path, options, (p, o) => {
        const once = normalizePath(p, o);
        if (!once.ok) return;
        expect(normalizePath(once.path, o)).toEqual(once);
      }),
      { numRuns: 1000 },
    );
  });

  it('never leaves a "." or ".." segment or an empty segment', () => {
    fc.assert(
      fc.property(path, options, (p, o) => {
        const result = normalizePath(p, o);
        if (!result.ok) return;
        expect(result.path.startsWith('/')).toBe(true);
        expect(result.path).not.toMatch(/\/\.\.?(\/|$)|\/\//);
      }),
      { numRuns: 1000 },
    );
  });

  it('leaves no encoded unreserved character, and only upper-case escapes', () => {
    fc.assert(
      fc.property(path, options, (p, o) => {
        const result = normalizePath(p, o);
        if (!result.ok) return;
        for (const [, hex] of result.path.matchAll(/%(..)/g)) {
          expect(hex).toMatch(/^[0-9A-F]{2}$/);
          expect(String.fromCharCode(parseInt(hex!, 16))).not.toMatch(/[A-Za-z0-9\-._~]/);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses exactly the paths with an encoded or raw slash-like character, a broken escape or a dot segment with parameters (reject policy)', () => {
    fc.assert(
      fc.property(path, (p) => {
        const hasSlashLike = /%2f|%5c|\\/i.test(p);
        const broken = /%(?![0-9a-f]{2})/i.test(p);
        const dotParams = !broken && decodeUnreserved(p).split('/').some((segment) => /^\.\.?;/.test(segment));
        expect(normalizePath(p).ok).toBe(!hasSlashLike && !broken && !dotParams);
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with RFC 3986 §5.2.4 as written, on the decoded path with slashes merged', () => {
    fc.assert(
      fc.property(path, (p) => {
        const result = normalizePath(p, KEEP);
        if (!result.ok) return;
        expect(result.path).toBe(rfcRemoveDotSegments(decodeUnreserved(p).replace(/\/+/g, '/')));
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps a path under a prefix only when it stays under it', () => {
    // The route guarantee: whatever follows `/public/`, the result is `/public/...` or leaves `/public` entirely.
    fc.assert(
      fc.property(path, (p) => {
        const result = normalizePath(`/public${p}`, KEEP);
        if (!result.ok || !result.path.startsWith('/public/')) return;
        expect(result.path.split('/').slice(2)).not.toContain('..');
      }),
      { numRuns: 1000 },
    );
  });
});

describe('normalizeHost', () => {
  it.each([
    ['vip.rt', 'vip.rt'],
    ['VIP.RT', 'vip.rt'],
    ['vip.rt:80', 'vip.rt'],
    ['Vip.Rt.:8080', 'vip.rt'],
    ['vip.rt:', 'vip.rt'],
    ['[::1]:8080', '[::1]'],
    ['[FE80::1]', '[fe80::1]'],
    ['10.0.0.1:443', '10.0.0.1'],
  ])('%s → %s', (authority, host) => {
    expect(normalizeHost(authority)).toBe(host);
  });
});

describe('requestView', () => {
  const raw = (target: string, authority = 'svc', host?: string): RawHttpRequest => ({
    method: 'GET',
    target,
    authority,
    header: (name) => (name === 'host' ? host : name === 'x-a' ? '1' : undefined),
  });

  it('normalises the path, keeps the query as sent, and forwards what it matched', () => {
    const view = requestView(raw('/public/./a/../%62?next=/../x&y=%2e'), 'demo');
    if (!view.ok) throw new Error(view.reason);
    expect(view.request.path).toBe('/public/b');
    expect(view.request.query?.get('next')).toBe('/../x');
    expect(view.request.clientNamespace).toBe('demo');
    expect(view.target).toBe('/public/b?next=/../x&y=%2e');
  });

  it('forwards an already normal target unchanged, and drops a fragment', () => {
    const target = '/public/b?x=1';
    const view = requestView(raw(target));
    expect(view.ok && view.target).toBe(target);
    const fragment = requestView(raw('/public/b#/../../admin'));
    expect(fragment.ok && fragment.target).toBe('/public/b');
  });

  it('reads the host as the normalised :authority, and other headers as sent', () => {
    const view = requestView(raw('/', 'VIP.RT:80'));
    if (!view.ok) throw new Error(view.reason);
    expect(view.request.headers('host')).toBe('vip.rt');
    expect(view.request.headers('x-a')).toBe('1');
  });

  it('refuses a Host header naming another host than :authority, and accepts one that differs only in case or port', () => {
    expect(requestView(raw('/', 'other.rt', 'vip.rt')).ok).toBe(false);
    expect(requestView(raw('/', 'vip.rt', 'VIP.rt:80')).ok).toBe(true);
  });

  it('passes `*` and refuses an absolute-form or broken target', () => {
    const star = requestView(raw('*'));
    expect(star.ok && star.target).toBe('*');
    expect(requestView(raw('http://evil/public')).ok).toBe(false);
    expect(requestView(raw('/public/%2fadmin')).ok).toBe(false);
  });
});
