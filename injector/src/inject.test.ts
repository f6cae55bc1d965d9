import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { injectPod, injectionStatus, type Injection } from './inject.js';
import { applyPatch } from './jsonpatch.js';
import type { NamespaceInfo } from './policy.js';
import { makeSettings, type InjectionSettings } from './settings.js';
import { loadPod, podWith } from './testdata/fixtures.js';

const enabled = (name: string): NamespaceInfo => ({ name, labels: { 'tsmesh-injection': 'enabled' } });
const classic = makeSettings({ nativeSidecars: false, image: 'registry.test/tsmesh:1.2.3' });
const native = makeSettings({ nativeSidecars: true, image: 'registry.test/tsmesh:1.2.3' });

function inject(pod: V1Pod, settings: InjectionSettings = classic, namespace = enabled('shop')): Injection {
  const result = injectPod(pod, namespace, settings);
  if (!result.ok) throw result.error;
  return result.value;
}

function errorOf(pod: V1Pod, settings: InjectionSettings = classic, namespace = enabled('shop')): string {
  const result = injectPod(pod, namespace, settings);
  if (result.ok) throw new Error(`expected an error, got injected=${result.value.injected}`);
  return result.error.message;
}

function container(pod: V1Pod, name: string): V1Container {
  const found = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === name);
  if (!found) throw new Error(`no container ${name}`);
  return found;
}

function env(c: V1Container, name: string) {
  return c.env?.find((variable) => variable.name === name);
}

