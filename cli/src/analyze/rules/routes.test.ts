// TSM0101-TSM0105: routes whose backends or parents do not exist, and cross-namespace backends
// without a ReferenceGrant.
import { describe, expect, it } from '@jest/globals';
import { brief, findings, gateway, referenceGrant, route, service } from '../testing.js';

const web = service('shop', 'web', [80]);
const toWeb = { kind: 'Service', group: '', name: 'web' };

describe('route analyzer', () => {
  it('says nothing of a route whose parent and backends exist', () => {
    expect(findings([web, service('shop', 'web-v2', [8080]), route('HTTPRoute', 'shop', 'split', [toWeb], [{ name: 'web-v2', port: 8080 }])])).toEqual([]);
  });

  it('TSM0101: reports a backendRef to a Service that does not exist, naming the rule and the Service', () => {
    const found = findings([web, route('HTTPRoute', 'shop', 'split', [toWeb], [{ name: 'web', port: 80 }, { name: 'web-v3', port: 80 }])]);
    expect(brief(found)).toEqual(['TSM0101 HTTPRoute shop/split']);
    expect(found[0]).toMatchObject({ severity: 'Error', name: 'BackendServiceNotFound' });
    expect(found[0]?.text).toBe('rule 0 backendRef 1 names Service shop/web-v3, which does not exist: its share of requests fails with 500');
  });

  it('TSM0101: looks for the backend in the namespace the backendRef names, also for GRPCRoutes', () => {
    const found = findings([web, service('other', 'api', [9090]), route('GRPCRoute', 'shop', 'g', [toWeb], [{ name: 'api', namespace: 'shop', port: 9090 }])]);
    expect(brief(found)).toEqual(['TSM0101 GRPCRoute shop/g']);
  });

  it('TSM0102: reports a port the Service does not expose, and a Service backendRef without a port', () => {
    const found = findings([web, route('HTTPRoute', 'shop', 'bad-port', [toWeb], [{ name: 'web', port: 8080 }]), route('HTTPRoute', 'shop', 'no-port', [toWeb], [{ name: 'web' }])]);
    expect(brief(found)).toEqual(['TSM0102 HTTPRoute shop/bad-port', 'TSM0102 HTTPRoute shop/no-port']);
    expect(found[0]?.text).toBe('rule 0 backendRef 0 names port 8080 of Service shop/web, which exposes 80: its share of requests fails with 500');
    expect(found[1]?.text).toMatch(/without a port, which a Service backend needs: the rule is dropped \(the Service exposes 80\)$/);
  });

  it('TSM0102: says nothing of backends of other kinds (not Services)', () => {
    expect(findings([web, route('HTTPRoute', 'shop', 'r', [toWeb], [{ group: 'example.com', kind: 'Bucket', name: 'b' }])])).toEqual([]);
  });

  it('TSM0103: reports a parent Service or Gateway that does not exist', () => {
    const found = findings([
      web,
      route('HTTPRoute', 'shop', 'to-missing-service', [{ kind: 'Service', group: '', name: 'webb' }], [{ name: 'web', port: 80 }]),
      route('HTTPRoute', 'shop', 'to-missing-gateway', [{ name: 'front', namespace: 'edge' }], [{ name: 'web', port: 80 }]),
      gateway('edge', 'main'),
      route('HTTPRoute', 'shop', 'to-gateway', [{ name: 'main', namespace: 'edge' }], [{ name: 'web', port: 80 }]),
    ]);
    expect(brief(found)).toEqual(['TSM0103 HTTPRoute shop/to-missing-gateway', 'TSM0103 HTTPRoute shop/to-missing-service']);
    expect(found.map((m) => m.text)).toEqual([
      'parentRef Gateway edge/front does not exist: the route attaches to nothing there and requests to that Gateway are not routed by it',
      'parentRef Service shop/webb does not exist: the route attaches to nothing there and callers of that Service are not routed by it',
    ]);
  });

  it('TSM0104: reports a route on a Gateway whose backend is in another namespace without a ReferenceGrant there', () => {
    const objects = [gateway('edge', 'main'), service('shop', 'web', [80]), route('HTTPRoute', 'edge', 'front', [{ name: 'main' }], [{ name: 'web', namespace: 'shop', port: 80 }])];
    const found = findings(objects);
    expect(brief(found)).toEqual(['TSM0104 HTTPRoute edge/front']);
    expect(found[0]?.severity).toBe('Error');
    expect(findings([...objects, referenceGrant('shop', 'from-edge', 'edge')])).toEqual([]);
    // A grant for another namespace, or in the wrong one, does not count.
    expect(brief(findings([...objects, referenceGrant('shop', 'from-else', 'else'), referenceGrant('edge', 'wrong-side', 'edge')]))).toEqual(['TSM0104 HTTPRoute edge/front']);
  });

  it('TSM0105: notes a mesh route (Service parent) whose backend is in another namespace without a ReferenceGrant, as Info', () => {
    const objects = [web, service('payments', 'api', [80]), route('HTTPRoute', 'shop', 'r', [toWeb], [{ name: 'api', namespace: 'payments', port: 80 }])];
    const found = findings(objects);
    expect(brief(found)).toEqual(['TSM0105 HTTPRoute shop/r']);
    expect(found[0]?.severity).toBe('Info');
    expect(findings([...objects, referenceGrant('payments', 'from-shop', 'shop')])).toEqual([]);
  });
});
