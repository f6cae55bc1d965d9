import { MESH_ERRORS } from '../../errors.js';
import { parseMeshFile } from '../file.js';
import { validateObject } from '../objects.js';
import type { MeshAuthorizationPolicy } from './authorization-policy.js';

const policy = (spec: unknown): unknown => ({
  apiVersion: 'security.tsmesh.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'p', namespace: 'shop' },
  spec,
});

function valid(raw: unknown): MeshAuthorizationPolicy {
  const result = validateObject(raw);
  if (!result.ok) throw new Error(`expected a valid object, got: ${result.error.message}`);
  if (result.value.kind !== 'AuthorizationPolicy') throw new Error('wrong kind');
  return result.value.value;
}

function reasonOf(raw: unknown): string {
  const result = validateObject(raw);
  if (result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
  expect(result.error.code).toBe(MESH_ERRORS.MESH_INVALID_OBJECT);
  return result.error.message;
}

describe('AuthorizationPolicy', () => {
  test('an empty spec is an ALLOW policy without rules (it matches nothing)', () => {
    expect(valid(policy({}))).toEqual({ namespace: 'shop', name: 'p', selector: undefined, action: 'ALLOW', rules: [] });
  });

  test('reads Istio\'s rule shape: from.source, to.operation (ports as strings or numbers), when', () => {
    const p = valid(
      policy({
        selector: { matchLabels: { app: 'web' } },
        action: 'DENY',
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'], notNamespaces: ['dev*'] } }],
            to: [{ operation: { methods: ['GET'], paths: ['/api/*'], ports: ['8080', 9090] } }],
            when: [{ key: 'request.headers[X-Tenant]', values: ['a'] }],
          },
          {},
        ],
      }),
    );
    expect(p.action).toBe('DENY');
    expect(p.selector).toEqual({ app: 'web' });
    expect(p.rules[0]?.from).toEqual([{ principals: ['cluster.local/ns/shop/sa/frontend'], notNamespaces: ['dev*'] }]);
    expect(p.rules[0]?.to).toEqual([{ methods: ['GET'], paths: ['/api/*'], ports: [8080, 9090] }]);
    expect(p.rules[0]?.when).toEqual([{ key: { kind: 'header', name: 'x-tenant' }, keyText: 'request.headers[X-Tenant]', values: ['a'], notValues: undefined }]);
    expect(p.rules[1]).toEqual({ from: [], to: [], when: [] });
  });

  test.each([
    [{ action: 'CUSTOM' }, 'spec.action: must be one of ALLOW, DENY, AUDIT'],
    [{ rules: [{ to: [{ operation: { ports: ['http'] } }] }] }, 'spec.rules[0].to[0].operation.ports[0]: must be an integer from 1 to 65535'],
    [{ rules: [{ to: [{ operation: { ports: [70000] } }] }] }, 'spec.rules[0].to[0].operation.ports[0]'],
    [{ rules: [{ to: [{ operation: { paths: ['/a/*/b'] } }] }] }, 'spec.rules[0].to[0].operation.paths[0]: "*" may only be the first or the last character'],
    [{ rules: [{ to: [{ operation: { paths: ['*a*'] } }] }] }, 'spec.rules[0].to[0].operation.paths[0]'],
    [{ rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] }, 'spec.rules[0].from[0].source.requestPrincipals: is not supported by tsmesh'],
    [{ rules: [{ from: [{ source: { principal: ['x'] } }] }] }, 'spec.rules[0].from[0].source.principal: is not a field'],
    [{ rules: [{ from: [{ source: {} }] }] }, 'spec.rules[0].from[0].source: must set at least one of'],
    [{ rules: [{ from: [{}] }] }, 'spec.rules[0].from[0].source: required'],
    [{ rules: [{ when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] }] }, 'spec.rules[0].when[0].key: must be request.headers[<name>]'],
    [{ rules: [{ when: [{ key: 'request.headers[x]' }] }] }, 'spec.rules[0].when[0]: must set values or notValues'],
    [{ rules: [{ to: [{ operation: { methods: [''] } }] }] }, 'spec.rules[0].to[0].operation.methods[0]: must be a non-empty string'],
    [{ rules: 'all' }, 'spec.rules: must be a list'],
    [{ targetRefs: [] }, 'spec.targetRefs: is not a field of spec'],
  ])('refuses %j naming the field', (spec, reason) => {
    const message = reasonOf(policy(spec));
    expect(message).toContain('AuthorizationPolicy shop/p: ');
    expect(message).toContain(reason);
  });

  test('a mesh file with a bad AuthorizationPolicy is refused whole, naming the file, the object and the field', () => {
    const text = 'apiVersion: security.tsmesh.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: half\n  namespace: shop\nspec:\n  rules:\n  - to:\n    - operation:\n        paths: ["/a/*/b"]\n';
    const parsed = parseMeshFile(text, 'mesh.yaml');
    if (parsed.ok) throw new Error('expected a refusal');
    expect(parsed.error.message).toContain('mesh.yaml');
    expect(parsed.error.message).toContain('AuthorizationPolicy shop/half');
    expect(parsed.error.message).toContain('spec.rules[0].to[0].operation.paths[0]');
  });
});