describe('injectPod on a bare pod (regular containers)', () => {
  const original = loadPod('review-bare-pod');
  const result = inject(original);
  const pod = result.pod;
  const proxy = container(pod, 'tsmesh-proxy');
  const init = container(pod, 'tsmesh-init');

  it('injects and says why', () => {
    expect(result.injected).toBe(true);
    expect(result.reason).toBe('namespace shop has tsmesh-injection=enabled');
    expect(result.warnings).toEqual([]);
  });

  it('puts tsmesh-init first among init containers, running tsmesh iptables as root with only NET_ADMIN and NET_RAW', () => {
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['tsmesh-init']);
    expect(init.image).toBe('registry.test/tsmesh:1.2.3');
    expect(init.command).toEqual(['tsmesh']);
    expect(init.args).toEqual(['iptables', '--proxy-uid', '1337']);
    expect(init.securityContext).toEqual({
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    });
  });

  it('puts tsmesh-proxy first among the containers, with a postStart hook that waits for readiness', () => {
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['tsmesh-proxy', 'web']);
    expect(proxy.command).toEqual(['tsmesh']);
    // No CPU limit by default: the sidecar's default number of event loops.
    expect(proxy.args).toEqual(['proxy', '--concurrency', '1']);
    expect(proxy.restartPolicy).toBeUndefined();
    expect(proxy.lifecycle).toEqual({
      postStart: { exec: { command: ['node', '-e', expect.stringContaining("fetch('http://127.0.0.1:15020/healthz/ready'")] } },
      // A plain sidecar is stopped with the app: preStop holds its SIGTERM back one drain period.
      preStop: { exec: { command: ['node', '-e', 'setTimeout(() => {}, 5000)'] } },
    });
    expect(proxy.startupProbe).toBeUndefined();
  });

  it('runs the sidecar as 1337 without privileges on a read-only root', () => {
    expect(proxy.securityContext).toEqual({
      runAsUser: 1337,
      runAsGroup: 1337,
      runAsNonRoot: true,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('declares the sidecar ports and probes it on :15020', () => {
    expect(proxy.ports).toEqual([
      { name: 'tsmesh-outbound', containerPort: 15001, protocol: 'TCP' },
      { name: 'tsmesh-inbound', containerPort: 15006, protocol: 'TCP' },
      { name: 'tsmesh-health', containerPort: 15020, protocol: 'TCP' },
    ]);
    expect(proxy.readinessProbe?.httpGet).toEqual({ path: '/healthz/ready', port: 15020, scheme: 'HTTP' });
    expect(proxy.livenessProbe?.httpGet).toEqual({ path: '/healthz/live', port: 15020, scheme: 'HTTP' });
  });

  it('gives the sidecar its identity through the downward API and its addresses as values', () => {
    const fieldPath = (name: string) => env(proxy, name)?.valueFrom?.fieldRef?.fieldPath;
    expect(fieldPath('TSMESH_POD_NAME')).toBe('metadata.name');
    expect(fieldPath('TSMESH_POD_NAMESPACE')).toBe('metadata.namespace');
    expect(fieldPath('TSMESH_POD_IP')).toBe('status.podIP');
    expect(fieldPath('TSMESH_SERVICE_ACCOUNT')).toBe('spec.serviceAccountName');
    expect(env(proxy, 'TSMESH_CA_ADDR')?.value).toBe('tsmesh-ca.tsmesh-system.svc:15012');
    expect(env(proxy, 'TSMESH_CONTROL_ADDR')?.value).toBe('tsmesh-control.tsmesh-system.svc:15010');
    expect(env(proxy, 'TSMESH_CA_TOKEN_FILE')?.value).toBe('/var/run/secrets/tsmesh.io/ca-token/token');
    expect(env(proxy, 'TSMESH_TRUST_BUNDLE_FILE')?.value).toBe('/var/run/secrets/tsmesh.io/trust-bundle/root-cert.pem');
    expect(env(proxy, 'TSMESH_LOG_LEVEL')?.value).toBe('info');
    expect(env(proxy, 'TSMESH_OPAQUE_PORTS')).toBeUndefined();
    expect(env(proxy, 'TSMESH_APP_PROBES')).toBeUndefined();
    expect(env(proxy, 'TSMESH_TRUST_DOMAIN')).toBeUndefined();
    expect(proxy.env?.filter((variable) => variable.name.startsWith('TSMESH_TRACING'))).toEqual([]);
  });

  it('adds the projected CA token (audience tsmesh-ca, one hour) and the trust bundle, mounted read-only', () => {
    expect(pod.spec?.volumes).toEqual([
      {
        name: 'tsmesh-ca-token',
        projected: { sources: [{ serviceAccountToken: { audience: 'tsmesh-ca', expirationSeconds: 3600, path: 'token' } }] },
      },
      { name: 'tsmesh-trust-bundle', configMap: { name: 'tsmesh-ca-root-cert' } },
    ]);
    expect(proxy.volumeMounts).toEqual([
      { name: 'tsmesh-ca-token', mountPath: '/var/run/secrets/tsmesh.io/ca-token', readOnly: true },
      { name: 'tsmesh-trust-bundle', mountPath: '/var/run/secrets/tsmesh.io/trust-bundle', readOnly: true },
    ]);
  });

  it('uses the default sidecar resources', () => {
    expect(proxy.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } });
  });

  it('records what it injected in tsmesh.io/status and points kubectl at the app container', () => {
    expect(injectionStatus(pod)).toEqual({
      version: '0.1.0',
      initContainers: ['tsmesh-init'],
      containers: ['tsmesh-proxy'],
      volumes: ['tsmesh-ca-token', 'tsmesh-trust-bundle'],
      nativeSidecar: false,
      rewrittenProbes: [],
    });
    expect(pod.metadata?.annotations?.['kubectl.kubernetes.io/default-container']).toBe('web');
  });

  it('leaves the rest of the pod and its input alone', () => {
    expect(container(pod, 'web')).toEqual(original.spec?.containers[0]);
    expect(pod.spec?.securityContext).toEqual({});
    expect(pod.metadata?.labels).toEqual({ app: 'web' });
    expect(original).toEqual(loadPod('review-bare-pod'));
  });

  it('returns a patch that turns the original into the injected pod', () => {
    const patched = applyPatch(original, result.patch);
    expect(patched.ok && patched.value).toEqual(pod);
  });

  it('does nothing to the injected pod a second time', () => {
    const again = inject(pod);
    expect(again.injected).toBe(false);
    expect(again.patch).toEqual([]);
    expect(again.reason).toMatch(/already injected/);
  });
});

