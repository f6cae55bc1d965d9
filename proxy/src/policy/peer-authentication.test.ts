import { describe, expect, it } from '@jest/globals';
import type { KubeObject, MeshPod, MtlsMode } from '@tsmesh/common';
import {
  compileInboundPolicy,
  compilePolicies,
  effectiveMtlsMode,
  peerAuthenticationsOf,
  workloadOf,
  type EffectiveMtlsMode,
  type PeerAuthenticationPolicy,
} from './peer-authentication.js';

const ROOT = 'tsmesh-system';
const WEB = { namespace: 'shop', labels: { app: 'web', version: 'v1' } };

interface Spec {
  selector?: Record<string, string>;
  mode?: MtlsMode;
  ports?: Record<number, MtlsMode>;
  /** Minutes after an arbitrary epoch; undefined: no creation time. */
  created?: number;
}

function pa(namespace: string, name: string, spec: Spec = {}): PeerAuthenticationPolicy {
  return {
    namespace,
    name,
    selector: spec.selector,
    mode: spec.mode ?? 'UNSET',
    portLevelMtls: new Map(Object.entries(spec.ports ?? {}).map(([port, mode]) => [Number(port), mode])),
    createdAt: spec.created === undefined ? undefined : Date.UTC(2025, 0, 1) + spec.created * 60_000,
  };
}

interface Case {
  name: string;
  policies: PeerAuthenticationPolicy[];
  port?: number;
  workload?: { namespace: string; labels: Record<string, string> };
  rootNamespace?: string;
  expected: EffectiveMtlsMode;
}

