import { readFileSync } from 'node:fs';
import type { V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { injectPod } from './inject.js';
import { injectManifests, type InjectedManifests } from './manifests.js';
import { makeSettings } from './settings.js';

const settings = makeSettings({ nativeSidecars: false, image: 'registry.test/tsmesh:7' });
const workloads = readFileSync(new URL('./testdata/workloads.yaml', import.meta.url), 'utf8');

function run(text: string): InjectedManifests {
  const result = injectManifests(text, settings, 'test.yaml');
  if (!result.ok) throw result.error;
  return result.value;
}

function failure(text: string): string {
  const result = injectManifests(text, settings, 'test.yaml');
  if (result.ok) throw new Error('expected an error');
  return result.error.message;
}

const documents = (text: string) => parseAllDocuments(text) as unknown as Array<{ toJS(): Record<string, unknown> }>;

describe('injectManifests', () => {
  const out = run(workloads);
  const [deployment, cronJob, configMap] = documents(out.text).map((document) => document.toJS());

  it('injects the Deployment and the CronJob and reports them', () => {
    expect(out.injected).toEqual(['Deployment shop/web', 'CronJob shop/report']);
    expect(out.skipped).toEqual([]);
    expect(out.warnings).toEqual([]);
  });

  it('gives the Deployment template exactly what the webhook gives a pod made from it', () => {
    const original = documents(workloads)[0]!.toJS() as { spec: { template: V1PodTemplateSpec } };
    const webhook = injectPod(original.spec.template as V1Pod, { name: 'shop', labels: { 'tsmesh-injection': 'enabled' } }, settings);
    const template = (deployment as { spec: { template: V1PodTemplateSpec } }).spec.template;
    expect(webhook.ok && webhook.value.pod).toEqual(template);
    expect(template.spec?.containers.map((c) => c.name)).toEqual(['tsmesh-proxy', 'web']);
    expect(template.spec?.initContainers?.[0]?.args).toEqual(['iptables', '--proxy-uid', '1337', '--exclude-outbound-ports', '25']);
    expect(template.spec?.containers[1]?.readinessProbe?.httpGet?.path).toBe('/app-health/web/readyz');
    expect((deployment as { spec: { replicas: number } }).spec.replicas).toBe(2);
  });

  it('injects the pod template of the CronJob\'s job template', () => {
    const template = (cronJob as { spec: { jobTemplate: { spec: { template: V1PodTemplateSpec } } } }).spec.jobTemplate.spec.template;
    expect(template.spec?.containers.map((c) => c.name)).toEqual(['tsmesh-proxy', 'report']);
    expect(template.metadata?.annotations?.['tsmesh.io/status']).toBeDefined();
    expect(template.spec?.restartPolicy).toBe('OnFailure');
  });

  it('passes the ConfigMap through as written, comments included', () => {
    expect(configMap).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web-config', namespace: 'shop' }, data: { greeting: 'hello' } });
    expect(out.text).toContain('# Settings: left exactly as written, comments included.');
    expect(out.text).toContain('greeting: "hello"   # keep me');
  });

  it('changes nothing the second time', () => {
    const again = run(out.text);
    expect(again.injected).toEqual([]);
    expect(again.skipped).toEqual([
      'Deployment shop/web: the pod is already injected (annotation tsmesh.io/status is present)',
      'CronJob shop/report: the pod is already injected (annotation tsmesh.io/status is present)',
    ]);
    expect(documents(again.text).map((d) => d.toJS())).toEqual(documents(out.text).map((d) => d.toJS()));
  });

  it('leaves an object that opts out untouched', () => {
    const text = `apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db }
spec:
  template:
    metadata:
      annotations: { tsmesh.io/inject: "false" }
    spec:
      containers: [{ name: db, image: postgres }]
`;
    const result = run(text);
    expect(result.text).toBe(text);
    expect(result.skipped).toEqual(['StatefulSet default/db: the pod sets tsmesh.io/inject: "false"']);
  });

  it('injects bare Pods, DaemonSets, ReplicaSets and Jobs, and the items of a List', () => {
    const pod = (kind: string, extra = '') => `apiVersion: v1
kind: ${kind}
metadata: { name: x, namespace: team }
spec:
  ${kind === 'Pod' ? '' : `template:\n    spec:\n      containers: [{ name: app, image: app }]`}${kind === 'Pod' ? 'containers: [{ name: app, image: app }]' : ''}
${extra}`;
    const text = ['Pod', 'DaemonSet', 'ReplicaSet', 'Job'].map((kind) => pod(kind)).join('---\n');
    expect(run(text).injected).toEqual(['Pod team/x', 'DaemonSet team/x', 'ReplicaSet team/x', 'Job team/x']);
    const list = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: { name: a }
    spec: { containers: [{ name: app, image: app }] }
  - apiVersion: v1
    kind: Service
    metadata: { name: s }
`;
    const listed = run(list);
    expect(listed.injected).toEqual(['Pod default/a']);
    const items = (documents(listed.text)[0]!.toJS() as { items: V1Pod[] }).items;
    expect(items[0]?.spec?.containers.map((c) => c.name)).toEqual(['tsmesh-proxy', 'app']);
    expect(items[1]).toEqual({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } });
  });

  it('does not inject workloads in kube-system', () => {
    const text = `apiVersion: apps/v1
kind: DaemonSet
metadata: { name: agent, namespace: kube-system }
spec:
  template:
    spec:
      containers: [{ name: agent, image: agent }]
`;
    expect(run(text).skipped).toEqual(['DaemonSet kube-system/agent: namespace kube-system is never injected']);
  });

  it('fails on a bad annotation, naming the document, the object and the annotation', () => {
    const text = `kind: ConfigMap
apiVersion: v1
metadata: { name: c }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  template:
    metadata:
      annotations: { tsmesh.io/proxy-memory: "lots" }
    spec:
      containers: [{ name: web, image: web }]
`;
    expect(failure(text)).toBe(
      'test.yaml, document 2: Deployment shop/web: annotation tsmesh.io/proxy-memory: "lots" is not valid (not a Kubernetes resource quantity such as 100m or 128Mi)',
    );
  });

  it('fails on a workload without a pod template', () => {
    expect(failure('apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec: {}\n')).toBe(
      'test.yaml, document 1: Deployment default/d: no pod template at spec.template',
    );
  });

  it('fails on YAML that does not parse, naming the document', () => {
    expect(failure('kind: ConfigMap\n---\nkind: [unclosed\n')).toMatch(/^test\.yaml, document 2: /);
  });

  it('prints nothing for an empty stream and drops empty documents', () => {
    expect(run('').text).toBe('');
    expect(run('---\n---\nkind: ConfigMap\n').text).toBe('---\nkind: ConfigMap\n');
    expect(run('kind: A\n---\n---\nkind: B').text).toBe('kind: A\n---\nkind: B\n');
  });
});
