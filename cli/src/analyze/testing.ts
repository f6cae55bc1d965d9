// Objects and a one-call analysis for the analyze tests: the objects go through the real mesh-file
// parser, as `tsmesh analyze -f` reads them.
import { parseMeshObjects, type KubeObject } from '@tsmesh/common';
import { analyze } from './analyze.js';
import { inputFromObjects } from './files.js';
import type { Message } from './messages.js';

type Labels = Record<string, string>;

export const namespace = (name: string, labels: Labels = {}, annotations: Labels = {}): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels, annotations } });

export const service = (ns: string, name: string, ports: number[], selector: Labels = { app: name }, annotations: Labels = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, annotations },
  spec: { selector, ports: ports.map((port) => ({ name: `p${port}`, port, targetPort: port })) },
});

export const pod = (ns: string, name: string, labels: Labels, options: { meshed?: boolean; annotations?: Labels } = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels, annotations: { ...(options.meshed === true ? { 'tsmesh.io/status': '{"version":"1"}' } : {}), ...options.annotations } },
  spec: { containers: [{ name: 'app' }] },
});

export const route = (kind: 'HTTPRoute' | 'GRPCRoute', ns: string, name: string, parentRefs: object[], backendRefs: object[]): KubeObject => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind,
  metadata: { name, namespace: ns },
  spec: { parentRefs, rules: [{ backendRefs }] },
});

export const peerAuthentication = (ns: string, name: string, mode: string, selector?: Labels, createdAt?: string): KubeObject => ({
  apiVersion: 'security.tsmesh.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name, namespace: ns, ...(createdAt === undefined ? {} : { creationTimestamp: createdAt }) },
  spec: { ...(selector === undefined ? {} : { selector: { matchLabels: selector } }), mtls: { mode } },
});

export const authorizationPolicy = (ns: string, name: string, selector?: Labels): KubeObject => ({
  apiVersion: 'security.tsmesh.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: ns },
  spec: { ...(selector === undefined ? {} : { selector: { matchLabels: selector } }), action: 'DENY', rules: [{}] },
});

export const rateLimitPolicy = (ns: string, name: string, selector?: Labels): KubeObject => ({
  apiVersion: 'policy.tsmesh.io/v1',
  kind: 'HTTPLocalRateLimitPolicy',
  metadata: { name, namespace: ns },
  spec: { ...(selector === undefined ? {} : { selector: { matchLabels: selector } }), total: { requestsPerSecond: 10 } },
});

export const gateway = (ns: string, name: string): KubeObject => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: ns },
  spec: { gatewayClassName: 'tsmesh', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
});

export const referenceGrant = (ns: string, name: string, fromNamespace: string, fromKind = 'HTTPRoute'): KubeObject => ({
  apiVersion: 'gateway.networking.k8s.io/v1beta1',
  kind: 'ReferenceGrant',
  metadata: { name, namespace: ns },
  spec: { from: [{ group: 'gateway.networking.k8s.io', kind: fromKind, namespace: fromNamespace }], to: [{ group: '', kind: 'Service' }] },
});

/** A mesh file's text: one JSON document per object. */
export const meshText = (objects: readonly KubeObject[]): string => objects.map((o) => JSON.stringify(o)).join('\n---\n');

/** Analyzes `objects` as `tsmesh analyze -f` would read them from a file. */
export function findings(objects: readonly KubeObject[], rootNamespace = 'tsmesh-system'): Message[] {
  const parsed = parseMeshObjects(meshText(objects), 'test.yaml');
  if (!parsed.ok) throw parsed.error;
  return analyze(inputFromObjects(parsed.value, rootNamespace));
}

/** `TSM0101 HTTPRoute shop/web`, one per finding, for compact expectations. */
export const brief = (messages: readonly Message[]): string[] => messages.map((m) => `${m.code} ${m.kind} ${m.namespace === undefined ? m.objectName : `${m.namespace}/${m.objectName}`}`);
