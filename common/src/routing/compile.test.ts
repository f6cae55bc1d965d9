import { readFileSync } from 'node:fs';
import { RE2JS } from 're2js';
import { parseMeshFile } from '../mesh/file.js';
import { buildSnapshot } from '../mesh/snapshot.js';
import { compileRoutes } from './compile.js';
import { matchHttp } from './match.js';
import { backend, compile, grpcRoute, httpRoute, parent, request, service, tableOf } from './testing/fixtures.js';
import type { CompiledRoutes, RouteCondition, RouteStatus } from './types.js';
import { pickBackend } from './weights.js';

const messages = (compiled: CompiledRoutes): string[] => compiled.warnings.map((w) => w.message);

/** Conditions of one route's first parent, as `Type=Status/Reason`. */
function conditions(compiled: CompiledRoutes, name: string): string[] {
  const status = compiled.statuses.find((s) => s.route.name === name);
  return (status?.parents[0]?.conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}`);
}

function condition(compiled: CompiledRoutes, name: string, type: RouteCondition['type']): RouteCondition | undefined {
  return compiled.statuses.find((s) => s.route.name === name)?.parents[0]?.conditions.find((c) => c.type === type);
}

/** HTTPRoute demo/canary on Service demo/web with `rule` first and a plain catch-all second. */
function withRule(rule: Record<string, unknown>, kind: 'HTTPRoute' | 'GRPCRoute' = 'HTTPRoute'): CompiledRoutes {
  const make = kind === 'HTTPRoute' ? httpRoute : grpcRoute;
  return compile([
    service('demo', 'web', [80]),
    service('demo', 'web-v2', [80]),
    make('demo', 'canary', { parentRefs: [parent('web')], rules: [rule, { backendRefs: [backend('web')] }] }),
  ]);
}

describe('compileRoutes: unsupported and invalid rules are reported, never silently ignored', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['a RequestMirror without backendRef', { filters: [{ type: 'RequestMirror', requestMirror: {} }], backendRefs: [backend('web')] }, 'rule 0 filters[0].requestMirror.backendRef is required (rule dropped)'],
    ['a URLRewrite hostname that is not one', { filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'X Y' } }], backendRefs: [backend('web')] }, 'rule 0 filters[0].urlRewrite.hostname must be a hostname'],
    ['a RequestRedirect status code that is not a redirect', { filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 200 } }] }, 'rule 0 filters[0].requestRedirect.statusCode 200 is not supported (expected 301, 302, 303, 307, 308) (rule dropped)'],
    ['CORS', { filters: [{ type: 'CORS', cors: {} }], backendRefs: [backend('web')] }, 'rule 0 filter CORS is not supported (rule dropped)'],
    ['an unknown filter type', { filters: [{ type: 'Teleport' }], backendRefs: [backend('web')] }, 'rule 0 filters[0].type "Teleport" is not a HTTPRoute filter (rule dropped)'],
    ['a repeated RequestHeaderModifier', { filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'a', value: '1' }] } }, { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'b', value: '1' }] } }] }, 'rule 0 filters[1]: filter RequestHeaderModifier is repeated (rule dropped)'],
    ['two actions on one header', { filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-A', value: '1' }], remove: ['x-a'] } }] }, 'rule 0 filters[0].requestHeaderModifier.remove[0] names header "x-a" a second time (one action per header) (rule dropped)'],
    ['a filter on a backendRef', { backendRefs: [backend('web', 80, { filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'a', value: '1' }] } }] })] }, 'rule 0 backendRefs[0] filter RequestHeaderModifier is not supported (rule dropped)'],
    ['a bad timeouts.request duration', { timeouts: { request: '10x' }, backendRefs: [backend('web')] }, 'rule 0 timeouts.request "10x" is not a Gateway API duration (1 to 4 of a 1-5 digit number and h, m, s or ms, e.g. "10s", "1m30s", "500ms") (rule dropped)'],
    ['a fractional timeouts.backendRequest', { timeouts: { backendRequest: '1.5s' }, backendRefs: [backend('web')] }, 'rule 0 timeouts.backendRequest "1.5s" is not a Gateway API duration (1 to 4 of a 1-5 digit number and h, m, s or ms, e.g. "10s", "1m30s", "500ms") (rule dropped)'],
    ['a backendRequest timeout longer than the request timeout', { timeouts: { request: '1s', backendRequest: '2s' }, backendRefs: [backend('web')] }, 'rule 0 timeouts.backendRequest "2s" must not be longer than timeouts.request "1s" (rule dropped)'],
    ['an Exact path with "//"', { matches: [{ path: { type: 'Exact', value: '/a//b' } }] }, 'rule 0 matches[0].path.value "/a//b" must not contain "//" (rule dropped)'],
    ['a PathPrefix not starting with "/"', { matches: [{ path: { value: 'api' } }] }, 'rule 0 matches[0].path.value "api" must start with "/" (rule dropped)'],
    ['a path with a ".." segment', { matches: [{ path: { value: '/a/../b' } }] }, 'rule 0 matches[0].path.value "/a/../b" must not contain "." or ".." segments (rule dropped)'],
    ['an unknown path type', { matches: [{ path: { type: 'Glob', value: '/*' } }] }, 'rule 0 matches[0].path.type "Glob" is not supported (expected Exact or PathPrefix or RegularExpression) (rule dropped)'],
    ['an invalid regular expression', { matches: [{ path: { type: 'RegularExpression', value: '/(' } }] }, 'rule 0 matches[0].path.value "/(" is not a valid RE2 regular expression (missing closing ): `/(`)'],
    ['a regular expression RE2 cannot run', { matches: [{ headers: [{ name: 'x', type: 'RegularExpression', value: '(?=a)b' }] }] }, 'rule 0 matches[0].headers[0].value "(?=a)b" is a regular expression with a lookahead, which RE2 cannot run (it needs backtracking) (rule dropped)'],
    ['an unknown method', { matches: [{ method: 'BREW' }] }, 'rule 0 matches[0].method "BREW" is not supported (expected GET or HEAD or POST or PUT or DELETE or CONNECT or OPTIONS or TRACE or PATCH) (rule dropped)'],
    ['a bad header name', { matches: [{ headers: [{ name: 'x:y', value: '1' }] }] }, 'rule 0 matches[0].headers[0].name must be a header name, got "x:y" (rule dropped)'],
    ['an empty header value', { matches: [{ headers: [{ name: 'x', value: '' }] }] }, 'rule 0 matches[0].headers[0].value must be a string of 1 to 4096 characters, got "" (rule dropped)'],
    ['a Service backendRef without port', { backendRefs: [{ name: 'web' }] }, 'rule 0 backendRefs[0].port is required for a Service (rule dropped)'],
    ['a weight out of range', { backendRefs: [backend('web', 80, { weight: -1 })] }, 'rule 0 backendRefs[0].weight must be an integer from 0 to 1000000, got -1 (rule dropped)'],
  ])('drops a rule with %s and names the route and the field', (_what, rule, detail) => {
    const compiled = withRule(rule);
    expect(messages(compiled)[0]).toMatch(/^HTTPRoute demo\/canary: /);
    expect(messages(compiled)[0]).toContain(detail);
    expect(messages(compiled)[0]).toMatch(/\(rule dropped\)$/);
    // The rule is not programmed: requests fall to the next rule.
    const decision = matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/' }));
    expect(decision?.ruleIndex).toBe(1);
  });

  it('marks a route with a dropped rule PartiallyInvalid, keeping it Accepted (spec: "Dropped Rule" approach)', () => {
    const compiled = withRule({ filters: [{ type: 'CORS', cors: {} }], backendRefs: [backend('web')] });
    expect(messages(compiled)).toEqual(['HTTPRoute demo/canary: rule 0 filter CORS is not supported (rule dropped)']);
    expect(conditions(compiled, 'canary')).toEqual(['Accepted=True/Accepted', 'ResolvedRefs=True/ResolvedRefs', 'PartiallyInvalid=True/UnsupportedValue']);
    expect(condition(compiled, 'canary', 'PartiallyInvalid')?.message).toBe('Dropped Rule 0: filter CORS is not supported');
  });

  it('does not attach a route whose every rule is invalid, and reports Accepted=False/UnsupportedValue', () => {
    const compiled = compile([
      service('demo', 'web'),
      httpRoute('demo', 'broken', { parentRefs: [parent('web')], rules: [{ timeouts: { request: '5 seconds' }, backendRefs: [backend('web')] }] }),
    ]);
    expect(compiled.table('demo', 'web', 80)).toBeUndefined();
    expect(conditions(compiled, 'broken')).toEqual(['Accepted=False/UnsupportedValue', 'ResolvedRefs=True/ResolvedRefs']);
    expect(condition(compiled, 'broken', 'Accepted')?.message).toContain('Dropped Rule 0: timeouts.request "5 seconds" is not a Gateway API duration');
  });

  it.each([
    ['(a)\\1', 'a backreference'],
    ['/api/(?=v1)v[0-9]+', 'a lookahead'],
    ['/api/(?<!x)v1', 'a lookbehind'],
    ['/api/\\Z', 'is not a valid RE2 regular expression (invalid escape sequence: `\\Z`)'],
  ])('refuses the path regex %j, which RE2 cannot run, with a status condition naming it', (pattern, reason) => {
    const rule = { matches: [{ path: { type: 'RegularExpression', value: pattern } }], backendRefs: [backend('web')] };
    // Beside a valid rule: the route stays, PartiallyInvalid names the pattern.
    const partly = withRule(rule);
    expect(conditions(partly, 'canary')).toEqual(['Accepted=True/Accepted', 'ResolvedRefs=True/ResolvedRefs', 'PartiallyInvalid=True/UnsupportedValue']);
    expect(condition(partly, 'canary', 'PartiallyInvalid')?.message).toContain(`Dropped Rule 0: matches[0].path.value ${JSON.stringify(pattern)} `);
    expect(condition(partly, 'canary', 'PartiallyInvalid')?.message).toContain(reason);
    // Alone: the route is not attached, and Accepted=False names it.
    const alone = compile([service('demo', 'web'), httpRoute('demo', 'only', { parentRefs: [parent('web')], rules: [rule] })]);
    expect(alone.table('demo', 'web', 80)).toBeUndefined();
    expect(conditions(alone, 'only')).toEqual(['Accepted=False/UnsupportedValue', 'ResolvedRefs=True/ResolvedRefs']);
    expect(condition(alone, 'only', 'Accepted')?.message).toContain(JSON.stringify(pattern));
  });

  it('matches an Exact Host header without case, port or trailing dot, and reports a port in the rule', () => {
    const compiled = compile([
      service('demo', 'web'),
      httpRoute('demo', 'hosts', {
        parentRefs: [parent('web')],
        rules: [
          { matches: [{ path: { value: '/a' }, headers: [{ name: 'Host', value: 'VIP.rt' }] }], backendRefs: [backend('web')] },
          { matches: [{ path: { value: '/b' }, headers: [{ name: 'host', value: 'vip.rt:8080' }] }], backendRefs: [backend('web')] },
        ],
      }),
    ]);
    expect(messages(compiled)).toEqual(['HTTPRoute demo/hosts: rule 1 matches[0].headers[0].value "vip.rt:8080" names a port; Host matches compare the host alone, as "vip.rt" (ignored)']);
    const table = tableOf(compiled, 'demo', 'web');
    // The proxy passes the normalised host (requestView); the rule's value was normalised the same way.
    expect(matchHttp(table, request({ path: '/a', headers: { host: 'vip.rt' } }))?.ruleIndex).toBe(0);
    expect(matchHttp(table, request({ path: '/b', headers: { host: 'vip.rt' } }))?.ruleIndex).toBe(1);
  });

  it.each(['ExtensionRef', 'ExternalAuth'])('keeps a rule with a %s filter it cannot apply but answers 500 (spec: the filter MUST NOT be skipped)', (type) => {
    const compiled = withRule({ matches: [{ path: { value: '/secure' } }], filters: [{ type, extensionRef: { group: 'x.io', kind: 'Auth', name: 'a' } }], backendRefs: [backend('web')] });
    expect(messages(compiled)).toEqual([`HTTPRoute demo/canary: rule 0 filter ${type} is not supported (the rule answers 500)`]);
    const decision = matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/secure/data' }));
    expect(decision?.ruleIndex).toBe(0);
    expect(decision?.backends).toEqual([]);
    expect(pickBackend(decision?.backends ?? [])).toBeUndefined();
    expect(conditions(compiled, 'canary')).toEqual(['Accepted=True/Accepted', 'ResolvedRefs=False/InvalidKind']);
  });

  it.each([
    ['an unknown rule field', { mirrorPercent: 5 }, 'rule 0 mirrorPercent is not a field tsmesh knows (ignored)'],
    ['an unknown match field', { matches: [{ host: 'x' }] }, 'rule 0 matches[0].host is not a field tsmesh knows (ignored)'],
  ])('programs a rule with %s but reports the field as ignored', (_what, fields, detail) => {
    const compiled = withRule({ ...fields, backendRefs: [backend('web-v2')] });
    expect(messages(compiled)).toEqual([`HTTPRoute demo/canary: ${detail}`]);
    expect(matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/' }))?.ruleIndex).toBe(0);
  });

  it('carries a rule sessionPersistence (GEP-1619) into the decision, with Gateway API defaults', () => {
    const compiled = withRule({ sessionPersistence: { sessionName: 'cart', absoluteTimeout: '1h', cookieConfig: { lifetimeType: 'Permanent' } }, backendRefs: [backend('web-v2')] });
    expect(messages(compiled)).toEqual([]);
    expect(matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/' }))?.sessionPersistence).toEqual({
      sessionName: 'cart',
      absoluteTimeoutMs: 3_600_000,
      idleTimeoutMs: undefined,
      type: 'Cookie',
      cookieLifetimeType: 'Permanent',
    });
    const header = withRule({ sessionPersistence: { type: 'Header' }, backendRefs: [backend('web-v2')] });
    expect(matchHttp(tableOf(header, 'demo', 'web'), request({ path: '/' }))?.sessionPersistence?.type).toBe('Header');
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a name that is no header token', { sessionName: 'a b\r\nx: y' }, 'sessionPersistence.sessionName must be a cookie or header name (an RFC 9110 token of 1 to 128 characters), got "a b\\r\\nx: y"'],
    ['an unknown type', { type: 'Url' }, 'sessionPersistence.type "Url" is not supported (expected Cookie or Header)'],
    ['a zero absoluteTimeout', { absoluteTimeout: '0s' }, 'sessionPersistence.absoluteTimeout "0s" is not a Gateway API duration longer than 0s (e.g. "1h", "30m")'],
  ])('drops a rule whose sessionPersistence has %s', (_what, session, detail) => {
    const compiled = withRule({ sessionPersistence: session, backendRefs: [backend('web-v2')] });
    expect(messages(compiled)).toEqual([`HTTPRoute demo/canary: rule 0 ${detail} (rule dropped)`]);
  });

  it('programs a rule whose sessionPersistence has an idleTimeout, reported as not enforced', () => {
    const compiled = withRule({ sessionPersistence: { idleTimeout: '10m' }, backendRefs: [backend('web-v2')] });
    expect(messages(compiled)).toEqual(['HTTPRoute demo/canary: rule 0 sessionPersistence.idleTimeout is not enforced by tsmesh: a session ends with absoluteTimeout or the client (ignored)']);
    expect(matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/' }))?.sessionPersistence?.idleTimeoutMs).toBe(600_000);
  });

  it('reports spec.hostnames as having no effect on Service parents (GAMMA)', () => {
    const compiled = compile([service('demo', 'web'), httpRoute('demo', 'r', { parentRefs: [parent('web')], hostnames: ['web.demo'], rules: [{ backendRefs: [backend('web')] }] })]);
    expect(messages(compiled)).toEqual(['HTTPRoute demo/r: spec.hostnames has no effect on routes attached to Services (GAMMA); match the Host header instead (ignored)']);
  });
});

describe('compileRoutes: backends', () => {
  it('keeps the weight of a backend whose Service does not exist, failing exactly its share (spec: BackendNotFound)', () => {
    const compiled = withRule({ backendRefs: [backend('web', 80, { weight: 1 }), backend('ghost', 80, { weight: 1 })] });
    expect(messages(compiled)).toEqual(['HTTPRoute demo/canary: rule 0 backendRefs[1] refers to Service demo/ghost, which does not exist (its share of requests answers 500)']);
    const decision = matchHttp(tableOf(compiled, 'demo', 'web'), request({}));
    expect(decision?.backends).toEqual([
      { namespace: 'demo', name: 'web', port: 80, weight: 1, problem: undefined },
      { namespace: 'demo', name: 'ghost', port: 80, weight: 1, problem: 'BackendNotFound' },
    ]);
    // Equal weights: picks alternate, so every second request lands on the missing backend.
    const backends = decision?.backends ?? [];
    expect([pickBackend(backends)?.problem, pickBackend(backends)?.problem]).toEqual([undefined, 'BackendNotFound']);
    expect(conditions(compiled, 'canary')).toEqual(['Accepted=True/Accepted', 'ResolvedRefs=False/BackendNotFound']);
  });

  it('fails a backend on a port its Service does not have', () => {
    const compiled = withRule({ backendRefs: [backend('web', 8080)] });
    expect(messages(compiled)).toEqual(['HTTPRoute demo/canary: rule 0 backendRefs[0] refers to port 8080 of Service demo/web, which has no such port (its share of requests answers 500)']);
    expect(matchHttp(tableOf(compiled, 'demo', 'web'), request({}))?.backends[0]?.problem).toBe('BackendNotFound');
  });

  it('fails a backend of another kind (spec: InvalidKind)', () => {
    const compiled = withRule({ backendRefs: [{ group: 'multicluster.x-k8s.io', kind: 'ServiceImport', name: 'web', port: 80 }] });
    expect(messages(compiled)).toEqual(['HTTPRoute demo/canary: rule 0 backendRefs[0] refers to "ServiceImport" in group "multicluster.x-k8s.io"; only Services are supported (its share of requests answers 500)']);
    expect(conditions(compiled, 'canary')).toEqual(['Accepted=True/Accepted', 'ResolvedRefs=False/InvalidKind']);
  });

  it('defaults a backend\'s namespace to the route\'s and its weight to 1, and allows other namespaces without a ReferenceGrant', () => {
    const compiled = compile([
      service('demo', 'web'),
      service('other', 'api', [8080]),
      httpRoute('demo', 'r', { parentRefs: [parent('web')], rules: [{ backendRefs: [{ name: 'web', port: 80 }, { name: 'api', namespace: 'other', port: 8080, group: '', kind: 'Service' }] }] }),
    ]);
    expect(compiled.warnings).toEqual([]);
    expect(matchHttp(tableOf(compiled, 'demo', 'web'), request({}))?.backends.map((b) => `${b.namespace}/${b.name}:${b.port} w${b.weight}`)).toEqual(['demo/web:80 w1', 'other/api:8080 w1']);
  });

  it('programs a rule without backendRefs with no backends, so it answers 500', () => {
    const compiled = withRule({ matches: [{ path: { value: '/gone' } }] });
    const decision = matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/gone' }));
    expect(decision?.ruleIndex).toBe(0);
    expect(pickBackend(decision?.backends ?? [])).toBeUndefined();
  });

  it('programs a route without rules as the API server defaults it: one rule matching everything, no backends', () => {
    const compiled = compile([service('demo', 'web'), httpRoute('demo', 'bare', { parentRefs: [parent('web')] })]);
    expect(compiled.warnings).toEqual([]);
    const decision = matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/anything' }));
    expect(decision?.route.name).toBe('bare');
    expect(decision?.backends).toEqual([]);
  });

  it('keeps weight-0 backends, which pickBackend never chooses', () => {
    const compiled = withRule({ backendRefs: [backend('web', 80, { weight: 0 }), backend('web-v2', 80, { weight: 0 })] });
    expect(compiled.warnings).toEqual([]);
    const decision = matchHttp(tableOf(compiled, 'demo', 'web'), request({}));
    expect(decision?.backends.map((b) => b.weight)).toEqual([0, 0]);
    expect(pickBackend(decision?.backends ?? [])).toBeUndefined();
  });
});

describe('compileRoutes: parents', () => {
  it('ignores parentRefs that are not Services (they belong to a Gateway controller)', () => {
    const compiled = compile([service('demo', 'web'), httpRoute('demo', 'ingress', { parentRefs: [{ name: 'public-gw' }], rules: [{ backendRefs: [backend('web')] }] })]);
    expect(compiled.tables).toEqual([]);
    expect(compiled.warnings).toEqual([]);
    expect(compiled.statuses).toEqual([{ route: { kind: 'HTTPRoute', namespace: 'demo', name: 'ingress' }, parents: [] }]);
  });

  it.each([undefined, '', 'core'])('accepts a Service parentRef with group %j', (group) => {
    const ref = group === undefined ? { kind: 'Service', name: 'web' } : { kind: 'Service', group, name: 'web' };
    const compiled = compile([service('demo', 'web'), httpRoute('demo', 'r', { parentRefs: [ref], rules: [{ backendRefs: [backend('web')] }] })]);
    expect(compiled.table('demo', 'web', 80)?.producer?.routes.map((r) => r.name)).toEqual(['r']);
  });

  it('reports a kind Service parentRef in another group', () => {
    const compiled = compile([service('demo', 'web'), httpRoute('demo', 'r', { parentRefs: [{ group: 'example.io', kind: 'Service', name: 'web' }], rules: [] })]);
    expect(messages(compiled)).toEqual(['HTTPRoute demo/r: parentRefs[0] names kind Service in group "example.io"; only core Services are mesh parents (not attached)']);
  });

  it('reports a parentRef to a Service that does not exist, and leaves it out of the status', () => {
    const compiled = compile([httpRoute('demo', 'r', { parentRefs: [parent('missing')], rules: [] })]);
    expect(messages(compiled)).toEqual(['HTTPRoute demo/r: parentRefs[0] refers to Service demo/missing, which does not exist (not attached)']);
    expect(compiled.statuses[0]?.parents).toEqual([]);
  });

  it('does not attach to a headless Service (GEP-1426: no frontend) and reports NoMatchingParent', () => {
    const compiled = compile([service('demo', 'db', [5432], { clusterIP: 'None' }), httpRoute('demo', 'r', { parentRefs: [parent('db')], rules: [{ backendRefs: [backend('db', 5432)] }] })]);
    expect(compiled.tables).toEqual([]);
    expect(messages(compiled)).toEqual(['HTTPRoute demo/r: parentRefs[0]: Service demo/db is headless: it has no cluster IP whose traffic routes could take (not attached)']);
    expect(conditions(compiled, 'r')[0]).toBe('Accepted=False/NoMatchingParent');
  });

  it('reports a parentRef port the Service does not have', () => {
    const compiled = compile([service('demo', 'web'), httpRoute('demo', 'r', { parentRefs: [parent('web', { port: 81 })], rules: [{ backendRefs: [backend('web')] }] })]);
    expect(messages(compiled)).toEqual(['HTTPRoute demo/r: parentRefs[0]: Service demo/web has no TCP port with port 81 (not attached)']);
    expect(conditions(compiled, 'r')[0]).toBe('Accepted=False/NoMatchingParent');
  });

  it('attaches a parentRef with sectionName to the Service port of that name', () => {
    const compiled = compile([service('demo', 'api', [['http', 80], ['admin', 9000]]), httpRoute('demo', 'r', { parentRefs: [parent('api', { sectionName: 'admin' })], rules: [{ backendRefs: [backend('api', 9000)] }] })]);
    expect(compiled.tables.map((t) => `${t.name}:${t.port}/${t.portName}`)).toEqual(['api:9000/admin']);
  });

  it('attaches once when two parentRefs name the same Service port', () => {
    const compiled = compile([service('demo', 'web'), httpRoute('demo', 'r', { parentRefs: [parent('web'), parent('web', { port: 80 })], rules: [{ backendRefs: [backend('web')] }] })]);
    expect(tableOf(compiled, 'demo', 'web').producer?.entries).toHaveLength(1);
    expect(compiled.statuses[0]?.parents).toHaveLength(2);
  });

  it('reports the status of each Service parent with its parentRef', () => {
    const compiled = compile([service('demo', 'web'), httpRoute('demo', 'r', { parentRefs: [parent('web', { port: 80 })], rules: [{ backendRefs: [backend('web')] }] })]);
    expect(compiled.statuses).toEqual<RouteStatus[]>([
      {
        route: { kind: 'HTTPRoute', namespace: 'demo', name: 'r' },
        parents: [
          {
            parentRef: { namespace: 'demo', name: 'web', port: 80, sectionName: undefined },
            conditions: [
              { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Route attached to the Service' },
              { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'All references resolved' },
            ],
          },
        ],
      },
    ]);
  });
});

describe('compileRoutes: route types on one Service port (GEP-1426: GRPCRoute before HTTPRoute)', () => {
  const objects = [
    service('demo', 'greeter', [50051]),
    grpcRoute('demo', 'g', { parentRefs: [parent('greeter')], rules: [{ backendRefs: [backend('greeter', 50051)] }] }),
    httpRoute('demo', 'h', { parentRefs: [parent('greeter')], rules: [{ backendRefs: [backend('greeter', 50051)] }] }),
  ];

  it('attaches only the GRPCRoute and reports the HTTPRoute as Conflicted', () => {
    const compiled = compile(objects);
    const table = tableOf(compiled, 'demo', 'greeter', 50051);
    expect(table.producer?.kind).toBe('GRPCRoute');
    expect(table.producer?.routes.map((r) => r.name)).toEqual(['g']);
    expect(messages(compiled)).toEqual([
      'HTTPRoute demo/h: parentRefs[0]: GRPCRoute takes precedence over HTTPRoute on Service demo/greeter port 50051 (held by GRPCRoute demo/g) (not attached there)',
    ]);
    expect(conditions(compiled, 'h')[0]).toBe('Accepted=False/Conflicted');
    expect(conditions(compiled, 'g')[0]).toBe('Accepted=True/Accepted');
  });

  it('settles the conflict per group: a consumer HTTPRoute is not displaced by a producer GRPCRoute', () => {
    const compiled = compile([
      ...objects.slice(0, 2),
      httpRoute('client', 'h', { parentRefs: [parent('greeter', { namespace: 'demo' })], rules: [{ backendRefs: [backend('greeter', 50051, { namespace: 'demo' })] }] }),
    ]);
    const table = tableOf(compiled, 'demo', 'greeter', 50051);
    expect(compiled.warnings).toEqual([]);
    expect(table.producer?.kind).toBe('GRPCRoute');
    expect(table.consumers.get('client')?.kind).toBe('HTTPRoute');
  });
});

describe('compileRoutes: GRPCRoute validation', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['an HTTPRoute-only filter', { filters: [{ type: 'RequestRedirect' }] }, 'rule 0 filters[0].type "RequestRedirect" is not a GRPCRoute filter (rule dropped)'],
    ['a RequestMirror filter without backendRef', { filters: [{ type: 'RequestMirror', requestMirror: {} }] }, 'rule 0 filters[0].requestMirror.backendRef is required (rule dropped)'],
    ['a filter on a backendRef', { backendRefs: [backend('web', 80, { filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('web') } }] })] }, 'rule 0 backendRefs[0] filter RequestMirror is not supported (rule dropped)'],
    ['a method match naming neither service nor method', { matches: [{ method: { type: 'Exact' } }] }, 'rule 0 matches[0].method must name a service, a method or both (rule dropped)'],
    ['an Exact service that is not a service name', { matches: [{ method: { service: 'foo/bar' } }] }, 'rule 0 matches[0].method.service "foo/bar" is not a valid gRPC service name (rule dropped)'],
    ['an Exact method that is not a method name', { matches: [{ method: { service: 'a.B', method: 'Say-Hello' } }] }, 'rule 0 matches[0].method.method "Say-Hello" is not a valid gRPC method name (rule dropped)'],
    ['timeouts, which GRPCRoute does not have', { timeouts: { request: '1s' } }, 'rule 0 timeouts is not a GRPCRoute field (HTTPRoute only) (ignored)'],
    ['retry, which GRPCRoute does not have', { retry: { attempts: 2 } }, 'rule 0 retry is not a GRPCRoute field (HTTPRoute only, GEP-1731); a TrafficPolicy retry on the backend Service retries gRPC codes (ignored)'],
  ])('reports %s', (_what, rule, detail) => {
    const compiled = withRule({ backendRefs: [backend('web')], ...rule }, 'GRPCRoute');
    expect(messages(compiled)).toEqual([`GRPCRoute demo/canary: ${detail}`]);
  });
});

describe('compileRoutes: purity', () => {
  const objects = [
    service('demo', 'web', [80, 8080]),
    service('demo', 'v2'),
    httpRoute('demo', 'b', { parentRefs: [parent('web')], rules: [{ matches: [{ path: { value: '/b' } }], backendRefs: [backend('v2')] }] }),
    httpRoute('demo', 'a', { parentRefs: [parent('web', { port: 80 })], rules: [{ matches: [{ path: { value: '/a' } }], backendRefs: [backend('ghost')] }] }),
    httpRoute('other', 'c', { parentRefs: [parent('web', { namespace: 'demo' })], rules: [{ filters: [{ type: 'CORS' }] }, {}] }),
  ];

  it('gives the same tables, warnings and statuses whatever the order of the objects', () => {
    const forward = compile(objects);
    const backward = compile([...objects].reverse());
    expect(JSON.stringify(backward.tables, replacer)).toBe(JSON.stringify(forward.tables, replacer));
    expect(backward.warnings).toEqual(forward.warnings);
    expect(backward.statuses).toEqual(forward.statuses);
  });

  it('carries the snapshot version and freezes what it returns', () => {
    const compiled = compileRoutes(buildSnapshot(objects, 'v42'));
    expect(compiled.version).toBe('v42');
    expect(Object.isFrozen(compiled.tables)).toBe(true);
    expect(Object.isFrozen(compiled.tables[0])).toBe(true);
    expect(Object.isFrozen(compiled.tables[0]?.producer?.entries[0]?.decision)).toBe(true);
  });
});

describe('compileRoutes on the sample mesh file', () => {
  it('attaches the demo GRPCRoute to the greeter Service without warnings', () => {
    const text = readFileSync(new URL('../mesh/testdata/sample-mesh.yaml', import.meta.url), 'utf8');
    const parsed = parseMeshFile(text, 'sample-mesh.yaml');
    if (!parsed.ok) throw parsed.error;
    const compiled = compileRoutes(buildSnapshot(parsed.value));
    expect(compiled.warnings).toEqual([]);
    const table = tableOf(compiled, 'demo', 'greeter', 50051);
    expect(table.producer?.routes).toEqual([{ kind: 'GRPCRoute', namespace: 'demo', name: 'greeter-split' }]);
    expect(matchHttp(table, request({ method: 'POST', path: '/helloworld.Greeter/SayHello' }))?.backends.map((b) => `${b.name}:${b.port}`)).toEqual(['greeter:50051']);
  });
});

/** Maps and compiled regexes as plain JSON, to compare compiled tables structurally. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Map) return [...value.entries()];
  if (value instanceof RE2JS) return value.pattern();
  return value;
}
