// The three control-plane Deployments (and the optional Zipkin): restricted security contexts,
// probes, resources, disruption budgets and spreading, and command lines that the real programs
// accept (each is parsed by the component's own config.ts).
import { describe, expect, test } from '@jest/globals';
import { parseCaConfig } from '@tsmesh/ca';
import { controlPlaneConfig } from '@tsmesh/control';
import { injectorConfig, injectPod } from '@tsmesh/injector';
import { NAMESPACE, render, VALUE_SETS, type KubeObject } from './helm.js';
import { all, containersOf, flagValue, one, type Container, type Deployment } from './objects.js';

type Service = KubeObject & { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] } };

const COMPONENTS = [
  { name: 'tsmesh-control', command: 'control', port: 15010 },
  { name: 'tsmesh-ca', command: 'ca', port: 15012 },
  { name: 'tsmesh-injector', command: 'injector', port: 15017 },
] as const;

const renders = new Map<string, Promise<KubeObject[]>>();
function rendered(valueSet: string): Promise<KubeObject[]> {
  let objects = renders.get(valueSet);
  if (objects === undefined) {
    objects = render(VALUE_SETS[valueSet]);
    renders.set(valueSet, objects);
  }
  return objects;
}

function container(objects: readonly KubeObject[], deployment: string): Container {
  const found = one<Deployment>(objects, 'Deployment', deployment).spec.template.spec.containers;
  expect(found).toHaveLength(1);
  return found[0] as Container;
}

/** The environment a container gets from its `env` (literal values only). */
function envOf(c: Container): Record<string, string> {
  return Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']));
}

describe.each(Object.keys(VALUE_SETS))('with %s', (valueSet) => {
  test('every container runs restricted: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', async () => {
    const objects = await rendered(valueSet);
    const containers = containersOf(objects);
    expect(containers).toHaveLength(all(objects, 'Deployment').length);
    expect(containers.length).toBeGreaterThanOrEqual(3);
    for (const { where, container: c, pod } of containers) {
      const sc = c.securityContext ?? {};
      expect([where, sc]).toEqual([
        where,
        expect.objectContaining({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        }),
      ]);
      expect([where, [1337, 65532]]).toEqual([where, expect.arrayContaining([sc['runAsUser']])]);
      expect([where, sc['privileged']]).toEqual([where, undefined]);
      expect([where, pod.securityContext]).toEqual([where, expect.objectContaining({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })]);
      expect(pod).not.toHaveProperty('hostNetwork');
      expect(pod).not.toHaveProperty('hostPID');
    }
  });

  test('every container has readiness and liveness probes on its own port, requests and a memory limit', async () => {
    const objects = await rendered(valueSet);
    for (const { name, port } of COMPONENTS) {
      const c = container(objects, name);
      const portName = c.ports?.find((p) => p.containerPort === port)?.name;
      expect([name, portName]).toEqual([name, expect.any(String)]);
      for (const probe of [c.readinessProbe, c.livenessProbe]) {
        const action = (probe?.['httpGet'] ?? probe?.['tcpSocket']) as { port?: unknown } | undefined;
        expect([name, action?.port]).toEqual([name, portName]);
      }
      expect([name, c.resources?.requests]).toEqual([name, { cpu: expect.any(String), memory: expect.any(String) }]);
      expect([name, c.resources?.limits?.['memory']]).toEqual([name, expect.any(String)]);
    }
  });

  test('every component Deployment has a PodDisruptionBudget over exactly its pods and prefers spreading them over nodes', async () => {
    const objects = await rendered(valueSet);
    for (const { name } of COMPONENTS) {
      const deployment = one<Deployment>(objects, 'Deployment', name);
      const pdb = one<KubeObject & { spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } } }>(
        objects, 'PodDisruptionBudget', deployment.metadata.name,
      );
      expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
      expect(pdb.spec.maxUnavailable).toBe(1);
      expect(deployment.spec.template.spec.affinity?.podAntiAffinity).toEqual({
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: deployment.spec.selector.matchLabels } } },
        ],
      });
      expect(deployment.spec.template.metadata.labels).toEqual(expect.objectContaining(deployment.spec.selector.matchLabels));
    }
  });

  test('each component runs its tsmesh command, and the real command-line parser accepts its flags', async () => {
    const objects = await rendered(valueSet);
    const args = (name: string): string[] => container(objects, name).args ?? [];
    for (const { name, command } of COMPONENTS) expect(args(name)[0]).toBe(command);
    expect(() => controlPlaneConfig(args('tsmesh-control').slice(1), {})).not.toThrow();
    expect(() => parseCaConfig(args('tsmesh-ca').slice(1), envOf(container(objects, 'tsmesh-ca')))).not.toThrow();
    expect(() => injectorConfig(args('tsmesh-injector').slice(1), envOf(container(objects, 'tsmesh-injector')))).not.toThrow();
  });
});

