import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { err, type Result } from '@tsmesh/common';
import type { V1Pod } from '@kubernetes/client-node';
import { buildApp, WEBHOOK_PATH } from './app.js';
import { injectionStatus } from './inject.js';
import { applyPatch, type PatchOperation } from './jsonpatch.js';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
import type { Labels, NamespaceLabels } from './namespaces.js';
import { staticNamespaceLabels } from './namespaces.js';
import { makeSettings } from './settings.js';
import { loadReview } from './testdata/fixtures.js';

const settings = makeSettings({ nativeSidecars: 'auto', kubernetesVersion: 'v1.30.1', image: 'registry.test/tsmesh:9' });
const quiet = pino({ level: 'silent' });

/** A NamespaceLabels fake that counts its lookups. */
class FakeNamespaces implements NamespaceLabels {
  readonly asked: string[] = [];
  constructor(private readonly table: Record<string, Labels>, private readonly failure?: string) {}
  async labels(namespace: string): Promise<Result<Labels>> {
    this.asked.push(namespace);
    if (this.failure) return err(injectorError(INJECTOR_ERRORS.NAMESPACE_LOOKUP, this.failure));
    return staticNamespaceLabels(this.table).labels(namespace);
  }
}

const enabledNamespaces = () => new FakeNamespaces({ shop: { 'tsmesh-injection': 'enabled' }, payments: { 'tsmesh-injection': 'enabled' }, plain: {} });

type Answer = {
  apiVersion: string;
  kind: string;
  response: { uid: string; allowed: boolean; patchType?: string; patch?: string; status?: { code: number; message: string }; warnings?: string[] };
};

