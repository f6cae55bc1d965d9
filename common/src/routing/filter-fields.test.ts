import { compile, backend, grpcRoute, httpRoute, parent, request, service, tableOf, grpcCall } from './testing/fixtures.js';
import { matchGrpc, matchHttp } from './match.js';
import type { CompiledRoutes, RouteCondition } from './types.js';

const messages = (compiled: CompiledRoutes): string[] => compiled.warnings.map((w) => w.message);

function condition(compiled: CompiledRoutes, name: string, type: RouteCondition['type']): RouteCondition | undefined {
  return compiled.statuses.find((s) => s.route.name === name)?.parents[0]?.conditions.find((c) => c.type === type);
}

/** HTTPRoute demo/f on Service demo/web (port 80), `rule` first and a catch-all second. */
function withRule(rule: Record<string, unknown>, kind: 'HTTPRoute' | 'GRPCRoute' = 'HTTPRoute'): CompiledRoutes {
  const make = kind === 'HTTPRoute' ? httpRoute : grpcRoute;
  return compile([
    service('demo', 'web', [80]),
    service('demo', 'shadow', [80]),
    make('demo', 'f', { parentRefs: [parent('web')], rules: [rule, { backendRefs: [backend('web')] }] }),
  ]);
}

const decisionOf = (compiled: CompiledRoutes, path = '/app/x') => matchHttp(tableOf(compiled, 'demo', 'web'), request({ path }));
const redirectRule = (settings: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  matches: [{ path: { type: 'PathPrefix', value: '/app' } }],
  filters: [{ type: 'RequestRedirect', requestRedirect: settings }],
  ...extra,
});
const rewriteRule = (settings: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  matches: [{ path: { type: 'PathPrefix', value: '/app' } }],
  filters: [{ type: 'URLRewrite', urlRewrite: settings }],
  backendRefs: [backend('web')],
  ...extra,
});
const mirrorRule = (settings: unknown): Record<string, unknown> => ({ filters: [{ type: 'RequestMirror', requestMirror: settings }], backendRefs: [backend('web')] });