/** The injector's settings, parsed by the injector's own config.ts from the rendered arguments and environment. */
function injectorSettings(objects: readonly KubeObject[]) {
  const injector = container(objects, 'tsmesh-injector');
  return injectorConfig((injector.args ?? []).slice(1), envOf(injector)).settings;
}

/** The literal environment of the sidecar the injector with these settings adds to a plain pod. */
function sidecarEnv(settings: ReturnType<typeof injectorSettings>): Record<string, string> {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop' }, spec: { containers: [{ name: 'web', image: 'web:1' }] } };
  const result = injectPod(pod, { name: 'shop', labels: { 'tsmesh-injection': 'enabled' } }, settings);
  if (!result.ok) throw result.error;
  const spec = result.value.pod.spec;
  const proxy = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].find((c) => c.name === 'tsmesh-proxy');
  return Object.fromEntries((proxy?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
}

const tracingEnv = (env: Record<string, string>) => Object.fromEntries(Object.entries(env).filter(([name]) => name.startsWith('TSMESH_TRACING')));

describe('the control plane runs as the sidecars expect it', () => {
  test('in-cluster discovery (no --kubeconfig), the TLS files of its Secret, debug on loopback, the trust domain and root namespace', async () => {
    for (const valueSet of ['default values', 'another namespace with trust bundles published']) {
      const objects = await rendered(valueSet);
      const control = container(objects, 'tsmesh-control');
      const namespace = valueSet === 'default values' ? NAMESPACE : 'mesh';
      const config = controlPlaneConfig((control.args ?? []).slice(1), envOf(control));
      expect(config.discovery.source).toEqual({ kind: 'kubernetes', kubeconfig: undefined });
      expect(control.args).not.toContain('--kubeconfig');
      expect(config.distribution.listen).toEqual({ host: '0.0.0.0', port: 15010 });
      expect(config.distribution.debugListen).toEqual({ host: '127.0.0.1', port: 15011 });
      expect(config.distribution.trustDomain).toBe(valueSet === 'default values' ? 'cluster.local' : 'example.org');
      expect(config.distribution.rootNamespace).toBe(namespace);
      // Each file is a key of the mounted Secret tsmesh-control-tls.
      const pod = one<Deployment>(objects, 'Deployment', 'tsmesh-control').spec.template.spec;
      const volumes = pod.volumes as { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] } }[];
      for (const file of [config.distribution.tlsCertFile, config.distribution.tlsKeyFile, config.distribution.trustBundleFile]) {
        const mount = control.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
        const volume = volumes.find((v) => v.name === mount?.name);
        expect([file, volume?.secret?.secretName]).toEqual([file, 'tsmesh-control-tls']);
        expect(volume?.secret?.items?.map((i) => i.path)).toContain(file.slice((mount?.mountPath.length ?? 0) + 1));
      }
      expect([config.distribution.tlsCertFile, config.distribution.tlsKeyFile, config.distribution.trustBundleFile].map((f) => f.split('/').pop())).toEqual([
        'tls.crt',
        'tls.key',
        'ca.crt',
      ]);
    }
  });

  test("the injector's TSMESH_CONTROL_ADDR names the control plane's Service and port", async () => {
    for (const valueSet of ['default values', 'another namespace with trust bundles published']) {
      const objects = await rendered(valueSet);
      const address = sidecarEnv(injectorSettings(objects))['TSMESH_CONTROL_ADDR'] ?? '';
      const [host, port] = address.split(':');
      const [name, namespace, svc] = (host ?? '').split('.');
      expect(svc).toBe('svc');
      const service = one<Service>(objects, 'Service', name ?? '', namespace);
      expect(service.spec.ports.map((p) => p.port)).toContain(Number(port));
      const deployment = one<Deployment>(objects, 'Deployment', 'tsmesh-control');
      expect(deployment.spec.template.metadata.labels).toEqual(expect.objectContaining(service.spec.selector));
      const targetPort = service.spec.ports.find((p) => p.port === Number(port))?.targetPort;
      expect(container(objects, 'tsmesh-control').ports?.find((p) => p.name === targetPort)?.containerPort).toBe(15010);
    }
  });

  test('probes are TCP connections to 15010, which the control plane opens only once discovery has its first snapshot', async () => {
    const control = container(await rendered('default values'), 'tsmesh-control');
    for (const probe of [control.readinessProbe, control.livenessProbe]) expect(probe?.['tcpSocket']).toEqual({ port: 'control' });
  });

  test('control.tls.existingSecret replaces the generated Secret', async () => {
    const objects = await render({ set: { 'control.tls.existingSecret': 'corp-control-tls' } });
    expect(objects.some((o) => o.kind === 'Secret' && o.metadata.name === 'tsmesh-control-tls')).toBe(false);
    const volumes = one<Deployment>(objects, 'Deployment', 'tsmesh-control').spec.template.spec.volumes ?? [];
    expect(volumes.find((v) => v.name === 'tls')?.secret?.secretName).toBe('corp-control-tls');
  });
});

