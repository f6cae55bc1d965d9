import { readFileSync } from 'node:fs';
import { MESH_ERRORS } from '../errors.js';
import { MeshFileError, parseMeshFile, parseMeshObjects } from './file.js';

const SAMPLE_PATH = new URL('./testdata/sample-mesh.yaml', import.meta.url);
const sample = readFileSync(SAMPLE_PATH, 'utf8');

function refused(text: string, fileName = 'mesh.yaml'): MeshFileError {
  const result = parseMeshFile(text, fileName);
  if (result.ok) throw new Error('expected the file to be refused');
  expect(result.error).toBeInstanceOf(MeshFileError);
  return result.error;
}

const serviceAccount = (name: string, namespace = 'shop'): string =>
  `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n`;

describe('parseMeshFile', () => {
  it('reads every object of the sample mesh, in order', () => {
    const result = parseMeshFile(sample, 'sample-mesh.yaml');
    if (!result.ok) throw result.error;
    expect(result.value.map((o) => `${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`)).toEqual([
      'Namespace -/demo',
      'ServiceAccount demo/greeter-server',
      'ServiceAccount demo/greeter-client',
      'ServiceAccount demo/web',
      'Service demo/greeter',
      'Service demo/web',
      'EndpointSlice demo/greeter-a1b2c',
      'EndpointSlice demo/greeter-d3e4f',
      'EndpointSlice demo/greeter-v6-g5h6i',
      'EndpointSlice demo/web-j7k8l',
      'Pod demo/greeter-0',
      'Pod demo/greeter-1',
      'Pod demo/greeter-2',
      'Pod demo/greeter-client',
      'Pod demo/web-0',
      'PeerAuthentication demo/greeter-strict',
      'GRPCRoute demo/greeter-split',
    ]);
  });

  it('accepts an empty file and skips empty documents', () => {
    expect(parseMeshFile('', 'empty.yaml')).toEqual({ ok: true, value: [] });
    const result = parseMeshFile(`---\n# nothing here\n---\n${serviceAccount('a')}---\n---\n`, 'm.yaml');
    expect(result.ok && result.value.map((o) => o.metadata.name)).toEqual(['a']);
  });

  it('defaults a missing namespace to default', () => {
    const result = parseMeshFile('apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n', 'm.yaml');
    expect(result.ok && result.value[0]?.metadata.namespace).toBe('default');
  });

  it('reads the items of a kind: List document', () => {
    const text = ['apiVersion: v1', 'kind: List', 'items:', '  - apiVersion: v1', '    kind: ServiceAccount', '    metadata: {name: a}', '  - apiVersion: v1', '    kind: Namespace', '    metadata: {name: b}', ''].join('\n');
    const result = parseMeshObjects(text, 'list.yaml');
    expect(result.ok && result.value.map((o) => `${o.kind}/${o.object.metadata.name}`)).toEqual(['ServiceAccount/a', 'Namespace/b']);
  });

  it('refuses an unknown kind with the file, document, line, object and reason', () => {
    const text = `${serviceAccount('a')}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n`;
    const error = refused(text, '/etc/tsmesh/mesh.yaml');
    expect(error.code).toBe(MESH_ERRORS.MESH_UNKNOWN_KIND);
    expect(error.message).toBe(
      '/etc/tsmesh/mesh.yaml:7: document 2 (Deployment shop/web): kind: unknown kind "Deployment" (apiVersion apps/v1); ' +
        'supported kinds: Service, EndpointSlice, Pod, ServiceAccount, Namespace, PeerAuthentication, AuthorizationPolicy, HTTPLocalRateLimitPolicy, HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, TrafficPolicy, XBackendTrafficPolicy, GatewayClass, Gateway, ReferenceGrant, Secret',
    );
    expect(error.location).toEqual({ file: '/etc/tsmesh/mesh.yaml', line: 7, document: 2, object: 'Deployment shop/web' });
  });

  it('refuses the whole file for one invalid object, naming the field and the value', () => {
    const text = `${serviceAccount('a')}---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n    - port: 99999\n`;
    const error = refused(text);
    expect(error.code).toBe(MESH_ERRORS.MESH_INVALID_OBJECT);
    expect(error.message).toBe('mesh.yaml:7: document 2 (Service default/web): spec.ports[0].port: must be an integer from 1 to 65535, got 99999');
    expect(error.reason).toBe('spec.ports[0].port: must be an integer from 1 to 65535, got 99999');
  });

  it('names the item of a kind: List that is invalid', () => {
    const text = ['apiVersion: v1', 'kind: List', 'items:', '  - apiVersion: v1', '    kind: ServiceAccount', '    metadata: {name: a}', '  - apiVersion: v1', '    kind: ConfigMap', '    metadata: {name: s}', ''].join('\n');
    const error = refused(text);
    expect(error.message).toMatch(/^mesh\.yaml:7: document 1, item 2 \(ConfigMap default\/s\): kind: unknown kind "ConfigMap"/);
  });

  it('refuses a List whose items are not a list', () => {
    expect(refused('apiVersion: v1\nkind: List\nitems: {a: 1}\n').message).toBe('mesh.yaml:1: document 1 (List): items: must be a list, got {"a":1}');
  });

  it('refuses a YAML syntax error with its line and column', () => {
    const text = `${serviceAccount('a')}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n   namespace: shop\n`;
    const error = refused(text);
    expect(error.code).toBe(MESH_ERRORS.MESH_PARSE);
    expect(error.message).toMatch(/^mesh\.yaml:10:\d+: document 2: YAML syntax error: /);
    expect(error.message).not.toContain('\n');
  });

  it('refuses an unclosed flow sequence and an unresolved alias', () => {
    expect(refused('kind: [a, b\n').message).toMatch(/^mesh\.yaml:\d+:\d+: document 1: YAML syntax error: /);
    expect(refused('apiVersion: v1\nkind: *nowhere\n').message).toMatch(/^mesh\.yaml:\d+(:\d+)?: document 1: YAML (syntax )?error: .*alias/i);
  });

  it('refuses a duplicate key', () => {
    expect(refused('apiVersion: v1\nkind: ServiceAccount\nkind: Namespace\n').message).toMatch(/^mesh\.yaml:3:1: document 1: YAML syntax error: Map keys must be unique/);
  });

  it('refuses a document that is not a mapping', () => {
    expect(refused('- a\n- b\n').message).toBe('mesh.yaml:1: document 1 (object (unnamed)): must be a mapping, got ["a","b"]');
  });

  it('refuses the same object defined twice', () => {
    const error = refused(`${serviceAccount('a')}---\n${serviceAccount('a')}`);
    expect(error.message).toBe('mesh.yaml:7: document 2 (ServiceAccount shop/a): duplicate object: already defined by mesh.yaml:1: document 1');
  });

  it('keeps the object error as the cause', () => {
    const error = refused('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {podIP: x}\n');
    expect(error.cause).toBeInstanceOf(Error);
    expect((error.cause as Error).message).toBe('Pod default/p: status.podIP: must be an IP address, got "x"');
  });
});