describe('RequestRedirect', () => {
  it('compiles every field into the decision, with 302 as the default code', () => {
    const compiled = withRule(redirectRule({ scheme: 'https', hostname: 'new.example', port: 8443, path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2/' }, statusCode: 301 }));
    expect(messages(compiled)).toEqual([]);
    const decision = decisionOf(compiled);
    expect(decision?.ruleIndex).toBe(0);
    expect(decision?.redirect).toEqual({ scheme: 'https', hostname: 'new.example', port: 8443, path: { type: 'ReplacePrefixMatch', value: '/v2' }, statusCode: 301 });
    expect(decision?.matchedPrefix).toBe('/app');
    expect(decisionOf(withRule(redirectRule({})))?.redirect?.statusCode).toBe(302);
    expect(condition(compiled, 'f', 'Accepted')?.status).toBe('True');
  });

  it.each([303, 307, 308])('accepts status code %d (experimental channel)', (statusCode) => {
    expect(decisionOf(withRule(redirectRule({ statusCode })))?.redirect?.statusCode).toBe(statusCode);
  });

  it.each<[string, unknown, string]>([
    ['an unknown scheme', { scheme: 'ftp' }, 'filters[0].requestRedirect.scheme "ftp" is not supported (expected http or https)'],
    ['a status code that is not a redirect', { statusCode: 304 }, 'filters[0].requestRedirect.statusCode 304 is not supported (expected 301, 302, 303, 307, 308)'],
    ['a port out of range', { port: 70000 }, 'filters[0].requestRedirect.port must be an integer from 1 to 65535, got 70000'],
    ['a hostname with a port', { hostname: 'a.example:80' }, 'filters[0].requestRedirect.hostname must be a hostname'],
    ['a hostname with CR/LF', { hostname: 'a.example\r\nSet-Cookie: x=1' }, 'filters[0].requestRedirect.hostname must be a hostname'],
    ['a wildcard hostname', { hostname: '*.example' }, 'filters[0].requestRedirect.hostname must be a hostname'],
    ['an upper-case hostname', { hostname: 'A.example' }, 'filters[0].requestRedirect.hostname must be a hostname'],
    ['a path type that does not exist', { path: { type: 'Regex', replaceFullPath: '/' } }, 'filters[0].requestRedirect.path.type "Regex" is not supported (expected ReplaceFullPath or ReplacePrefixMatch)'],
    ['ReplaceFullPath without its value', { path: { type: 'ReplaceFullPath' } }, 'filters[0].requestRedirect.path.replaceFullPath is required when filters[0].requestRedirect.path.type is ReplaceFullPath'],
    ['ReplaceFullPath with the other value set', { path: { type: 'ReplaceFullPath', replaceFullPath: '/a', replacePrefixMatch: '/b' } }, 'filters[0].requestRedirect.path.replacePrefixMatch must not be set when filters[0].requestRedirect.path.type is ReplaceFullPath'],
    ['a relative path', { path: { type: 'ReplaceFullPath', replaceFullPath: 'a/b' } }, 'filters[0].requestRedirect.path.replaceFullPath "a/b" must start with "/"'],
    ['a path with ".."', { path: { type: 'ReplaceFullPath', replaceFullPath: '/a/../b' } }, 'must not contain "." or ".." segments'],
    ['a path with "//"', { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/a//b' } }, 'filters[0].requestRedirect.path.replacePrefixMatch "/a//b" must not contain "//"'],
    ['a path with an encoded dot segment', { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/a/%2e%2e' } }, 'must be a normalised path (it reads as "/")'],
    ['a path with CR/LF', { path: { type: 'ReplaceFullPath', replaceFullPath: '/a\r\nb' } }, 'must hold only path characters or %-escapes'],
    ['settings that are not a mapping', 'yes', 'filters[0].requestRedirect must be a mapping, got "yes"'],
  ])('drops a rule with %s and names the field', (_what, settings, detail) => {
    const compiled = withRule(redirectRule(settings));
    expect(messages(compiled)[0]).toContain(detail);
    expect(messages(compiled)[0]).toMatch(/\(rule dropped\)$/);
    expect(decisionOf(compiled)?.ruleIndex).toBe(1);
    expect(condition(compiled, 'f', 'PartiallyInvalid')?.message).toContain('Dropped Rule 0: ');
  });

  it('drops ReplacePrefixMatch on a rule with an Exact or RegularExpression match', () => {
    const compiled = withRule({
      matches: [{ path: { type: 'PathPrefix', value: '/app' } }, { path: { type: 'Exact', value: '/x' } }],
      filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } } }],
    });
    expect(messages(compiled)).toEqual(['HTTPRoute demo/f: rule 0 filters[0].requestRedirect.path.type ReplacePrefixMatch needs PathPrefix matches, but matches[1].path.type is Exact (rule dropped)']);
  });

  it('takes ReplacePrefixMatch on a rule without matches (PathPrefix "/")', () => {
    const compiled = withRule({ filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } } }] });
    expect(messages(compiled)).toEqual([]);
    expect(decisionOf(compiled)?.matchedPrefix).toBe('');
  });

  it('is an HTTPRoute filter only', () => {
    expect(messages(withRule({ filters: [{ type: 'RequestRedirect', requestRedirect: {} }], backendRefs: [backend('web')] }, 'GRPCRoute'))).toEqual([
      'GRPCRoute demo/f: rule 0 filters[0].type "RequestRedirect" is not a GRPCRoute filter (rule dropped)',
    ]);
  });

  it('reports a field it does not know without dropping the rule', () => {
    expect(messages(withRule(redirectRule({ statusCode: 301, later: true })))).toEqual(['HTTPRoute demo/f: rule 0 filters[0].requestRedirect.later is not a field tsmesh knows (ignored)']);
  });
});

