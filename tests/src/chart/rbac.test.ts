// Least privilege: what each control-plane ServiceAccount may do is exactly what its component
// uses (control/src/kube/README.md, control/src/status/README.md, ca/README.md,
// injector/README.md), nothing more.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { TRUST_BUNDLE_CONFIGMAP } from '@tsmesh/common';
import { WATCHED_RESOURCES } from '@tsmesh/control';
import { NAMESPACE, render, VALUE_SETS, type KubeObject } from './helm.js';
import { all, type Deployment, type RoleBinding, type RoleObject } from './objects.js';

/** One permission as `group/resource:verb`, with `[names]` when restricted to some objects. */
function grants(objects: readonly KubeObject[], serviceAccount: string, namespace = NAMESPACE): string[] {
  const bindings = [...all<RoleBinding>(objects, 'ClusterRoleBinding'), ...all<RoleBinding>(objects, 'RoleBinding')].filter((b) =>
    b.subjects.some((s) => s.kind === 'ServiceAccount' && s.name === serviceAccount && s.namespace === namespace),
  );
  const roles = [...all<RoleObject>(objects, 'ClusterRole'), ...all<RoleObject>(objects, 'Role')];
  const found: string[] = [];
  for (const binding of bindings) {
    const role = roles.find((r) => r.kind === binding.roleRef.kind && r.metadata.name === binding.roleRef.name);
    if (role === undefined) throw new Error(`${binding.kind} ${binding.metadata.name} refers to a missing ${binding.roleRef.kind} ${binding.roleRef.name}`);
    for (const rule of role.rules) {
      for (const url of rule.nonResourceURLs ?? []) for (const verb of rule.verbs) found.push(`url ${url}:${verb}`);
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) {
            const names = rule.resourceNames === undefined ? '' : `[${rule.resourceNames.join(',')}]`;
            found.push(`${group === '' ? 'core' : group}/${resource}${names}:${verb}`);
          }
        }
      }
    }
  }
  return found.sort();
}

/** The route status writer PUTs the status subresource (never PATCH, never the object itself). */
const ROUTE_STATUS = ['gateway.networking.k8s.io/grpcroutes/status:update', 'gateway.networking.k8s.io/httproutes/status:update'];
/** The AuthorizationPolicy status writer PUTs their status subresource (Accepted, or why not). */
const AUTHZ_STATUS = ['security.tsmesh.io/authorizationpolicies/status:update'];
/** The HTTPLocalRateLimitPolicy status writer likewise. */
const RATE_LIMIT_STATUS = ['policy.tsmesh.io/httplocalratelimitpolicies/status:update'];
/**
 * The trust bundle publisher lists, watches and updates only ConfigMaps of its one name (a field
 * selector, which resourceNames authorizes), and creates them (create cannot be limited by name).
 */
const TRUST_BUNDLE = [
  'core/configmaps:create',
  'core/configmaps[tsmesh-ca-root-cert]:list',
  'core/configmaps[tsmesh-ca-root-cert]:update',
  'core/configmaps[tsmesh-ca-root-cert]:watch',
];
const CONTROL = [
  ...ROUTE_STATUS,
  ...AUTHZ_STATUS,
  ...RATE_LIMIT_STATUS,
  ...TRUST_BUNDLE,
  'core/events:create',
  'core/namespaces:list', 'core/namespaces:watch',
  'core/pods:list', 'core/pods:watch',
  'core/serviceaccounts:list', 'core/serviceaccounts:watch',
  'core/services:list', 'core/services:watch',
  'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch',
  'gateway.networking.k8s.io/grpcroutes:list', 'gateway.networking.k8s.io/grpcroutes:watch',
  'gateway.networking.k8s.io/httproutes:list', 'gateway.networking.k8s.io/httproutes:watch',
  'security.tsmesh.io/authorizationpolicies:list', 'security.tsmesh.io/authorizationpolicies:watch',
  'security.tsmesh.io/peerauthentications:list', 'security.tsmesh.io/peerauthentications:watch',
  'policy.tsmesh.io/trafficpolicies:list', 'policy.tsmesh.io/trafficpolicies:watch',
  'policy.tsmesh.io/httplocalratelimitpolicies:list', 'policy.tsmesh.io/httplocalratelimitpolicies:watch',
  'gateway.networking.x-k8s.io/xbackendtrafficpolicies:list', 'gateway.networking.x-k8s.io/xbackendtrafficpolicies:watch',
].sort();
const CA = ['authentication.k8s.io/tokenreviews:create'];
/** With injector.tls.mode helm (or an existing Secret) it reads namespace labels only. */
const INJECTOR_FILES = ['core/namespaces:get'];
/** Self-managed (default): also its own webhook configuration's caBundle and its CA Secret, by name. */
const injectorGrants = (namespace: string) =>
  [
    ...INJECTOR_FILES,
    `admissionregistration.k8s.io/mutatingwebhookconfigurations[tsmesh-sidecar-injector-${namespace}]:get`,
    `admissionregistration.k8s.io/mutatingwebhookconfigurations[tsmesh-sidecar-injector-${namespace}]:patch`,
    'core/secrets:create',
    'core/secrets[tsmesh-injector-ca]:get',
    'core/secrets[tsmesh-injector-ca]:update',
  ].sort();