const cases: Case[] = [
  { name: 'defaults to PERMISSIVE without any policy', policies: [], expected: 'PERMISSIVE' },
  { name: 'applies a mesh-wide policy (no selector, root namespace)', policies: [pa(ROOT, 'default', { mode: 'STRICT' })], expected: 'STRICT' },
  {
    name: 'ignores a selector-less policy of another namespace',
    policies: [pa('other', 'default', { mode: 'STRICT' })],
    expected: 'PERMISSIVE',
  },
  {
    name: 'lets a namespace-wide policy override the mesh',
    policies: [pa(ROOT, 'mesh', { mode: 'STRICT' }), pa('shop', 'ns', { mode: 'DISABLE' })],
    expected: 'DISABLE',
  },
  {
    name: 'lets an UNSET namespace-wide policy inherit from the mesh',
    policies: [pa(ROOT, 'mesh', { mode: 'STRICT' }), pa('shop', 'ns', { mode: 'UNSET' })],
    expected: 'STRICT',
  },
  {
    name: 'lets a workload policy override the namespace',
    policies: [pa('shop', 'ns', { mode: 'DISABLE' }), pa('shop', 'web', { selector: { app: 'web' }, mode: 'STRICT' })],
    expected: 'STRICT',
  },
  {
    name: 'lets an UNSET workload policy inherit from the namespace',
    policies: [pa(ROOT, 'mesh', { mode: 'STRICT' }), pa('shop', 'ns', { mode: 'DISABLE' }), pa('shop', 'web', { selector: { app: 'web' } })],
    expected: 'DISABLE',
  },
  {
    name: 'lets an UNSET workload policy without a namespace policy inherit from the mesh',
    policies: [pa(ROOT, 'mesh', { mode: 'STRICT' }), pa('shop', 'web', { selector: { app: 'web' }, mode: 'UNSET' })],
    expected: 'STRICT',
  },
  {
    name: 'ignores a workload policy whose selector does not match',
    policies: [pa('shop', 'ns', { mode: 'STRICT' }), pa('shop', 'api', { selector: { app: 'api' }, mode: 'DISABLE' })],
    expected: 'STRICT',
  },
  {
    name: 'needs every selector label to match',
    policies: [pa('shop', 'v2', { selector: { app: 'web', version: 'v2' }, mode: 'DISABLE' })],
    expected: 'PERMISSIVE',
  },
  {
    name: 'matches a selector that is a subset of the workload labels',
    policies: [pa('shop', 'web', { selector: { version: 'v1' }, mode: 'STRICT' })],
    expected: 'STRICT',
  },
  {
    name: 'ignores a matching selector policy of another namespace',
    policies: [pa('other', 'web', { selector: { app: 'web' }, mode: 'STRICT' })],
    expected: 'PERMISSIVE',
  },
  {
    name: 'ignores a matching selector policy in the root namespace for a workload elsewhere',
    policies: [pa(ROOT, 'web', { selector: { app: 'web' }, mode: 'STRICT' })],
    expected: 'PERMISSIVE',
  },
  {
    name: 'treats an empty selector as no selector (namespace-wide)',
    policies: [pa(ROOT, 'mesh', { mode: 'STRICT' }), pa('shop', 'empty', { selector: {}, mode: 'DISABLE' })],
    expected: 'DISABLE',
  },
  {
    name: 'lets a port-level mode override the workload mode on that port',
    policies: [pa('shop', 'web', { selector: { app: 'web' }, mode: 'STRICT', ports: { 8080: 'DISABLE' } })],
    port: 8080,
    expected: 'DISABLE',
  },
  {
    name: 'keeps the workload mode on ports without a port-level mode',
    policies: [pa('shop', 'web', { selector: { app: 'web' }, mode: 'STRICT', ports: { 8080: 'DISABLE' } })],
    port: 9090,
    expected: 'STRICT',
  },
  {
    name: 'lets a port-level mode override the namespace when the workload mode is UNSET',
    policies: [pa('shop', 'ns', { mode: 'DISABLE' }), pa('shop', 'web', { selector: { app: 'web' }, ports: { 8080: 'STRICT' } })],
    port: 8080,
    expected: 'STRICT',
  },
  {
    name: 'lets an UNSET port-level mode inherit the workload mode',
    policies: [pa('shop', 'ns', { mode: 'DISABLE' }), pa('shop', 'web', { selector: { app: 'web' }, mode: 'STRICT', ports: { 8080: 'UNSET' } })],
    port: 8080,
    expected: 'STRICT',
  },
  {
    name: 'lets an UNSET port-level mode inherit through an UNSET workload to the namespace',
    policies: [pa('shop', 'ns', { mode: 'DISABLE' }), pa('shop', 'web', { selector: { app: 'web' }, ports: { 8080: 'UNSET' } })],
    port: 8080,
    expected: 'DISABLE',
  },
  {
    name: 'lets an UNSET chain fall through to the mesh',
    policies: [
      pa(ROOT, 'mesh', { mode: 'STRICT' }),
      pa('shop', 'ns', { mode: 'UNSET' }),
      pa('shop', 'web', { selector: { app: 'web' }, ports: { 8080: 'UNSET' } }),
    ],
    port: 8080,
    expected: 'STRICT',
  },
  {
    name: 'defaults to PERMISSIVE when every level is UNSET',
    policies: [pa(ROOT, 'mesh'), pa('shop', 'ns'), pa('shop', 'web', { selector: { app: 'web' }, ports: { 8080: 'UNSET' } })],
    port: 8080,
    expected: 'PERMISSIVE',
  },
  {
    name: 'ignores portLevelMtls on a namespace-wide policy',
    policies: [pa('shop', 'ns', { mode: 'STRICT', ports: { 8080: 'DISABLE' } })],
    port: 8080,
    expected: 'STRICT',
  },
  {
    name: 'ignores portLevelMtls on a mesh-wide policy',
    policies: [pa(ROOT, 'mesh', { mode: 'PERMISSIVE', ports: { 8080: 'STRICT' } })],
    port: 8080,
    expected: 'PERMISSIVE',
  },
  {
    name: 'picks the oldest of two mesh-wide policies',
    policies: [pa(ROOT, 'a-new', { mode: 'DISABLE', created: 10 }), pa(ROOT, 'z-old', { mode: 'STRICT', created: 1 })],
    expected: 'STRICT',
  },
  {
    name: 'picks by name among namespace-wide policies created at the same time',
    policies: [pa('shop', 'b', { mode: 'DISABLE', created: 5 }), pa('shop', 'a', { mode: 'STRICT', created: 5 })],
    expected: 'STRICT',
  },
  {
    name: 'counts a policy without a creation time as newer than one with it',
    policies: [pa('shop', 'a', { mode: 'DISABLE' }), pa('shop', 'b', { mode: 'STRICT', created: 100 })],
    expected: 'STRICT',
  },
  {
    name: 'picks by name among policies without creation times',
    policies: [pa('shop', 'b', { mode: 'DISABLE' }), pa('shop', 'a', { mode: 'STRICT' })],
    expected: 'STRICT',
  },
  {
    name: 'takes the port-level modes of the oldest workload policy only',
    policies: [
      pa('shop', 'old', { selector: { app: 'web' }, mode: 'STRICT', created: 1 }),
      pa('shop', 'new', { selector: { version: 'v1' }, mode: 'STRICT', ports: { 8080: 'DISABLE' }, created: 2 }),
    ],
    port: 8080,
    expected: 'STRICT',
  },
  {
    name: 'lets the oldest workload policy win its level even when UNSET (it inherits, the newer one is ignored)',
    policies: [
      pa('shop', 'ns', { mode: 'PERMISSIVE' }),
      pa('shop', 'old', { selector: { app: 'web' }, mode: 'UNSET', created: 1 }),
      pa('shop', 'new', { selector: { app: 'web' }, mode: 'STRICT', created: 2 }),
    ],
    expected: 'PERMISSIVE',
  },
  {
    name: 'treats a selector-less policy of the root namespace as mesh-wide for its own workloads too',
    policies: [pa(ROOT, 'mesh', { mode: 'STRICT' })],
    workload: { namespace: ROOT, labels: { app: 'ca' } },
    expected: 'STRICT',
  },
  {
    name: 'applies a selector policy of the root namespace to a root-namespace workload',
    policies: [pa(ROOT, 'mesh', { mode: 'STRICT' }), pa(ROOT, 'ca', { selector: { app: 'ca' }, mode: 'PERMISSIVE' })],
    workload: { namespace: ROOT, labels: { app: 'ca' } },
    expected: 'PERMISSIVE',
  },
  {
    name: 'honours another root namespace',
    policies: [pa('mesh-root', 'default', { mode: 'STRICT' }), pa(ROOT, 'default', { mode: 'DISABLE' })],
    rootNamespace: 'mesh-root',
    expected: 'STRICT',
  },
];

