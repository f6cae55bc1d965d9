// Flags and environment of `tsmesh control`: the distribution side's own (`--listen`, `--tls-cert`...)
// are taken out of argv here; the rest go to the discovery config (../config.ts); controlPlaneConfig
// gives both, parsed once and frozen.
import { DEFAULT_CONTROL_PORT, DEFAULT_DEBUG_PORT, TRUST_BUNDLE_CONFIGMAP, TsmeshError } from '@tsmesh/common';
import { controlConfig, type ControlConfig } from '../config.js';
import { CONTROL_ERRORS } from '../errors.js';
import { DEFAULT_DISTRIBUTION_DEBOUNCE_MS, DEFAULT_ROOT_NAMESPACE, DEFAULT_TRUST_DOMAIN } from './distributor.js';

/** Environment variables; each mirrors the flag of the same name (a flag wins). */
export const DISTRIBUTION_ENV = {
  listen: 'TSMESH_CONTROL_LISTEN',
  'tls-cert': 'TSMESH_CONTROL_TLS_CERT',
  'tls-key': 'TSMESH_CONTROL_TLS_KEY',
  'trust-bundle': 'TSMESH_CONTROL_TRUST_BUNDLE',
  'debug-listen': 'TSMESH_CONTROL_DEBUG_LISTEN',
  'trust-domain': 'TSMESH_TRUST_DOMAIN',
  'root-namespace': 'TSMESH_CONTROL_ROOT_NAMESPACE',
  'debounce-ms': 'TSMESH_CONTROL_DEBOUNCE_MS',
  'trust-bundle-configmap': 'TSMESH_CONTROL_TRUST_BUNDLE_CONFIGMAP',
} as const;

type Flag = keyof typeof DISTRIBUTION_ENV;
const FLAGS = Object.keys(DISTRIBUTION_ENV) as Flag[];

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

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

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A ConfigMap name: a DNS subdomain. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

function badFlag(message: string): TsmeshError {
  return new TsmeshError(CONTROL_ERRORS.BAD_FLAG, message);
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

/**
 * Takes the distribution flags (`--flag value` and `--flag=value`) out of `argv`. Returns the parsed
 * settings and the other arguments, for `controlConfig`. Throws TsmeshError (TSMESH_ERR_BAD_FLAG)
 * naming the flag on a missing or bad value.
 */
export function distributionConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): { config: DistributionConfig; rest: string[] } {
  const given = new Map<Flag, string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] = arg.startsWith('--') ? splitFlag(arg.slice(2)) : [undefined, undefined];
    const flag = FLAGS.find((f) => f === name);
    if (flag === undefined) {
      rest.push(arg);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw badFlag(`--${flag} needs a value`);
    given.set(flag, value);
  }
  const pick = (flag: Flag): string | undefined => {
    const value = given.get(flag) ?? env[DISTRIBUTION_ENV[flag]];
    return value === '' ? undefined : value;
  };
  const required = (flag: Flag, what: string): string => {
    const value = pick(flag);
    if (value === undefined) throw badFlag(`--${flag} is required (${what}; or ${DISTRIBUTION_ENV[flag]})`);
    return value;
  };
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
  const debounceText = pick('debounce-ms') ?? String(DEFAULT_DISTRIBUTION_DEBOUNCE_MS);
  const debounceMs = Number(debounceText);
  if (!/^\d+$/.test(debounceText) || debounceMs > 60_000) throw badFlag(`--debounce-ms: "${debounceText}" is not a number of milliseconds (0 to 60000)`);
  const configMap = pick('trust-bundle-configmap') ?? TRUST_BUNDLE_CONFIGMAP;
  if (configMap !== 'off' && !DNS_SUBDOMAIN.test(configMap)) throw badFlag(`--trust-bundle-configmap: "${configMap}" is not a ConfigMap name (or "off")`);
  const trustBundleConfigMap = configMap === 'off' ? undefined : configMap;
  const config = Object.freeze({ listen, tlsCertFile, tlsKeyFile, trustBundleFile, debugListen, trustDomain, rootNamespace, debounceMs, trustBundleConfigMap });
  return { config, rest };
}

function splitFlag(text: string): [string, string | undefined] {
  const equals = text.indexOf('=');
  return equals === -1 ? [text, undefined] : [text.slice(0, equals), text.slice(equals + 1)];
}

export interface ControlPlaneConfig {
  /** Where the mesh comes from, and the log level (`--kubeconfig`, `--config`, `--log-level`). */
  readonly discovery: ControlConfig;
  /** How sidecars are served (`--listen`, `--tls-cert`, `--tls-key`, `--trust-bundle`, `--debug-listen`...). */
  readonly distribution: DistributionConfig;
}

/** All flags and environment of `tsmesh control`. Throws TsmeshError (TSMESH_ERR_BAD_FLAG) naming a bad one. */
export function controlPlaneConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): ControlPlaneConfig {
  const { config, rest } = distributionConfig(argv, env);
  return Object.freeze({ discovery: controlConfig(rest, env), distribution: config });
}
