// Where the signing material comes from: a state directory the CA fills itself (local mode) or
// an operator's PEM files, plus extra trust-bundle roots. Fails fast, naming the file at fault.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsmeshError, type Logger } from '@tsmesh/common';
import { CA_SETUP_ERRORS } from '../errors.js';
import {
  checkMaterial,
  generateRoot,
  issueIntermediate,
  pairKey,
  parseCertificates,
  parsePrivateKey,
  privateKeyPem,
  type CaCertificate,
  type CaKeyPair,
  type SigningMaterial,
} from './material.js';

/** File names inside `--state-dir`. `root-cert.pem` is the trust bundle (SPEC: Local-mode CA). */
export const STATE_FILES = {
  trustBundle: 'root-cert.pem',
  rootCert: 'ca-root-cert.pem',
  rootKey: 'ca-root-key.pem',
  intermediateCert: 'ca-intermediate-cert.pem',
  intermediateKey: 'ca-intermediate-key.pem',
} as const;

/** Where to find or keep the CA's keys and certificates. */
export interface MaterialSources {
  /** Created on first start and reused after; holds whatever the flags below do not supply. */
  readonly stateDir?: string;
  readonly rootCertFile?: string;
  readonly rootKeyFile?: string;
  /** The signing certificate, optionally followed by further intermediates up to the root. */
  readonly intermediateCertFile?: string;
  readonly intermediateKeyFile?: string;
  /** PEM roots appended to the trust bundle (root rotation). */
  readonly extraRootsFile?: string;
}

function stateError(message: string, cause?: unknown): TsmeshError {
  return new TsmeshError(CA_SETUP_ERRORS.STATE_DIR, message, cause === undefined ? undefined : { cause });
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new TsmeshError(CA_SETUP_ERRORS.CA_MATERIAL, `${what} ${file}: ${(cause as Error).message}`, { cause });
  }
}

/** Writes through a temporary file and a rename so a crash never leaves half a key behind. */
function writeAtomically(file: string, text: string, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, text, { mode });
    chmodSync(temporary, mode);
    renameSync(temporary, file);
  } catch (cause) {
    throw stateError(`cannot write ${file}: ${(cause as Error).message}`, cause);
  }
}

/** An intermediate is replaced once less than a third of its lifetime remains. */
export function needsRenewal(cert: CaCertificate, now: Date): boolean {
  const from = new Date(cert.cert.validFrom).getTime();
  const to = new Date(cert.cert.validTo).getTime();
  return to - now.getTime() < (to - from) / 3;
}

/** Loads a pair kept in the state directory; undefined when neither file exists. */
function loadStoredPair(dir: string, certName: string, keyName: string): CaKeyPair | undefined {
  const certFile = join(dir, certName);
  const keyFile = join(dir, keyName);
  const haveCert = existsSync(certFile);
  const haveKey = existsSync(keyFile);
  if (!haveCert && !haveKey) return undefined;
  if (!haveCert || !haveKey) {
    throw stateError(`${dir} holds ${haveCert ? certName : keyName} without ${haveCert ? keyName : certName}; restore it or empty the directory`);
  }
  const [cert] = parseCertificates(readText(certFile, 'state file'), certFile);
  if (cert === undefined) throw stateError(`${certFile} holds no certificate`);
  return pairKey(cert, parsePrivateKey(readText(keyFile, 'state file'), keyFile), certFile);
}

function storePair(dir: string, certName: string, keyName: string, pair: CaKeyPair): void {
  writeAtomically(join(dir, keyName), privateKeyPem(pair.key), 0o600);
  writeAtomically(join(dir, certName), pair.pem, 0o644);
}

function ensureStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (cause) {
    throw stateError(`state directory ${dir}: ${(cause as Error).message}`, cause);
  }
}

/**
 * Loads (or on first start creates) the CA's signing material and writes the trust bundle to
 * `<stateDir>/root-cert.pem` when there is a state directory. Throws TsmeshError on any problem.
 */