describe('tracing reaches the sidecars', () => {
  test('by default the injector gets no tracing flags and the sidecars no TSMESH_TRACING* variables', async () => {
    const settings = injectorSettings(await rendered('default values'));
    expect(settings.proxyTracing).toBeUndefined();
    expect(tracingEnv(sidecarEnv(settings))).toEqual({});
  });

  test('proxy.tracing becomes --proxy-tracing* flags of the injector and TSMESH_TRACING* variables of every sidecar', async () => {
    const injector = container(await rendered('tracing to zipkin'), 'tsmesh-injector');
    expect(flagValue(injector.args, '--proxy-tracing')).toBe('zipkin');
    const settings = injectorSettings(await rendered('tracing to zipkin'));
    expect(settings.proxyTracing).toEqual({ provider: 'zipkin', endpoint: 'http://zipkin.observability:9411', sampleRate: 0.25 });
    expect(tracingEnv(sidecarEnv(settings))).toEqual({
      TSMESH_TRACING: 'zipkin',
      TSMESH_TRACING_ENDPOINT: 'http://zipkin.observability:9411',
      TSMESH_TRACING_SAMPLE_RATE: '0.25',
    });
  });

  test('zipkin.enabled alone points every sidecar at the chart\'s Zipkin Service', async () => {
    for (const [valueSet, namespace] of [['zipkin on', NAMESPACE], ['another namespace, zipkin on', 'mesh']] as const) {
      const options = valueSet === 'zipkin on' ? VALUE_SETS['zipkin on'] : { namespace, set: { 'global.controlPlaneNamespace': namespace, 'zipkin.enabled': 'true' } };
      const objects = await render(options);
      const env = tracingEnv(sidecarEnv(injectorSettings(objects)));
      expect(env).toEqual({ TSMESH_TRACING: 'zipkin', TSMESH_TRACING_ENDPOINT: `http://zipkin.${namespace}:9411/api/v2/spans`, TSMESH_TRACING_SAMPLE_RATE: '0.01' });
      const service = one<Service>(objects, 'Service', 'zipkin', namespace);
      expect(service.spec.ports.map((p) => p.port)).toEqual([9411]);
    }
  });

  test('a provider set explicitly wins over zipkin.enabled', async () => {
    const none = injectorSettings(await render({ set: { 'zipkin.enabled': 'true', 'proxy.tracing.provider': 'none', 'proxy.tracing.endpoint': 'http://ignored:9411' } }));
    expect(none.proxyTracing).toEqual({ provider: 'none', sampleRate: 0.01 });
    const otlp = injectorSettings(await render({ set: { 'zipkin.enabled': 'true', 'proxy.tracing.provider': 'otlp', 'proxy.tracing.sampleRate': '0.1' } }));
    expect(otlp.proxyTracing).toEqual({ provider: 'otlp', sampleRate: 0.1 });
    const zipkin = injectorSettings(await render({ set: { 'zipkin.enabled': 'true', 'proxy.tracing.provider': 'zipkin', 'proxy.tracing.endpoint': 'https://zipkin.example:443/api/v2/spans' } }));
    expect(zipkin.proxyTracing).toEqual({ provider: 'zipkin', endpoint: 'https://zipkin.example:443/api/v2/spans', sampleRate: 0.01 });
  });
});