describe('the injector webhook', () => {
  let app: FastifyInstance;
  let namespaces: FakeNamespaces;

  beforeEach(async () => {
    namespaces = enabledNamespaces();
    app = await buildApp({ settings, namespaceLabels: namespaces, logger: quiet, bodyLimit: 64 * 1024 });
  });
  afterEach(async () => {
    await app.close();
  });

  async function post(body: unknown): Promise<{ status: number; json: Answer }> {
    const response = await app.inject({ method: 'POST', url: WEBHOOK_PATH, payload: body as object });
    return { status: response.statusCode, json: response.json<Answer>() };
  }

  const decode = (patch: string | undefined): PatchOperation[] => JSON.parse(Buffer.from(patch ?? '', 'base64').toString('utf8')) as PatchOperation[];

  it('answers a bare pod with a base64 JSONPatch under the same uid', async () => {
    const review = loadReview('review-bare-pod');
    const { status, json } = await post(review);
    expect(status).toBe(200);
    expect(json.apiVersion).toBe('admission.k8s.io/v1');
    expect(json.kind).toBe('AdmissionReview');
    expect(json.response.uid).toBe(review.request.uid);
    expect(json.response.allowed).toBe(true);
    expect(json.response.patchType).toBe('JSONPatch');
    const patched = applyPatch(review.request.object, decode(json.response.patch));
    expect(patched.ok).toBe(true);
    const pod = patched.ok ? patched.value : ({} as V1Pod);
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['tsmesh-init', 'tsmesh-proxy']);
    expect(injectionStatus(pod)?.nativeSidecar).toBe(true);
    expect(namespaces.asked).toEqual(['shop']);
  });

  it('gives no patch when the patched pod is reviewed again', async () => {
    const review = loadReview('review-deployment-pod');
    const first = await post(review);
    const patched = applyPatch(review.request.object, decode(first.json.response.patch));
    if (!patched.ok) throw patched.error;
    const second = await post({ ...review, request: { ...review.request, object: patched.value } });
    expect(second.json.response).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('injects a pod of a Deployment, which has no name and a namespace only in the request', async () => {
    const review = loadReview('review-deployment-pod');
    delete review.request.object.metadata!.namespace;
    const { json } = await post(review);
    expect(json.response.allowed).toBe(true);
    const patched = applyPatch(review.request.object, decode(json.response.patch));
    expect(patched.ok && patched.value.spec?.containers.map((c) => c.name)).toEqual(['ledger', 'cache']);
    expect(namespaces.asked).toEqual(['payments']);
  });

  it('passes probe warnings on to the API server', async () => {
    const review = loadReview('review-deployment-pod');
    review.request.object.spec!.containers[1]!.readinessProbe = { tcpSocket: { port: 'missing' } };
    const { json } = await post(review);
    expect(json.response.warnings).toEqual(['tsmesh: readinessProbe of container cache is not rewritten: its port "missing" is not a port of the container']);
  });

  it('allows a pod of a namespace without the label, unchanged', async () => {
    const review = loadReview('review-bare-pod');
    review.request.namespace = 'plain';
    const { status, json } = await post(review);
    expect(status).toBe(200);
    expect(json.response).toEqual({ uid: review.request.uid, allowed: true });
  });

  it.each([
    ['hostNetwork', (pod: V1Pod) => void (pod.spec!.hostNetwork = true)],
    ['an opt-out label', (pod: V1Pod) => void (pod.metadata!.labels = { 'tsmesh.io/inject': 'false' })],
    ['an opt-out annotation', (pod: V1Pod) => void (pod.metadata!.annotations = { 'tsmesh.io/inject': 'false' })],
    ['a status annotation', (pod: V1Pod) => void (pod.metadata!.annotations = { 'tsmesh.io/status': '{}' })],
  ])('allows a pod with %s without a patch and without reading its namespace', async (_what, change) => {
    const review = loadReview('review-bare-pod');
    change(review.request.object);
    const { json } = await post(review);
    expect(json.response).toEqual({ uid: review.request.uid, allowed: true });
    expect(namespaces.asked).toEqual([]);
  });

  it('allows a pod in kube-system without a patch', async () => {
    const review = loadReview('review-bare-pod');
    review.request.namespace = 'kube-system';
    review.request.object.metadata!.annotations = { 'tsmesh.io/inject': 'true' };
    const { json } = await post(review);
    expect(json.response).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('injects a pod that asks for it without reading its namespace', async () => {
    const review = loadReview('review-bare-pod');
    review.request.namespace = 'elsewhere';
    review.request.object.metadata!.labels = { 'tsmesh.io/inject': 'true' };
    const { json } = await post(review);
    expect(json.response.patchType).toBe('JSONPatch');
    expect(namespaces.asked).toEqual([]);
  });

  it('denies a pod with a malformed annotation with 400 and a message naming it', async () => {
    const review = loadReview('review-bare-pod');
    review.request.object.metadata!.annotations = { 'tsmesh.io/exclude-outbound-ports': '70000' };
    const { status, json } = await post(review);
    expect(status).toBe(200);
    expect(json.response).toEqual({
      uid: review.request.uid,
      allowed: false,
      status: {
        code: 400,
        reason: 'BadRequest',
        message: 'annotation tsmesh.io/exclude-outbound-ports: "70000" is not valid (port 70000 is out of range 1-65535)',
      },
    });
  });

  it('denies a pod with inject: "maybe"', async () => {
    const review = loadReview('review-bare-pod');
    review.request.object.metadata!.annotations = { 'tsmesh.io/inject': 'maybe' };
    const { json } = await post(review);
    expect(json.response.allowed).toBe(false);
    expect(json.response.status?.message).toBe('annotation tsmesh.io/inject: "maybe" is not valid (expected "true" or "false")');
  });

  it('denies a pod whose volume name collides with ours', async () => {
    const review = loadReview('review-bare-pod');
    review.request.object.spec!.volumes = [{ name: 'tsmesh-trust-bundle', emptyDir: {} }];
    const { json } = await post(review);
    expect(json.response.status).toEqual({
      code: 400,
      reason: 'BadRequest',
      message: 'cannot inject the tsmesh sidecar: the pod already has a volume named tsmesh-trust-bundle',
    });
  });

  it('denies with 500 when the namespace labels cannot be read', async () => {
    await app.close();
    app = await buildApp({ settings, namespaceLabels: new FakeNamespaces({}, 'connection refused'), logger: quiet });
    const review = loadReview('review-bare-pod');
    const { json } = await post(review);
    expect(json.response.allowed).toBe(false);
    expect(json.response.status).toEqual({ code: 500, reason: 'InternalError', message: 'tsmesh injector: connection refused' });
  });

  it('denies an object that is not a pod it can read', async () => {
    const review = loadReview('review-bare-pod');
    (review.request as Record<string, unknown>).object = { apiVersion: 'v1', kind: 'Pod', spec: { containers: 'web' } };
    const { json } = await post(review);
    expect(json.response.status?.code).toBe(400);
    expect(json.response.status?.message).toBe('pod cannot be injected: spec.containers is not a list');
  });

  it('allows updates and other kinds unchanged', async () => {
    const update = loadReview('review-bare-pod');
    update.request.operation = 'UPDATE';
    expect((await post(update)).json.response).toEqual({ uid: update.request.uid, allowed: true });
    const service = loadReview('review-bare-pod');
    service.request.kind = { group: '', version: 'v1', kind: 'Service' };
    (service.request as Record<string, unknown>).object = { kind: 'Service', spec: {} };
    expect((await post(service)).json.response).toEqual({ uid: service.request.uid, allowed: true });
    const ephemeral = loadReview('review-bare-pod');
    ephemeral.request.subResource = 'ephemeralcontainers';
    expect((await post(ephemeral)).json.response).toEqual({ uid: ephemeral.request.uid, allowed: true });
  });

  it('refuses malformed JSON with a clear 400', async () => {
    const response = await app.inject({
      method: 'POST',
      url: WEBHOOK_PATH,
      headers: { 'content-type': 'application/json' },
      payload: '{"apiVersion": "admission.k8s.io/v1", "kind": ',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ code: 'FST_ERR_CTP_INVALID_JSON_BODY', message: 'request body is not valid JSON' });
  });

  it('refuses an empty body with 400', async () => {
    const response = await app.inject({ method: 'POST', url: WEBHOOK_PATH, headers: { 'content-type': 'application/json' }, payload: '' });
    expect(response.statusCode).toBe(400);
    expect(response.json<{ code: string }>().code).toBe('FST_ERR_CTP_EMPTY_JSON_BODY');
  });

  it.each([
    ['a JSON array', [1, 2], 'not an AdmissionReview: the body is not a JSON object'],
    ['the wrong apiVersion', { ...loadReview('review-bare-pod'), apiVersion: 'admission.k8s.io/v1beta1' }, 'not an AdmissionReview: apiVersion is "admission.k8s.io/v1beta1", expected "admission.k8s.io/v1"'],
    ['the wrong kind', { ...loadReview('review-bare-pod'), kind: 'Pod' }, 'not an AdmissionReview: kind is "Pod", expected "AdmissionReview"'],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 'not an AdmissionReview: it has no request'],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { object: {} } }, 'not an AdmissionReview: request.uid is missing'],
    ['a bad namespace', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', namespace: 7 } }, 'not an AdmissionReview: request.namespace is not a string'],
  ])('refuses %s with a 400 naming the problem', async (_what, body, message) => {
    const { status, json } = await post(body);
    expect(status).toBe(400);
    expect(json).toEqual({ code: 'TSMESH_ERR_INJECT_BAD_REVIEW', message });
  });

  it('refuses a body over the size limit with 413', async () => {
    const review = loadReview('review-bare-pod');
    review.request.object.metadata!.annotations = { padding: 'x'.repeat(70 * 1024) };
    const response = await app.inject({ method: 'POST', url: WEBHOOK_PATH, payload: review });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toEqual({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', message: 'request body is larger than the limit of 65536 bytes' });
  });

  it('has a 2 MiB body limit by default', async () => {
    const roomy = await buildApp({ settings, namespaceLabels: enabledNamespaces(), logger: quiet });
    const review = loadReview('review-bare-pod');
    review.request.object.metadata!.annotations = { padding: 'x'.repeat(1024 * 1024) };
    expect((await roomy.inject({ method: 'POST', url: WEBHOOK_PATH, payload: review })).statusCode).toBe(200);
    review.request.object.metadata!.annotations = { padding: 'x'.repeat(2 * 1024 * 1024) };
    expect((await roomy.inject({ method: 'POST', url: WEBHOOK_PATH, payload: review })).statusCode).toBe(413);
    await roomy.close();
  });

  it('refuses a text body with a 400 saying it is not an AdmissionReview', async () => {
    const response = await app.inject({ method: 'POST', url: WEBHOOK_PATH, headers: { 'content-type': 'text/plain' }, payload: 'hello' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ code: 'TSMESH_ERR_INJECT_BAD_REVIEW', message: 'not an AdmissionReview: the body is not a JSON object' });
  });

  it('refuses other media types with 415', async () => {
    const response = await app.inject({ method: 'POST', url: WEBHOOK_PATH, headers: { 'content-type': 'application/yaml' }, payload: 'a: 1' });
    expect(response.statusCode).toBe(415);
  });

  it('answers its own health checks', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz/ready' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/healthz/live' })).statusCode).toBe(200);
  });

  it('survives a lookup that throws instead of returning an error value', async () => {
    await app.close();
    const throwing: NamespaceLabels = {
      labels: async () => {
        throw new Error('boom');
      },
    };
    app = await buildApp({ settings, namespaceLabels: throwing, logger: quiet });
    const response = await app.inject({ method: 'POST', url: WEBHOOK_PATH, payload: loadReview('review-bare-pod') });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({ code: 'TSMESH_ERR_INJECT_REQUEST', message: 'internal error in the tsmesh injector' });
  });
});

describe('the webhook and tsmesh inject', () => {
  it('decide alike for a namespace with the label', async () => {
    const app = await buildApp({ settings, namespaceLabels: staticNamespaceLabels({}, { 'tsmesh-injection': 'enabled' }), logger: quiet });
    const review = loadReview('review-bare-pod');
    const response = await app.inject({ method: 'POST', url: WEBHOOK_PATH, payload: review });
    const patch = JSON.parse(Buffer.from(response.json<Answer>().response.patch ?? '', 'base64').toString()) as PatchOperation[];
    const { injectPod } = await import('./inject.js');
    const direct = injectPod(review.request.object, { name: 'shop', labels: { 'tsmesh-injection': 'enabled' } }, settings);
    expect(direct.ok && direct.value.patch).toEqual(patch);
    await app.close();
  });
});
