// The containers and volumes the injector adds: `tsmesh-init` (iptables) and `tsmesh-proxy` (the
// sidecar), the CA token and the trust bundle. Pure builders; placing them in the pod is inject.ts's job.
import type { V1Container, V1EnvVar, V1ResourceRequirements, V1Volume } from '@kubernetes/client-node';
import { ADMIN_PORT, INBOUND_CAPTURE_PORT, OUTBOUND_CAPTURE_PORT, PROXY_GID, PROXY_UID, SIDECAR_NODE_OPTIONS, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from '@tsmesh/common';
import type { PodOptions } from './annotations.js';
import type { AppProbe } from './probes.js';
import { HEALTH_PORT } from './probes.js';
import { parseQuantity } from './quantity.js';
import type { InjectionSettings, ProxyResources, ProxyTracing } from './settings.js';

export const INIT_CONTAINER_NAME = 'tsmesh-init';
export const PROXY_CONTAINER_NAME = 'tsmesh-proxy';
export const CA_TOKEN_VOLUME = 'tsmesh-ca-token';
export const TRUST_BUNDLE_VOLUME = 'tsmesh-trust-bundle';
/** Published in every namespace by the control plane (control/README.md, *Trust bundle*). */
export { TRUST_BUNDLE_CONFIGMAP };
export const CA_TOKEN_AUDIENCE = 'tsmesh-ca';
export const CA_TOKEN_EXPIRATION_SECONDS = 3600;
export { PROXY_GID, PROXY_UID };

export const CA_TOKEN_DIR = '/var/run/secrets/tsmesh.io/ca-token';
export const CA_TOKEN_FILE = `${CA_TOKEN_DIR}/token`;
export const TRUST_BUNDLE_DIR = '/var/run/secrets/tsmesh.io/trust-bundle';
export const TRUST_BUNDLE_FILE = `${TRUST_BUNDLE_DIR}/${TRUST_BUNDLE_KEY}`;

/** Ports the sidecar listens on, with the names it declares them under (at most 15 characters). */
export const PROXY_PORTS = [
  { name: 'tsmesh-outbound', containerPort: OUTBOUND_CAPTURE_PORT },
  { name: 'tsmesh-inbound', containerPort: INBOUND_CAPTURE_PORT },
  { name: 'tsmesh-health', containerPort: HEALTH_PORT },
] as const;
/** Every port the sidecar binds in the pod's network namespace, 15000 (admin, loopback) included. */
export const PROXY_BOUND_PORTS: readonly number[] = [ADMIN_PORT, ...PROXY_PORTS.map((port) => port.containerPort)];

export const ENV = {
  podName: 'TSMESH_POD_NAME',
  podNamespace: 'TSMESH_POD_NAMESPACE',
  podIp: 'TSMESH_POD_IP',
  serviceAccount: 'TSMESH_SERVICE_ACCOUNT',
  caAddr: 'TSMESH_CA_ADDR',
  controlAddr: 'TSMESH_CONTROL_ADDR',
  caTokenFile: 'TSMESH_CA_TOKEN_FILE',
  trustBundleFile: 'TSMESH_TRUST_BUNDLE_FILE',
  logLevel: 'TSMESH_LOG_LEVEL',
  opaquePorts: 'TSMESH_OPAQUE_PORTS',
  appProbes: 'TSMESH_APP_PROBES',
  trustDomain: 'TSMESH_TRUST_DOMAIN',
  tracing: 'TSMESH_TRACING',
  tracingEndpoint: 'TSMESH_TRACING_ENDPOINT',
  tracingSampleRate: 'TSMESH_TRACING_SAMPLE_RATE',
  accessLog: 'TSMESH_ACCESS_LOG',
} as const;

/** The sidecar's tracing variables for the injector's tracing setting (none when it has none). */
export function tracingEnv(tracing: ProxyTracing | undefined): V1EnvVar[] {
  if (tracing === undefined) return [];
  const env: V1EnvVar[] = [{ name: ENV.tracing, value: tracing.provider }];
  if (tracing.endpoint !== undefined) env.push({ name: ENV.tracingEndpoint, value: tracing.endpoint });
  if (tracing.sampleRate !== undefined) env.push({ name: ENV.tracingSampleRate, value: String(tracing.sampleRate) });
  return env;
}

/** `tsmesh iptables` arguments: the proxy's uid, then one flag per annotation the pod sets. */
export function iptablesArgs(options: PodOptions): string[] {
  const args = ['iptables', '--proxy-uid', String(PROXY_UID)];
  const flags: ReadonlyArray<[string, string | undefined]> = [
    ['--exclude-outbound-ports', options.excludeOutboundPorts],
    ['--exclude-inbound-ports', options.excludeInboundPorts],
    ['--include-inbound-ports', options.includeInboundPorts],
    ['--exclude-outbound-ip-ranges', options.excludeOutboundIpRanges],
    ['--include-outbound-ip-ranges', options.includeOutboundIpRanges],
  ];
  for (const [flag, value] of flags) {
    if (value !== undefined) args.push(flag, value);
  }
  return args;
}

export function initContainer(settings: InjectionSettings, options: PodOptions): V1Container {
  return {
    name: INIT_CONTAINER_NAME,
    image: settings.image,
    ...(settings.imagePullPolicy === undefined ? {} : { imagePullPolicy: settings.imagePullPolicy }),
    command: ['tsmesh'],
    args: iptablesArgs(options),
    resources: {
      requests: { cpu: '10m', memory: '32Mi' },
      limits: { cpu: '100m', memory: '128Mi' },
    },
    securityContext: {
      // Programming the pod's netfilter tables needs root with these two capabilities, nothing more.
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
  };
}

/** Requests and limits: each annotation wins over its default; a default limit below the request yields. */
export function proxyResources(defaults: ProxyResources, options: PodOptions): V1ResourceRequirements {
  const pick = (annotated: string | undefined, fallback: string | undefined) => annotated ?? fallback;
  const cpu = pick(options.proxyCpu, defaults.cpu);
  const memory = pick(options.proxyMemory, defaults.memory);
  let cpuLimit = pick(options.proxyCpuLimit, defaults.cpuLimit);
  let memoryLimit = pick(options.proxyMemoryLimit, defaults.memoryLimit);
  const below = (limit: string | undefined, request: string | undefined) =>
    limit !== undefined && request !== undefined && (parseQuantity(request) ?? 0) > (parseQuantity(limit) ?? Infinity);
  if (options.proxyCpuLimit === undefined && below(cpuLimit, cpu)) cpuLimit = cpu;
  if (options.proxyMemoryLimit === undefined && below(memoryLimit, memory)) memoryLimit = memory;
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  if (cpu !== undefined) requests.cpu = cpu;
  if (memory !== undefined) requests.memory = memory;
  if (cpuLimit !== undefined) limits.cpu = cpuLimit;
  if (memoryLimit !== undefined) limits.memory = memoryLimit;
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}

/**
 * Event loops of a sidecar without a CPU limit: one. `tsmesh proxy` alone defaults to 2 (SPEC), but
 * each extra loop costs ~29 MiB of RSS and, on a node whose cores the app and the sidecar share,
 * measured slower than one (proxy/src/loops/README.md); a CPU limit says how many cores it may use.
 */
export const DEFAULT_PROXY_CONCURRENCY = 1;
/** The most event loops the injector gives a sidecar, whatever its CPU limit: each loop is a V8 isolate with its own heap. */
export const MAX_PROXY_CONCURRENCY = 4;

/**
 * `tsmesh proxy --concurrency` for a sidecar's CPU limit: one event loop per core the limit
 * starts (rounded up: 1500m → 2), at least 1 and at most MAX_PROXY_CONCURRENCY; without a
 * limit, DEFAULT_PROXY_CONCURRENCY. More loops than the limit's cores would only be throttled.
 */
export function proxyConcurrency(cpuLimit: string | undefined): number {
  const cores = cpuLimit === undefined ? undefined : parseQuantity(cpuLimit);
  if (cores === undefined || cores <= 0) return DEFAULT_PROXY_CONCURRENCY;
  // A millicore quantity is a float (3000m = 3.0000000000000004 cores): round off before rounding up.
  return Math.min(MAX_PROXY_CONCURRENCY, Math.max(1, Math.ceil(Number(cores.toFixed(6)))));
}

/** How long the postStart hook waits for the sidecar to be ready before failing (the kubelet then restarts it). */
export const WAIT_READY_SECONDS = 120;

/**
 * The sidecar's postStart hook (regular containers): returns once `GET :15020/healthz/ready` answers
 * 200, fails after WAIT_READY_SECONDS. Plain `node -e` from the image, as `tsmesh proxy` has no
 * waiting mode; it reads no file and needs nothing but loopback.
 */
/** Seconds a plain (not native) sidecar waits in preStop before its SIGTERM: the default drain period. */
export const PRE_STOP_WAIT_SECONDS = 5;

/** preStop of a plain sidecar: waits PRE_STOP_WAIT_SECONDS (node is the one binary the image surely has). */
export const PRE_STOP_WAIT_COMMAND: readonly string[] = ['node', '-e', `setTimeout(() => {}, ${PRE_STOP_WAIT_SECONDS * 1000})`];

export const WAIT_READY_COMMAND: readonly string[] = [
  'node',
  '-e',
  `const end = Date.now() + ${WAIT_READY_SECONDS * 1000};
const poll = () => fetch('http://127.0.0.1:${HEALTH_PORT}/healthz/ready', { signal: AbortSignal.timeout(1000) })
  .then((r) => r.status === 200, () => false)
  .then((ready) => {
    if (ready) process.exit(0);
    if (Date.now() > end) { console.error('tsmesh-proxy not ready after ${WAIT_READY_SECONDS} s'); process.exit(1); }
    setTimeout(poll, 250);
  });
poll();`,
];

function fieldEnv(name: string, fieldPath: string): V1EnvVar {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}

export interface ProxyContainerInput {
  readonly settings: InjectionSettings;
  readonly options: PodOptions;
  readonly appProbes: Readonly<Record<string, AppProbe>>;
  /** A native sidecar: an init container with restartPolicy Always. */
  readonly native: boolean;
}

export function proxyContainer({ settings, options, appProbes, native }: ProxyContainerInput): V1Container {
  const env: V1EnvVar[] = [
    fieldEnv(ENV.podName, 'metadata.name'),
    fieldEnv(ENV.podNamespace, 'metadata.namespace'),
    fieldEnv(ENV.podIp, 'status.podIP'),
    fieldEnv(ENV.serviceAccount, 'spec.serviceAccountName'),
    { name: ENV.caAddr, value: settings.caAddress },
    { name: ENV.controlAddr, value: settings.controlAddress },
    { name: ENV.caTokenFile, value: CA_TOKEN_FILE },
    { name: ENV.trustBundleFile, value: TRUST_BUNDLE_FILE },
    { name: ENV.logLevel, value: options.logLevel ?? settings.proxyLogLevel },
    ...(settings.trustDomain === undefined ? [] : [{ name: ENV.trustDomain, value: settings.trustDomain }]),
    ...tracingEnv(settings.proxyTracing),
    ...(settings.proxyAccessLog === undefined ? [] : [{ name: ENV.accessLog, value: settings.proxyAccessLog ? 'on' : 'off' }]),
    { name: 'NODE_OPTIONS', value: SIDECAR_NODE_OPTIONS },
  ];
  if (options.opaquePorts !== undefined) env.push({ name: ENV.opaquePorts, value: options.opaquePorts });
  if (Object.keys(appProbes).length > 0) env.push({ name: ENV.appProbes, value: JSON.stringify(appProbes) });

  const ready = { httpGet: { path: '/healthz/ready', port: HEALTH_PORT, scheme: 'HTTP' } };
  const hold = options.holdApplicationUntilProxyStarts;
  const resources = proxyResources(settings.proxyResources, options);
  const container: V1Container = {
    name: PROXY_CONTAINER_NAME,
    image: settings.image,
    ...(settings.imagePullPolicy === undefined ? {} : { imagePullPolicy: settings.imagePullPolicy }),
    command: ['tsmesh'],
    args: ['proxy', '--concurrency', String(proxyConcurrency(resources.limits?.['cpu']))],
    ...(native ? { restartPolicy: 'Always' } : {}),
    ports: PROXY_PORTS.map((port) => ({ ...port, protocol: 'TCP' })),
    env,
    resources,
    volumeMounts: [
      { name: CA_TOKEN_VOLUME, mountPath: CA_TOKEN_DIR, readOnly: true },
      { name: TRUST_BUNDLE_VOLUME, mountPath: TRUST_BUNDLE_DIR, readOnly: true },
    ],
    readinessProbe: { ...ready, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 30 },
    livenessProbe: {
      httpGet: { path: '/healthz/live', port: HEALTH_PORT, scheme: 'HTTP' },
      periodSeconds: 10,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
    securityContext: {
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_GID,
      runAsNonRoot: true,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
  if (hold && native) {
    // The kubelet starts the next container only once a native sidecar's startup probe passes.
    container.startupProbe = { ...ready, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600 };
  } else if (hold) {
    // The kubelet runs postStart before starting the next container in the list.
    container.lifecycle = { postStart: { exec: { command: [...WAIT_READY_COMMAND] } } };
  }
  if (!native) {
    // Stopping order: a native sidecar gets SIGTERM after the app has exited. A plain container gets
    // it at the same time as the app, so preStop holds it back one drain period: the app finishes
    // its requests (and makes its last calls through the mesh) first, then the sidecar drains.
    container.lifecycle = { ...container.lifecycle, preStop: { exec: { command: [...PRE_STOP_WAIT_COMMAND] } } };
  }
  return container;
}

export function volumes(): V1Volume[] {
  return [
    {
      name: CA_TOKEN_VOLUME,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: CA_TOKEN_AUDIENCE,
              expirationSeconds: CA_TOKEN_EXPIRATION_SECONDS,
              path: 'token',
            },
          },
        ],
      },
    },
    { name: TRUST_BUNDLE_VOLUME, configMap: { name: TRUST_BUNDLE_CONFIGMAP } },
  ];
}