describe('injectPod with native sidecars', () => {
  const original = loadPod('review-deployment-pod');
  const result = inject(original, native, enabled('payments'));
  const pod = result.pod;

  it('orders tsmesh-init, then tsmesh-proxy with restartPolicy Always, then the app init containers', () => {
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['tsmesh-init', 'tsmesh-proxy', 'migrate']);
    expect(container(pod, 'tsmesh-proxy').restartPolicy).toBe('Always');
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['ledger', 'cache']);
  });

  it('holds the application with a startup probe instead of a postStart hook', () => {
    const proxy = container(pod, 'tsmesh-proxy');
    expect(proxy.lifecycle).toBeUndefined();
    expect(proxy.startupProbe).toEqual({
      httpGet: { path: '/healthz/ready', port: 15020, scheme: 'HTTP' },
      periodSeconds: 1,
      timeoutSeconds: 3,
      failureThreshold: 600,
    });
  });

  it('does not set the default-container annotation, the sidecar not being a container', () => {
    expect(pod.metadata?.annotations?.['kubectl.kubernetes.io/default-container']).toBeUndefined();
    expect(injectionStatus(pod)?.nativeSidecar).toBe(true);
    expect(injectionStatus(pod)?.initContainers).toEqual(['tsmesh-init', 'tsmesh-proxy']);
    expect(injectionStatus(pod)?.containers).toEqual([]);
  });

  it('has no startup probe when the pod does not hold the application', () => {
    const loose = inject(podWith({ 'tsmesh.io/hold-application-until-proxy-starts': 'false' }), native);
    expect(container(loose.pod, 'tsmesh-proxy').startupProbe).toBeUndefined();
    expect(container(loose.pod, 'tsmesh-proxy').lifecycle).toBeUndefined();
  });

  it('round-trips through its patch and is not injected twice', () => {
    const patched = applyPatch(original, result.patch);
    expect(patched.ok && patched.value).toEqual(pod);
    expect(inject(pod, native, enabled('payments')).patch).toEqual([]);
  });

  it('rewrites the probes of the app\'s own native sidecars, which start after tsmesh-proxy', () => {
    const pod = loadPod('review-bare-pod');
    pod.spec!.initContainers = [
      { name: 'setup', image: 'setup' },
      { name: 'logs', image: 'fluent', restartPolicy: 'Always', ports: [{ name: 'admin', containerPort: 2020 }], readinessProbe: { httpGet: { path: '/ready', port: 'admin' } } },
    ];
    const out = inject(pod, native);
    expect(out.pod.spec?.initContainers?.map((c) => c.name)).toEqual(['tsmesh-init', 'tsmesh-proxy', 'setup', 'logs']);
    expect(container(out.pod, 'logs').readinessProbe).toEqual({ httpGet: { path: '/app-health/logs/readyz', port: 15020, scheme: 'HTTP' } });
    expect(JSON.parse(env(container(out.pod, 'tsmesh-proxy'), 'TSMESH_APP_PROBES')?.value ?? '{}')).toEqual({
      'logs/readyz': { httpGet: { path: '/ready', port: 2020 } },
    });
    expect(container(out.pod, 'setup')).toEqual({ name: 'setup', image: 'setup' });
    const patched = applyPatch(pod, out.patch);
    expect(patched.ok && patched.value).toEqual(out.pod);
  });

  it('decides native or not from the Kubernetes version when set to auto', () => {
    const at = (version: string | undefined) =>
      injectionStatus(inject(loadPod('review-bare-pod'), makeSettings({ kubernetesVersion: version })).pod)?.nativeSidecar;
    expect(at('v1.29.0')).toBe(true);
    expect(at('v1.31.4-gke.1')).toBe(true);
    expect(at('1.28')).toBe(false);
    expect(at(undefined)).toBe(false);
  });
});

