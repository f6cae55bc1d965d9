// The PeerAuthentication CRD: names and columns as SPEC.md fixes them, a structural schema, and
// sample objects judged by its openAPIV3Schema (ajv) and its CEL rules (@bufbuild/cel) the same
// way the control plane's own validator (@tsmesh/common validateObject) judges them.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { run } from '@bufbuild/cel';
import { validateObject } from '@tsmesh/common';
import { Ajv, type ValidateFunction } from 'ajv';
import { render } from './helm.js';
import { one } from './objects.js';
import type { KubeObject } from './helm.js';

interface SchemaNode {
  readonly type?: string;
  readonly properties?: Record<string, SchemaNode>;
  readonly additionalProperties?: SchemaNode | boolean;
  readonly items?: SchemaNode;
  readonly 'x-kubernetes-validations'?: { rule: string; message?: string }[];
  readonly [keyword: string]: unknown;
}

interface Crd extends KubeObject {
  readonly spec: {
    group: string;
    scope: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[] };
    versions: { name: string; served: boolean; storage: boolean; additionalPrinterColumns: { name: string; type: string; jsonPath: string }[]; schema: { openAPIV3Schema: SchemaNode } }[];
  };
}

function peerAuthentication(spec: unknown): Record<string, unknown> {
  return { apiVersion: 'security.tsmesh.io/v1', kind: 'PeerAuthentication', metadata: { name: 'sample', namespace: 'shop' }, spec };
}

const VALID: Record<string, unknown> = {
  'a mesh-wide STRICT policy': { mtls: { mode: 'STRICT' } },
  'a workload policy with port overrides': {
    selector: { matchLabels: { app: 'cart', tier: 'backend' } },
    mtls: { mode: 'PERMISSIVE' },
    portLevelMtls: { '8080': { mode: 'DISABLE' }, '9090': { mode: 'STRICT' }, '65535': { mode: 'UNSET' } },
  },
  'an empty spec (inherits)': {},
  'every mode': { mtls: { mode: 'UNSET' }, portLevelMtls: { '1': { mode: 'DISABLE' } } },
};

const INVALID_BY_SCHEMA: Record<string, unknown> = {
  'a mode that does not exist': { mtls: { mode: 'ON' } },
  'a mode in lower case': { mtls: { mode: 'strict' } },
  'a port-level entry without mode': { portLevelMtls: { '8080': {} } },
  'a port-level mode that does not exist': { portLevelMtls: { '8080': { mode: 'MUTUAL' } } },
  'a label value that is not a string': { selector: { matchLabels: { app: 7 } } },
  'a selector that is not an object': { selector: 'app=cart' },
};

const INVALID_PORT_KEYS = ['0', '65536', 'http', '-1', '80a', ''];

/** Every schema node, with its path. */
function* nodes(node: SchemaNode, path = ''): Generator<[string, SchemaNode]> {
  yield [path || '.', node];
  for (const [name, child] of Object.entries(node.properties ?? {})) yield* nodes(child, `${path}.${name}`);
  if (typeof node.additionalProperties === 'object') yield* nodes(node.additionalProperties, `${path}[*]`);
  if (node.items !== undefined) yield* nodes(node.items, `${path}[]`);
}

/** CEL's view of a JSON value: objects are maps. */
function celValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(celValue);
  if (typeof value === 'object' && value !== null) return new Map(Object.entries(value).map(([k, v]) => [k, celValue(v)]));
  return value;
}

