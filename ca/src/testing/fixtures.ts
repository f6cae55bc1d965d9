// Test support: throw-away CAs, CSR variants, certificate extension readers, captured audit logs.
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { ok, type Result } from '@tsmesh/common';
import type { Authenticator } from '../auth/authenticator.js';
import { CertificateAuthority, type AuthorityOptions } from '../authority/authority.js';
import { generateRoot, issueIntermediate, type SigningMaterial } from '../authority/material.js';
import { CaError } from '../errors.js';
import type { WorkloadIdentity } from '../identity.js';
import { fromBER, Sequence } from 'asn1js';
import { x509 } from '../x509/x509-lib.js';

/** Signing material made in memory: a fresh root and intermediate. */
export function memoryMaterial(now = new Date()): SigningMaterial {
  const root = generateRoot(now);
  const intermediate = issueIntermediate(root, now);
  return { signer: intermediate, chain: [intermediate], roots: [root] };
}

export function testAuthority(options: Partial<AuthorityOptions> = {}, material = memoryMaterial()): CertificateAuthority {
  return new CertificateAuthority(material, {
    trustDomain: 'cluster.local',
    defaultTtlSeconds: 24 * 3600,
    maxTtlSeconds: 48 * 3600,
    ...options,
  });
}

export const WEB: WorkloadIdentity = { namespace: 'default', serviceAccount: 'web' };
export const WEB_ID = 'spiffe://cluster.local/ns/default/sa/web';

/** Authenticates from a fixed table; anything else is TOKEN_INVALID. */
export class TableAuthenticator implements Authenticator {
  readonly kind = 'table';
  constructor(private readonly table: Record<string, WorkloadIdentity | CaError>) {}
  async authenticate(token: string): Promise<Result<WorkloadIdentity, CaError>> {
    const found = this.table[token];
    if (found === undefined) return { ok: false, error: new CaError('TOKEN_INVALID', 'token is not known to the CA') };
    if (found instanceof CaError) return { ok: false, error: found };
    return ok(found);
  }
}

export function ecKey(curve = 'prime256v1'): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
}

export function rsaKey(bits: number): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
}

/** A temporary directory removed by the returned cleanup. */
export function tempDir(prefix = 'tsmesh-ca-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A pino logger whose lines are collected as parsed objects. */
export function captureLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

/** The extensions of a certificate by OID, each as @peculiar/x509 reads it (typed where it knows the OID). */
export function extensionsOf(cert: X509Certificate): Map<string, x509.Extension> {
  return new Map(new x509.X509Certificate(cert.raw).extensions.map((e) => [e.type, e]));
}

/** Subject and issuer Names of a certificate as found in its DER, for byte comparison. */
export function namesOf(cert: X509Certificate): { issuer: Buffer; subject: Buffer } {
  const decoded = fromBER(new Uint8Array(cert.raw));
  const tbs = (decoded.result as Sequence).valueBlock.value[0] as Sequence;
  const fields = tbs.valueBlock.value;
  const bytes = (i: number): Buffer => Buffer.from(fields[i]?.valueBeforeDecodeView ?? new Uint8Array());
  // Fields: [0] version, serial, signature, issuer, validity, subject, ...
  return { issuer: bytes(3), subject: bytes(5) };
}
