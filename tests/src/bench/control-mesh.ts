// The control-plane benchmark's mesh: `services` Services spread over `namespaces` namespaces, each
// with one EndpointSlice of `endpoints` ready endpoints and a meshed Pod behind every endpoint, as a
// mesh file (one JSON document per object: JSON is YAML). A change flips one endpoint of the first
// Service's slice to not ready, a different one each time, so every change is a new mesh version.
import { writeFileSync, renameSync } from 'node:fs';

export interface MeshSize {
  readonly services: number;
  readonly endpoints: number;
  readonly namespaces: number;
}

/** Namespace of the i-th Service, and of the i-th benchmark sidecar. */
export const namespaceOf = (i: number, size: Pick<MeshSize, 'namespaces'>): string => `bench-${i % size.namespaces}`;

/** A distinct IPv4 address for index n in 10.0.0.0/8 (after 10.0.0.0). */
function ipOf(base: number, n: number): string {
  const v = base + n + 1;
  return `10.${(v >> 16) & 255}.${(v >> 8) & 255}.${v & 255}`;
}

const POD_BASE = 1 << 16; // pods from 10.1.0.1
const CLUSTER_IP_BASE = 96 << 16; // cluster IPs from 10.96.0.1

/** The mesh objects; `notReady` (when given) is the endpoint of the first Service's slice reported not ready. */
export function meshObjects(size: MeshSize, notReady?: number): object[] {
  const objects: object[] = [];
  for (let n = 0; n < size.namespaces; n++) objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `bench-${n}` } });
  for (let s = 0; s < size.services; s++) {
    const namespace = namespaceOf(s, size);
    const name = `svc-${s}`;
    const clusterIP = ipOf(CLUSTER_IP_BASE, s);
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec: { clusterIP, clusterIPs: [clusterIP], selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    });
    const endpoints: object[] = [];
    for (let e = 0; e < size.endpoints; e++) {
      const ip = ipOf(POD_BASE, s * size.endpoints + e);
      const pod = `${name}-${e}`;
      objects.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: pod, namespace, labels: { app: name }, annotations: { 'tsmesh.io/status': '{"version":"bench"}' } },
        spec: { serviceAccountName: name, containers: [{ name: 'app', image: 'bench' }] },
        status: { podIP: ip, podIPs: [{ ip }] },
      });
      const ready = !(s === 0 && e === notReady);
      endpoints.push({ addresses: [ip], conditions: { ready, serving: ready, terminating: false }, targetRef: { kind: 'Pod', name: pod, namespace } });
    }
    objects.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-1`, namespace, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints,
    });
  }
  return objects;
}

export function meshText(size: MeshSize, notReady?: number): string {
  return meshObjects(size, notReady).map((o) => JSON.stringify(o)).join('\n---\n');
}

/** Replaces the mesh file atomically; returns the time of the rename (ms since the epoch, sub-ms). */
export function writeMesh(file: string, text: string): number {
  const temporary = `${file}.next`;
  writeFileSync(temporary, text);
  const at = performance.timeOrigin + performance.now();
  renameSync(temporary, file);
  return at;
}