describe('parseMeshFile with JSON documents', () => {
  const sampleObjects = (): unknown[] => {
    const yaml = parseMeshObjects(sample, 'sample-mesh.yaml');
    if (!yaml.ok) throw yaml.error;
    return yaml.value;
  };
  /** The sample mesh's objects as tools write them: one JSON document each, `---` between. */
  const asJson = (objects: readonly unknown[], indent?: number): string => objects.map((o) => JSON.stringify(o, null, indent)).join('\n---\n');
  const raw = (): unknown[] => {
    const parsed = parseMeshFile(sample, 'sample-mesh.yaml');
    if (!parsed.ok) throw parsed.error;
    return parsed.value;
  };

  it('reads the same objects as from the YAML they were written from, compact or indented', () => {
    for (const indent of [undefined, 2]) {
      const json = parseMeshObjects(asJson(raw(), indent), 'mesh.json');
      if (!json.ok) throw json.error;
      expect(json.value).toEqual(sampleObjects());
    }
  });

  it('reads a kind: List of JSON objects, and a leading document marker', () => {
    const list = `---\n${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: raw().slice(0, 4) })}\n`;
    const parsed = parseMeshFile(list, 'mesh.json');
    if (!parsed.ok) throw parsed.error;
    expect(parsed.value.map((o) => o.metadata.name)).toEqual(['demo', 'greeter-server', 'greeter-client', 'web']);
  });

  it('reports an invalid object with its line, as for YAML', () => {
    const objects = raw();
    const bad = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'demo' }, status: { podIP: 'x' } };
    const text = asJson([...objects.slice(0, 2), bad]);
    expect(refused(text, 'mesh.json').message).toBe('mesh.json:5: document 3 (Pod demo/p): status.podIP: must be an IP address, got "x"');
  });

  it('reports an object defined twice, and a JSON syntax error, as for YAML', () => {
    const [first] = raw();
    expect(refused(asJson([first, first]), 'mesh.json').message).toMatch(/^mesh\.json:3: document 2 \(Namespace demo\): duplicate object: already defined by mesh\.json:1: document 1$/);
    expect(refused('{"apiVersion": "v1", "kind": ', 'mesh.json').message).toMatch(/^mesh\.json:1:\d+: document 1: YAML syntax error/);
  });

  it('a file mixing JSON and YAML documents is read as YAML', () => {
    const [first] = raw();
    const parsed = parseMeshFile(`${JSON.stringify(first)}\n---\n${serviceAccount('a')}`, 'mesh.yaml');
    if (!parsed.ok) throw parsed.error;
    expect(parsed.value.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Namespace/demo', 'ServiceAccount/a']);
  });
});

