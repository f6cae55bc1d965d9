// values.yaml and values.schema.json: the defaults are valid, every field is documented, and a
// bad value is refused both by ajv and by Helm itself, with a message naming the field.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { Ajv } from 'ajv';
import { isMap, isPair, isScalar, parseDocument, type Node, type Pair } from 'yaml';
import { CHART_DIR, helm, templateArgs } from './helm.js';

const valuesText = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8');
const defaults = parseDocument(valuesText).toJS() as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Record<string, unknown>;

function compile() {
  return new Ajv({ strict: true, allErrors: true, allowUnionTypes: true }).compile(schema);
}

/** A deep copy of the defaults with one dotted path set. */
function withValue(path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(defaults);
  const keys = path.split('.');
  let at: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
  at[keys[keys.length - 1] as string] = value;
  return copy;
}

// A bad value, as `--set` gives it and as a values file would, and what Helm must say about it.
const BAD_VALUES: [string, string, unknown, RegExp][] = [
  ['global.trustDomain', '', '', /global\.trustDomain: String length must be greater than or equal to 1/],
  ['global.trustDomain', 'Example.COM', 'Example.COM', /global\.trustDomain: Does not match pattern/],
  ['global.controlPlaneNamespace', 'Mesh_System', 'Mesh_System', /global\.controlPlaneNamespace: Does not match pattern/],
  ['proxy.tracing.provider', 'jaeger', 'jaeger', /proxy\.tracing\.provider must be one of the following: "", "zipkin", "otlp", "none"/],
  ['proxy.tracing.sampleRate', '1.5', 1.5, /proxy\.tracing\.sampleRate/],
  ['proxy.accessLog', 'sometimes', 'sometimes', /proxy\.accessLog/],
  ['proxy.tracing.endpoint', 'zipkin:9411', 'zipkin:9411', /proxy\.tracing\.endpoint: Does not match pattern/],
  ['proxy.nativeSidecars', 'sometimes', 'sometimes', /proxy\.nativeSidecars must be one of the following: "auto", "true", "false", true, false/],
  ['proxy.logLevel', 'verbose', 'verbose', /proxy\.logLevel must be one of the following/],
  ['proxy.resources.requests.cpu', 'lots', 'lots', /proxy\.resources\.requests\.cpu/],
  ['injector.webhook.timeoutSeconds', '30', 30, /injector\.webhook\.timeoutSeconds: Must be less than or equal to 10/],
  ['injector.webhook.failurePolicy', 'Maybe', 'Maybe', /injector\.webhook\.failurePolicy must be one of the following: "Fail", "Ignore"/],
  ['control.replicas', '0', 0, /control\.replicas: Must be greater than or equal to 1/],
  ['control.replics', '2', 2, /control: Additional property replics is not allowed/],
  ['zipkin.enabled', 'yes', 'yes', /zipkin\.enabled: Invalid type\. Expected: boolean, given: string/],
  ['zipkin.maxSpans', '0', 0, /zipkin\.maxSpans: Must be greater than or equal to 1/],
  ['dashboards.namespace', 'Grafana', 'Grafana', /dashboards\.namespace/],
  ['dashboards.labels.team', 'a b', 'a b', /dashboards\.labels\.team: Does not match pattern/],
  ['ca.workloadCertTtl', '1day', '1day', /ca\.workloadCertTtl: Does not match pattern/],
  ['image.pullPolicy', 'Sometimes', 'Sometimes', /image\.pullPolicy must be one of the following: "Always", "IfNotPresent", "Never"/],
];

/** Dotted paths of every key in values.yaml, with whether a comment precedes it. */
function documentation(node: Node | null, prefix: string, out: Map<string, boolean>): void {
  if (!isMap(node)) return;
  (node.items as Pair<Node, Node>[]).forEach((item, index) => {
    if (!isPair(item) || !isScalar(item.key)) return;
    const path = prefix === '' ? String(item.key.value) : `${prefix}.${String(item.key.value)}`;
    // The parser gives a comment before the first key of a nested map to the map itself.
    const comment = item.key.commentBefore ?? (index === 0 && prefix !== '' ? node.commentBefore : undefined);
    out.set(path, Boolean(comment?.trim()));
    documentation(item.value, path, out);
  });
}

describe('values.schema.json', () => {
  test('is a valid draft-07 schema that ajv compiles strictly', () => {
    expect(schema['$schema']).toBe('http://json-schema.org/draft-07/schema#');
    expect(compile).not.toThrow();
  });

  test('accepts values.yaml as it is', () => {
    const validate = compile();
    expect([validate(defaults), validate.errors ?? []]).toEqual([true, []]);
  });

  test('accepts the overrides the tests render with', () => {
    const validate = compile();
    for (const values of [
      withValue('proxy.nativeSidecars', true),
      withValue('proxy.nativeSidecars', 'false'),
      withValue('proxy.tracing', { provider: 'otlp', endpoint: 'https://otel.example:4318', sampleRate: 0.1 }),
      withValue('proxy.tracing.sampleRate', '0.25'),
      withValue('proxy.accessLog', true),
      withValue('proxy.resources.limits.cpu', '500m'),
      withValue('caRootCert.namespaces', ['shop', 'billing']),
      withValue('proxy.tracing.provider', ''),
      withValue('zipkin.enabled', true),
      withValue('control.tls.existingSecret', 'corp-control-tls'),
      withValue('dashboards', { enabled: true, namespace: 'monitoring', labels: { team: 'mesh' }, annotations: { grafana_folder: 'tsmesh' } }),
    ]) {
      expect([validate(values), validate.errors ?? []]).toEqual([true, []]);
    }
  });

  test.each(BAD_VALUES)('rejects %s = %j', (path, _text, value) => {
    const validate = compile();
    expect(validate(withValue(path, value))).toBe(false);
  });
});

describe('helm template with a bad value', () => {
  test.each(BAD_VALUES)('fails on --set %s=%s with a message naming the field', async (path, text, _value, message) => {
    const result = await helm(templateArgs({ set: { [path]: text } }));
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain("values don't meet the specifications of the schema(s)");
    expect(result.stderr).toMatch(message);
  });
});

describe('values.yaml', () => {
  test('documents every field with a comment (each component field at least once)', () => {
    const documented = new Map<string, boolean>();
    documentation(parseDocument(valuesText).contents, '', documented);
    // control, ca and injector share their fields; requests/limits under resources explain themselves.
    const normalized = new Map<string, boolean>();
    for (const [path, hasComment] of documented) {
      if (/\.resources\.(requests|limits)(\.|$)/.test(path)) continue;
      const key = path.replace(/^(control|ca|injector)\./, 'component.');
      normalized.set(key, (normalized.get(key) ?? false) || hasComment);
    }
    expect([...normalized].filter(([, hasComment]) => !hasComment).map(([path]) => path)).toEqual([]);
  });
});