describe('injectPod on a pod made from a Deployment template', () => {
  const original = loadPod('review-deployment-pod');
  const result = inject(original, classic, enabled('payments'));
  const pod = result.pod;

  it('injects a pod that has only a generateName', () => {
    expect(result.injected).toBe(true);
    expect(pod.metadata?.name).toBeUndefined();
    expect(pod.metadata?.generateName).toBe('ledger-7c9d8f6b5d-');
    expect(pod.metadata?.ownerReferences).toEqual(original.metadata?.ownerReferences);
  });

  it('keeps the pod\'s own init containers after tsmesh-init, untouched', () => {
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['tsmesh-init', 'migrate']);
    expect(container(pod, 'migrate')).toEqual(original.spec?.initContainers?.[0]);
  });

  it('keeps the pod\'s volumes, env and security contexts', () => {
    expect(pod.spec?.volumes?.map((v) => v.name)).toEqual(['config', 'kube-api-access-x7k2p', 'tsmesh-ca-token', 'tsmesh-trust-bundle']);
    expect(pod.spec?.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 2000 });
    expect(container(pod, 'ledger').securityContext).toEqual({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(container(pod, 'ledger').env).toEqual([{ name: 'MODE', value: 'server' }]);
    expect(container(pod, 'ledger').volumeMounts).toEqual([{ name: 'config', mountPath: '/etc/ledger' }]);
  });

  it('keeps other annotations and passes tsmesh.io/opaque-ports to the sidecar', () => {
    expect(pod.metadata?.annotations?.['prometheus.io/scrape']).toBe('true');
    expect(env(container(pod, 'tsmesh-proxy'), 'TSMESH_OPAQUE_PORTS')?.value).toBe('5432');
  });

  it('rewrites HTTP, TCP and gRPC probes to the sidecar\'s app-health endpoints, keeping their timing', () => {
    const ledger = container(pod, 'ledger');
    expect(ledger.livenessProbe).toEqual({
      httpGet: { path: '/app-health/ledger/livez', port: 15020, scheme: 'HTTP' },
      initialDelaySeconds: 5,
      periodSeconds: 10,
      timeoutSeconds: 2,
      failureThreshold: 3,
    });
    expect(ledger.readinessProbe).toEqual({ httpGet: { path: '/app-health/ledger/readyz', port: 15020, scheme: 'HTTP' }, periodSeconds: 5 });
    expect(ledger.startupProbe).toEqual({
      httpGet: { path: '/app-health/ledger/startupz', port: 15020, scheme: 'HTTP' },
      failureThreshold: 30,
      periodSeconds: 2,
    });
    expect(container(pod, 'cache').readinessProbe?.httpGet?.path).toBe('/app-health/cache/readyz');
  });

  it('leaves exec probes alone', () => {
    expect(container(pod, 'cache').livenessProbe).toEqual({ exec: { command: ['redis-cli', 'ping'] }, periodSeconds: 10 });
  });

  it('hands the original probes to the sidecar with named ports resolved', () => {
    const probes: unknown = JSON.parse(env(container(pod, 'tsmesh-proxy'), 'TSMESH_APP_PROBES')?.value ?? '{}');
    expect(probes).toEqual({
      'ledger/livez': {
        httpGet: { path: '/live', port: 8080, scheme: 'HTTP', httpHeaders: [{ name: 'X-Probe', value: '1' }] },
        timeoutSeconds: 2,
      },
      'ledger/readyz': { tcpSocket: { port: 8080 } },
      'ledger/startupz': { grpc: { port: 9090, service: 'ledger.v1.Ledger' } },
      'cache/readyz': { tcpSocket: { port: 6379 } },
    });
    expect(injectionStatus(pod)?.rewrittenProbes).toEqual(['ledger/livez', 'ledger/readyz', 'ledger/startupz', 'cache/readyz']);
  });

  it('keeps every probe as it is when the pod opts out of rewriting', () => {
    const opted = loadPod('review-deployment-pod');
    opted.metadata!.annotations = { 'tsmesh.io/rewrite-app-probes': 'false' };
    const out = inject(opted, classic, enabled('payments')).pod;
    expect(container(out, 'ledger')).toEqual(opted.spec?.containers[0]);
    expect(env(container(out, 'tsmesh-proxy'), 'TSMESH_APP_PROBES')).toBeUndefined();
  });

  it('leaves a probe on an unknown named port alone and warns about it', () => {
    const odd = loadPod('review-deployment-pod');
    odd.spec!.containers[1]!.readinessProbe = { tcpSocket: { port: 'nope' } };
    const out = inject(odd, classic, enabled('payments'));
    expect(container(out.pod, 'cache').readinessProbe).toEqual({ tcpSocket: { port: 'nope' } });
    expect(out.warnings).toEqual(['tsmesh: readinessProbe of container cache is not rewritten: its port "nope" is not a port of the container']);
  });

  it('round-trips through its patch and is not injected twice', () => {
    const patched = applyPatch(original, result.patch);
    expect(patched.ok && patched.value).toEqual(pod);
    expect(inject(pod, classic, enabled('payments')).injected).toBe(false);
  });
});