describe('parseMeshFile limits', () => {
  const MiB = 1024 * 1024;

  it('refuses a file over the size limit before parsing it, naming the limit', () => {
    const result = parseMeshFile(`# ${'x'.repeat(2000)}\n`, 'mesh.yaml', { maxBytes: 1024, maxDepth: 64 });
    expect(!result.ok && result.error.code).toBe(MESH_ERRORS.MESH_TOO_LARGE);
    expect(!result.ok && result.error.message).toBe('mesh.yaml: the file is 2.0 KiB (2003 bytes), over the size limit of 1 KiB');
  });

  it.each([
    ['[ x 1 MiB', () => '['.repeat(MiB), '1:65'],
    ['{ x 1 MiB', () => '{'.repeat(MiB), '1:65'],
    ['a: [[[...]]]', () => `a: ${'['.repeat(MiB / 2)}${']'.repeat(MiB / 2)}\n`, '1:67'],
    ['{"a":{"a":...}} (valid JSON)', () => `${'{"a":'.repeat(MiB / 10)}1${'}'.repeat(MiB / 10)}`, '1:321'],
    ['- - - ...', () => `${'- '.repeat(MiB / 2)}a\n`, '1:129'],
    ['indentation', () => Array.from({ length: 100 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n'), '65:65'],
  ])('refuses nesting deeper than the limit before any parser runs: %s', (_what, text, where) => {
    const started = performance.now();
    const error = refused(text(), '/etc/tsmesh/mesh.yaml');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error.code).toBe(MESH_ERRORS.MESH_TOO_DEEP);
    expect(error.message).toBe(`/etc/tsmesh/mesh.yaml:${where}: nesting deeper than 64 levels (the depth limit), refused before parsing`);
  });

  it('takes nesting up to the limit', () => {
    const nested = (levels: number): string => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
    const object = (levels: number): string => `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, annotations: {}}\nextra: ${nested(levels)}\n`;
    // The document's mapping is the first level.
    expect(parseMeshFile(object(9), 'm.yaml', { maxBytes: MiB, maxDepth: 10 }).ok).toBe(true);
    const error = parseMeshFile(object(10), 'm.yaml', { maxBytes: MiB, maxDepth: 10 });
    expect(!error.ok && error.error.reason).toBe('nesting deeper than 10 levels (the depth limit), refused before parsing');
  });
});
