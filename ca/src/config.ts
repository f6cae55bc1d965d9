// The only reader of the CA's flags and environment: parsed once into a frozen CaConfig.
// Security settings fail fast with TSMESH_ERR_BAD_FLAG; the log level warns and falls back.
import { isIP } from 'node:net';
import { isLogLevel, parseDuration as parseFlagDuration, readFlags, TsmeshError } from '@tsmesh/common';
import { CA_SETUP_ERRORS } from './errors.js';
import { DEFAULT_TRUST_DOMAIN, isTrustDomain } from './identity.js';
import type { SubjectAltName } from './x509/certificate.js';

export const ENV_LOG_LEVEL = 'TSMESH_LOG_LEVEL';

export const DEFAULT_LISTEN = '0.0.0.0:15012';
export const DEFAULT_TTL_SECONDS = 24 * 3600;
export const DEFAULT_MAX_TTL_SECONDS = 48 * 3600;
/** Names the CA's serving certificate always carries (Service `tsmesh-ca` in `tsmesh-system`). */
export const DEFAULT_SERVING_SANS: readonly SubjectAltName[] = [
  { type: 'dns', value: 'tsmesh-ca' },
  { type: 'dns', value: 'tsmesh-ca.tsmesh-system.svc' },
  { type: 'dns', value: 'localhost' },
  { type: 'ip', value: '127.0.0.1' },
];

export interface CaConfig {
  readonly listen: { readonly host: string; readonly port: number };
  readonly stateDir: string | undefined;
  /** Local mode; without it tokens are checked with the Kubernetes TokenReview API. */
  readonly tokenFile: string | undefined;
  /** Kubeconfig for TokenReview; undefined = the default loading rules (in-cluster, KUBECONFIG, ~/.kube/config). */
  readonly kubeconfig: string | undefined;
  readonly trustDomain: string;
  readonly defaultTtlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly rootCertFile: string | undefined;
  readonly rootKeyFile: string | undefined;
  readonly intermediateCertFile: string | undefined;
  readonly intermediateKeyFile: string | undefined;
  readonly extraRootsFile: string | undefined;
  /** How often the operator's material files are looked at for a change (`--material-poll`, default 30 s). */
  readonly materialPollSeconds: number;
  readonly servingSans: readonly SubjectAltName[];
  readonly logLevel: string;
  /** Problems that did not stop start-up (e.g. a bad log level), for the caller to log. */
  readonly warnings: readonly string[];
}

const VALUE_FLAGS = [
  'listen', 'state-dir', 'token-file', 'kubeconfig', 'trust-domain', 'max-ttl', 'default-ttl',
  'root-cert', 'root-key', 'intermediate-cert', 'intermediate-key', 'extra-roots', 'serving-san', 'material-poll',
] as const;
type FlagName = (typeof VALUE_FLAGS)[number];

const badFlag = (message: string): TsmeshError => new TsmeshError(CA_SETUP_ERRORS.BAD_FLAG, message);

