// Test fixture: mesh files for a sidecar run in explicit-port mode. Each Service's endpoints are
// local servers (127.0.0.1:<port>), one EndpointSlice per endpoint since each has its own port.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface TestEndpoint {
  readonly port: number;
  readonly address?: string;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
  /** The EndpointSlice `zone` of the endpoint. */
  readonly zone?: string;
}

export interface TestService {
  readonly name: string;
  readonly namespace?: string;
  readonly clusterIP: string;
  readonly port: number;
  /** The Service port's name; its prefix declares a protocol (`tcp`, `http`, `grpc`); default `web` (detect). */
  readonly portName?: string;
  readonly appProtocol?: string;
  /** `tsmesh.io/load-balancer`; default round-robin, so spreads are exact. */
  readonly loadBalancer?: string;
  /** Endpoint ports on 127.0.0.1, or full endpoint specs. */
  readonly endpoints: ReadonlyArray<number | TestEndpoint>;
  /** Adds an HTTPRoute (GAMMA: parentRef the Service itself) with this request timeout, e.g. `100ms`. */
  readonly requestTimeout?: string;
}

/** The mesh file text (Kubernetes-format YAML stream) for `services`. */
export function testMeshYaml(services: readonly TestService[]): string {
  const docs: object[] = [];
  for (const s of services) {
    const namespace = s.namespace ?? 'default';
    const portName = s.portName ?? 'web';
    docs.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace, annotations: { 'tsmesh.io/load-balancer': s.loadBalancer ?? 'round-robin' } },
      spec: {
        clusterIP: s.clusterIP,
        ports: [{ name: portName, port: s.port, targetPort: s.port, protocol: 'TCP', ...(s.appProtocol ? { appProtocol: s.appProtocol } : {}) }],
      },
    });
    if (s.requestTimeout !== undefined) {
      docs.push({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: `${s.name}-timeout`, namespace },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: s.name, port: s.port }],
          rules: [{ backendRefs: [{ name: s.name, port: s.port }], timeouts: { request: s.requestTimeout } }],
        },
      });
    }
    s.endpoints.forEach((e, i) => {
      const endpoint: TestEndpoint = typeof e === 'number' ? { port: e } : e;
      docs.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${s.name}-${i}`, namespace, labels: { 'kubernetes.io/service-name': s.name } },
        addressType: 'IPv4',
        ports: [{ name: portName, port: endpoint.port, protocol: 'TCP' }],
        endpoints: [
          {
            addresses: [endpoint.address ?? '127.0.0.1'],
            conditions: { ready: endpoint.ready ?? true, serving: endpoint.serving ?? endpoint.ready ?? true, terminating: endpoint.terminating ?? false },
            ...(endpoint.zone === undefined ? {} : { zone: endpoint.zone }),
          },
        ],
      });
    });
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

/** A mesh file in its own temporary directory, replaced atomically (write + rename) like a careful writer. */
export class TestMeshFile {
  readonly dir: string;
  readonly path: string;
  private generation = 0;

  constructor(services: readonly TestService[]) {
    this.dir = mkdtempSync(join(tmpdir(), 'tsmesh-proxy-test-'));
    this.path = join(this.dir, 'mesh.yaml');
    this.writeText(testMeshYaml(services));
  }

  write(services: readonly TestService[]): void {
    this.writeText(testMeshYaml(services));
  }

  writeText(text: string): void {
    const tmp = join(this.dir, `.mesh-${++this.generation}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, this.path);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