describe('RBAC', () => {
  let objects: KubeObject[];
  beforeAll(async () => {
    objects = await render();
  });

  test('the control plane may list and watch the mesh kinds, create events, update route status and keep the trust bundle ConfigMaps, nothing else', () => {
    expect(grants(objects, 'tsmesh-control')).toEqual(CONTROL);
  });

  test('with caRootCert.publish=false the control plane has no rights on ConfigMaps and is told not to publish', async () => {
    const rendered = await render({ set: { 'caRootCert.publish': 'false' } });
    expect(grants(rendered, 'tsmesh-control')).toEqual(CONTROL.filter((g) => !TRUST_BUNDLE.includes(g)));
    const args = all<Deployment>(rendered, 'Deployment').find((d) => d.metadata.name === 'tsmesh-control')?.spec.template.spec.containers[0]?.args ?? [];
    expect(args[args.indexOf('--trust-bundle-configmap') + 1]).toBe('off');
    const published = all<Deployment>(objects, 'Deployment').find((d) => d.metadata.name === 'tsmesh-control')?.spec.template.spec.containers[0]?.args ?? [];
    expect(published[published.indexOf('--trust-bundle-configmap') + 1]).toBe(TRUST_BUNDLE_CONFIGMAP);
  });

  test('the control plane grants are what discovery watches (WATCHED_RESOURCES) plus creating events, updating route status and the trust bundle ConfigMaps', () => {
    const watched = WATCHED_RESOURCES.flatMap((r) => {
      const match = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/([a-z]+)$/.exec(r.path);
      if (match === null) throw new Error(`unexpected path ${r.path}`);
      return ['list', 'watch'].map((verb) => `${match[1] ?? 'core'}/${match[2]}:${verb}`);
    });
    expect(grants(objects, 'tsmesh-control')).toEqual([...watched, 'core/events:create', ...ROUTE_STATUS, ...AUTHZ_STATUS, ...RATE_LIMIT_STATUS, ...TRUST_BUNDLE].sort());
  });

  test('the CA may create TokenReviews, nothing else', () => {
    expect(grants(objects, 'tsmesh-ca')).toEqual(CA);
  });

  test('the injector may get namespaces, and get and patch its own webhook configuration and CA Secret, nothing else', () => {
    expect(grants(objects, 'tsmesh-injector')).toEqual(injectorGrants(NAMESPACE));
  });

  test('the injector may create Secrets in the control-plane namespace only', () => {
    const role = all<RoleObject>(objects, 'Role').find((r) => r.metadata.name === 'tsmesh-injector');
    expect(role?.metadata.namespace).toBe(NAMESPACE);
    expect(all<RoleObject>(objects, 'ClusterRole').flatMap((r) => r.rules).some((rule) => rule.resources?.includes('secrets'))).toBe(false);
  });

  test.each([
    ['injector.tls.mode helm', { 'injector.tls.mode': 'helm' }],
    ['injector.tls.existingSecret', { 'injector.tls.existingSecret': 'mine', 'injector.tls.caBundle': '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----' }],
  ])('with %s the injector only gets namespaces (the chart owns the caBundle)', async (_name, set) => {
    expect(grants(await render({ set }), 'tsmesh-injector')).toEqual(INJECTOR_FILES);
  });

  test('no rule anywhere uses a wildcard', () => {
    for (const role of [...all<RoleObject>(objects, 'ClusterRole'), ...all<RoleObject>(objects, 'Role')]) {
      for (const rule of role.rules) {
        const words = [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs, ...(rule.resourceNames ?? []), ...(rule.nonResourceURLs ?? [])];
        expect([role.metadata.name, words.filter((w) => w.includes('*'))]).toEqual([role.metadata.name, []]);
      }
    }
  });

  test('every binding names a role of the chart and one of its ServiceAccounts', () => {
    const accounts = all(objects, 'ServiceAccount').map((a) => a.metadata.name);
    const roles = all(objects, 'ClusterRole').map((r) => r.metadata.name);
    for (const binding of all<RoleBinding>(objects, 'ClusterRoleBinding')) {
      expect(roles).toContain(binding.roleRef.name);
      expect(binding.subjects).toHaveLength(1);
      expect(accounts).toContain(binding.subjects[0]?.name);
      expect(binding.subjects[0]?.namespace).toBe(NAMESPACE);
    }
  });

  test('each Deployment runs as its own ServiceAccount', () => {
    const deployments = all<Deployment>(objects, 'Deployment');
    expect(deployments.map((d) => [d.metadata.name, d.spec.template.spec.serviceAccountName])).toEqual(
      deployments.map((d) => [d.metadata.name, d.metadata.name]),
    );
  });

  test.each(Object.entries(VALUE_SETS))('no value set widens the grants (%s)', async (_name, options) => {
    const rendered = await render(options);
    const namespace = options.namespace ?? NAMESPACE;
    expect(grants(rendered, 'tsmesh-control', namespace)).toEqual(CONTROL);
    expect(grants(rendered, 'tsmesh-ca', namespace)).toEqual(CA);
    expect(grants(rendered, 'tsmesh-injector', namespace)).toEqual(injectorGrants(namespace));
  });
});
