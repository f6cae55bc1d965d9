// The only reader of flags and environment for `tsmesh injector` and `tsmesh inject`: every setting is
// parsed once into a frozen object, and a bad value stops the program with a message naming it.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { isLogLevel, TsmeshError } from '@tsmesh/common';
import { INJECTOR_ERRORS } from './errors.js';
import { parseQuantity } from './quantity.js';
import {
  DEFAULT_CONTROL_PLANE_NAMESPACE,
  DEFAULT_IMAGE,
  DEFAULT_PROXY_RESOURCES,
  makeSettings,
  parseKubernetesVersion,
  TRACING_PROVIDERS,
  type InjectionSettings,
  type ProxyResources,
  type ProxyTracing,
  type TracingProvider,
} from './settings.js';

export const DEFAULT_LISTEN = ':15017';
export const DEFAULT_NAMESPACE_CACHE_MS = 30_000;

/** Environment variables of `tsmesh injector`; each mirrors the flag of the same name. */
export const INJECTOR_ENV = {
  listen: 'TSMESH_INJECTOR_LISTEN',
  tlsCert: 'TSMESH_INJECTOR_TLS_CERT',
  tlsKey: 'TSMESH_INJECTOR_TLS_KEY',
  kubeconfig: 'TSMESH_INJECTOR_KUBECONFIG',
  logLevel: 'TSMESH_INJECTOR_LOG_LEVEL',
  image: 'TSMESH_INJECTOR_IMAGE',
  imagePullPolicy: 'TSMESH_INJECTOR_IMAGE_PULL_POLICY',
  controlPlaneNamespace: 'TSMESH_INJECTOR_CONTROL_PLANE_NAMESPACE',
  caAddr: 'TSMESH_INJECTOR_CA_ADDR',
  controlAddr: 'TSMESH_INJECTOR_CONTROL_ADDR',
  nativeSidecars: 'TSMESH_INJECTOR_NATIVE_SIDECARS',
  kubernetesVersion: 'TSMESH_INJECTOR_KUBERNETES_VERSION',
  proxyCpu: 'TSMESH_INJECTOR_PROXY_CPU',
  proxyMemory: 'TSMESH_INJECTOR_PROXY_MEMORY',
  proxyCpuLimit: 'TSMESH_INJECTOR_PROXY_CPU_LIMIT',
  proxyMemoryLimit: 'TSMESH_INJECTOR_PROXY_MEMORY_LIMIT',
  proxyLogLevel: 'TSMESH_INJECTOR_PROXY_LOG_LEVEL',
  proxyTracing: 'TSMESH_INJECTOR_PROXY_TRACING',
  proxyTracingEndpoint: 'TSMESH_INJECTOR_PROXY_TRACING_ENDPOINT',
  proxyTracingSampleRate: 'TSMESH_INJECTOR_PROXY_TRACING_SAMPLE_RATE',
  proxyAccessLog: 'TSMESH_INJECTOR_PROXY_ACCESS_LOG',
  trustDomain: 'TSMESH_INJECTOR_TRUST_DOMAIN',
  manageWebhookCert: 'TSMESH_INJECTOR_MANAGE_WEBHOOK_CERT',
  webhookService: 'TSMESH_INJECTOR_WEBHOOK_SERVICE',
  webhookNamespace: 'TSMESH_INJECTOR_WEBHOOK_NAMESPACE',
  webhookCaSecret: 'TSMESH_INJECTOR_WEBHOOK_CA_SECRET',
} as const;

export const DEFAULT_WEBHOOK_SERVICE = 'tsmesh-injector';
export const DEFAULT_WEBHOOK_CA_SECRET = 'tsmesh-injector-ca';

/** The self-managed serving certificate (`--manage-webhook-cert`): see README, *Self-managed certificate*. */
export interface ManagedCertConfig {
  /** The MutatingWebhookConfiguration whose caBundle the injector keeps. */
  readonly webhookConfiguration: string;
  /** The webhook Service and its namespace: the serving certificate's DNS names. */
  readonly service: string;
  readonly namespace: string;
  /** The Secret (in `namespace`) that holds the CA every replica shares. */
  readonly caSecret: string;
}

