// The PeerAuthentication CRD: names and columns as SPEC.md fixes them, a structural schema, and
// sample objects judged by its openAPIV3Schema (ajv) and its CEL rules (@bufbuild/cel) the same
// way the control plane's own validator (@tsmesh/common validateObject) judges them.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { validateObject } from '@tsmesh/common';
import type { ValidateFunction } from 'ajv';
import { celPasses, expectStructural, loadCrd, type Crd, type SchemaNode } from './crd-schema.js';

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

describe('the PeerAuthentication CRD', () => {
  let crd: Crd;
  let schema: SchemaNode;
  let validate: ValidateFunction;

  beforeAll(async () => {
    ({ crd, schema, validate } = await loadCrd('peerauthentications.security.tsmesh.io'));
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
    expectStructural(schema);
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
    const passes = (map: Record<string, unknown>): boolean => celPasses(portLevel(), map);

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
