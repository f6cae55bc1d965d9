// The only reader of flags and environment for `tsmesh control`: every setting, discovery's
// (`--kubeconfig`, `--config`...) and distribution's (`--listen`, `--tls-cert`...), is read once with
// common's readFlags into a frozen object; a bad value stops the program with a message naming it.
import {
  DEFAULT_CONTROL_PORT,
  DEFAULT_DEBUG_PORT,
  DEFAULT_ROOT_NAMESPACE,
  TRUST_BUNDLE_CONFIGMAP,
  durationFlag,
  formatDuration,
  isLogLevel,
  parseMeshLimits,
  readFlags,
  type MeshLimits,
  type TsmeshError,
} from '@tsmesh/common';
import { DEFAULT_DISTRIBUTION_DEBOUNCE_MS, DEFAULT_TRUST_DOMAIN } from './distribution/distributor.js';
import { CONTROL_ERRORS, controlError } from './errors.js';

/** Environment variables of `tsmesh control`, by the flag each mirrors (a flag wins; an empty value counts as unset). */
export const CONTROL_ENV = {
  kubeconfig: 'TSMESH_CONTROL_KUBECONFIG',
  config: 'TSMESH_CONTROL_CONFIG',
  'mesh-max-bytes': 'TSMESH_CONTROL_MESH_MAX_BYTES',
  'mesh-max-depth': 'TSMESH_CONTROL_MESH_MAX_DEPTH',
  'log-level': 'TSMESH_CONTROL_LOG_LEVEL',
  listen: 'TSMESH_CONTROL_LISTEN',
  'tls-cert': 'TSMESH_CONTROL_TLS_CERT',
  'tls-key': 'TSMESH_CONTROL_TLS_KEY',
  'trust-bundle': 'TSMESH_CONTROL_TRUST_BUNDLE',
  'debug-listen': 'TSMESH_CONTROL_DEBUG_LISTEN',
  'trust-domain': 'TSMESH_TRUST_DOMAIN',
  'root-namespace': 'TSMESH_CONTROL_ROOT_NAMESPACE',
  debounce: 'TSMESH_CONTROL_DEBOUNCE',
  'trust-bundle-configmap': 'TSMESH_CONTROL_TRUST_BUNDLE_CONFIGMAP',
} as const;

type Flag = keyof typeof CONTROL_ENV;

/** Where the mesh comes from: a mesh file (`--config`), or the Kubernetes API server. */
export type MeshSourceConfig =
  /** `limits`: a larger file is refused unread, deeper nesting before parsing (`--mesh-max-bytes`, `--mesh-max-depth`); default DEFAULT_MESH_LIMITS. */
  | { readonly kind: 'file'; readonly path: string; readonly limits?: MeshLimits }
  /** `kubeconfig` undefined: $KUBECONFIG, else ~/.kube/config, else the in-cluster service account. */
  | { readonly kind: 'kubernetes'; readonly kubeconfig: string | undefined };

