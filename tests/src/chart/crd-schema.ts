// What the CRD tests share: a CRD as rendered by the chart, its openAPIV3Schema compiled with
// ajv the way the API server reads it, the structural-schema check, and CEL rules evaluated with
// @bufbuild/cel on a JSON value.
import { expect } from '@jest/globals';
import { run } from '@bufbuild/cel';
import { Ajv, type ValidateFunction } from 'ajv';
import { render, type KubeObject } from './helm.js';
import { one } from './objects.js';

export interface SchemaNode {
  readonly type?: string;
  readonly properties?: Record<string, SchemaNode>;
  readonly additionalProperties?: SchemaNode | boolean;
  readonly items?: SchemaNode;
  readonly 'x-kubernetes-validations'?: { rule: string; message?: string }[];
  readonly [keyword: string]: unknown;
}

export interface Crd extends KubeObject {
  readonly spec: {
    group: string;
    scope: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[] };
    versions: { name: string; served: boolean; storage: boolean; additionalPrinterColumns: { name: string; type: string; jsonPath: string }[]; schema: { openAPIV3Schema: SchemaNode } }[];
  };
}

export interface LoadedCrd {
  readonly crd: Crd;
  readonly schema: SchemaNode;
  /** The schema's verdict on a whole object, errors in `validate.errors`. */
  readonly validate: ValidateFunction;
}

/** The chart's CRD `name`, with its first version's schema compiled. */
export async function loadCrd(name: string): Promise<LoadedCrd> {
  const crd = one<Crd>(await render(), 'CustomResourceDefinition', name);
  const schema = crd.spec.versions[0]?.schema.openAPIV3Schema as SchemaNode;
  const ajv = new Ajv({ strict: true, allErrors: true });
  for (const keyword of ['x-kubernetes-validations', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string']) ajv.addKeyword(keyword);
  // The API server checks int32 bounds; ajv only needs to know the format exists.
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => n >= -2_147_483_648 && n <= 2_147_483_647 });
  return { crd, schema, validate: ajv.compile(schema) };
}

/** Every schema node, with its path. */
export function* nodes(node: SchemaNode, path = ''): Generator<[string, SchemaNode]> {
  yield [path || '.', node];
  for (const [name, child] of Object.entries(node.properties ?? {})) yield* nodes(child, `${path}.${name}`);
  if (typeof node.additionalProperties === 'object') yield* nodes(node.additionalProperties, `${path}[*]`);
  if (node.items !== undefined) yield* nodes(node.items, `${path}[]`);
}

/** A structural schema (what the API server requires of a CRD): every node typed, objects only under properties or additionalProperties. */
export function expectStructural(schema: SchemaNode): void {
  const forbidden = ['$ref', 'definitions', 'patternProperties', 'dependencies', 'additionalItems', 'id', '$schema', 'uniqueItems'];
  for (const [path, node] of nodes(schema)) {
    expect([path, typeof node.type]).toEqual([path, 'string']);
    expect([path, forbidden.filter((k) => k in node)]).toEqual([path, []]);
    if (node.properties !== undefined || node.additionalProperties !== undefined) expect([path, node.type]).toEqual([path, 'object']);
  }
  expect(schema.properties?.['metadata']).toEqual({ type: 'object' });
}

/** CEL's view of a JSON value: objects are maps. */
function celValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(celValue);
  if (typeof value === 'object' && value !== null) return new Map(Object.entries(value).map(([k, v]) => [k, celValue(v)]));
  return value;
}

/** Whether every `x-kubernetes-validations` rule of `node` holds for `value` as `self`. */
export function celPasses(node: SchemaNode, value: unknown): boolean {
  return (node['x-kubernetes-validations'] ?? []).every((v) => run(v.rule, { self: celValue(value) as never }) === true);
}
