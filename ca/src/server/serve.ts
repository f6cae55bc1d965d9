// The CA program: loads its signing material, picks the authenticator, issues its own serving
// certificate and listens on HTTPS. Keeps the serving certificate and intermediate fresh.
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { logger, TsmeshError, type Logger } from '@tsmesh/common';
import type { Authenticator } from '../auth/authenticator.js';
import { TokenFileAuthenticator } from '../auth/token-file.js';
import { TokenReviewAuthenticator } from '../auth/token-review.js';
import { CertificateAuthority, type ServingCredentials } from '../authority/authority.js';
import { loadSigningMaterial, needsRenewal, operatorFilesDigest, trustBundleText, type MaterialSources } from '../authority/load.js';
import type { SigningMaterial } from '../authority/material.js';
import type { CaConfig } from '../config.js';
import { CA_SETUP_ERRORS } from '../errors.js';
import { buildApp, type CaApp } from './app.js';

/** Lifetime of the CA's own serving certificate; it is replaced at half of it. */
export const SERVING_TTL_SECONDS = 7 * 24 * 3600;
/** How often the signing material is re-checked (the intermediate is renewed when due). */
export const MATERIAL_RECHECK_MS = 6 * 3600 * 1000;

export interface RunningCa {
  readonly app: CaApp;
  readonly authority: CertificateAuthority;
  /** The bound address (port resolved when 0 was asked). */
  readonly address: { readonly host: string; readonly port: number };
  /** PEM roots that verify the serving certificate and every issued certificate. */
  readonly trustBundlePem: string;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Replaces the authenticator the config would choose (tests, embedding). */
  readonly authenticator?: Authenticator;
  readonly log?: Logger;
  readonly auditLog?: Logger;
  /** How often the operator's files are compared with what was loaded (default: the config's `--material-poll`; 0: never). */
  readonly materialPollMs?: number;
}

function materialSources(config: CaConfig): MaterialSources {
  return {
    stateDir: config.stateDir,
    rootCertFile: config.rootCertFile,
    rootKeyFile: config.rootKeyFile,
    intermediateCertFile: config.intermediateCertFile,
    intermediateKeyFile: config.intermediateKeyFile,
    extraRootsFile: config.extraRootsFile,
  };
}

/**
 * The authenticator a config asks for: the token file in local mode, TokenReview otherwise.
 * Throws TsmeshError when the token file or the Kubernetes configuration is unusable.
 */