describe('effectiveMtlsMode', () => {
  it.each(cases)('$name', ({ policies, port, workload, rootNamespace, expected }) => {
    const target = { ...(workload ?? WEB), port: port ?? 8080 };
    const options = rootNamespace === undefined ? {} : { rootNamespace };
    expect(effectiveMtlsMode(policies, target, options)).toBe(expected);
    // Order never matters.
    expect(effectiveMtlsMode([...policies].reverse(), target, options)).toBe(expected);
  });
});

describe('compilePolicies', () => {
  it.each(cases)('agrees with effectiveMtlsMode: $name', ({ policies, workload, rootNamespace }) => {
    const options = rootNamespace === undefined ? {} : { rootNamespace };
    const compiled = compilePolicies(policies, workload ?? WEB, options);
    for (const port of [80, 8080, 9090]) {
      expect(compiled.modeFor(port)).toBe(effectiveMtlsMode(policies, { ...(workload ?? WEB), port }, options));
    }
  });

  it('names the policy that decided each level', () => {
    const compiled = compilePolicies(
      [pa(ROOT, 'mesh', { mode: 'STRICT' }), pa('shop', 'ns', { mode: 'UNSET' }), pa('shop', 'web', { selector: { app: 'web' }, ports: { 8080: 'DISABLE' } })],
      WEB,
    );
    expect(compiled.sources).toEqual({ mesh: `${ROOT}/mesh`, namespace: 'shop/ns', workload: 'shop/web' });
    expect(compiled.defaultMode).toBe('STRICT');
    expect([...compiled.portModes]).toEqual([[8080, 'DISABLE']]);
  });

  it('lists only ports whose mode differs from the default', () => {
    const compiled = compilePolicies([pa('shop', 'web', { selector: { app: 'web' }, mode: 'STRICT', ports: { 80: 'STRICT', 81: 'UNSET', 82: 'PERMISSIVE' } })], WEB);
    expect([...compiled.portModes]).toEqual([[82, 'PERMISSIVE']]);
  });
});