/** Parses `tsmesh ca` flags (`--flag value` or `--flag=value`); throws TSMESH_ERR_BAD_FLAG naming the flag. */
export function parseCaConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CaConfig {
  const read = readFlags(argv, { values: VALUE_FLAGS, repeatable: ['serving-san'] });
  if (!read.ok) throw badFlag(read.error);
  const values = read.value;
  const one = (name: FlagName): string | undefined => values.get(name)?.[0];

  const listen = parseListen(one('listen') ?? DEFAULT_LISTEN);
  const trustDomain = one('trust-domain') ?? DEFAULT_TRUST_DOMAIN;
  if (!isTrustDomain(trustDomain)) {
    throw badFlag(`--trust-domain "${trustDomain}" is not a valid trust domain (lowercase letters, digits, ".", "-", "_")`);
  }
  const maxTtlText = one('max-ttl');
  const defaultTtlText = one('default-ttl');
  const maxTtlSeconds = maxTtlText === undefined ? DEFAULT_MAX_TTL_SECONDS : parseDuration(maxTtlText, 'max-ttl');
  const defaultTtlSeconds =
    defaultTtlText === undefined ? Math.min(DEFAULT_TTL_SECONDS, maxTtlSeconds) : parseDuration(defaultTtlText, 'default-ttl');
  if (defaultTtlSeconds > maxTtlSeconds) {
    throw badFlag(`--default-ttl ${defaultTtlText ?? ''} is longer than --max-ttl ${maxTtlText ?? '48h'}`);
  }

  const stateDir = one('state-dir');
  const rootCertFile = one('root-cert');
  const rootKeyFile = one('root-key');
  const intermediateCertFile = one('intermediate-cert');
  const intermediateKeyFile = one('intermediate-key');
  if (stateDir === undefined && rootCertFile === undefined) {
    throw badFlag('needs --state-dir DIR (the CA keeps its own root there) or --root-cert FILE (an operator root)');
  }
  if (rootKeyFile !== undefined && rootCertFile === undefined) throw badFlag('--root-key needs --root-cert');
  if ((intermediateCertFile === undefined) !== (intermediateKeyFile === undefined)) {
    throw badFlag('--intermediate-cert and --intermediate-key go together');
  }
  if (intermediateCertFile !== undefined && rootCertFile === undefined) {
    throw badFlag('--intermediate-cert needs --root-cert (the root it chains to)');
  }
  if (rootCertFile !== undefined && rootKeyFile === undefined && intermediateCertFile === undefined) {
    throw badFlag('--root-cert needs either --root-key (the CA makes its intermediate) or --intermediate-cert/--intermediate-key');
  }

  const servingSans = [...DEFAULT_SERVING_SANS];
  for (const item of (values.get('serving-san') ?? []).flatMap((v) => v.split(','))) {
    const name = item.trim();
    if (name === '') continue;
    if (isIP(name) !== 0) servingSans.push({ type: 'ip', value: name });
    else if (/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(name) && name.length <= 253) {
      servingSans.push({ type: 'dns', value: name.toLowerCase() });
    } else throw badFlag(`--serving-san "${name}" is neither a DNS name nor an IP address`);
  }

  const warnings: string[] = [];
  let logLevel = env[ENV_LOG_LEVEL] ?? 'info';
  if (!isLogLevel(logLevel)) {
    warnings.push(`${ENV_LOG_LEVEL}="${logLevel}" is not a log level; using info`);
    logLevel = 'info';
  }

  return Object.freeze({
    listen,
    stateDir,
    tokenFile: one('token-file'),
    kubeconfig: one('kubeconfig'),
    trustDomain,
    defaultTtlSeconds,
    maxTtlSeconds,
    rootCertFile,
    rootKeyFile,
    intermediateCertFile,
    intermediateKeyFile,
    extraRootsFile: one('extra-roots'),
    materialPollSeconds: parseDuration(one('material-poll') ?? '30s', 'material-poll'),
    servingSans: Object.freeze(servingSans),
    logLevel,
    warnings: Object.freeze(warnings),
  });
}

/** `HOST:PORT` or `[IPv6]:PORT`; port 0 picks a free port. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (match === null || host === undefined || host === '' || port > 65535) {
    throw badFlag(`--listen "${text}" is not HOST:PORT`);
  }
  return { host, port };
}

/** A duration flag (common's format: `90s`, `30m`, `24h`, `7d`, `1h30m`) in whole seconds, at least one. */
export function parseDuration(text: string, flag: string): number {
  const ms = parseFlagDuration(text);
  if (ms === undefined) throw badFlag(`--${flag} "${text}" is not a duration (e.g. 90s, 30m, 24h, 7d, 1h30m)`);
  if (ms < 1000) throw badFlag(`--${flag} "${text}" must be at least one second`);
  return Math.floor(ms / 1000);
}
