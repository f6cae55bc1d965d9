import { generateKeyPairSync } from 'node:crypto';
import { buildSnapshot } from '../mesh/snapshot.js';
import type { KubeObject } from '../mesh/types.js';
import { validateObject } from '../mesh/objects.js';
import { compileGateways, coveredBy, intersectHostnames, referenceGranted, type CompiledGateways } from './gateway.js';
import { matchHttp } from './match.js';
import { backend, httpRoute, service } from './testing/fixtures.js';
import { selfSignedPem } from './testing/certs.js';

const GW = 'gateway.networking.k8s.io';

function gatewayClass(name = 'tsmesh', controllerName = 'tsmesh.io/gateway-controller'): KubeObject {
  return { apiVersion: `${GW}/v1`, kind: 'GatewayClass', metadata: { name }, spec: { controllerName } };
}

function gateway(namespace: string, name: string, listeners: readonly Record<string, unknown>[], className = 'tsmesh'): KubeObject {
  return { apiVersion: `${GW}/v1`, kind: 'Gateway', metadata: { name, namespace }, spec: { gatewayClassName: className, listeners } };
}

const http = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, port: 8080, protocol: 'HTTP', ...extra });
const gwParent = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, ...extra });

function namespaceObject(name: string, labels: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

function compile(objects: readonly KubeObject[], only?: string): CompiledGateways {
  for (const o of objects) {
    const checked = validateObject(o);
    if (!checked.ok) throw checked.error;
  }
  return compileGateways(buildSnapshot(objects, 'test'), only === undefined ? {} : { only });
}

function conditionsOf(compiled: CompiledGateways, route: string): Record<string, string> {
  const status = compiled.routeStatuses.find((s) => `${s.route.namespace}/${s.route.name}` === route);
  if (status === undefined) throw new Error(`no status for ${route}`);
  return Object.fromEntries(status.parents.flatMap((p) => p.conditions.map((c) => [c.type, `${c.status}/${c.reason}`])));
}

function backendFor(compiled: CompiledGateways, port: number, host: string, path = '/'): string | undefined {
  const found = compiled.ports.find((p) => p.port === port);
  const table = found !== undefined && 'table' in found ? found.table(host) : undefined;
  const decision = matchHttp(table, { method: 'GET', path, headers: () => undefined });
  const b = decision?.backends[0];
  return b === undefined ? undefined : `${b.namespace}/${b.name}${b.problem ? `!${b.problem}` : ''}`;
}

describe('hostname intersection (Gateway API Listener.hostname / HTTPRoute.hostnames)', () => {
  it.each([
    [undefined, undefined, ['']],
    ['foo.example.com', undefined, ['foo.example.com']],
    [undefined, ['a.example.com'], ['a.example.com']],
    ['test.example.com', ['test.example.com'], ['test.example.com']],
    ['test.example.com', ['*.example.com'], ['test.example.com']],
    ['*.example.com', ['test.example.com', '*.example.com'], ['test.example.com', '*.example.com']],
    ['*.example.com', ['foo.bar.example.com'], ['foo.bar.example.com']],
    ['*.example.com', ['example.com', 'test.example.net'], []],
    ['*.example.com', ['*.foo.example.com'], ['*.foo.example.com']],
    ['*.foo.example.com', ['*.example.com'], ['*.foo.example.com']],
    ['test.example.com', ['other.example.com'], []],
  ] as const)('listener %s and route %j give %j', (listener, route, expected) => {
    expect(intersectHostnames(listener, route)).toEqual(expected);
  });

  it('a wildcard covers one or more labels, never the bare suffix', () => {
    expect(coveredBy('a.b.example.com', '*.example.com')).toBe(true);
    expect(coveredBy('example.com', '*.example.com')).toBe(false);
    expect(coveredBy('xexample.com', '*.example.com')).toBe(false);
  });
});

describe('ReferenceGrant', () => {
  const grant = { namespace: 'backends', name: 'g', from: [{ group: GW, kind: 'HTTPRoute', namespace: 'web' }], to: [{ group: '', kind: 'Service', name: 'api' }] };
  it.each([
    ['same namespace needs no grant', { namespace: 'web', name: 'x' }, [], true],
    ['granted by name', { namespace: 'backends', name: 'api' }, [grant], true],
    ['another name is not granted', { namespace: 'backends', name: 'db' }, [grant], false],
    ['no grant', { namespace: 'backends', name: 'api' }, [], false],
    ['a grant with no name covers every Service', { namespace: 'backends', name: 'db' }, [{ ...grant, to: [{ group: '', kind: 'Service', name: undefined }] }], true],
  ] as const)('%s', (_name, to, grants, expected) => {
    expect(referenceGranted(grants, { group: GW, kind: 'HTTPRoute', namespace: 'web' }, { group: '', kind: 'Service', ...to })).toBe(expected);
  });
});

describe('route attachment and status (Gateway API route parent conditions)', () => {
  const base = [gatewayClass(), service('edge', 'web'), service('apps', 'web'), service('other', 'api')];

  it.each([
    ['a route in the Gateway namespace attaches (from: Same, the default)', [gateway('edge', 'gw', [http('web')]), httpRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [backend('web')] }] })], 'edge/r', { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }],
    [
      'a route from another namespace is refused by from: Same',
      [gateway('edge', 'gw', [http('web')]), httpRoute('apps', 'r', { parentRefs: [gwParent('gw', { namespace: 'edge' })], rules: [{ backendRefs: [backend('web')] }] })],
      'apps/r',
      { Accepted: 'False/NotAllowedByListeners', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'from: All admits every namespace',
      [gateway('edge', 'gw', [http('web', { allowedRoutes: { namespaces: { from: 'All' } } })]), httpRoute('apps', 'r', { parentRefs: [gwParent('gw', { namespace: 'edge' })], rules: [{ backendRefs: [backend('web')] }] })],
      'apps/r',
      { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'from: Selector admits a namespace whose labels match',
      [
        namespaceObject('apps', { team: 'shop' }),
        gateway('edge', 'gw', [http('web', { allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { team: 'shop' } } } } })]),
        httpRoute('apps', 'r', { parentRefs: [gwParent('gw', { namespace: 'edge' })], rules: [{ backendRefs: [backend('web')] }] }),
      ],
      'apps/r',
      { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'from: Selector refuses a namespace whose labels do not match',
      [
        namespaceObject('apps', { team: 'ads' }),
        gateway('edge', 'gw', [http('web', { allowedRoutes: { namespaces: { from: 'Selector', selector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['shop'] }] } } } })]),
        httpRoute('apps', 'r', { parentRefs: [gwParent('gw', { namespace: 'edge' })], rules: [{ backendRefs: [backend('web')] }] }),
      ],
      'apps/r',
      { Accepted: 'False/NotAllowedByListeners', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'allowedRoutes.kinds without HTTPRoute refuses an HTTPRoute',
      [gateway('edge', 'gw', [http('web', { allowedRoutes: { kinds: [{ kind: 'GRPCRoute' }] } })]), httpRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [backend('web')] }] })],
      'edge/r',
      { Accepted: 'False/NotAllowedByListeners', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'hostnames that intersect no listener hostname',
      [gateway('edge', 'gw', [http('web', { hostname: '*.example.com' })]), httpRoute('edge', 'r', { parentRefs: [gwParent('gw')], hostnames: ['example.net'], rules: [{ backendRefs: [backend('web')] }] })],
      'edge/r',
      { Accepted: 'False/NoMatchingListenerHostname', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'a sectionName the Gateway does not have',
      [gateway('edge', 'gw', [http('web')]), httpRoute('edge', 'r', { parentRefs: [gwParent('gw', { sectionName: 'nope' })], rules: [{ backendRefs: [backend('web')] }] })],
      'edge/r',
      { Accepted: 'False/NoMatchingParent', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'a port the Gateway does not listen on',
      [gateway('edge', 'gw', [http('web')]), httpRoute('edge', 'r', { parentRefs: [gwParent('gw', { port: 9999 })], rules: [{ backendRefs: [backend('web')] }] })],
      'edge/r',
      { Accepted: 'False/NoMatchingParent', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'a cross-namespace backend without a ReferenceGrant',
      [gateway('edge', 'gw', [http('web')]), httpRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [backend('api', 80, { namespace: 'other' })] }] })],
      'edge/r',
      { Accepted: 'True/Accepted', ResolvedRefs: 'False/RefNotPermitted' },
    ],
    [
      'a cross-namespace backend with a ReferenceGrant',
      [
        gateway('edge', 'gw', [http('web')]),
        httpRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [backend('api', 80, { namespace: 'other' })] }] }),
        { apiVersion: `${GW}/v1beta1`, kind: 'ReferenceGrant', metadata: { name: 'g', namespace: 'other' }, spec: { from: [{ group: GW, kind: 'HTTPRoute', namespace: 'edge' }], to: [{ group: '', kind: 'Service' }] } },
      ],
      'edge/r',
      { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'a missing backend Service',
      [gateway('edge', 'gw', [http('web')]), httpRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [backend('ghost')] }] })],
      'edge/r',
      { Accepted: 'True/Accepted', ResolvedRefs: 'False/BackendNotFound' },
    ],
  ] as const)('%s', (_name, objects, route, expected) => {
    expect(conditionsOf(compile([...base, ...objects]), route)).toEqual(expected);
  });

  it('writes no status for a Gateway of another controller, and serves none of its listeners', () => {
    const compiled = compile([...base, gatewayClass('other', 'example.com/other'), gateway('edge', 'gw', [http('web')], 'other'), httpRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [backend('web')] }] })]);
    expect(compiled.routeStatuses).toEqual([]);
    expect(compiled.ports).toEqual([]);
  });

  it('routes a refused cross-namespace backend nowhere: its share is marked RefNotPermitted', () => {
    const compiled = compile([...base, gateway('edge', 'gw', [http('web')]), httpRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [backend('api', 80, { namespace: 'other' })] }] })]);
    expect(backendFor(compiled, 8080, 'any.host')).toBe('other/api!RefNotPermitted');
  });

  it('selects the routes of the most specific hostname, and 404s a host no listener serves', () => {
    const compiled = compile([
      ...base,
      service('edge', 'foo'),
      service('edge', 'wild'),
      gateway('edge', 'gw', [http('web', { hostname: '*.example.com' })]),
      httpRoute('edge', 'wild', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [backend('wild')] }] }),
      httpRoute('edge', 'foo', { parentRefs: [gwParent('gw')], hostnames: ['foo.example.com'], rules: [{ backendRefs: [backend('foo')] }] }),
    ]);
    expect(backendFor(compiled, 8080, 'foo.example.com')).toBe('edge/foo');
    expect(backendFor(compiled, 8080, 'bar.example.com')).toBe('edge/wild');
    expect(backendFor(compiled, 8080, 'example.com')).toBeUndefined();
    expect(compiled.listeners[0]?.attachedRoutes).toBe(2);
  });

  it('serves only the Gateway named by `only`', () => {
    const compiled = compile([...base, gateway('edge', 'a', [http('web')]), gateway('edge', 'b', [http('web', { port: 9090 })])], 'edge/b');
    expect(compiled.gateways).toEqual(['edge/b']);
    expect(compiled.ports.map((p) => p.port)).toEqual([9090]);
  });
});

