// The three control-plane Deployments: restricted security contexts, probes, resources,
// disruption budgets and spreading, and command lines that the real programs accept (each is
// parsed by the component's own config.ts).
import { describe, expect, test } from '@jest/globals';
import { parseCaConfig } from '@tsmesh/ca';
import { controlConfig } from '@tsmesh/control';
import { injectorConfig } from '@tsmesh/injector';
import { NAMESPACE, render, VALUE_SETS, type KubeObject } from './helm.js';
import { all, containersOf, flagValue, one, type Container, type Deployment } from './objects.js';

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
    const containers = containersOf(await rendered(valueSet));
    expect(containers).toHaveLength(3);
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

  test('every Deployment has a PodDisruptionBudget over exactly its pods and prefers spreading them over nodes', async () => {
    const objects = await rendered(valueSet);
    for (const deployment of all<Deployment>(objects, 'Deployment')) {
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
    expect(() => controlConfig(args('tsmesh-control').slice(1), {})).not.toThrow();
    expect(() => parseCaConfig(args('tsmesh-ca').slice(1), envOf(container(objects, 'tsmesh-ca')))).not.toThrow();
    expect(() => injectorConfig(args('tsmesh-injector').slice(1), envOf(container(objects, 'tsmesh-injector')))).not.toThrow();
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
    expect(config.tlsCertFile).toBe('/etc/tsmesh/injector-tls/tls.crt');
    expect(Object.keys(envOf(injector))).toEqual([]);
  });

  test('proxy.nativeSidecars true becomes --native-sidecars true', async () => {
    const injector = container(await rendered('native sidecars on'), 'tsmesh-injector');
    expect(flagValue(injector.args, '--native-sidecars')).toBe('true');
    expect(injectorConfig((injector.args ?? []).slice(1), {}).settings).toEqual(expect.objectContaining({ nativeSidecars: true }));
  });

  test('proxy.tracing reaches the injector as its TSMESH_INJECTOR_PROXY_TRACING* variables', async () => {
    const injector = container(await rendered('tracing to zipkin'), 'tsmesh-injector');
    expect(envOf(injector)).toEqual({
      TSMESH_INJECTOR_PROXY_TRACING: 'zipkin',
      TSMESH_INJECTOR_PROXY_TRACING_ENDPOINT: 'http://zipkin.observability:9411',
      TSMESH_INJECTOR_PROXY_TRACING_SAMPLE_RATE: '0.25',
    });
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
