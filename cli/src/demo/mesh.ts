// Writes the mesh file (SPEC: Kubernetes-format objects) describing a topology's pods and
// Services, so every sidecar resolves the same cluster IPs to the same endpoints.
import { stringify } from 'yaml';

export interface MeshPodSpec {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly ip: string;
  /** Dual stack: the pod's IPv6 address (status.podIPs[1]). */
  readonly ip6?: string;
  readonly labels: Record<string, string>;
  readonly meshed: boolean;
}

export interface MeshServiceSpec {
  readonly name: string;
  readonly namespace: string;
  /** The primary cluster IP (either family): its family is the one the sidecars dial endpoints in. */
  readonly clusterIP: string;
  /** Dual stack: the cluster IP of the other family, with a second EndpointSlice of the pods' addresses in it. */
  readonly secondaryClusterIP?: string;
  readonly ports: ReadonlyArray<{ name: string; port: number; targetPort: number; appProtocol?: string }>;
  readonly annotations?: Record<string, string>;
  /** Names of the pods behind it, with their EndpointSlice conditions. */
  readonly backends: ReadonlyArray<{ pod: string; ready?: boolean; serving?: boolean; terminating?: boolean }>;
}

export function meshDocuments(pods: readonly MeshPodSpec[], services: readonly MeshServiceSpec[]): object[] {
  const docs: object[] = [];
  const namespaces = new Set([...pods.map((p) => p.namespace), ...services.map((s) => s.namespace)]);
  for (const ns of namespaces) docs.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const accounts = new Set(pods.map((p) => `${p.namespace}/${p.serviceAccount}`));
  for (const a of accounts) {
    const [namespace, name] = a.split('/');
    docs.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
  }
  for (const p of pods) {
    docs.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.namespace, labels: p.labels, annotations: p.meshed ? { 'tsmesh.io/status': '{"version":"local"}' } : {} },
      spec: { serviceAccountName: p.serviceAccount, containers: [{ name: 'app', image: 'local' }] },
      status: { podIP: p.ip, podIPs: [{ ip: p.ip }, ...(p.ip6 === undefined ? [] : [{ ip: p.ip6 }])] },
    });
  }
  const byName = new Map(pods.map((p) => [p.name, p]));
  for (const s of services) {
    const family = (ip: string): 'IPv4' | 'IPv6' => (ip.includes(':') ? 'IPv6' : 'IPv4');
    const clusterIPs = s.secondaryClusterIP === undefined ? [s.clusterIP] : [s.clusterIP, s.secondaryClusterIP];
    docs.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace: s.namespace, annotations: s.annotations ?? {} },
      spec: {
        clusterIP: s.clusterIP,
        clusterIPs,
        ...(clusterIPs.length > 1 ? { ipFamilies: clusterIPs.map(family), ipFamilyPolicy: 'RequireDualStack' } : {}),
        ports: s.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) })),
      },
    });
    const backends = s.backends.map((b) => {
      const pod = byName.get(b.pod);
      if (!pod) throw new Error(`service ${s.name}: no pod ${b.pod}`);
      return { pod, conditions: { ready: b.ready ?? true, serving: b.serving ?? b.ready ?? true, terminating: b.terminating ?? false } };
    });
    // One slice per address family, as the EndpointSlice controller makes them.
    for (const [i, addressType] of clusterIPs.map(family).entries()) {
      const suffix = i === 0 ? '1' : addressType.toLowerCase();
      docs.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${s.name}-${suffix}`, namespace: s.namespace, labels: { 'kubernetes.io/service-name': s.name } },
        addressType,
        ports: s.ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: 'TCP' })),
        endpoints: backends.flatMap(({ pod, conditions }) => {
          const address = addressType === 'IPv4' ? pod.ip : pod.ip6;
          if (address === undefined) return [];
          return [{ addresses: [address], conditions, targetRef: { kind: 'Pod', name: pod.name, namespace: pod.namespace } }];
        }),
      });
    }
  }
  return docs;
}

export function meshYaml(pods: readonly MeshPodSpec[], services: readonly MeshServiceSpec[]): string {
  return meshDocuments(pods, services).map((d) => stringify(d)).join('---\n');
}
