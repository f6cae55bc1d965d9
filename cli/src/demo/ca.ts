// The certificate authority of a local mesh: `tsmesh ca` in local mode (a token file) run inside
// a pod, and the files sidecars need to reach it (their token, a trust bundle uid 1337 can read).
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI_MAIN } from './sidecar.js';
import { waitForLine, type Pod } from './topology.js';

/** SPEC: the CA service port. */
export const CA_PORT = 15012;

export interface CaProcessOptions {
  /** `--state-dir`: the CA's root and intermediate, created on first start and reused after. */
  readonly stateDir: string;
  /** `--token-file`: written by writeCaTokens(). */
  readonly tokenFile: string;
  readonly port?: number;
  /** `--default-ttl` / `--max-ttl` (durations such as `4s`, `24h`); the CA's defaults when absent. */
  readonly defaultTtl?: string;
  readonly maxTtl?: string;
  /** Further `tsmesh ca` flags: `--extra-roots`, `--root-cert`, `--intermediate-cert`... */
  readonly args?: readonly string[];
  readonly logLevel?: string;
}

/**
 * Starts `tsmesh ca` in `pod`, listening on the pod's address (also a serving SAN, so sidecars can
 * verify it by IP), and resolves once it serves. Stop it with killAndWait(child, 'SIGTERM').
 */
export async function startCa(pod: Pod, options: CaProcessOptions): Promise<ChildProcess> {
  const port = options.port ?? CA_PORT;
  const args = [
    CLI_MAIN, 'ca',
    '--state-dir', options.stateDir,
    '--token-file', options.tokenFile,
    '--listen', `0.0.0.0:${port}`,
    '--serving-san', pod.ip,
    ...(options.defaultTtl ? ['--default-ttl', options.defaultTtl] : []),
    ...(options.maxTtl ? ['--max-ttl', options.maxTtl] : []),
    ...(options.args ?? []),
  ];
  const child = pod.spawn(process.execPath, args, { env: { TSMESH_LOG_LEVEL: options.logLevel ?? 'info' } });
  await waitForLine(child, (l) => l.includes('"certificate authority listening"'), 20_000, `CA in ${pod.name}`);
  return child;
}

export interface CaTokenSpec {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The token; default a readable one derived from the identity. */
  readonly token?: string;
}

/**
 * Writes the CA's token file (`tokens.yaml`, readable by root only) and one token file per entry
 * (readable by the sidecar's uid). Returns the CA's file and the sidecar files in entry order.
 */
export function writeCaTokens(dir: string, entries: readonly CaTokenSpec[]): { tokenFile: string; sidecarTokenFiles: string[] } {
  const tokens = entries.map((e, i) => ({ token: e.token ?? `token-${i}-${e.namespace}-${e.serviceAccount}`, namespace: e.namespace, serviceAccount: e.serviceAccount }));
  const tokenFile = join(dir, 'ca-tokens.yaml');
  writeFileSync(tokenFile, stringify(tokens), { mode: 0o600 });
  const sidecarTokenFiles = tokens.map((t, i) => {
    const file = join(dir, `token-${i}`);
    writeFileSync(file, t.token, { mode: 0o644 });
    chmodSync(file, 0o644);
    return file;
  });
  return { tokenFile, sidecarTokenFiles };
}

/**
 * Copies `<stateDir>/root-cert.pem` (the state directory is 0700) or any PEM file to `to`, readable
 * by everyone, through a rename so a sidecar never reads half a bundle.
 */
export function publishTrustBundle(from: string, to: string): void {
  const temporary = `${to}.tmp`;
  copyFileSync(from, temporary);
  chmodSync(temporary, 0o644);
  renameSync(temporary, to);
}

/** The sidecar environment (SPEC: the sidecar's environment) that points it at the CA. */
export function caEnv(caPod: Pod, tokenFile: string, trustBundleFile: string, port = CA_PORT): Record<string, string> {
  return { TSMESH_CA_ADDR: `${caPod.ip}:${port}`, TSMESH_CA_TOKEN_FILE: tokenFile, TSMESH_TRUST_BUNDLE_FILE: trustBundleFile };
}
