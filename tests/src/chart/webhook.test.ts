// The MutatingWebhookConfiguration: the fields the API server needs (injector/README.md, What a
// deployment needs) and which pods its selectors send to the injector, worked out the way the
// API server matches label selectors.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { NAMESPACE, render, type KubeObject } from './helm.js';
import { all, one, type Deployment, type LabelSelector, type MutatingWebhook, type WebhookConfiguration } from './objects.js';

const CONFIG = `tsmesh-sidecar-injector-${NAMESPACE}`;
const PEM = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----';

/** Label selector semantics of the API server (matchLabels and In/NotIn/Exists/DoesNotExist). */
function matches(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === undefined) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    if (operator === 'In' && !(has && values.includes(value as string))) return false;
    if (operator === 'NotIn' && has && values.includes(value as string)) return false;
    if (operator === 'Exists' && !has) return false;
    if (operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** The webhooks a new pod is sent to. The API server labels every namespace with its name. */
function calledFor(webhooks: readonly MutatingWebhook[], namespace: string, namespaceLabels: Record<string, string>, podLabels: Record<string, string>): string[] {
  const nsLabels = { ...namespaceLabels, 'kubernetes.io/metadata.name': namespace };
  return webhooks.filter((w) => matches(w.namespaceSelector, nsLabels) && matches(w.objectSelector, podLabels)).map((w) => w.name);
}

describe('the injector webhook', () => {
  let objects: KubeObject[];
  let webhooks: MutatingWebhook[];
  beforeAll(async () => {
    objects = await render();
    webhooks = one<WebhookConfiguration>(objects, 'MutatingWebhookConfiguration', CONFIG).webhooks;
  });

  test('is one configuration with a namespace webhook and an opt-in webhook', () => {
    expect(all(objects, 'MutatingWebhookConfiguration')).toHaveLength(1);
    expect(webhooks.map((w) => w.name)).toEqual(['namespace.sidecar-injector.tsmesh.io', 'object.sidecar-injector.tsmesh.io']);
  });

  test('asks for AdmissionReview v1, declares no side effects, fails closed within 10 seconds', () => {
    for (const webhook of webhooks) {
      expect(webhook.admissionReviewVersions).toEqual(['v1']);
      expect(webhook.sideEffects).toBe('None');
      expect(webhook.failurePolicy).toBe('Fail');
      expect(webhook.timeoutSeconds).toBeGreaterThanOrEqual(1);
      expect(webhook.timeoutSeconds).toBeLessThanOrEqual(10);
      expect(webhook.reinvocationPolicy).toBe('IfNeeded');
    }
  });

  test('is called for the creation of pods only', () => {
    for (const webhook of webhooks) {
      expect(webhook.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
    }
  });

  test('calls the injector Service on port 15017 at /inject, which reaches the injector container', () => {
    for (const webhook of webhooks) {
      expect(webhook.clientConfig.service).toEqual({ name: 'tsmesh-injector', namespace: NAMESPACE, path: '/inject', port: 15017 });
      // Self-managed by default: the injector sets caBundle itself (--manage-webhook-cert).
      expect(webhook.clientConfig.caBundle).toBeUndefined();
    }
    const service = one<KubeObject & { spec: { ports: { port: number; targetPort: string }[]; selector: Record<string, string> } }>(objects, 'Service', 'tsmesh-injector');
    expect(service.spec.ports).toEqual([expect.objectContaining({ port: 15017, targetPort: 'webhook' })]);
    const deployment = one<Deployment>(objects, 'Deployment', 'tsmesh-injector');
    expect(deployment.spec.template.metadata.labels).toEqual(expect.objectContaining(service.spec.selector));
    expect(deployment.spec.template.spec.containers[0]?.ports).toEqual([{ name: 'webhook', containerPort: 15017, protocol: 'TCP' }]);
  });

  test.each([
    ['a pod in a namespace with injection enabled', 'shop', { 'tsmesh-injection': 'enabled' }, {}, ['namespace.sidecar-injector.tsmesh.io']],
    ['a pod that opts out in an enabled namespace', 'shop', { 'tsmesh-injection': 'enabled' }, { 'tsmesh.io/inject': 'false' }, []],
    ['a pod that opts in, in an enabled namespace (called once)', 'shop', { 'tsmesh-injection': 'enabled' }, { 'tsmesh.io/inject': 'true' }, ['namespace.sidecar-injector.tsmesh.io']],
    ['a pod that opts in, in a namespace without the label', 'shop', {}, { 'tsmesh.io/inject': 'true' }, ['object.sidecar-injector.tsmesh.io']],
    ['a pod that opts in, in a namespace with injection disabled', 'shop', { 'tsmesh-injection': 'disabled' }, { 'tsmesh.io/inject': 'true' }, ['object.sidecar-injector.tsmesh.io']],
    ['a pod in a namespace without the label', 'shop', {}, {}, []],
    ['a pod in a namespace with injection disabled', 'shop', { 'tsmesh-injection': 'disabled' }, {}, []],
    ['a pod of kube-system, even enabled and opted in', 'kube-system', { 'tsmesh-injection': 'enabled' }, { 'tsmesh.io/inject': 'true' }, []],
    ['a pod of kube-public that opts in', 'kube-public', {}, { 'tsmesh.io/inject': 'true' }, []],
    ['a pod of the control-plane namespace, even enabled and opted in', NAMESPACE, { 'tsmesh-injection': 'enabled' }, { 'tsmesh.io/inject': 'true' }, []],
  ])('sends %s to the right webhook', (_case, namespace, namespaceLabels, podLabels, expected) => {
    expect(calledFor(webhooks, namespace, namespaceLabels, podLabels)).toEqual(expected);
  });

  test('never sends the control plane its own pods', () => {
    for (const deployment of all<Deployment>(objects, 'Deployment')) {
      expect(calledFor(webhooks, NAMESPACE, { 'tsmesh-injection': 'enabled' }, deployment.spec.template.metadata.labels)).toEqual([]);
      expect(deployment.spec.template.metadata.labels['tsmesh.io/inject']).toBe('false');
    }
  });

  test('leaves out the namespaces of injector.webhook.excludedNamespaces too', async () => {
    const rendered = await render({ set: { 'injector.webhook.excludedNamespaces': '{monitoring,vault}' } });
    const hooks = one<WebhookConfiguration>(rendered, 'MutatingWebhookConfiguration', CONFIG).webhooks;
    expect(calledFor(hooks, 'monitoring', { 'tsmesh-injection': 'enabled' }, {})).toEqual([]);
    expect(calledFor(hooks, 'vault', {}, { 'tsmesh.io/inject': 'true' })).toEqual([]);
    expect(calledFor(hooks, 'shop', { 'tsmesh-injection': 'enabled' }, {})).toEqual(['namespace.sidecar-injector.tsmesh.io']);
  });

  test('takes failurePolicy Ignore and a shorter timeout from the values', async () => {
    const rendered = await render({ set: { 'injector.webhook.failurePolicy': 'Ignore', 'injector.webhook.timeoutSeconds': '5' } });
    for (const webhook of one<WebhookConfiguration>(rendered, 'MutatingWebhookConfiguration', CONFIG).webhooks) {
      expect([webhook.failurePolicy, webhook.timeoutSeconds]).toEqual(['Ignore', 5]);
    }
  });
});

describe('the injector serving certificate from the values', () => {
  test('is self-managed by default: no certificate Secret, no caBundle, the injector told which configuration to keep', async () => {
    const rendered = await render();
    expect(rendered.some((o) => o.kind === 'Secret' && o.metadata.name.startsWith('tsmesh-injector'))).toBe(false);
    const deployment = one<Deployment>(rendered, 'Deployment', 'tsmesh-injector');
    expect((deployment.spec.template.spec.volumes ?? []).map((v) => v.name)).not.toContain('tls');
    const args = deployment.spec.template.spec.containers[0]?.args ?? [];
    expect(args[args.indexOf('--manage-webhook-cert') + 1]).toBe(CONFIG);
    expect(args).not.toContain('--tls-cert');
  });

  test('with injector.tls.mode helm, the chart makes the certificate and sets caBundle', async () => {
    const rendered = await render({ set: { 'injector.tls.mode': 'helm' } });
    expect(rendered.some((o) => o.kind === 'Secret' && o.metadata.name === 'tsmesh-injector-tls')).toBe(true);
    for (const webhook of one<WebhookConfiguration>(rendered, 'MutatingWebhookConfiguration', CONFIG).webhooks) {
      expect(webhook.clientConfig.caBundle).toMatch(/^[A-Za-z0-9+/]+=*$/);
    }
    const args = one<Deployment>(rendered, 'Deployment', 'tsmesh-injector').spec.template.spec.containers[0]?.args ?? [];
    expect(args).toContain('--tls-cert');
    expect(args).not.toContain('--manage-webhook-cert');
  });

  test('refuses an unknown injector.tls.mode', async () => {
    await expect(render({ set: { 'injector.tls.mode': 'cert-manager' } })).rejects.toThrow(/mode/);
  });

  test('uses an existing Secret and the given CA bundle, and makes no Secret of its own', async () => {
    const rendered = await render({ set: { 'injector.tls.existingSecret': 'my-webhook-tls', 'injector.tls.caBundle': PEM } });
    expect(rendered.some((o) => o.kind === 'Secret' && o.metadata.name === 'tsmesh-injector-tls')).toBe(false);
    for (const webhook of one<WebhookConfiguration>(rendered, 'MutatingWebhookConfiguration', CONFIG).webhooks) {
      expect(Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString()).toBe(PEM);
    }
    const volumes = one<Deployment>(rendered, 'Deployment', 'tsmesh-injector').spec.template.spec.volumes ?? [];
    expect(volumes.find((v) => v.name === 'tls')?.secret?.secretName).toBe('my-webhook-tls');
  });

  test('refuses an existing Secret without a CA bundle, saying what is missing', async () => {
    await expect(render({ set: { 'injector.tls.existingSecret': 'my-webhook-tls' } })).rejects.toThrow(
      /injector\.tls\.caBundle is required with injector\.tls\.existingSecret/,
    );
  });

  test("leaves caBundle to cert-manager when the webhook has cert-manager's inject-ca-from annotation", async () => {
    const rendered = await render({
      set: { 'injector.tls.existingSecret': 'my-webhook-tls', 'injector.webhook.annotations.cert-manager\\.io/inject-ca-from': `${NAMESPACE}/tsmesh-injector` },
    });
    const config = one<WebhookConfiguration>(rendered, 'MutatingWebhookConfiguration', CONFIG);
    expect(config.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `${NAMESPACE}/tsmesh-injector` });
    for (const webhook of config.webhooks) expect(webhook.clientConfig.caBundle).toBeUndefined();
  });
});