describe('the access log reaches the sidecars', () => {
  test('is off by default: no --proxy-access-log flag, no TSMESH_ACCESS_LOG (the sidecar\'s default: off)', async () => {
    const objects = await rendered('default values');
    expect(container(objects, 'tsmesh-injector').args).not.toContain('--proxy-access-log');
    expect(sidecarEnv(injectorSettings(objects))['TSMESH_ACCESS_LOG']).toBeUndefined();
  });

  test('proxy.accessLog=true becomes --proxy-access-log on and TSMESH_ACCESS_LOG=on in every sidecar', async () => {
    const objects = await render({ set: { 'proxy.accessLog': 'true' } });
    expect(flagValue(container(objects, 'tsmesh-injector').args, '--proxy-access-log')).toBe('on');
    expect(sidecarEnv(injectorSettings(objects))['TSMESH_ACCESS_LOG']).toBe('on');
  });
});

describe('the optional Zipkin', () => {
  test('is off by default', async () => {
    expect((await rendered('default values')).some((o) => o.metadata.name === 'zipkin')).toBe(false);
  });

  test('runs openzipkin/zipkin with in-memory storage on 9411, probed on /health, never injected', async () => {
    const objects = await rendered('zipkin on');
    const deployment = one<Deployment>(objects, 'Deployment', 'zipkin');
    const zipkin = container(objects, 'zipkin');
    expect(zipkin.image).toMatch(/^openzipkin\/zipkin:/);
    expect(envOf(zipkin)).toEqual(expect.objectContaining({ STORAGE_TYPE: 'mem', MEM_MAX_SPANS: '100000' }));
    expect(zipkin.ports?.find((p) => p.name === 'http')?.containerPort).toBe(9411);
    for (const probe of [zipkin.readinessProbe, zipkin.livenessProbe]) expect(probe?.['httpGet']).toEqual({ path: '/health', port: 'http' });
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.template.metadata.labels['tsmesh.io/inject']).toBe('false');
    const service = one<Service>(objects, 'Service', 'zipkin');
    expect(deployment.spec.template.metadata.labels).toEqual(expect.objectContaining(service.spec.selector));
    expect(service.spec.ports).toEqual([expect.objectContaining({ port: 9411, targetPort: 'http' })]);
  });
});

