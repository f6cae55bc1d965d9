// Kubernetes objects for tests, as the API server would store them (before resourceVersion and uid).
import type { KubeObject } from '@tsmesh/common';

export function namespace(name: string, labels: Record<string, string> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

export function serviceAccount(name: string, namespaceName = 'shop'): KubeObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: namespaceName } };
}

export interface ServiceSpec {
  readonly namespace?: string;
  /** An IP, or 'None' for a headless Service. */
  readonly clusterIP?: string;
  readonly ports?: readonly { name: string; port: number; targetPort?: number }[];
  readonly annotations?: Record<string, string>;
}

export function service(name: string, spec: ServiceSpec = {}): KubeObject {
  const clusterIP = spec.clusterIP ?? '10.96.0.10';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: spec.namespace ?? 'shop', annotations: spec.annotations ?? {} },
    spec: {
      type: 'ClusterIP',
      clusterIP,
      clusterIPs: [clusterIP],
      selector: { app: name },
      ports: (spec.ports ?? [{ name: 'http', port: 80, targetPort: 8080 }]).map((p) => ({ protocol: 'TCP', targetPort: p.port, ...p })),
    },
  };
}

export interface SliceEndpointSpec {
  readonly ip: string;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
  readonly pod?: string;
}

export function endpointSlice(
  name: string,
  serviceName: string,
  endpoints: readonly SliceEndpointSpec[],
  options: { namespace?: string; ports?: readonly { name: string; port: number }[] } = {},
): KubeObject {
  const namespaceName = options.namespace ?? 'shop';
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: namespaceName, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    ports: (options.ports ?? [{ name: 'http', port: 8080 }]).map((p) => ({ protocol: 'TCP', ...p })),
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
      ...(e.pod === undefined ? {} : { targetRef: { kind: 'Pod', name: e.pod, namespace: namespaceName } }),
    })),
  };
}

export function pod(name: string, ip: string, options: { namespace?: string; labels?: Record<string, string>; phase?: string; serviceAccount?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: options.namespace ?? 'shop', labels: options.labels ?? {}, annotations: { 'tsmesh.io/status': 'injected' } },
    spec: { serviceAccountName: options.serviceAccount ?? 'default', containers: [{ name: 'app', image: 'app' }] },
    status: { phase: options.phase ?? 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

export function peerAuthentication(name: string, namespaceName: string, mode: string): KubeObject {
  return { apiVersion: 'security.tsmesh.io/v1', kind: 'PeerAuthentication', metadata: { name, namespace: namespaceName }, spec: { mtls: { mode } } };
}

export function route(kind: 'HTTPRoute' | 'GRPCRoute', name: string, serviceName: string, namespaceName = 'shop'): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind,
    metadata: { name, namespace: namespaceName },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: serviceName, port: 80 }],
      rules: [{ backendRefs: [{ name: serviceName, port: 80, weight: 1 }] }],
    },
  };
}

/** A TrafficPolicy on a whole Service: `maxConnections` 7, so a test can tell it took effect. */
export function trafficPolicy(name: string, serviceName: string, namespaceName = 'shop'): KubeObject {
  return {
    apiVersion: 'policy.tsmesh.io/v1alpha1',
    kind: 'TrafficPolicy',
    metadata: { name, namespace: namespaceName },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: serviceName }], connectionPool: { maxConnections: 7 } },
  };
}
