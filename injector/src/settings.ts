// What the injector puts into a pod, apart from the per-pod annotations: image, addresses, defaults.

/** Version written into the `tsmesh.io/status` annotation. */
export const INJECTOR_VERSION = '0.1.0';

/** Kubernetes minor version (of major 1) from which native sidecars are on by default. */
export const NATIVE_SIDECAR_MIN_MINOR = 29;

export interface ProxyResources {
  readonly cpu?: string;
  readonly memory?: string;
  readonly cpuLimit?: string;
  readonly memoryLimit?: string;
}

/** The sidecar's trace exporters (SPEC *Telemetry*: TSMESH_TRACING). */
export const TRACING_PROVIDERS = ['zipkin', 'otlp', 'none'] as const;
export type TracingProvider = (typeof TRACING_PROVIDERS)[number];

/** What the sidecars get as TSMESH_TRACING, TSMESH_TRACING_ENDPOINT and TSMESH_TRACING_SAMPLE_RATE. */
export interface ProxyTracing {
  readonly provider: TracingProvider;
  /** An http(s) URL; undefined: the sidecar's default for the provider. Only with zipkin or otlp. */
  readonly endpoint?: string;
  /** 0 to 1; undefined: the sidecar's default (0.01). */
  readonly sampleRate?: number;
}

export interface InjectionSettings {
  /** Image of both the init container and the sidecar; it must have `tsmesh` on its PATH. */
  readonly image: string;
  /** Left out of the containers when undefined (Kubernetes then picks by tag). */
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Never injected, like kube-system. */
  readonly controlPlaneNamespace: string;
  /** `host:port` of the CA service, given to the sidecar as TSMESH_CA_ADDR. */
  readonly caAddress: string;
  /** `host:port` of the control plane, given to the sidecar as TSMESH_CONTROL_ADDR. */
  readonly controlAddress: string;
  /** `auto` decides from `kubernetesVersion` (native from 1.29; unknown version: not native). */
  readonly nativeSidecars: boolean | 'auto';
  /** The API server's version ("1.30", "v1.30.2-gke.1"), used by `nativeSidecars: 'auto'`. */
  readonly kubernetesVersion?: string;
  /** Sidecar resources when the pod's annotations do not say otherwise. */
  readonly proxyResources: ProxyResources;
  /** The sidecar's TSMESH_LOG_LEVEL unless the pod sets `tsmesh.io/log-level`. */
  readonly proxyLogLevel: string;
  /** The sidecars' tracing; undefined: no TSMESH_TRACING* variables (the sidecar's defaults: off). */
  readonly proxyTracing?: ProxyTracing;
  /** The sidecars' TSMESH_ACCESS_LOG (`on` when true); undefined: not set (the sidecar's default: off). */
  readonly proxyAccessLog?: boolean;
  /** The sidecar's TSMESH_TRUST_DOMAIN (the CA's trust domain); undefined: not set (the sidecar assumes cluster.local). */
  readonly trustDomain?: string;
}

export const DEFAULT_CONTROL_PLANE_NAMESPACE = 'tsmesh-system';
export const DEFAULT_IMAGE = `ghcr.io/tsmesh/tsmesh:${INJECTOR_VERSION}`;
export const DEFAULT_CA_PORT = 15012;
export const DEFAULT_CONTROL_PORT = 15010;
export const DEFAULT_PROXY_RESOURCES: ProxyResources = Object.freeze({
  cpu: '100m',
  memory: '128Mi',
  memoryLimit: '1Gi',
});

export function defaultCaAddress(namespace: string): string {
  return `tsmesh-ca.${namespace}.svc:${DEFAULT_CA_PORT}`;
}

export function defaultControlAddress(namespace: string): string {
  return `tsmesh-control.${namespace}.svc:${DEFAULT_CONTROL_PORT}`;
}

/** Complete settings from a partial set: addresses follow the control-plane namespace unless given. */
export function makeSettings(given: Partial<InjectionSettings> = {}): InjectionSettings {
  // A key present with value undefined means "not given", so it must not hide the default.
  const overrides = Object.fromEntries(
    Object.entries(given).filter(([, value]) => value !== undefined),
  ) as Partial<InjectionSettings>;
  const namespace = overrides.controlPlaneNamespace ?? DEFAULT_CONTROL_PLANE_NAMESPACE;
  return Object.freeze({
    image: DEFAULT_IMAGE,
    nativeSidecars: 'auto' as const,
    proxyLogLevel: 'info',
    ...overrides,
    controlPlaneNamespace: namespace,
    caAddress: overrides.caAddress ?? defaultCaAddress(namespace),
    controlAddress: overrides.controlAddress ?? defaultControlAddress(namespace),
    proxyResources: Object.freeze({ ...(overrides.proxyResources ?? DEFAULT_PROXY_RESOURCES) }),
    ...(overrides.proxyTracing === undefined ? {} : { proxyTracing: Object.freeze({ ...overrides.proxyTracing }) }),
  });
}

/** Reads "1.30", "v1.30.2", "v1.30.2-gke.100" or "1.30+" (the minor of some managed clusters). */
export function parseKubernetesVersion(text: string): { major: number; minor: number } | undefined {
  const match = /^v?(\d+)\.(\d+)/.exec(text.trim());
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

/** Whether the sidecar goes in as a native sidecar (an init container with restartPolicy Always). */
export function useNativeSidecars(settings: InjectionSettings): boolean {
  if (settings.nativeSidecars !== 'auto') return settings.nativeSidecars;
  const version = settings.kubernetesVersion === undefined ? undefined : parseKubernetesVersion(settings.kubernetesVersion);
  if (!version) return false;
  return version.major > 1 || (version.major === 1 && version.minor >= NATIVE_SIDECAR_MIN_MINOR);
}
