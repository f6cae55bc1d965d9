import { matchGrpc, matchHttp, pathMatches, routeSetFor, splitGrpcPath } from './match.js';
import { compileRegex } from './regex.js';
import { backend, compile, grpcCall, grpcRoute, httpRoute, parent, request, service, tableOf, type RequestParts } from './testing/fixtures.js';
import type { PathMatch, RouteDecision, RouteRegex } from './types.js';

/** `route#rule` of a decision, or '404' when nothing matched. */
const outcome = (decision: RouteDecision | undefined): string => (decision === undefined ? '404' : `${decision.route.name}#${decision.ruleIndex}`);

/** One HTTPRoute `r` on Service demo/web:80 whose rules each have the given matches and send to backend `b<i>`. */
function singleRoute(rules: readonly Record<string, unknown>[]): (parts: RequestParts) => string {
  const compiled = compile([
    service('demo', 'web'),
    httpRoute('demo', 'r', { parentRefs: [parent('web')], rules: rules.map((matches) => ({ ...matches, backendRefs: [backend('web')] })) }),
  ]);
  expect(compiled.warnings).toEqual([]);
  const table = tableOf(compiled, 'demo', 'web');
  return (parts) => outcome(matchHttp(table, request(parts)));
}

function re2(pattern: string): RouteRegex {
  const compiled = compileRegex(pattern);
  if (!compiled.ok) throw new Error(`${pattern} ${compiled.reason}`);
  return compiled.regex;
}

const prefix = (value: string): Record<string, unknown> => ({ path: { type: 'PathPrefix', value } });
const exact = (value: string): Record<string, unknown> => ({ path: { type: 'Exact', value } });

describe('HTTP path matching', () => {
  it.each<[string, PathMatch, string, boolean]>([
    ['Exact matches the same path', { type: 'Exact', value: '/abc' }, '/abc', true],
    ['Exact does not match a trailing slash ("/abc" is not "/abc/")', { type: 'Exact', value: '/abc' }, '/abc/', false],
    ['Exact is case-sensitive ("/abc" is not "/Abc")', { type: 'Exact', value: '/abc' }, '/Abc', false],
    ['Exact does not match a longer path ("/abc" is not "/abcd")', { type: 'Exact', value: '/abc' }, '/abcd', false],
    ['PathPrefix /abc matches /abc', { type: 'PathPrefix', value: '/abc', prefix: '/abc' }, '/abc', true],
    ['PathPrefix /abc matches /abc/', { type: 'PathPrefix', value: '/abc', prefix: '/abc' }, '/abc/', true],
    ['PathPrefix /abc matches /abc/def', { type: 'PathPrefix', value: '/abc', prefix: '/abc' }, '/abc/def', true],
    ['PathPrefix /abc does not match /abcd (element boundary)', { type: 'PathPrefix', value: '/abc', prefix: '/abc' }, '/abcd', false],
    ['PathPrefix /abc is case-sensitive', { type: 'PathPrefix', value: '/abc', prefix: '/abc' }, '/ABC/def', false],
    ['PathPrefix /abc/ ignores its trailing slash and matches /abc', { type: 'PathPrefix', value: '/abc/', prefix: '/abc' }, '/abc', true],
    ['PathPrefix /abc/ matches /abc/def', { type: 'PathPrefix', value: '/abc/', prefix: '/abc' }, '/abc/def', true],
    ['PathPrefix / matches every path', { type: 'PathPrefix', value: '/', prefix: '' }, '/anything/at/all', true],
    ['RegularExpression matches the whole path', { type: 'RegularExpression', value: '/v[0-9]+/.*', regex: re2('/v[0-9]+/.*') }, '/v2/users', true],
    ['RegularExpression is anchored (no partial match)', { type: 'RegularExpression', value: '/v[0-9]+', regex: re2('/v[0-9]+') }, '/v2/users', false],
  ])('%s', (_name, match, path, expected) => {
    expect(pathMatches(match, path)).toBe(expected);
  });
});