describe('HTTPS listeners and certificates', () => {
  const { cert, key } = selfSignedPem('a.example.com');
  const secret = (namespace: string, name: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(cert).toString('base64'), 'tls.key': Buffer.from(key).toString('base64') },
  });
  const https = (refs: readonly Record<string, unknown>[]): Record<string, unknown> => ({ name: 'tls', port: 8443, protocol: 'HTTPS', tls: { certificateRefs: refs } });
  const listenerConditions = (compiled: CompiledGateways): Record<string, string> =>
    Object.fromEntries((compiled.listeners[0]?.conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));

  it('resolves a kubernetes.io/tls Secret and programs the listener', () => {
    const compiled = compile([gatewayClass(), secret('edge', 'cert'), gateway('edge', 'gw', [https([{ name: 'cert' }])])]);
    expect(compiled.listeners[0]?.certificates.map((c) => [c.secret, c.dnsNames])).toEqual([['edge/cert', ['a.example.com']]]);
    expect(listenerConditions(compiled)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs', Programmed: 'True/Programmed' });
  });

  it('refuses a Secret in another namespace without a ReferenceGrant (RefNotPermitted)', () => {
    const compiled = compile([gatewayClass(), secret('certs', 'cert'), gateway('edge', 'gw', [https([{ name: 'cert', namespace: 'certs' }])])]);
    expect(listenerConditions(compiled)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'False/RefNotPermitted', Programmed: 'False/Invalid' });
    expect(compiled.ports).toEqual([]);
  });

  it('reports a missing Secret as InvalidCertificateRef', () => {
    const compiled = compile([gatewayClass(), gateway('edge', 'gw', [https([{ name: 'ghost' }])])]);
    expect(listenerConditions(compiled)['ResolvedRefs']).toBe('False/InvalidCertificateRef');
  });
});