export interface InjectorConfig {
  readonly listen: { readonly host: string; readonly port: number };
  /** The serving certificate files; both set, or both undefined when `managedCert` is. */
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
  readonly managedCert?: ManagedCertConfig;
  /** Undefined: $KUBECONFIG, else ~/.kube/config, else in-cluster. */
  readonly kubeconfig?: string;
  readonly logLevel: string;
  readonly namespaceCacheMs: number;
  readonly settings: InjectionSettings;
}

export interface InjectConfig {
  /** A path, or "-" for standard input. */
  readonly file: string;
  readonly settings: InjectionSettings;
}

const SETTINGS_OPTIONS = {
  image: { type: 'string' },
  'image-pull-policy': { type: 'string' },
  'control-plane-namespace': { type: 'string' },
  'ca-addr': { type: 'string' },
  'control-addr': { type: 'string' },
  'native-sidecars': { type: 'string' },
  'kubernetes-version': { type: 'string' },
  'proxy-cpu': { type: 'string' },
  'proxy-memory': { type: 'string' },
  'proxy-cpu-limit': { type: 'string' },
  'proxy-memory-limit': { type: 'string' },
  'proxy-log-level': { type: 'string' },
  'proxy-tracing': { type: 'string' },
  'proxy-tracing-endpoint': { type: 'string' },
  'proxy-tracing-sample-rate': { type: 'string' },
  'proxy-access-log': { type: 'string' },
  'trust-domain': { type: 'string' },
} as const;

const SETTINGS_HELP = `  --image IMAGE                  image of tsmesh-init and tsmesh-proxy (default ${DEFAULT_IMAGE})
  --image-pull-policy POLICY     Always | IfNotPresent | Never (default: left to Kubernetes)
  --control-plane-namespace NS   never injected; default for the addresses below (default ${DEFAULT_CONTROL_PLANE_NAMESPACE})
  --ca-addr HOST:PORT            TSMESH_CA_ADDR of the sidecar (default tsmesh-ca.<ns>.svc:15012)
  --control-addr HOST:PORT       TSMESH_CONTROL_ADDR of the sidecar (default tsmesh-control.<ns>.svc:15010)
  --native-sidecars MODE         true | false | auto: the sidecar as an init container with
                                 restartPolicy Always; auto = when Kubernetes is 1.29 or later
  --kubernetes-version X.Y       the version 'auto' decides by
  --proxy-cpu, --proxy-memory, --proxy-cpu-limit, --proxy-memory-limit QUANTITY
                                 sidecar resources unless the pod's annotations say otherwise
                                 (defaults: cpu ${DEFAULT_PROXY_RESOURCES.cpu}, memory ${DEFAULT_PROXY_RESOURCES.memory}, memory limit ${DEFAULT_PROXY_RESOURCES.memoryLimit})
  --proxy-log-level LEVEL        the sidecar's TSMESH_LOG_LEVEL unless the pod sets tsmesh.io/log-level (default info)
  --proxy-tracing PROVIDER       the sidecar's TSMESH_TRACING: zipkin | otlp | none (default: not set, tracing off)
  --proxy-tracing-endpoint URL   its TSMESH_TRACING_ENDPOINT, an http(s) URL (only with zipkin or otlp;
                                 default: the sidecar's own for the provider)
  --proxy-tracing-sample-rate R  its TSMESH_TRACING_SAMPLE_RATE, 0 to 1 (with --proxy-tracing; default: the sidecar's, 0.01)
  --proxy-access-log on|off      the sidecar's TSMESH_ACCESS_LOG: one JSON line per request or connection
                                 (default: not set, the sidecar's default: off)
  --trust-domain DOMAIN          the sidecar's TSMESH_TRUST_DOMAIN: the CA's trust domain (default: not set,
                                 the sidecar assumes cluster.local)
`;