describe('the values reach the programs', () => {
  test('the CA uses TokenReview (no token file), the chart root, an emptyDir state and the trust domain', async () => {
    const objects = await rendered('default values');
    const ca = container(objects, 'tsmesh-ca');
    const config = parseCaConfig((ca.args ?? []).slice(1), envOf(ca));
    expect(config.tokenFile).toBeUndefined();
    expect(config.trustDomain).toBe('cluster.local');
    expect([config.defaultTtlSeconds, config.maxTtlSeconds]).toEqual([24 * 3600, 48 * 3600]);
    const pod = one<Deployment>(objects, 'Deployment', 'tsmesh-ca').spec.template.spec;
    const mountOf = (file: string | undefined) => ca.volumeMounts?.find((m) => file?.startsWith(`${m.mountPath}/`))?.name;
    expect(pod.volumes?.find((v) => v.name === mountOf(config.rootCertFile))?.secret?.secretName).toBe('tsmesh-ca-root');
    expect(mountOf(config.rootKeyFile)).toBe(mountOf(config.rootCertFile));
    expect(pod.volumes?.find((v) => v.name === ca.volumeMounts?.find((m) => m.mountPath === config.stateDir)?.name)).toEqual({ name: 'state', emptyDir: {} });
  });

  test('in another namespace the CA gets that trust domain and a serving name for its Service there', async () => {
    const objects = await rendered('another namespace with trust bundles published');
    const ca = container(objects, 'tsmesh-ca');
    const config = parseCaConfig((ca.args ?? []).slice(1), envOf(ca));
    expect(config.trustDomain).toBe('example.org');
    expect(config.servingSans).toEqual(expect.arrayContaining([{ type: 'dns', value: 'tsmesh-ca.mesh.svc' }]));
    const injector = injectorConfig((container(objects, 'tsmesh-injector').args ?? []).slice(1), {});
    expect(injector.settings).toEqual(
      expect.objectContaining({ controlPlaneNamespace: 'mesh', caAddress: 'tsmesh-ca.mesh.svc:15012', controlAddress: 'tsmesh-control.mesh.svc:15010' }),
    );
  });

  test('the injector gets the image, the control-plane namespace and the proxy defaults', async () => {
    const objects = await rendered('default values');
    const injector = container(objects, 'tsmesh-injector');
    const config = injectorConfig((injector.args ?? []).slice(1), envOf(injector));
    expect(config.settings).toEqual(
      expect.objectContaining({
        image: injector.image,
        imagePullPolicy: 'IfNotPresent',
        controlPlaneNamespace: NAMESPACE,
        nativeSidecars: 'auto',
        proxyLogLevel: 'info',
        proxyResources: expect.objectContaining({ cpu: '100m', memory: '128Mi', memoryLimit: '1Gi' }),
      }),
    );
    expect(config.tlsCertFile).toBeUndefined();
    expect(config.managedCert).toEqual({
      webhookConfiguration: `tsmesh-sidecar-injector-${NAMESPACE}`,
      service: 'tsmesh-injector',
      namespace: NAMESPACE,
      caSecret: 'tsmesh-injector-ca',
    });
    expect(Object.keys(envOf(injector))).toEqual([]);
  });

  test('proxy.nativeSidecars true becomes --native-sidecars true', async () => {
    const injector = container(await rendered('native sidecars on'), 'tsmesh-injector');
    expect(flagValue(injector.args, '--native-sidecars')).toBe('true');
    expect(injectorConfig((injector.args ?? []).slice(1), {}).settings).toEqual(expect.objectContaining({ nativeSidecars: true }));
  });

  test('global.trustDomain reaches the sidecars as TSMESH_TRUST_DOMAIN, so that they ask the CA for identities of its domain', async () => {
    for (const [valueSet, domain] of [['default values', 'cluster.local'], ['another namespace with trust bundles published', 'example.org']] as const) {
      const settings = injectorSettings(await rendered(valueSet));
      expect(settings.trustDomain).toBe(domain);
      expect(sidecarEnv(settings)['TSMESH_TRUST_DOMAIN']).toBe(domain);
    }
  });

  test('replicas come from the values', async () => {
    for (const valueSet of ['default values', 'two replicas of everything']) {
      const objects = await rendered(valueSet);
      const expected = valueSet === 'default values' ? 1 : 2;
      for (const { name } of COMPONENTS) expect([name, one<Deployment>(objects, 'Deployment', name).spec.replicas]).toEqual([name, expected]);
    }
  });

  test('an affinity in the values replaces the default anti-affinity', async () => {
    const objects = await render({ set: { 'control.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key': 'pool',
      'control.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator': 'Exists' } });
    const affinity = one<Deployment>(objects, 'Deployment', 'tsmesh-control').spec.template.spec.affinity as Record<string, unknown>;
    expect(Object.keys(affinity)).toEqual(['nodeAffinity']);
  });

  test('the image tag defaults to the chart appVersion and follows image.tag', async () => {
    const byDefault = container(await rendered('default values'), 'tsmesh-control');
    expect(byDefault.image).toBe('ghcr.io/tsmesh/tsmesh:0.1.0');
    const tagged = container(await render({ set: { 'image.repository': 'registry.local:5000/tsmesh', 'image.tag': 'dev' } }), 'tsmesh-injector');
    expect(tagged.image).toBe('registry.local:5000/tsmesh:dev');
    expect(flagValue(tagged.args, '--image')).toBe('registry.local:5000/tsmesh:dev');
  });
});