describe('injectPod skips', () => {
  const skipped = (pod: V1Pod, namespace = enabled('shop'), settings = classic) => {
    const result = inject(pod, settings, namespace);
    expect(result.injected).toBe(false);
    expect(result.patch).toEqual([]);
    expect(result.pod).toEqual(pod);
    return result.reason;
  };

  it('skips a pod with hostNetwork', () => {
    const pod = loadPod('review-bare-pod');
    pod.spec!.hostNetwork = true;
    expect(skipped(pod)).toBe('the pod uses hostNetwork');
  });

  it('skips hostNetwork even when the pod asks for injection', () => {
    const pod = podWith({ 'tsmesh.io/inject': 'true' });
    pod.spec!.hostNetwork = true;
    expect(skipped(pod)).toBe('the pod uses hostNetwork');
  });

  it('skips a pod already injected', () => {
    expect(skipped(podWith({ 'tsmesh.io/status': '{}' }))).toMatch(/already injected/);
  });

  it('skips a pod opted out by label', () => {
    expect(skipped(podWith({}, { 'tsmesh.io/inject': 'false' }))).toBe('the pod sets tsmesh.io/inject: "false"');
  });

  it('skips a pod opted out by annotation', () => {
    expect(skipped(podWith({ 'tsmesh.io/inject': 'false' }))).toBe('the pod sets tsmesh.io/inject: "false"');
  });

  it('skips the system namespaces and the control plane\'s, even when the pod asks', () => {
    const asking = podWith({ 'tsmesh.io/inject': 'true' });
    expect(skipped(asking, enabled('kube-system'))).toBe('namespace kube-system is never injected');
    expect(skipped(asking, enabled('kube-public'))).toBe('namespace kube-public is never injected');
    expect(skipped(asking, enabled('tsmesh-system'))).toBe("namespace tsmesh-system is the control plane's");
    const elsewhere = makeSettings({ controlPlaneNamespace: 'mesh', nativeSidecars: false });
    expect(skipped(asking, enabled('mesh'), elsewhere)).toBe("namespace mesh is the control plane's");
  });

  it('skips a malformed pod in kube-system rather than denying it', () => {
    expect(skipped(podWith({ 'tsmesh.io/inject': 'maybe' }), enabled('kube-system'))).toMatch(/never injected/);
  });

  it('skips a pod whose namespace is not labelled, or labelled disabled', () => {
    expect(skipped(loadPod('review-bare-pod'), { name: 'shop', labels: {} })).toBe('namespace shop has no tsmesh-injection label');
    expect(skipped(loadPod('review-bare-pod'), { name: 'shop', labels: { 'tsmesh-injection': 'disabled' } })).toBe(
      'namespace shop has tsmesh-injection=disabled',
    );
  });

  it('injects a pod that asks by label or annotation in a namespace that is not labelled', () => {
    const off = { name: 'shop', labels: {} };
    expect(inject(podWith({}, { 'tsmesh.io/inject': 'true' }), classic, off).injected).toBe(true);
    expect(inject(podWith({ 'tsmesh.io/inject': 'true' }), classic, off).injected).toBe(true);
  });

  it('refuses a label and an annotation that disagree', () => {
    expect(errorOf(podWith({ 'tsmesh.io/inject': 'true' }, { 'tsmesh.io/inject': 'false' }))).toBe(
      'label tsmesh.io/inject: "false" and annotation tsmesh.io/inject: "true" disagree',
    );
  });
});