export const INJECTOR_HELP = `tsmesh injector: run the sidecar-injector admission webhook (HTTPS)

Usage: tsmesh injector --tls-cert FILE --tls-key FILE [flags]
       tsmesh injector --manage-webhook-cert WEBHOOK-CONFIGURATION [flags]

Answers AdmissionReview (admission.k8s.io/v1) requests on POST /inject with a JSONPatch that adds
the tsmesh sidecar; GET /healthz/ready and /healthz/live for probes.

Flags (each also read from the environment variable TSMESH_INJECTOR_<FLAG>, e.g. TSMESH_INJECTOR_TLS_CERT):
  --listen [HOST]:PORT           address to listen on (default ${DEFAULT_LISTEN}, all addresses)
  --tls-cert FILE                PEM certificate chain of the webhook (reloaded when it changes)
  --tls-key FILE                 PEM private key of the webhook
  --manage-webhook-cert NAME     instead of the files: make the serving certificate from a CA kept in a
                                 Secret (shared by all replicas), renew it, and keep the caBundle of the
                                 MutatingWebhookConfiguration NAME equal to that CA
  --webhook-service NAME         with --manage-webhook-cert: the webhook's Service (default ${DEFAULT_WEBHOOK_SERVICE})
  --webhook-namespace NS         its namespace, also the CA Secret's (default: --control-plane-namespace)
  --webhook-ca-secret NAME       the Secret holding the shared CA (default ${DEFAULT_WEBHOOK_CA_SECRET})
  --kubeconfig FILE              API server access for namespace labels and version (default: $KUBECONFIG,
                                 then ~/.kube/config, then the in-cluster service account)
  --log-level LEVEL              the injector's own pino level (default info)
${SETTINGS_HELP}`;

export const INJECT_HELP = `tsmesh inject: print manifests with the tsmesh sidecar injected, as the webhook would

Usage: tsmesh inject -f FILE [flags]

Reads a YAML stream (FILE, or standard input with -f -) and prints it with the sidecar injected into
Pods and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs.
Other objects pass through unchanged. Injection is assumed wanted unless an object opts out with
tsmesh.io/inject: "false" (the namespace label is not consulted); the never-injected cases still apply.

Flags:
  -f, --filename FILE            the manifests ("-" for standard input; required)
${SETTINGS_HELP}`;

function badFlag(message: string, cause?: unknown): TsmeshError {
  return new TsmeshError(INJECTOR_ERRORS.BAD_FLAG, message, cause === undefined ? undefined : { cause });
}

type Values = Record<string, string | boolean | undefined>;

function parse(argv: readonly string[], options: ParseArgsOptionsConfig): Values {
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
    return values as Values;
  } catch (error) {
    throw badFlag(error instanceof Error ? error.message : String(error), error);
  }
}

/** A flag's value, else its environment variable's, else undefined; "" counts as not given. */
function pick(values: Values, flag: string, env: Readonly<Record<string, string | undefined>>, variable?: string): string | undefined {
  const fromFlag = values[flag];
  if (typeof fromFlag === 'string') return fromFlag;
  const fromEnv = variable === undefined ? undefined : env[variable];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

function check(value: string | undefined, name: string, valid: (value: string) => boolean, expected: string): string | undefined {
  if (value !== undefined && !valid(value)) throw badFlag(`${name}: "${value}" is not valid (expected ${expected})`);
  return value;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const isHostPort = (value: string) => {
  const match = HOST_PORT.exec(value);
  return match !== null && Number(match[2]) >= 1 && Number(match[2]) <= 65535;
};
const isDnsLabel = (value: string) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value);
// As `tsmesh ca --trust-domain` and `tsmesh control --trust-domain` accept it.
const isTrustDomain = (value: string) => /^[a-z0-9._-]{1,255}$/.test(value);
const isHttpUrl = (value: string) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
};
const isRate = (value: string) => /^\s*[0-9.eE+-]+\s*$/.test(value) && Number(value) >= 0 && Number(value) <= 1;

/**
 * The sidecars' tracing, checked as the sidecar's telemetry config checks TSMESH_TRACING* (proxy
 * telemetry/config.ts). The sidecar would warn and fall back on a bad value; the injector refuses it
 * at start instead, so that no pod is created with settings its sidecar would ignore.
 */
function readTracing(provider: string | undefined, endpoint: string | undefined, rate: string | undefined): ProxyTracing | undefined {
  const expected = TRACING_PROVIDERS.join(', ');
  const normalised = provider?.trim().toLowerCase();
  check(normalised, '--proxy-tracing', (v) => (TRACING_PROVIDERS as readonly string[]).includes(v), expected);
  check(endpoint, '--proxy-tracing-endpoint', isHttpUrl, 'an http(s) URL such as http://zipkin.tsmesh-system:9411/api/v2/spans');
  check(rate, '--proxy-tracing-sample-rate', isRate, 'a number from 0 to 1');
  if (normalised === undefined) {
    if (endpoint !== undefined) throw badFlag('--proxy-tracing-endpoint needs --proxy-tracing zipkin or otlp');
    if (rate !== undefined) throw badFlag('--proxy-tracing-sample-rate needs --proxy-tracing');
    return undefined;
  }
  if (normalised === 'none' && endpoint !== undefined) {
    throw badFlag('--proxy-tracing-endpoint needs --proxy-tracing zipkin or otlp (it is none)');
  }
  return {
    provider: normalised as TracingProvider,
    ...(endpoint === undefined ? {} : { endpoint: endpoint.trim() }),
    ...(rate === undefined ? {} : { sampleRate: Number(rate) }),
  };
}

