// Writes the mesh file (SPEC: Kubernetes-format objects) describing a topology's pods and
// Services, so every sidecar resolves the same cluster IPs to the same endpoints.
import { stringify } from 'yaml';

export interface MeshPodSpec {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly ip: string;
  readonly labels: Record<string, string>;
  readonly meshed: boolean;
}

export interface MeshServiceSpec {
  readonly name: string;
  readonly namespace: string;
  readonly clusterIP: string;
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
      status: { podIP: p.ip, podIPs: [{ ip: p.ip }] },
    });
  }
  const byName = new Map(pods.map((p) => [p.name, p]));
  for (const s of services) {
    docs.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace: s.namespace, annotations: s.annotations ?? {} },
      spec: {
        clusterIP: s.clusterIP,
        clusterIPs: [s.clusterIP],
        ports: s.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) })),
      },
    });
    docs.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${s.name}-1`, namespace: s.namespace, labels: { 'kubernetes.io/service-name': s.name } },
      addressType: 'IPv4',
      ports: s.ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: 'TCP' })),
      endpoints: s.backends.map((b) => {
        const pod = byName.get(b.pod);
        if (!pod) throw new Error(`service ${s.name}: no pod ${b.pod}`);
        return {
          addresses: [pod.ip],
          conditions: { ready: b.ready ?? true, serving: b.serving ?? b.ready ?? true, terminating: b.terminating ?? false },
          targetRef: { kind: 'Pod', name: pod.name, namespace: pod.namespace },
        };
      }),
    });
  }
  return docs;
}

export function meshYaml(pods: readonly MeshPodSpec[], services: readonly MeshServiceSpec[]): string {
  return meshDocuments(pods, services).map((d) => stringify(d)).join('---\n');
}