/** Where the mesh comes from, and the log level. */
export interface ControlConfig {
  readonly source: MeshSourceConfig;
  readonly logLevel: string;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** How sidecars are served. */
export interface DistributionConfig {
  readonly listen: ListenAddress;
  readonly tlsCertFile: string;
  readonly tlsKeyFile: string;
  readonly trustBundleFile: string;
  /** undefined: no debug server (`--debug-listen off`). */
  readonly debugListen: ListenAddress | undefined;
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly debounceMs: number;
  /**
   * The ConfigMap the trust bundle is published as in every namespace, when the mesh comes from
   * Kubernetes (default tsmesh-ca-root-cert, what the injector mounts); undefined: not published (`off`).
   */
  readonly trustBundleConfigMap: string | undefined;
}

export interface ControlPlaneConfig {
  /** `--kubeconfig`, `--config`, `--mesh-max-*`, `--log-level`. */
  readonly discovery: ControlConfig;
  /** `--listen`, `--tls-cert`, `--tls-key`, `--trust-bundle`, `--debug-listen`... */
  readonly distribution: DistributionConfig;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A ConfigMap name: a DNS subdomain. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const MAX_DEBOUNCE_MS = 60_000;

function badFlag(message: string): TsmeshError {
  return controlError(CONTROL_ERRORS.BAD_FLAG, message);
}

/** `host:port` or `[v6]:port`, port 0..65535. */
export function parseListenAddress(flag: string, value: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || host === '' || !(port >= 0 && port <= 65535)) {
    throw badFlag(`--${flag}: "${value}" is not HOST:PORT (e.g. 0.0.0.0:${DEFAULT_CONTROL_PORT}, [::]:${DEFAULT_CONTROL_PORT})`);
  }
  return Object.freeze({ host, port });
}

/** All flags and environment of `tsmesh control`. Throws TsmeshError (TSMESH_ERR_BAD_FLAG) naming a bad one. */
export function controlPlaneConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): ControlPlaneConfig {
  const flags = readFlags(argv, { values: Object.keys(CONTROL_ENV) });
  if (!flags.ok) throw badFlag(flags.error);
  const pick = (flag: Flag): string | undefined => {
    const value = flags.value.get(flag)?.[0] ?? env[CONTROL_ENV[flag]];
    return value === '' ? undefined : value;
  };
  const required = (flag: Flag, what: string): string => {
    const value = pick(flag);
    if (value === undefined) throw badFlag(`--${flag} is required (${what}; or ${CONTROL_ENV[flag]})`);
    return value;
  };

  const file = pick('config');
  const kubeconfig = pick('kubeconfig');
  if (file !== undefined && kubeconfig !== undefined) {
    throw badFlag('--config and --kubeconfig exclude each other: the mesh comes from a file or from Kubernetes');
  }
  const logLevel = pick('log-level') ?? 'info';
  if (!isLogLevel(logLevel)) throw badFlag(`--log-level: "${logLevel}" is not valid (expected a pino level)`);
  const limits = parseMeshLimits(pick('mesh-max-bytes'), pick('mesh-max-depth'));
  if (!limits.ok) throw badFlag(`--${limits.error.which === 'maxBytes' ? 'mesh-max-bytes' : 'mesh-max-depth'}: ${limits.error.message}`);
  const source: MeshSourceConfig = file !== undefined ? { kind: 'file', path: file, limits: limits.value } : { kind: 'kubernetes', kubeconfig };

  const tlsCertFile = required('tls-cert', 'the PEM serving certificate sidecars verify, then its intermediates');
  const tlsKeyFile = required('tls-key', 'its PEM private key');
  const trustBundleFile = required('trust-bundle', 'PEM roots that workload certificates chain to, e.g. the CA state dir root-cert.pem');
  const listen = parseListenAddress('listen', pick('listen') ?? `0.0.0.0:${DEFAULT_CONTROL_PORT}`);
  const debug = pick('debug-listen') ?? `127.0.0.1:${DEFAULT_DEBUG_PORT}`;
  const debugListen = debug === 'off' ? undefined : parseListenAddress('debug-listen', debug);
  const trustDomain = pick('trust-domain') ?? DEFAULT_TRUST_DOMAIN;
  if (!TRUST_DOMAIN.test(trustDomain)) throw badFlag(`--trust-domain: "${trustDomain}" is not a SPIFFE trust domain (lowercase letters, digits, ".", "-", "_")`);
  const rootNamespace = pick('root-namespace') ?? DEFAULT_ROOT_NAMESPACE;
  if (!DNS_LABEL.test(rootNamespace)) throw badFlag(`--root-namespace: "${rootNamespace}" is not a namespace name`);
  const debounce = durationFlag('--debounce', pick('debounce') ?? formatDuration(DEFAULT_DISTRIBUTION_DEBOUNCE_MS), { minMs: 0, maxMs: MAX_DEBOUNCE_MS });
  if (!debounce.ok) throw badFlag(debounce.error);
  const configMap = pick('trust-bundle-configmap') ?? TRUST_BUNDLE_CONFIGMAP;
  if (configMap !== 'off' && !DNS_SUBDOMAIN.test(configMap)) throw badFlag(`--trust-bundle-configmap: "${configMap}" is not a ConfigMap name (or "off")`);
  const trustBundleConfigMap = configMap === 'off' ? undefined : configMap;

  const discovery: ControlConfig = Object.freeze({ source: Object.freeze(source), logLevel });
  const distribution: DistributionConfig = Object.freeze({ listen, tlsCertFile, tlsKeyFile, trustBundleFile, debugListen, trustDomain, rootNamespace, debounceMs: debounce.value, trustBundleConfigMap });
  return Object.freeze({ discovery, distribution });
}