function readSettings(values: Values, env: Readonly<Record<string, string | undefined>>, useEnv: boolean): InjectionSettings {
  const get = (flag: keyof typeof SETTINGS_OPTIONS, variable: string) => pick(values, flag, env, useEnv ? variable : undefined);
  const E = INJECTOR_ENV;
  const image = check(get('image', E.image), '--image', (v) => v.trim() !== '' && !/\s/.test(v), 'an image reference');
  const pullPolicy = check(
    get('image-pull-policy', E.imagePullPolicy),
    '--image-pull-policy',
    (v) => ['Always', 'IfNotPresent', 'Never'].includes(v),
    'Always, IfNotPresent or Never',
  ) as InjectionSettings['imagePullPolicy'];
  const namespace = check(get('control-plane-namespace', E.controlPlaneNamespace), '--control-plane-namespace', isDnsLabel, 'a namespace name');
  const caAddress = check(get('ca-addr', E.caAddr), '--ca-addr', isHostPort, 'HOST:PORT');
  const controlAddress = check(get('control-addr', E.controlAddr), '--control-addr', isHostPort, 'HOST:PORT');
  const native = check(get('native-sidecars', E.nativeSidecars), '--native-sidecars', (v) => ['true', 'false', 'auto'].includes(v), 'true, false or auto');
  const version = check(
    get('kubernetes-version', E.kubernetesVersion),
    '--kubernetes-version',
    (v) => parseKubernetesVersion(v) !== undefined,
    'a version such as 1.30 or v1.30.2',
  );
  const isQuantity = (v: string) => parseQuantity(v) !== undefined;
  const quantity = 'a Kubernetes quantity such as 100m or 128Mi';
  const given = {
    cpu: check(get('proxy-cpu', E.proxyCpu), '--proxy-cpu', isQuantity, quantity),
    memory: check(get('proxy-memory', E.proxyMemory), '--proxy-memory', isQuantity, quantity),
    cpuLimit: check(get('proxy-cpu-limit', E.proxyCpuLimit), '--proxy-cpu-limit', isQuantity, quantity),
    memoryLimit: check(get('proxy-memory-limit', E.proxyMemoryLimit), '--proxy-memory-limit', isQuantity, quantity),
  };
  const proxyResources: ProxyResources = {
    ...DEFAULT_PROXY_RESOURCES,
    ...Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined)),
  };
  for (const [request, limit] of [['cpu', 'cpuLimit'], ['memory', 'memoryLimit']] as const) {
    const requested = proxyResources[request];
    const limited = proxyResources[limit];
    if (requested !== undefined && limited !== undefined && (parseQuantity(requested) ?? 0) > (parseQuantity(limited) ?? Infinity)) {
      throw badFlag(`--proxy-${request}: "${requested}" is more than the limit "${limited}"`);
    }
  }
  const proxyLogLevel = check(get('proxy-log-level', E.proxyLogLevel), '--proxy-log-level', isLogLevel, 'a pino level');
  const proxyTracing = readTracing(
    get('proxy-tracing', E.proxyTracing),
    get('proxy-tracing-endpoint', E.proxyTracingEndpoint),
    get('proxy-tracing-sample-rate', E.proxyTracingSampleRate),
  );
  const accessLog = check(
    get('proxy-access-log', E.proxyAccessLog)?.trim().toLowerCase(),
    '--proxy-access-log',
    (v) => v === 'on' || v === 'off',
    'on or off',
  );
  const trustDomain = check(
    get('trust-domain', E.trustDomain),
    '--trust-domain',
    isTrustDomain,
    'a SPIFFE trust domain: lowercase letters, digits, ".", "-" and "_"',
  );
  return makeSettings({
    image,
    imagePullPolicy: pullPolicy,
    controlPlaneNamespace: namespace,
    caAddress,
    controlAddress,
    nativeSidecars: native === undefined || native === 'auto' ? 'auto' : native === 'true',
    kubernetesVersion: version,
    proxyResources,
    proxyLogLevel,
    proxyTracing,
    proxyAccessLog: accessLog === undefined ? undefined : accessLog === 'on',
    trustDomain,
  });
}