function raw(namespace: string, name: string, spec: Record<string, unknown>, creationTimestamp?: unknown): KubeObject {
  return {
    apiVersion: 'security.tsmesh.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name, namespace, ...(creationTimestamp === undefined ? {} : { creationTimestamp }) },
    spec,
  };
}

describe('compileInboundPolicy', () => {
  it('reads PeerAuthentication objects and their creation times from the snapshot', () => {
    const others: KubeObject[] = [
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'shop' } },
      raw(ROOT, 'mesh', { mtls: { mode: 'STRICT' } }),
      raw('shop', 'newer', { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'DISABLE' } }, '2025-03-01T00:00:00Z'),
      raw('shop', 'older', { selector: { matchLabels: { app: 'web' } }, portLevelMtls: { '8080': { mode: 'PERMISSIVE' } } }, new Date('2025-01-01T00:00:00Z')),
    ];
    const policy = compileInboundPolicy({ others }, WEB, ROOT);
    expect(policy.sources.workload).toBe('shop/older');
    expect(policy.modeFor(8080)).toBe('PERMISSIVE');
    expect(policy.modeFor(9090)).toBe('STRICT');
    expect(policy.problems).toEqual([]);
  });

  it('leaves out and reports an object that does not validate', () => {
    const others = [raw(ROOT, 'mesh', { mtls: { mode: 'STRICT' } }), raw('shop', 'bad', { mtls: { mode: 'SOMETIMES' } })];
    const { policies, problems } = peerAuthenticationsOf({ others });
    expect(policies.map((p) => p.name)).toEqual(['mesh']);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.object).toBe('PeerAuthentication shop/bad');
    expect(problems[0]?.reason).toContain('spec.mtls.mode');
    expect(compileInboundPolicy({ others }, WEB).problems).toHaveLength(1);
  });

  it('uses the default root namespace', () => {
    expect(compileInboundPolicy({ others: [raw(ROOT, 'mesh', { mtls: { mode: 'STRICT' } })] }, WEB).modeFor(1)).toBe('STRICT');
  });
});

describe('workloadOf', () => {
  const pod = (namespace: string, name: string, ip: string, labels: Record<string, string>): MeshPod => ({
    namespace,
    name,
    ips: [ip],
    labels,
    annotations: {},
    serviceAccount: 'default',
    meshed: true,
  });
  const pods = [pod('shop', 'web-1', '10.0.0.1', { app: 'web' }), pod('other', 'x', '10.0.0.2', { app: 'x' })];
  const snapshot = { pods, podByIp: (ip: string) => pods.find((p) => p.ips.includes(ip)) };

  it('finds the pod by name, then by IP', () => {
    expect(workloadOf(snapshot, { namespace: 'shop', podName: 'web-1' }).labels).toEqual({ app: 'web' });
    expect(workloadOf(snapshot, { namespace: 'shop', podName: 'gone', podIp: '10.0.0.1' }).labels).toEqual({ app: 'web' });
  });

  it('gives no labels when the pod is unknown or in another namespace', () => {
    expect(workloadOf(snapshot, { namespace: 'shop' })).toEqual({ namespace: 'shop', labels: {} });
    expect(workloadOf(snapshot, { namespace: 'shop', podIp: '10.0.0.2' }).labels).toEqual({});
  });
});