describe('injectPod annotations', () => {
  const proxyOf = (annotations: Record<string, string>) => container(inject(podWith(annotations)).pod, 'tsmesh-proxy');
  const initOf = (annotations: Record<string, string>) => container(inject(podWith(annotations)).pod, 'tsmesh-init');

  it.each([
    ['tsmesh.io/exclude-outbound-ports', '443, 8443', ['--exclude-outbound-ports', '443,8443']],
    ['tsmesh.io/exclude-inbound-ports', '9100', ['--exclude-inbound-ports', '9100']],
    ['tsmesh.io/include-inbound-ports', '*', ['--include-inbound-ports', '*']],
    ['tsmesh.io/include-inbound-ports', '', ['--include-inbound-ports', '']],
    ['tsmesh.io/exclude-outbound-ip-ranges', '169.254.169.254/32,fd00::/8', ['--exclude-outbound-ip-ranges', '169.254.169.254/32,fd00::/8']],
    ['tsmesh.io/include-outbound-ip-ranges', '10.0.0.0/8, 10.96.0.1', ['--include-outbound-ip-ranges', '10.0.0.0/8,10.96.0.1']],
  ])('passes %s: "%s" to tsmesh iptables', (annotation, value, flags) => {
    expect(initOf({ [annotation]: value }).args).toEqual(['iptables', '--proxy-uid', '1337', ...flags]);
  });

  it('passes the flags in a fixed order whatever the order of the annotations', () => {
    expect(
      initOf({ 'tsmesh.io/include-outbound-ip-ranges': '10.0.0.0/8', 'tsmesh.io/exclude-outbound-ports': '25' }).args,
    ).toEqual(['iptables', '--proxy-uid', '1337', '--exclude-outbound-ports', '25', '--include-outbound-ip-ranges', '10.0.0.0/8']);
  });

  it('ignores an empty exclude list', () => {
    expect(initOf({ 'tsmesh.io/exclude-outbound-ports': ' ' }).args).toEqual(['iptables', '--proxy-uid', '1337']);
  });

  it('takes the sidecar resources from the annotations', () => {
    expect(
      proxyOf({
        'tsmesh.io/proxy-cpu': '250m',
        'tsmesh.io/proxy-memory': '256Mi',
        'tsmesh.io/proxy-cpu-limit': '2',
        'tsmesh.io/proxy-memory-limit': '512Mi',
      }).resources,
    ).toEqual({ requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '2', memory: '512Mi' } });
  });

  it.each([
    ['100m', '1'],
    ['1', '1'],
    ['1500m', '2'],
    ['3000m', '3'],
    ['2', '2'],
    ['16', '4'],
  ])('runs one event loop per core of a CPU limit of %s: --concurrency %s', (limit, loops) => {
    expect(proxyOf({ 'tsmesh.io/proxy-cpu-limit': limit }).args).toEqual(['proxy', '--concurrency', loops]);
  });

  it('raises the default memory limit to a larger annotated request', () => {
    expect(proxyOf({ 'tsmesh.io/proxy-memory': '2Gi' }).resources).toEqual({
      requests: { cpu: '100m', memory: '2Gi' },
      limits: { memory: '2Gi' },
    });
  });

  it('sets the sidecar log level and opaque ports', () => {
    const proxy = proxyOf({ 'tsmesh.io/log-level': 'debug', 'tsmesh.io/opaque-ports': '3306, 5432' });
    expect(env(proxy, 'TSMESH_LOG_LEVEL')?.value).toBe('debug');
    expect(env(proxy, 'TSMESH_OPAQUE_PORTS')?.value).toBe('3306,5432');
  });

  it('drops the postStart hook when the pod does not hold the application', () => {
    expect(proxyOf({ 'tsmesh.io/hold-application-until-proxy-starts': 'false' }).lifecycle?.postStart).toBeUndefined();
    expect(proxyOf({ 'tsmesh.io/hold-application-until-proxy-starts': 'false' }).lifecycle?.preStop).toBeDefined();
    expect(proxyOf({ 'tsmesh.io/hold-application-until-proxy-starts': 'true' }).lifecycle).toBeDefined();
  });

  it.each([
    ['tsmesh.io/inject', 'maybe', 'expected "true" or "false"'],
    ['tsmesh.io/exclude-outbound-ports', '70000', 'port 70000 is out of range 1-65535'],
    ['tsmesh.io/exclude-outbound-ports', '0', 'port 0 is out of range 1-65535'],
    ['tsmesh.io/exclude-inbound-ports', 'http', '"http" is not a port number'],
    ['tsmesh.io/include-inbound-ports', '80,,443', 'empty entry in the list'],
    ['tsmesh.io/include-inbound-ports', '*,80', '"*" must be the only entry'],
    ['tsmesh.io/exclude-outbound-ip-ranges', '10.0.0.0/33', '"10.0.0.0/33" has a prefix length outside 0-32'],
    ['tsmesh.io/include-outbound-ip-ranges', '10.0.0/8', '"10.0.0/8" is not an IP address or CIDR'],
    ['tsmesh.io/include-outbound-ip-ranges', 'fd00::/129', '"fd00::/129" has a prefix length outside 0-128'],
    ['tsmesh.io/opaque-ports', '5432-5440', '"5432-5440" is not a port number'],
    ['tsmesh.io/proxy-cpu', 'lots', 'not a Kubernetes resource quantity such as 100m or 128Mi'],
    ['tsmesh.io/proxy-memory', '128MB', 'not a Kubernetes resource quantity such as 100m or 128Mi'],
    ['tsmesh.io/proxy-cpu-limit', '-1', 'not a Kubernetes resource quantity such as 100m or 128Mi'],
    ['tsmesh.io/proxy-memory-limit', '1 Gi', 'not a Kubernetes resource quantity such as 100m or 128Mi'],
    ['tsmesh.io/log-level', 'verbose', 'expected one of fatal, error, warn, info, debug, trace, silent'],
    ['tsmesh.io/rewrite-app-probes', 'no', 'expected "true" or "false"'],
    ['tsmesh.io/hold-application-until-proxy-starts', 'True', 'expected "true" or "false"'],
  ])('refuses %s: "%s", naming the annotation and the value', (annotation, value, why) => {
    expect(errorOf(podWith({ [annotation]: value }))).toBe(`annotation ${annotation}: "${value}" is not valid (${why})`);
  });

  it('refuses a malformed inject label', () => {
    expect(errorOf(podWith({}, { 'tsmesh.io/inject': 'yes' }))).toBe('label tsmesh.io/inject: "yes" is not valid (expected "true" or "false")');
  });

  it('names every bad annotation at once', () => {
    expect(errorOf(podWith({ 'tsmesh.io/proxy-cpu': 'x', 'tsmesh.io/log-level': 'loud' }))).toBe(
      'annotation tsmesh.io/proxy-cpu: "x" is not valid (not a Kubernetes resource quantity such as 100m or 128Mi); ' +
        'annotation tsmesh.io/log-level: "loud" is not valid (expected one of fatal, error, warn, info, debug, trace, silent)',
    );
  });

  it('refuses a request above its limit', () => {
    expect(errorOf(podWith({ 'tsmesh.io/proxy-cpu': '2', 'tsmesh.io/proxy-cpu-limit': '500m' }))).toBe(
      'annotation tsmesh.io/proxy-cpu: "2" is more than tsmesh.io/proxy-cpu-limit: "500m"',
    );
  });

  it('does not read the other annotations of a pod it skips', () => {
    const result = injectPod(podWith({ 'tsmesh.io/inject': 'false', 'tsmesh.io/proxy-cpu': 'x' }), enabled('shop'), classic);
    expect(result.ok && result.value.injected).toBe(false);
  });
});