function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  // Port 0 asks the system for a free port (tests, trial runs).
  if (!match || port > 65535) throw badFlag(`--listen: "${value}" is not valid (expected [HOST]:PORT)`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

const isObjectName = (value: string) => value.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(value);

function readManagedCert(values: Values, env: Readonly<Record<string, string | undefined>>, controlPlaneNamespace: string): ManagedCertConfig | undefined {
  const E = INJECTOR_ENV;
  const webhookConfiguration = check(pick(values, 'manage-webhook-cert', env, E.manageWebhookCert), '--manage-webhook-cert', isObjectName, 'a MutatingWebhookConfiguration name');
  const service = check(pick(values, 'webhook-service', env, E.webhookService), '--webhook-service', isDnsLabel, 'a Service name');
  const namespace = check(pick(values, 'webhook-namespace', env, E.webhookNamespace), '--webhook-namespace', isDnsLabel, 'a namespace name');
  const caSecret = check(pick(values, 'webhook-ca-secret', env, E.webhookCaSecret), '--webhook-ca-secret', isObjectName, 'a Secret name');
  if (webhookConfiguration === undefined) {
    const stray = [['--webhook-service', service], ['--webhook-namespace', namespace], ['--webhook-ca-secret', caSecret]].find(([, v]) => v !== undefined);
    if (stray !== undefined) throw badFlag(`${stray[0]} needs --manage-webhook-cert`);
    return undefined;
  }
  return Object.freeze({
    webhookConfiguration,
    service: service ?? DEFAULT_WEBHOOK_SERVICE,
    namespace: namespace ?? controlPlaneNamespace,
    caSecret: caSecret ?? DEFAULT_WEBHOOK_CA_SECRET,
  });
}

/** Flags and environment of `tsmesh injector`. Throws a TsmeshError (TSMESH_ERR_BAD_FLAG) on a bad value. */
export function injectorConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): InjectorConfig {
  const values = parse(argv, {
    ...SETTINGS_OPTIONS,
    listen: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    kubeconfig: { type: 'string' },
    'log-level': { type: 'string' },
    'manage-webhook-cert': { type: 'string' },
    'webhook-service': { type: 'string' },
    'webhook-namespace': { type: 'string' },
    'webhook-ca-secret': { type: 'string' },
  });
  const E = INJECTOR_ENV;
  const tlsCertFile = pick(values, 'tls-cert', env, E.tlsCert);
  const tlsKeyFile = pick(values, 'tls-key', env, E.tlsKey);
  const settings = readSettings(values, env, true);
  const managedCert = readManagedCert(values, env, settings.controlPlaneNamespace);
  if (managedCert !== undefined && (tlsCertFile !== undefined || tlsKeyFile !== undefined)) {
    throw badFlag('--manage-webhook-cert and --tls-cert/--tls-key exclude each other: the certificate is either made here or read from files');
  }
  if (managedCert === undefined && (tlsCertFile === undefined || tlsKeyFile === undefined)) {
    throw badFlag('--tls-cert and --tls-key are required: the API server only calls webhooks over HTTPS (or --manage-webhook-cert NAME to make the certificate here)');
  }
  const kubeconfig = pick(values, 'kubeconfig', env, E.kubeconfig);
  const logLevel = check(pick(values, 'log-level', env, E.logLevel), '--log-level', isLogLevel, 'a pino level') ?? 'info';
  return Object.freeze({
    listen: Object.freeze(parseListen(pick(values, 'listen', env, E.listen) ?? DEFAULT_LISTEN)),
    ...(managedCert === undefined ? { tlsCertFile, tlsKeyFile } : { managedCert }),
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
    logLevel,
    namespaceCacheMs: DEFAULT_NAMESPACE_CACHE_MS,
    settings,
  });
}

/** Flags of `tsmesh inject` (no environment: the output depends on the command line alone). */
export function injectConfig(argv: readonly string[]): InjectConfig {
  const values = parse(argv, { ...SETTINGS_OPTIONS, filename: { type: 'string', short: 'f' } });
  const file = values.filename;
  if (typeof file !== 'string' || file === '') throw badFlag('-f FILE is required ("-" reads standard input)');
  return Object.freeze({ file, settings: readSettings(values, {}, false) });
}