describe('HTTPRoute precedence (spec: HTTPRouteRule.matches, "continuing on ties")', () => {
  it('gives an Exact path match precedence over a PathPrefix match of the same path', () => {
    const match = singleRoute([{ matches: [prefix('/foo')] }, { matches: [exact('/foo')] }]);
    expect(match({ path: '/foo' })).toBe('r#1');
    expect(match({ path: '/foo/bar' })).toBe('r#0');
  });

  it('gives the PathPrefix match with the most characters precedence', () => {
    const match = singleRoute([{ matches: [prefix('/')] }, { matches: [prefix('/api')] }, { matches: [prefix('/api/v2')] }]);
    expect(match({ path: '/api/v2/users' })).toBe('r#2');
    expect(match({ path: '/api/v1/users' })).toBe('r#1');
    expect(match({ path: '/other' })).toBe('r#0');
  });

  it('respects path element boundaries: /foo does not catch /foobar', () => {
    const match = singleRoute([{ matches: [prefix('/foo')] }]);
    expect(match({ path: '/foo' })).toBe('r#0');
    expect(match({ path: '/foo/bar' })).toBe('r#0');
    expect(match({ path: '/foobar' })).toBe('404');
  });

  it('gives a method match precedence over header matches when paths tie', () => {
    const match = singleRoute([
      { matches: [{ headers: [{ name: 'x-a', value: '1' }, { name: 'x-b', value: '2' }] }] },
      { matches: [{ method: 'POST' }] },
    ]);
    expect(match({ method: 'POST', headers: { 'x-a': '1', 'x-b': '2' } })).toBe('r#1');
    expect(match({ method: 'GET', headers: { 'x-a': '1', 'x-b': '2' } })).toBe('r#0');
  });

  it('gives a longer path precedence over a method match', () => {
    const match = singleRoute([{ matches: [{ path: { value: '/' }, method: 'GET' }] }, { matches: [prefix('/shop')] }]);
    expect(match({ method: 'GET', path: '/shop/cart' })).toBe('r#1');
  });

  it('gives the largest number of header matches precedence', () => {
    const match = singleRoute([
      { matches: [{ headers: [{ name: 'x-env', value: 'canary' }] }] },
      { matches: [{ headers: [{ name: 'x-env', value: 'canary' }, { name: 'x-user', value: 'alice' }] }] },
    ]);
    expect(match({ headers: { 'x-env': 'canary', 'x-user': 'alice' } })).toBe('r#1');
    expect(match({ headers: { 'x-env': 'canary', 'x-user': 'bob' } })).toBe('r#0');
  });

  it('gives header matches precedence over query param matches', () => {
    const match = singleRoute([
      { matches: [{ queryParams: [{ name: 'a', value: '1' }, { name: 'b', value: '2' }] }] },
      { matches: [{ headers: [{ name: 'x-a', value: '1' }] }] },
    ]);
    expect(match({ path: '/?a=1&b=2', headers: { 'x-a': '1' } })).toBe('r#1');
  });

  it('gives the largest number of query param matches precedence', () => {
    const match = singleRoute([
      { matches: [{ queryParams: [{ name: 'a', value: '1' }] }] },
      { matches: [{ queryParams: [{ name: 'a', value: '1' }, { name: 'b', value: '2' }] }] },
    ]);
    expect(match({ path: '/?a=1&b=2' })).toBe('r#1');
    expect(match({ path: '/?a=1' })).toBe('r#0');
    expect(match({ path: '/?b=2' })).toBe('404');
  });

  it('grants the first matching rule in list order when ties remain within a route', () => {
    const match = singleRoute([{ matches: [prefix('/a')] }, { matches: [prefix('/a')] }]);
    expect(match({ path: '/a' })).toBe('r#0');
  });

  it('ranks each entry of a rule\'s matches on its own (matches are ORed)', () => {
    const match = singleRoute([{ matches: [prefix('/')] }, { matches: [prefix('/x'), exact('/y')] }]);
    expect(match({ path: '/x/1' })).toBe('r#1');
    expect(match({ path: '/y' })).toBe('r#1');
    expect(match({ path: '/z' })).toBe('r#0');
  });

  it('puts RegularExpression paths between Exact and PathPrefix (implementation-specific)', () => {
    const match = singleRoute([{ matches: [prefix('/users')] }, { matches: [{ path: { type: 'RegularExpression', value: '/users/[0-9]+' } }] }, { matches: [exact('/users/42')] }]);
    expect(match({ path: '/users/42' })).toBe('r#2');
    expect(match({ path: '/users/7' })).toBe('r#1');
    expect(match({ path: '/users/me' })).toBe('r#0');
  });

  describe('across routes attached to the same Service', () => {
    const objects = (createdA: string | undefined, createdB: string | undefined): ReturnType<typeof compile> =>
      compile([
        service('demo', 'web'),
        service('demo', 'a'),
        service('demo', 'b'),
        httpRoute('demo', 'zeta', { parentRefs: [parent('web')], rules: [{ matches: [prefix('/x')], backendRefs: [backend('a')] }] }, { created: createdA }),
        httpRoute('demo', 'alpha', { parentRefs: [parent('web')], rules: [{ matches: [prefix('/x')], backendRefs: [backend('b')] }] }, { created: createdB }),
      ]);

    it('breaks a tie by the oldest route (creation timestamp)', () => {
      const table = tableOf(objects('2024-01-01T00:00:00Z', '2024-06-01T00:00:00Z'), 'demo', 'web');
      expect(outcome(matchHttp(table, request({ path: '/x' })))).toBe('zeta#0');
    });

    it('breaks a tie between routes of the same age by namespace/name in alphabetical order', () => {
      const table = tableOf(objects('2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z'), 'demo', 'web');
      expect(outcome(matchHttp(table, request({ path: '/x' })))).toBe('alpha#0');
    });

    it('treats routes without a creation timestamp as newer than those with one', () => {
      const table = tableOf(objects(undefined, '2024-01-01T00:00:00Z'), 'demo', 'web');
      expect(outcome(matchHttp(table, request({ path: '/x' })))).toBe('alpha#0');
    });

    it('applies the precedence criteria before the route age', () => {
      const compiled = compile([
        service('demo', 'web'),
        httpRoute('demo', 'old', { parentRefs: [parent('web')], rules: [{ matches: [prefix('/x')], backendRefs: [backend('web')] }] }, { created: '2020-01-01T00:00:00Z' }),
        httpRoute('demo', 'new', { parentRefs: [parent('web')], rules: [{ matches: [prefix('/x/y')], backendRefs: [backend('web')] }] }, { created: '2025-01-01T00:00:00Z' }),
      ]);
      expect(outcome(matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/x/y/z' })))).toBe('new#0');
    });
  });
});

describe('HTTP match conditions', () => {
  it('matches every request when a rule has no matches (default PathPrefix /)', () => {
    const match = singleRoute([{}]);
    expect(match({ method: 'DELETE', path: '/any/thing?x=1' })).toBe('r#0');
  });

  it('ANDs the conditions of one match: path, method, headers and query params must all hold', () => {
    const match = singleRoute([{ matches: [{ path: { value: '/api' }, method: 'PUT', headers: [{ name: 'x-v', value: '2' }], queryParams: [{ name: 'debug', value: 'on' }] }] }]);
    expect(match({ method: 'PUT', path: '/api/x?debug=on', headers: { 'x-v': '2' } })).toBe('r#0');
    expect(match({ method: 'GET', path: '/api/x?debug=on', headers: { 'x-v': '2' } })).toBe('404');
    expect(match({ method: 'PUT', path: '/other?debug=on', headers: { 'x-v': '2' } })).toBe('404');
    expect(match({ method: 'PUT', path: '/api/x?debug=off', headers: { 'x-v': '2' } })).toBe('404');
    expect(match({ method: 'PUT', path: '/api/x?debug=on', headers: { 'x-v': '3' } })).toBe('404');
  });

  it('matches header names case-insensitively (spec: HTTPHeaderMatch.name)', () => {
    const match = singleRoute([{ matches: [{ headers: [{ name: 'X-Canary', value: 'yes' }] }] }]);
    expect(match({ headers: { 'x-canary': 'yes' } })).toBe('r#0');
    expect(match({ headers: { 'X-CANARY': 'yes' } })).toBe('r#0');
  });

  it('matches header values exactly and case-sensitively', () => {
    const match = singleRoute([{ matches: [{ headers: [{ name: 'x-canary', value: 'yes' }] }] }]);
    expect(match({ headers: { 'x-canary': 'Yes' } })).toBe('404');
    expect(match({})).toBe('404');
  });

  it('matches RegularExpression header values against the whole value', () => {
    const match = singleRoute([{ matches: [{ headers: [{ name: 'user-agent', type: 'RegularExpression', value: '.*Firefox/[0-9]+.*' }] }] }]);
    expect(match({ headers: { 'user-agent': 'Mozilla/5.0 Firefox/128.0' } })).toBe('r#0');
    expect(match({ headers: { 'user-agent': 'curl/8.0' } })).toBe('404');
  });

  it('matches query parameter names exactly (case-sensitive) and the first value of a repeated one', () => {
    const match = singleRoute([{ matches: [{ queryParams: [{ name: 'env', value: 'qa' }] }] }]);
    expect(match({ path: '/?env=qa' })).toBe('r#0');
    expect(match({ path: '/?ENV=qa' })).toBe('404');
    expect(match({ path: '/?env=qa&env=prod' })).toBe('r#0');
    expect(match({ path: '/?env=prod&env=qa' })).toBe('404');
  });

  it('matches RegularExpression query parameter values', () => {
    const match = singleRoute([{ matches: [{ queryParams: [{ name: 'id', type: 'RegularExpression', value: '[0-9]{3}' }] }] }]);
    expect(match({ path: '/?id=123' })).toBe('r#0');
    expect(match({ path: '/?id=1234' })).toBe('404');
  });

  it('counts only the first of two header matches with an equivalent name (spec: "subsequent entries MUST be ignored")', () => {
    const compiled = compile([
      service('demo', 'web'),
      httpRoute('demo', 'r', {
        parentRefs: [parent('web')],
        rules: [{ matches: [{ headers: [{ name: 'x-a', value: '1' }, { name: 'X-A', value: '2' }] }], backendRefs: [backend('web')] }],
      }),
    ]);
    expect(compiled.warnings.map((w) => w.message)).toEqual(['HTTPRoute demo/r: rule 0 matches[0].headers[1] repeats header "x-a"; only the first counts (ignored)']);
    expect(outcome(matchHttp(tableOf(compiled, 'demo', 'web'), request({ headers: { 'x-a': '1' } })))).toBe('r#0');
  });

  it('returns the prebuilt decision: backends, timeouts and header modifier of the rule', () => {
    const compiled = compile([
      service('demo', 'web'),
      service('demo', 'web-v2'),
      httpRoute('demo', 'canary', {
        parentRefs: [parent('web')],
        rules: [
          {
            name: 'split',
            backendRefs: [backend('web', 80, { weight: 90 }), backend('web-v2', 80, { weight: 10 })],
            timeouts: { request: '10s', backendRequest: '2s' },
            filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Route', value: 'canary' }], remove: ['X-Debug'] } }],
          },
        ],
      }),
    ]);
    expect(compiled.warnings).toEqual([]);
    const decision = matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/' }));
    expect(decision).toEqual({
      route: { kind: 'HTTPRoute', namespace: 'demo', name: 'canary' },
      ruleIndex: 0,
      ruleName: 'split',
      matchIndex: 0,
      backends: [
        { namespace: 'demo', name: 'web', port: 80, weight: 90, problem: undefined },
        { namespace: 'demo', name: 'web-v2', port: 80, weight: 10, problem: undefined },
      ],
      timeouts: { requestMs: 10_000, backendRequestMs: 2_000 },
      requestHeaderModifier: { set: [{ name: 'x-route', value: 'canary' }], add: [], remove: ['x-debug'] },
      responseHeaderModifier: undefined,
    });
    // The same frozen object every time: nothing is built per request.
    expect(matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/x' }))).toBe(decision);
  });
});

describe('consumer and producer routes (GEP-1426 namespace boundaries)', () => {
  const compiled = compile([
    service('shop', 'cart'),
    service('shop', 'cart-v2'),
    httpRoute('shop', 'producer', { parentRefs: [parent('cart')], rules: [{ backendRefs: [backend('cart')] }] }),
    httpRoute('web', 'consumer', { parentRefs: [parent('cart', { namespace: 'shop' })], rules: [{ backendRefs: [backend('cart-v2', 80, { namespace: 'shop' })] }] }),
  ]);
  const table = tableOf(compiled, 'shop', 'cart');

  it('applies a producer route to clients in every namespace', () => {
    expect(outcome(matchHttp(table, request({ clientNamespace: 'shop' })))).toBe('producer#0');
    expect(outcome(matchHttp(table, request({ clientNamespace: 'billing' })))).toBe('producer#0');
    expect(outcome(matchHttp(table, request({})))).toBe('producer#0');
  });

  it('applies a consumer route only to clients in its own namespace, instead of the producer routes', () => {
    expect(outcome(matchHttp(table, request({ clientNamespace: 'web' })))).toBe('consumer#0');
    expect(routeSetFor(table, 'web')?.routes.map((r) => r.name)).toEqual(['consumer']);
  });

  it('leaves clients of other namespaces to the Service itself when only consumer routes exist', () => {
    const only = compile([service('shop', 'cart'), httpRoute('web', 'consumer', { parentRefs: [parent('cart', { namespace: 'shop' })], rules: [{ backendRefs: [backend('cart', 80, { namespace: 'shop' })] }] })]);
    const consumerOnly = tableOf(only, 'shop', 'cart');
    expect(routeSetFor(consumerOnly, 'billing')).toBeUndefined();
    expect(matchHttp(consumerOnly, request({ clientNamespace: 'billing' }))).toBeUndefined();
    expect(outcome(matchHttp(consumerOnly, request({ clientNamespace: 'web' })))).toBe('consumer#0');
  });
});

describe('parentRef port scoping (GEP-1426 ports)', () => {
  const compiled = compile([
    service('demo', 'api', [80, 9090]),
    httpRoute('demo', 'all-ports', { parentRefs: [parent('api')], rules: [{ matches: [prefix('/a')], backendRefs: [backend('api')] }] }),
    httpRoute('demo', 'metrics-only', { parentRefs: [parent('api', { port: 9090 })], rules: [{ matches: [prefix('/metrics')], backendRefs: [backend('api', 9090)] }] }),
  ]);

  it('attaches a parentRef without port to every port of the Service', () => {
    expect(tableOf(compiled, 'demo', 'api', 80).producer?.routes.map((r) => r.name)).toEqual(['all-ports']);
    expect(tableOf(compiled, 'demo', 'api', 9090).producer?.routes.map((r) => r.name)).toEqual(['all-ports', 'metrics-only']);
  });

  it('attaches a parentRef with port only to that port', () => {
    expect(matchHttp(tableOf(compiled, 'demo', 'api', 80), request({ path: '/metrics' }))).toBeUndefined();
    expect(outcome(matchHttp(tableOf(compiled, 'demo', 'api', 9090), request({ path: '/metrics' })))).toBe('metrics-only#0');
  });

  it('has no table for a Service port no route attaches to', () => {
    expect(compiled.table('demo', 'api', 8080)).toBeUndefined();
    expect(compiled.table('demo', 'other', 80)).toBeUndefined();
    expect(matchHttp(undefined, request({}))).toBeUndefined();
  });
});

describe('GRPCRoute matching', () => {
  const compiled = compile([
    service('demo', 'greeter', [50051]),
    grpcRoute('demo', 'g', {
      parentRefs: [parent('greeter')],
      rules: [
        { backendRefs: [backend('greeter', 50051)] },
        { matches: [{ method: { service: 'helloworld.Greeter' } }], backendRefs: [backend('greeter', 50051)] },
        { matches: [{ method: { service: 'helloworld.Greeter', method: 'SayHello' } }], backendRefs: [backend('greeter', 50051)] },
        { matches: [{ method: { type: 'RegularExpression', service: 'helloworld\\..*' } }], backendRefs: [backend('greeter', 50051)] },
        { matches: [{ method: { method: 'SayHello' }, headers: [{ name: 'x-canary', value: 'yes' }] }], backendRefs: [backend('greeter', 50051)] },
        { matches: [{ method: { service: 'helloworld.Greeter', method: 'SayHello' }, headers: [{ name: 'x-canary', value: 'yes' }] }], backendRefs: [backend('greeter', 50051)] },
      ],
    }),
  ]);
  const table = tableOf(compiled, 'demo', 'greeter', 50051);
  const call = (service: string, method: string, headers: Record<string, string> = {}): string => outcome(matchGrpc(table, grpcCall(service, method, headers)));

  it('compiles without warnings', () => {
    expect(compiled.warnings).toEqual([]);
    expect(table.producer?.kind).toBe('GRPCRoute');
  });

  it('gives an exact service and method precedence over a service alone (more characters of a matching method)', () => {
    expect(call('helloworld.Greeter', 'SayHello')).toBe('g#2');
    expect(call('helloworld.Greeter', 'SayGoodbye')).toBe('g#1');
  });

  it('gives more header matches precedence when service and method tie', () => {
    expect(call('helloworld.Greeter', 'SayHello', { 'x-canary': 'yes' })).toBe('g#5');
  });

  it('matches a method without a service in any service (implementation-specific support)', () => {
    expect(call('other.Svc', 'SayHello', { 'x-canary': 'yes' })).toBe('g#4');
  });

  it('gives an Exact service precedence over a RegularExpression one, and a RegularExpression over none', () => {
    expect(call('helloworld.Other', 'Ping')).toBe('g#3');
    expect(call('helloworld.Greeter', 'Ping')).toBe('g#1');
    expect(call('other.Svc', 'Ping')).toBe('g#0');
  });

  it('matches gRPC requests through matchHttp by reading the path as /service/method', () => {
    const http = (path: string, headers: Record<string, string> = {}): string => outcome(matchHttp(table, request({ method: 'POST', path, headers })));
    expect(http('/helloworld.Greeter/SayHello')).toBe('g#2');
    expect(http('/helloworld.Greeter/SayHello', { 'x-canary': 'yes' })).toBe('g#5');
    expect(http('/not/a/grpc/path')).toBe('g#0');
  });

  it('splits only /service/method paths', () => {
    expect(splitGrpcPath('/pkg.Svc/Do')).toEqual({ service: 'pkg.Svc', method: 'Do' });
    expect(splitGrpcPath('/pkg.Svc/')).toBeUndefined();
    expect(splitGrpcPath('//Do')).toBeUndefined();
    expect(splitGrpcPath('/a/b/c')).toBeUndefined();
    expect(splitGrpcPath('pkg.Svc/Do')).toBeUndefined();
  });

  it('matches a gRPC call against HTTPRoutes as POST /service/method', () => {
    const httpOnly = compile([
      service('demo', 'web'),
      httpRoute('demo', 'r', {
        parentRefs: [parent('web')],
        rules: [
          { matches: [{ path: { value: '/a.B' }, method: 'POST', headers: [{ name: 'x-v', value: '2' }] }], backendRefs: [backend('web')] },
          { matches: [{ path: { type: 'Exact', value: '/a.B/C' } }], backendRefs: [backend('web')] },
        ],
      }),
    ]);
    const table = tableOf(httpOnly, 'demo', 'web');
    expect(outcome(matchGrpc(table, grpcCall('a.B', 'C')))).toBe('r#1');
    expect(outcome(matchGrpc(table, grpcCall('a.B', 'D', { 'x-v': '2' })))).toBe('r#0');
    expect(outcome(matchGrpc(table, grpcCall('x.Y', 'C')))).toBe('404');
  });
});