describe('injectPod settings passed on to the sidecar', () => {
  const proxyWith = (settings: Partial<InjectionSettings>): V1Container =>
    container(inject(loadPod('review-bare-pod'), makeSettings({ nativeSidecars: false, ...settings })).pod, 'tsmesh-proxy');
  const tracingEnv = (proxy: V1Container) => proxy.env?.filter((variable) => variable.name.startsWith('TSMESH_TRACING'));

  it('gives the sidecar the tracing provider, endpoint and sample rate', () => {
    const proxy = proxyWith({ proxyTracing: { provider: 'zipkin', endpoint: 'http://zipkin.tsmesh-system:9411/api/v2/spans', sampleRate: 0.25 } });
    expect(tracingEnv(proxy)).toEqual([
      { name: 'TSMESH_TRACING', value: 'zipkin' },
      { name: 'TSMESH_TRACING_ENDPOINT', value: 'http://zipkin.tsmesh-system:9411/api/v2/spans' },
      { name: 'TSMESH_TRACING_SAMPLE_RATE', value: '0.25' },
    ]);
  });

  it('leaves out the endpoint and rate that are not set, so the sidecar uses its defaults', () => {
    expect(tracingEnv(proxyWith({ proxyTracing: { provider: 'otlp' } }))).toEqual([{ name: 'TSMESH_TRACING', value: 'otlp' }]);
    expect(tracingEnv(proxyWith({ proxyTracing: { provider: 'none', sampleRate: 0 } }))).toEqual([
      { name: 'TSMESH_TRACING', value: 'none' },
      { name: 'TSMESH_TRACING_SAMPLE_RATE', value: '0' },
    ]);
  });

  it('gives the sidecar TSMESH_ACCESS_LOG only when the access log is set either way', () => {
    expect(env(proxyWith({ proxyAccessLog: true }), 'TSMESH_ACCESS_LOG')?.value).toBe('on');
    expect(env(proxyWith({ proxyAccessLog: false }), 'TSMESH_ACCESS_LOG')?.value).toBe('off');
    expect(env(proxyWith({}), 'TSMESH_ACCESS_LOG')).toBeUndefined();
  });

  it('gives the sidecar the trust domain, so that it asks the CA for an identity of that domain', () => {
    expect(env(proxyWith({ trustDomain: 'example.org' }), 'TSMESH_TRUST_DOMAIN')?.value).toBe('example.org');
  });
});