describe('the PeerAuthentication CRD', () => {
  let crd: Crd;
  let schema: SchemaNode;
  let validate: ValidateFunction;

  beforeAll(async () => {
    crd = one<Crd>(await render(), 'CustomResourceDefinition', 'peerauthentications.security.tsmesh.io');
    schema = crd.spec.versions[0]?.schema.openAPIV3Schema as SchemaNode;
    const ajv = new Ajv({ strict: true, allErrors: true });
    for (const keyword of ['x-kubernetes-validations', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string']) ajv.addKeyword(keyword);
    validate = ajv.compile(schema);
  });

  test('is security.tsmesh.io/v1 PeerAuthentication, namespaced, short name pa', () => {
    expect(crd.spec.group).toBe('security.tsmesh.io');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual(
      expect.objectContaining({ kind: 'PeerAuthentication', listKind: 'PeerAuthenticationList', plural: 'peerauthentications', singular: 'peerauthentication', shortNames: ['pa'] }),
    );
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1', true, true]]);
  });

  test('shows Mode and Age columns', () => {
    expect(crd.spec.versions[0]?.additionalPrinterColumns).toEqual([
      expect.objectContaining({ name: 'Mode', type: 'string', jsonPath: '.spec.mtls.mode' }),
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
  });

  test('has a structural schema: every node typed, objects only under properties or additionalProperties', () => {
    const forbidden = ['$ref', 'definitions', 'patternProperties', 'dependencies', 'additionalItems', 'id', '$schema', 'uniqueItems'];
    for (const [path, node] of nodes(schema)) {
      expect([path, typeof node.type]).toEqual([path, 'string']);
      expect([path, forbidden.filter((k) => k in node)]).toEqual([path, []]);
      if (node.properties !== undefined || node.additionalProperties !== undefined) expect([path, node.type]).toEqual([path, 'object']);
    }
    expect(schema.properties?.['metadata']).toEqual({ type: 'object' });
  });

  test.each(Object.entries(VALID))('accepts %s, as the control plane does', (_name, spec) => {
    const object = peerAuthentication(spec);
    expect([validate(object), validate.errors ?? []]).toEqual([true, []]);
    expect(validateObject(object).ok).toBe(true);
  });

  test.each(Object.entries(INVALID_BY_SCHEMA))('rejects %s, as the control plane does', (_name, spec) => {
    const object = peerAuthentication(spec);
    expect(validate(object)).toBe(false);
    expect(validateObject(object).ok).toBe(false);
  });

  test('names the allowed modes when it rejects one', () => {
    validate(peerAuthentication({ mtls: { mode: 'ON' } }));
    expect(validate.errors).toEqual([
      expect.objectContaining({ instancePath: '/spec/mtls/mode', keyword: 'enum', params: { allowedValues: ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] } }),
    ]);
  });

  describe('port keys of spec.portLevelMtls (CEL rule, evaluated with @bufbuild/cel)', () => {
    const portLevel = (): SchemaNode => schema.properties?.['spec']?.properties?.['portLevelMtls'] as SchemaNode;
    const passes = (map: Record<string, unknown>): boolean =>
      (portLevel()['x-kubernetes-validations'] ?? []).every((v) => run(v.rule, { self: celValue(map) as never }) === true);

    test('has one rule with a message that says what a key must be', () => {
      expect(portLevel()['x-kubernetes-validations']).toEqual([{ rule: expect.any(String), message: 'keys of spec.portLevelMtls must be port numbers from 1 to 65535' }]);
    });

    test('accepts port numbers from 1 to 65535', () => {
      expect(passes({ '1': { mode: 'STRICT' }, '8080': { mode: 'DISABLE' }, '65535': { mode: 'UNSET' } })).toBe(true);
      expect(passes({})).toBe(true);
      expect(validateObject(peerAuthentication({ portLevelMtls: { '1': { mode: 'STRICT' }, '65535': { mode: 'UNSET' } } })).ok).toBe(true);
    });

    test.each(INVALID_PORT_KEYS)('rejects the key %j, as the control plane does', (key) => {
      const map = { '8080': { mode: 'STRICT' }, [key]: { mode: 'STRICT' } };
      expect(passes(map)).toBe(false);
      expect(validate(peerAuthentication({ portLevelMtls: map }))).toBe(true); // only the CEL rule can see keys
      expect(validateObject(peerAuthentication({ portLevelMtls: map })).ok).toBe(false);
    });
  });
});