describe('mesh file kinds', () => {
  it('refuses an HTTPS listener without certificateRefs, naming the field', () => {
    const checked = validateObject(gateway('edge', 'gw', [{ name: 'tls', port: 443, protocol: 'HTTPS' }]));
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.error.message).toContain('spec.listeners[0].tls: an HTTPS listener needs');
  });

  it('refuses a bad listener hostname and a repeated listener name', () => {
    const checked = validateObject(gateway('edge', 'gw', [http('a', { hostname: '10.0.0.1' }), http('a')]));
    expect(checked.ok).toBe(false);
    if (!checked.ok) {
      expect(checked.error.message).toContain('spec.listeners[0].hostname: must be a hostname');
      expect(checked.error.message).toContain('spec.listeners[1].name: must be unique');
    }
  });

  it('refuses a TLS Secret whose key does not belong to its certificate', () => {
    const a = selfSignedPem('a.example.com');
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const checked = validateObject({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: 'kubernetes.io/tls', stringData: { 'tls.crt': a.cert, 'tls.key': other } });
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.error.message).toBe('Secret default/s: data["tls.key"]: does not belong to the certificate in tls.crt');
  });

  it('refuses a GatewayClass without controllerName', () => {
    const checked = validateObject({ apiVersion: `${GW}/v1`, kind: 'GatewayClass', metadata: { name: 'c' }, spec: {} });
    expect(!checked.ok && checked.error.message).toBe('GatewayClass c: spec.controllerName: required');
  });
});