export function authenticatorFor(config: CaConfig, log: Logger): Authenticator {
  if (config.tokenFile !== undefined) return new TokenFileAuthenticator(config.tokenFile, { log });
  const kubeConfig = new KubeConfig();
  try {
    if (config.kubeconfig !== undefined) kubeConfig.loadFromFile(config.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (cause) {
    throw new TsmeshError(CA_SETUP_ERRORS.BAD_FLAG, `kubeconfig ${config.kubeconfig ?? '(default)'}: ${(cause as Error).message}`, { cause });
  }
  // client-node falls back to an unauthenticated http://localhost:8080 when it finds nothing at all.
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null || (config.kubeconfig === undefined && cluster.server === 'http://localhost:8080')) {
    throw new TsmeshError(
      CA_SETUP_ERRORS.BAD_FLAG,
      'no Kubernetes configuration found for TokenReview (not in a cluster, no KUBECONFIG, no ~/.kube/config): give --kubeconfig, or --token-file for local mode',
    );
  }
  return new TokenReviewAuthenticator(kubeConfig, { log });
}

/**
 * Re-reads the signing material when it can have changed: an operator intermediate (files may have
 * been rotated) or a CA-made intermediate that is due for renewal. True when the CA switched.
 */
export function refreshMaterial(authority: CertificateAuthority, sources: MaterialSources, now: Date, log: Logger): boolean {
  const current = authority.signingMaterial;
  if (sources.intermediateCertFile === undefined && !needsRenewal(current.signer, now)) return false;
  const fresh = loadSigningMaterial(sources, now, log);
  if (fresh.signer.cert.fingerprint256 === current.signer.cert.fingerprint256) return false;
  authority.replaceMaterial(fresh);
  log.info({ serial: fresh.signer.cert.serialNumber, expiresAt: new Date(fresh.signer.cert.validTo).toISOString() }, 'signing with a new intermediate');
  return true;
}

/** Starts the CA and resolves once it listens. Throws TsmeshError on bad material or token file. */
export async function startCa(config: CaConfig, options: StartOptions = {}): Promise<RunningCa> {
  const log = options.log ?? logger('ca');
  for (const warning of config.warnings) log.warn(warning);
  // The token file is checked before anything is written to the state directory.
  const authenticator = options.authenticator ?? authenticatorFor(config, log);
  const sources = materialSources(config);
  // Taken before the load: a file rewritten meanwhile differs from it, and is loaded at the next poll.
  let loadedDigest = operatorFilesDigest(sources);
  const material = loadSigningMaterial(sources, new Date(), log);
  const authority = new CertificateAuthority(material, {
    trustDomain: config.trustDomain,
    defaultTtlSeconds: config.defaultTtlSeconds,
    maxTtlSeconds: config.maxTtlSeconds,
  });

  let serving = authority.issueServing(config.servingSans, SERVING_TTL_SECONDS);
  const app = buildApp({
    authority,
    authenticator,
    ...(options.auditLog ? { log: options.auditLog } : {}),
    https: { cert: serving.certChainPem, key: serving.keyPem, minVersion: 'TLSv1.2' },
  });
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const bound = app.server.address() as AddressInfo;
  const server = app.server as HttpsServer;
  let trustBundlePem = trustBundleText(material);

  const timers: NodeJS.Timeout[] = [];
  const scheduleServingRenewal = (current: ServingCredentials): void => {
    clearTimeout(timers[0]);
    const halfLife = Math.max(60_000, (current.expiresAt.getTime() - Date.now()) / 2);
    const timer = setTimeout(() => {
      serving = authority.issueServing(config.servingSans, SERVING_TTL_SECONDS);
      server.setSecureContext({ cert: serving.certChainPem, key: serving.keyPem, minVersion: 'TLSv1.2' });
      log.info({ expiresAt: serving.expiresAt.toISOString() }, 'serving certificate renewed');
      scheduleServingRenewal(serving);
    }, Math.min(halfLife, 2 ** 31 - 1));
    timer.unref();
    timers[0] = timer;
  };
  scheduleServingRenewal(serving);

  /** After the authority switched from `before`: the trust bundle, and a serving certificate under a new signer. */
  const adopted = (before: SigningMaterial): void => {
    const current = authority.signingMaterial;
    trustBundlePem = trustBundleText(current);
    if (current.signer.cert.fingerprint256 === before.signer.cert.fingerprint256) return;
    serving = authority.issueServing(config.servingSans, SERVING_TTL_SECONDS);
    server.setSecureContext({ cert: serving.certChainPem, key: serving.keyPem, minVersion: 'TLSv1.2' });
    scheduleServingRenewal(serving);
  };

  const recheck = setInterval(() => {
    try {
      const before = authority.signingMaterial;
      if (refreshMaterial(authority, sources, new Date(), log)) adopted(before);
    } catch (error) {
      log.error({ err: error }, 'cannot re-check the signing material; still signing with the current one');
    }
  }, MATERIAL_RECHECK_MS);
  recheck.unref();

  // A root rotation, step by step, without a restart: the operator rewrites the files (in a cluster,
  // the Secret behind them) and the CA takes each step up within a poll. A step it cannot use (a
  // certificate rewritten before its key, say) is logged and the current material kept.
  const pollMs = options.materialPollMs ?? config.materialPollSeconds * 1000;
  const poll =
    pollMs > 0 && loadedDigest !== undefined
      ? setInterval(() => {
          const digest = operatorFilesDigest(sources);
          if (digest === undefined || digest === loadedDigest) return;
          loadedDigest = digest;
          try {
            const fresh = loadSigningMaterial(sources, new Date(), log);
            const before = authority.signingMaterial;
            authority.replaceMaterial(fresh);
            adopted(before);
            log.info(
              { roots: fresh.roots.map((r) => r.cert.serialNumber), signer: fresh.signer.cert.serialNumber },
              'signing material reloaded: the files changed',
            );
          } catch (error) {
            log.error({ err: error }, 'the signing material files changed but cannot be used; still signing with the current material');
          }
        }, pollMs)
      : undefined;
  poll?.unref();

  log.info(
    {
      address: `${bound.address}:${bound.port}`,
      trustDomain: config.trustDomain,
      authenticator: authenticator.kind,
      stateDir: config.stateDir,
      defaultTtlSeconds: config.defaultTtlSeconds,
      maxTtlSeconds: config.maxTtlSeconds,
    },
    'certificate authority listening',
  );

  return {
    app,
    authority,
    address: { host: bound.address, port: bound.port },
    get trustBundlePem() {
      return trustBundlePem;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      clearInterval(recheck);
      clearInterval(poll);
      await app.close();
    },
  };
}