describe('injectPod name collisions', () => {
  it('refuses a pod that already has a volume named like one of ours', () => {
    const pod = loadPod('review-bare-pod');
    pod.spec!.volumes = [{ name: 'tsmesh-ca-token', emptyDir: {} }];
    expect(errorOf(pod)).toBe('cannot inject the tsmesh sidecar: the pod already has a volume named tsmesh-ca-token');
  });

  it('refuses a pod with a container named tsmesh-proxy or tsmesh-init', () => {
    const pod = loadPod('review-bare-pod');
    pod.spec!.initContainers = [{ name: 'tsmesh-init', image: 'x' }];
    expect(errorOf(pod)).toBe('cannot inject the tsmesh sidecar: the pod already has a container named tsmesh-init');
  });

  it('refuses a container that binds a port the sidecar listens on, or uses one of its port names', () => {
    const pod = loadPod('review-bare-pod');
    pod.spec!.containers[0]!.ports = [
      { containerPort: 15020 },
      { name: 'tsmesh-inbound', containerPort: 7000 },
      { containerPort: 15001, protocol: 'UDP' },
    ];
    expect(errorOf(pod)).toBe(
      'cannot inject the tsmesh sidecar: container web declares port 15020, which the tsmesh sidecar uses; ' +
        'container web already has a port named tsmesh-inbound',
    );
  });
});

describe('injectPod input checks', () => {
  it('refuses an object without containers', () => {
    expect(errorOf({ metadata: { name: 'x' }, spec: {} } as V1Pod)).toBe('pod cannot be injected: spec.containers is missing');
  });

  it('refuses an annotation that is not a string', () => {
    const pod = { metadata: { annotations: { 'tsmesh.io/inject': true } }, spec: { containers: [{ name: 'a' }] } };
    expect(errorOf(pod as unknown as V1Pod)).toBe('pod cannot be injected: metadata.annotations["tsmesh.io/inject"] is not a string');
  });

  it('injects a pod with no metadata at all when its namespace is enabled', () => {
    const pod = { spec: { containers: [{ name: 'a', image: 'a' }] } } as V1Pod;
    const result = inject(pod);
    expect(result.injected).toBe(true);
    const patched = applyPatch(pod, result.patch);
    expect(patched.ok && patched.value).toEqual(result.pod);
  });
});

describe('Prometheus scrape annotations', () => {
  const scrapeOf = (pod: V1Pod) => {
    const a = pod.metadata?.annotations ?? {};
    return Object.fromEntries(Object.entries(a).filter(([name]) => name.startsWith('prometheus.io/')));
  };

  it('points prometheus.io/scrape, /port and /path at the sidecar metrics on 15020', () => {
    expect(scrapeOf(inject(podWith({})).pod)).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15020', 'prometheus.io/path': '/metrics' });
    expect(scrapeOf(inject(podWith({}), native).pod)).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15020', 'prometheus.io/path': '/metrics' });
  });

  it('adds them in the patch the webhook returns', () => {
    const out = inject(podWith({}));
    const patched = applyPatch(podWith({}), out.patch);
    if (!patched.ok) throw patched.error;
    expect(scrapeOf(patched.value)['prometheus.io/port']).toBe('15020');
  });

  it("leaves an application's own scrape annotations exactly as they are", () => {
    const own = { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090', 'prometheus.io/path': '/stats' };
    expect(scrapeOf(inject(podWith(own)).pod)).toEqual(own);
    // One of them is enough to say the application has its own scrape settings.
    expect(scrapeOf(inject(podWith({ 'prometheus.io/port': '8081' })).pod)).toEqual({ 'prometheus.io/port': '8081' });
    expect(scrapeOf(inject(podWith({ 'prometheus.io/path': '/m' })).pod)).toEqual({ 'prometheus.io/path': '/m' });
  });

  it('keeps a pod that asked not to be scraped unscraped', () => {
    expect(scrapeOf(inject(podWith({ 'prometheus.io/scrape': 'false' })).pod)).toEqual({ 'prometheus.io/scrape': 'false' });
  });
});