describe('TLS Passthrough listeners and TLSRoute (gateway.networking.k8s.io/v1alpha2)', () => {
  const tls = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, port: 8443, protocol: 'TLS', tls: { mode: 'Passthrough' }, ...extra });
  const tlsRoute = (namespace: string, name: string, spec: Record<string, unknown>, created?: string): KubeObject => ({
    apiVersion: `${GW}/v1alpha2`,
    kind: 'TLSRoute',
    metadata: { name, namespace, ...(created ? { creationTimestamp: created } : {}) },
    spec,
  });
  const base = [gatewayClass(), service('edge', 'a', [443]), service('edge', 'b', [443]), service('other', 'c', [443])];
  const destination = (compiled: CompiledGateways, name: string): string | undefined => {
    const port = compiled.ports.find((p) => p.port === 8443);
    if (port?.protocol !== 'TLS') return undefined;
    const d = port.destination(name);
    return d && `${d.route.name}:${d.backends.map((b) => `${b.namespace}/${b.name}*${b.weight}${b.problem ? `!${b.problem}` : ''}`).join(',')}`;
  };
  const listenerConditions = (compiled: CompiledGateways): Record<string, string> =>
    Object.fromEntries((compiled.listeners[0]?.conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));

  it('programs a TLS listener in Passthrough mode, with TLSRoute as its only kind', () => {
    const compiled = compile([...base, gateway('edge', 'gw', [tls('pass')])]);
    expect(listenerConditions(compiled)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs', Programmed: 'True/Programmed' });
    expect(compiled.ports.map((p) => [p.port, p.protocol])).toEqual([[8443, 'TLS']]);
  });

  it('does not serve a TLS listener in Terminate mode (UnsupportedProtocol)', () => {
    const compiled = compile([...base, gateway('edge', 'gw', [tls('term', { tls: { mode: 'Terminate', certificateRefs: [{ name: 'x' }] } })])]);
    expect(listenerConditions(compiled)['Accepted']).toBe('False/UnsupportedProtocol');
    expect(compiled.ports).toEqual([]);
  });

  it('routes by server name: exact names first, then the longest wildcard; a wildcard never covers its bare suffix', () => {
    const compiled = compile([
      ...base,
      gateway('edge', 'gw', [tls('pass', { hostname: '*.example.com' })]),
      tlsRoute('edge', 'wild', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ name: 'a', port: 443 }] }] }),
      tlsRoute('edge', 'exact', { parentRefs: [gwParent('gw')], hostnames: ['b.example.com'], rules: [{ backendRefs: [{ name: 'b', port: 443 }] }] }),
    ]);
    expect(destination(compiled, 'b.example.com')).toBe('exact:edge/b*1');
    expect(destination(compiled, 'x.y.example.com')).toBe('wild:edge/a*1');
    expect(destination(compiled, 'example.com')).toBeUndefined();
    expect(destination(compiled, 'other.net')).toBeUndefined();
    expect(destination(compiled, '')).toBeUndefined();
  });

  it('keeps the weights of every rule and backendRef', () => {
    const compiled = compile([
      ...base,
      gateway('edge', 'gw', [tls('pass')]),
      tlsRoute('edge', 'split', { parentRefs: [gwParent('gw')], hostnames: ['s.example.com'], rules: [{ backendRefs: [{ name: 'a', port: 443, weight: 99 }, { name: 'b', port: 443, weight: 1 }] }] }),
    ]);
    expect(destination(compiled, 's.example.com')).toBe('split:edge/a*99,edge/b*1');
  });

  it('gives a server name claimed by two TLSRoutes to the older one', () => {
    const compiled = compile([
      ...base,
      gateway('edge', 'gw', [tls('pass')]),
      tlsRoute('edge', 'young', { parentRefs: [gwParent('gw')], hostnames: ['s.example.com'], rules: [{ backendRefs: [{ name: 'b', port: 443 }] }] }, '2026-01-02T00:00:00Z'),
      tlsRoute('edge', 'old', { parentRefs: [gwParent('gw')], hostnames: ['s.example.com'], rules: [{ backendRefs: [{ name: 'a', port: 443 }] }] }, '2026-01-01T00:00:00Z'),
    ]);
    expect(destination(compiled, 's.example.com')).toBe('old:edge/a*1');
  });

  it.each([
    [
      'a TLSRoute from a namespace from: Same does not admit',
      [gateway('edge', 'gw', [tls('pass')]), tlsRoute('apps', 'r', { parentRefs: [gwParent('gw', { namespace: 'edge' })], rules: [{ backendRefs: [{ name: 'a', namespace: 'edge', port: 443 }] }] })],
      'apps/r',
      { Accepted: 'False/NotAllowedByListeners', ResolvedRefs: 'False/RefNotPermitted' },
    ],
    [
      'an HTTPRoute on a TLS listener',
      [gateway('edge', 'gw', [tls('pass')]), httpRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [backend('a', 443)] }] })],
      'edge/r',
      { Accepted: 'False/NotAllowedByListeners', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'a TLSRoute on an HTTP listener',
      [gateway('edge', 'gw', [http('web')]), tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ name: 'a', port: 443 }] }] })],
      'edge/r',
      { Accepted: 'False/NotAllowedByListeners', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'hostnames outside the listener hostname',
      [gateway('edge', 'gw', [tls('pass', { hostname: '*.example.com' })]), tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')], hostnames: ['example.com'], rules: [{ backendRefs: [{ name: 'a', port: 443 }] }] })],
      'edge/r',
      { Accepted: 'False/NoMatchingListenerHostname', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'a cross-namespace backend without ReferenceGrant',
      [gateway('edge', 'gw', [tls('pass')]), tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ name: 'c', namespace: 'other', port: 443 }] }] })],
      'edge/r',
      { Accepted: 'True/Accepted', ResolvedRefs: 'False/RefNotPermitted' },
    ],
    [
      'a cross-namespace backend with a ReferenceGrant from TLSRoute',
      [
        gateway('edge', 'gw', [tls('pass')]),
        tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ name: 'c', namespace: 'other', port: 443 }] }] }),
        { apiVersion: `${GW}/v1beta1`, kind: 'ReferenceGrant', metadata: { name: 'g', namespace: 'other' }, spec: { from: [{ group: GW, kind: 'TLSRoute', namespace: 'edge' }], to: [{ group: '', kind: 'Service' }] } },
      ],
      'edge/r',
      { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' },
    ],
    [
      'a missing backend Service',
      [gateway('edge', 'gw', [tls('pass')]), tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ name: 'ghost', port: 443 }] }] })],
      'edge/r',
      { Accepted: 'True/Accepted', ResolvedRefs: 'False/BackendNotFound' },
    ],
    [
      'a backendRef of another kind',
      [gateway('edge', 'gw', [tls('pass')]), tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ group: 'example.com', kind: 'Bucket', name: 'a' }] }] })],
      'edge/r',
      { Accepted: 'True/Accepted', ResolvedRefs: 'False/InvalidKind' },
    ],
    [
      'a rule without backendRefs is dropped: no rule left',
      [gateway('edge', 'gw', [tls('pass')]), tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')], rules: [{}] })],
      'edge/r',
      { Accepted: 'False/UnsupportedValue', ResolvedRefs: 'True/ResolvedRefs' },
    ],
  ] as const)('%s', (_name, objects, route, expected) => {
    expect(conditionsOf(compile([...base, ...objects]), route)).toEqual(expected);
  });

  it('keeps a refused backend in the weighted set, marked, so its share of connections is refused', () => {
    const compiled = compile([
      ...base,
      gateway('edge', 'gw', [tls('pass')]),
      tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')], hostnames: ['s.example.com'], rules: [{ backendRefs: [{ name: 'a', port: 443 }, { name: 'c', namespace: 'other', port: 443 }] }] }),
    ]);
    expect(destination(compiled, 's.example.com')).toBe('r:edge/a*1,other/c*1!RefNotPermitted');
  });

  it('refuses a port served as HTTP and as TLS (ProtocolConflict)', () => {
    const compiled = compile([...base, gateway('edge', 'gw', [http('web', { port: 8443 }), tls('pass')])]);
    expect(compiled.listeners.find((l) => l.name === 'pass')?.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).toContain('Conflicted=True/ProtocolConflict');
  });

  it('accepts TLSRoute only as v1alpha2 in the mesh file', () => {
    expect(validateObject(tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')] })).ok).toBe(true);
    const wrong = validateObject({ ...tlsRoute('edge', 'r', { parentRefs: [gwParent('gw')] }), apiVersion: `${GW}/v1` });
    expect(!wrong.ok && wrong.error.message).toContain('unsupported apiVersion');
  });
});