describe('URLRewrite', () => {
  it('compiles hostname and path into the decision', () => {
    const compiled = withRule(rewriteRule({ hostname: 'backend.internal', path: { type: 'ReplaceFullPath', replaceFullPath: '/index.html' } }));
    expect(messages(compiled)).toEqual([]);
    expect(decisionOf(compiled)?.urlRewrite).toEqual({ hostname: 'backend.internal', path: { type: 'ReplaceFullPath', value: '/index.html' } });
  });

  it.each<[string, unknown, string]>([
    ['a hostname with CR/LF', { hostname: 'x\r\nInjected: 1' }, 'filters[0].urlRewrite.hostname must be a hostname (lower-case RFC 1123 labels, no wildcard, no port, at most 253 characters), got "x\\r\\nInjected: 1"'],
    ['an empty hostname', { hostname: '' }, 'filters[0].urlRewrite.hostname must be a hostname'],
    ['a hostname of 254 characters', { hostname: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}` }, 'filters[0].urlRewrite.hostname must be a hostname'],
    ['a path with "#"', { path: { type: 'ReplaceFullPath', replaceFullPath: '/a#b' } }, 'filters[0].urlRewrite.path.replaceFullPath "/a#b" must not contain "#"'],
    ['a path with an encoded "/"', { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/a%2fb' } }, 'must not contain an encoded "/" (%2F)'],
    ['ReplacePrefixMatch without its value', { path: { type: 'ReplacePrefixMatch' } }, 'filters[0].urlRewrite.path.replacePrefixMatch is required when filters[0].urlRewrite.path.type is ReplacePrefixMatch'],
    ['a path that ends in "/.."', { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/a/..' } }, 'must not contain "." or ".." segments'],
  ])('drops a rule with %s and names the field', (_what, settings, detail) => {
    const compiled = withRule(rewriteRule(settings));
    expect(messages(compiled)[0]).toContain(detail);
    expect(messages(compiled)[0]).toMatch(/\(rule dropped\)$/);
  });

  it('drops a rule that has both a RequestRedirect and a URLRewrite (the spec forbids it)', () => {
    const compiled = withRule({ filters: [{ type: 'RequestRedirect', requestRedirect: {} }, { type: 'URLRewrite', urlRewrite: { hostname: 'a' } }], backendRefs: [backend('web')] });
    expect(messages(compiled)).toEqual(['HTTPRoute demo/f: rule 0 filters: a RequestRedirect and a URLRewrite filter cannot be used in one rule (rule dropped)']);
    expect(condition(compiled, 'f', 'PartiallyInvalid')?.message).toContain('cannot be used in one rule');
  });

  it('drops a repeated URLRewrite', () => {
    const compiled = withRule({ filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'a' } }, { type: 'URLRewrite', urlRewrite: { hostname: 'b' } }], backendRefs: [backend('web')] });
    expect(messages(compiled)).toEqual(['HTTPRoute demo/f: rule 0 filters[1]: filter URLRewrite is repeated (rule dropped)']);
  });

  it('drops ReplacePrefixMatch beside a RegularExpression match', () => {
    const compiled = withRule(rewriteRule({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } }, { matches: [{ path: { type: 'RegularExpression', value: '/a.*' } }] }));
    expect(messages(compiled)[0]).toContain('filters[0].urlRewrite.path.type ReplacePrefixMatch needs PathPrefix matches, but matches[0].path.type is RegularExpression');
  });
});

describe('RequestMirror', () => {
  it('compiles backendRef and sampling into the decision, every request by default', () => {
    const compiled = withRule(mirrorRule({ backendRef: backend('shadow') }));
    expect(messages(compiled)).toEqual([]);
    expect(decisionOf(compiled, '/')?.mirrors).toEqual([{ namespace: 'demo', name: 'shadow', port: 80, problem: undefined, numerator: 1, denominator: 1 }]);
  });

  it('reads percent and fraction (GEP-3171), the fraction denominator defaulting to 100', () => {
    expect(decisionOf(withRule(mirrorRule({ backendRef: backend('shadow'), percent: 25 })), '/')?.mirrors?.[0]).toMatchObject({ numerator: 25, denominator: 100 });
    expect(decisionOf(withRule(mirrorRule({ backendRef: backend('shadow'), fraction: { numerator: 1, denominator: 3 } })), '/')?.mirrors?.[0]).toMatchObject({ numerator: 1, denominator: 3 });
    expect(decisionOf(withRule(mirrorRule({ backendRef: backend('shadow'), fraction: { numerator: 5 } })), '/')?.mirrors?.[0]).toMatchObject({ numerator: 5, denominator: 100 });
  });

  it('may be repeated (one copy to each)', () => {
    const compiled = withRule({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('shadow') } }, { type: 'RequestMirror', requestMirror: { backendRef: backend('web') } }], backendRefs: [backend('web')] });
    expect(messages(compiled)).toEqual([]);
    expect(decisionOf(compiled, '/')?.mirrors?.map((m) => m.name)).toEqual(['shadow', 'web']);
  });

  it('works on a GRPCRoute', () => {
    const compiled = withRule(mirrorRule({ backendRef: backend('shadow') }), 'GRPCRoute');
    expect(messages(compiled)).toEqual([]);
    expect(matchGrpc(tableOf(compiled, 'demo', 'web'), grpcCall('a.B', 'C'))?.mirrors?.[0]?.name).toBe('shadow');
  });

  it('reports a mirror Service that does not exist as ResolvedRefs=False, keeps the rule and marks the mirror', () => {
    const compiled = withRule(mirrorRule({ backendRef: backend('ghost') }));
    expect(messages(compiled)).toEqual(['HTTPRoute demo/f: rule 0 filters[0].requestMirror.backendRef refers to Service demo/ghost, which does not exist (no copies are sent)']);
    expect(condition(compiled, 'f', 'ResolvedRefs')).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    expect(condition(compiled, 'f', 'Accepted')?.status).toBe('True');
    const decision = decisionOf(compiled, '/');
    expect(decision?.ruleIndex).toBe(0);
    expect(decision?.mirrors?.[0]?.problem).toBe('BackendNotFound');
    expect(decision?.backends.map((b) => b.name)).toEqual(['web']);
  });

  it('reports a mirror to a port the Service does not have, and to another kind', () => {
    expect(messages(withRule(mirrorRule({ backendRef: backend('shadow', 81) })))[0]).toContain('filters[0].requestMirror.backendRef refers to port 81 of Service demo/shadow, which has no such port (no copies are sent)');
    expect(messages(withRule(mirrorRule({ backendRef: { kind: 'Bucket', group: 'x.io', name: 'b' } })))[0]).toContain('filters[0].requestMirror.backendRef refers to "Bucket" in group "x.io"; only Services are supported (no copies are sent)');
  });

  it.each<[string, unknown, string]>([
    ['no backendRef', {}, 'filters[0].requestMirror.backendRef is required'],
    ['a Service backendRef without port', { backendRef: { name: 'shadow' } }, 'filters[0].requestMirror.backendRef.port is required for a Service'],
    ['a backendRef without name', { backendRef: { port: 80 } }, 'filters[0].requestMirror.backendRef.name must be a string of 1 to 253 characters'],
    ['a percent over 100', { backendRef: backend('shadow'), percent: 101 }, 'filters[0].requestMirror.percent must be an integer from 0 to 100, got 101'],
    ['percent and fraction both', { backendRef: backend('shadow'), percent: 5, fraction: { numerator: 1 } }, 'filters[0].requestMirror: set percent or fraction, not both'],
    ['a fraction above 1', { backendRef: backend('shadow'), fraction: { numerator: 3, denominator: 2 } }, 'filters[0].requestMirror.fraction.numerator 3 must not be greater than its denominator 2'],
    ['a zero denominator', { backendRef: backend('shadow'), fraction: { numerator: 0, denominator: 0 } }, 'filters[0].requestMirror.fraction.denominator must be an integer from 1 to 2147483647, got 0'],
    ['a fraction without numerator', { backendRef: backend('shadow'), fraction: { denominator: 10 } }, 'filters[0].requestMirror.fraction.numerator is required'],
  ])('drops a rule with %s and names the field', (_what, settings, detail) => {
    const compiled = withRule(mirrorRule(settings));
    expect(messages(compiled)[0]).toContain(detail);
    expect(messages(compiled)[0]).toMatch(/\(rule dropped\)$/);
  });
});

describe('header modifiers', () => {
  it('compiles a ResponseHeaderModifier into the decision', () => {
    const compiled = withRule({ filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'X-Frame', value: 'deny' }], add: [{ name: 'x-a', value: '1' }], remove: ['Server'] } }], backendRefs: [backend('web')] });
    expect(messages(compiled)).toEqual([]);
    expect(decisionOf(compiled, '/')?.responseHeaderModifier).toEqual({ set: [{ name: 'x-frame', value: 'deny' }], add: [{ name: 'x-a', value: '1' }], remove: ['server'] });
  });

  it.each(['ResponseHeaderModifier', 'RequestHeaderModifier'])('drops a %s whose value holds CR/LF (header injection), naming the field', (type) => {
    const field = type === 'ResponseHeaderModifier' ? 'responseHeaderModifier' : 'requestHeaderModifier';
    const compiled = withRule({ filters: [{ type, [field]: { set: [{ name: 'x-a', value: 'ok\r\nSet-Cookie: stolen=1' }] } }], backendRefs: [backend('web')] });
    expect(messages(compiled)[0]).toContain(`filters[0].${field}.set[0].value must hold only visible characters, spaces and tabs`);
    expect(messages(compiled)[0]).toMatch(/\(rule dropped\)$/);
  });
});