export function loadSigningMaterial(sources: MaterialSources, now: Date, log?: Logger): SigningMaterial {
  const { stateDir } = sources;
  if (stateDir !== undefined) ensureStateDir(stateDir);

  let roots: CaCertificate[];
  let rootPair: CaKeyPair | undefined;
  if (sources.rootCertFile !== undefined) {
    roots = parseCertificates(readText(sources.rootCertFile, 'root certificate'), sources.rootCertFile);
    if (sources.rootKeyFile !== undefined) {
      const key = parsePrivateKey(readText(sources.rootKeyFile, 'root key'), sources.rootKeyFile);
      rootPair = pairKey(roots[0] as CaCertificate, key, sources.rootCertFile);
    }
  } else if (stateDir !== undefined) {
    rootPair = loadStoredPair(stateDir, STATE_FILES.rootCert, STATE_FILES.rootKey);
    if (rootPair === undefined) {
      rootPair = generateRoot(now);
      storePair(stateDir, STATE_FILES.rootCert, STATE_FILES.rootKey, rootPair);
      log?.info({ stateDir, serial: rootPair.cert.serialNumber, expiresAt: isoDate(rootPair.cert.validTo) }, 'created a new root CA');
    }
    roots = [rootPair];
  } else {
    throw new TsmeshError(CA_SETUP_ERRORS.CA_MATERIAL, 'no root of trust: give a state directory or a root certificate');
  }

  let signer: CaKeyPair;
  let chain: CaCertificate[];
  if (sources.intermediateCertFile !== undefined) {
    if (sources.intermediateKeyFile === undefined) {
      throw new TsmeshError(CA_SETUP_ERRORS.CA_MATERIAL, 'an intermediate certificate needs its private key');
    }
    chain = parseCertificates(readText(sources.intermediateCertFile, 'intermediate certificate'), sources.intermediateCertFile);
    const key = parsePrivateKey(readText(sources.intermediateKeyFile, 'intermediate key'), sources.intermediateKeyFile);
    signer = pairKey(chain[0] as CaCertificate, key, sources.intermediateCertFile);
    chain[0] = signer;
  } else {
    if (rootPair === undefined) {
      throw new TsmeshError(CA_SETUP_ERRORS.CA_MATERIAL, 'without an intermediate certificate and key, the root key is needed to make one');
    }
    signer = intermediateFor(rootPair, stateDir, now, log);
    chain = [signer];
  }

  if (sources.extraRootsFile !== undefined) {
    const extras = parseCertificates(readText(sources.extraRootsFile, 'extra roots'), sources.extraRootsFile);
    for (const extra of extras) {
      if (!roots.some((r) => r.cert.fingerprint256 === extra.cert.fingerprint256)) roots.push(extra);
    }
  }

  const material: SigningMaterial = { signer, chain, roots };
  checkMaterial(material, now);
  if (stateDir !== undefined) {
    writeAtomically(join(stateDir, STATE_FILES.trustBundle), trustBundleText(material), 0o644);
  }
  return material;
}

/** The stored intermediate, or a new one when missing or due for renewal (kept in memory without a state dir). */
function intermediateFor(root: CaKeyPair, stateDir: string | undefined, now: Date, log?: Logger): CaKeyPair {
  if (stateDir === undefined) return issueIntermediate(root, now);
  const stored = loadStoredPair(stateDir, STATE_FILES.intermediateCert, STATE_FILES.intermediateKey);
  const usable =
    stored !== undefined &&
    stored.cert.checkIssued(root.cert) &&
    stored.cert.verify(root.cert.publicKey) &&
    !needsRenewal(stored, now);
  if (usable) return stored;
  const fresh = issueIntermediate(root, now);
  storePair(stateDir, STATE_FILES.intermediateCert, STATE_FILES.intermediateKey, fresh);
  log?.info(
    { stateDir, serial: fresh.cert.serialNumber, expiresAt: isoDate(fresh.cert.validTo), replaced: stored !== undefined },
    'issued a new intermediate CA',
  );
  return fresh;
}

/**
 * A digest of the operator's material files (root, root key, intermediate, its key, extra roots), to
 * see when any was rewritten (a Secret volume updated in place, a file replaced); undefined when the
 * CA has none (its own root in the state directory) or one cannot be read right now.
 */
export function operatorFilesDigest(sources: MaterialSources): string | undefined {
  const files = [sources.rootCertFile, sources.rootKeyFile, sources.intermediateCertFile, sources.intermediateKeyFile, sources.extraRootsFile];
  if (files.every((f) => f === undefined)) return undefined;
  const hash = createHash('sha256');
  for (const file of files) {
    if (file === undefined) {
      hash.update('\0-');
      continue;
    }
    try {
      hash.update('\0+').update(readFileSync(file));
    } catch {
      return undefined;
    }
  }
  return hash.digest('hex');
}

/** The trust bundle as one PEM text. */
export function trustBundleText(material: SigningMaterial): string {
  return material.roots.map((r) => r.pem).join('');
}

function isoDate(text: string): string {
  return new Date(text).toISOString();
}