describe('TCP listeners and TCPRoute (gateway.networking.k8s.io/v1alpha2)', () => {
  const tcp = { name: 'db', port: 5432, protocol: 'TCP' };
  const tcpRoute = (namespace: string, name: string, spec: Record<string, unknown>, created?: string): KubeObject => ({
    apiVersion: `${GW}/v1alpha2`,
    kind: 'TCPRoute',
    metadata: { name, namespace, ...(created ? { creationTimestamp: created } : {}) },
    spec,
  });
  const base = [gatewayClass(), service('edge', 'pg', [5432]), service('edge', 'pg2', [5432])];
  const destination = (compiled: CompiledGateways): string | undefined => {
    const port = compiled.ports.find((p) => p.port === 5432);
    if (port?.protocol !== 'TCP') return undefined;
    const d = port.destination('ignored');
    return d && `${d.route.kind} ${d.route.name}:${d.backends.map((b) => `${b.name}*${b.weight}`).join(',')}`;
  };

  it('programs a TCP listener and routes the whole port to the oldest TCPRoute, weights kept', () => {
    const compiled = compile([
      ...base,
      gateway('edge', 'gw', [tcp]),
      tcpRoute('edge', 'young', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ name: 'pg2', port: 5432 }] }] }, '2026-01-02T00:00:00Z'),
      tcpRoute('edge', 'old', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ name: 'pg', port: 5432, weight: 3 }, { name: 'pg2', port: 5432, weight: 1 }] }] }, '2026-01-01T00:00:00Z'),
    ]);
    expect(compiled.listeners[0]?.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Accepted=True', 'ResolvedRefs=True', 'Programmed=True']);
    expect(destination(compiled)).toBe('TCPRoute old:pg*3,pg2*1');
  });

  it('admits only TCPRoutes on a TCP listener, and refuses a cross-namespace backend without a grant', () => {
    const compiled = compile([
      ...base,
      service('other', 'x', [5432]),
      gateway('edge', 'gw', [tcp]),
      { apiVersion: `${GW}/v1alpha2`, kind: 'TLSRoute', metadata: { name: 'tls', namespace: 'edge' }, spec: { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ name: 'pg', port: 5432 }] }] } },
      tcpRoute('edge', 'far', { parentRefs: [gwParent('gw')], rules: [{ backendRefs: [{ name: 'x', namespace: 'other', port: 5432 }] }] }),
    ]);
    expect(conditionsOf(compiled, 'edge/tls')).toEqual({ Accepted: 'False/NotAllowedByListeners', ResolvedRefs: 'True/ResolvedRefs' });
    expect(conditionsOf(compiled, 'edge/far')).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'False/RefNotPermitted' });
  });

  it('routes nothing on a TCP port without a route', () => {
    expect(destination(compile([...base, gateway('edge', 'gw', [tcp])]))).toBeUndefined();
  });
});
