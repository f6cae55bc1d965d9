// Local-mode authentication: a YAML list of {token, namespace, serviceAccount} entries (optionally
// `expiresAt`, RFC 3339). The file is re-read when it changes; a bad edit keeps the last good list.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parse } from 'yaml';
import { err, ok, TsmeshError, type Logger, type Result } from '@tsmesh/common';
import { CA_SETUP_ERRORS, CaError } from '../errors.js';
import { validateIdentity, type WorkloadIdentity } from '../identity.js';
import type { Authenticator } from './authenticator.js';

interface Entry {
  readonly identity: WorkloadIdentity;
  readonly expiresAt: Date | undefined;
}

const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Parses token-file text; throws TsmeshError naming the file, the entry and the reason. */
export function parseTokenFile(text: string, file: string): Map<string, Entry> {
  const fail = (reason: string, cause?: unknown): TsmeshError =>
    new TsmeshError(CA_SETUP_ERRORS.TOKEN_FILE, `token file ${file}: ${reason}`, cause === undefined ? undefined : { cause });
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (cause) {
    throw fail(`not valid YAML: ${(cause as Error).message}`, cause);
  }
  if (doc === null || doc === undefined) doc = [];
  if (!Array.isArray(doc)) throw fail('expected a YAML list of {token, namespace, serviceAccount}');
  const entries = new Map<string, Entry>();
  doc.forEach((item: unknown, i) => {
    const where = `entry ${i + 1}`;
    if (typeof item !== 'object' || item === null) throw fail(`${where} is not a mapping`);
    const { token, namespace, serviceAccount, expiresAt, ...rest } = item as Record<string, unknown>;
    const unknownKeys = Object.keys(rest);
    if (unknownKeys.length > 0) throw fail(`${where} has unknown field "${unknownKeys[0]}"`);
    if (typeof token !== 'string' || token.length === 0) throw fail(`${where} needs a non-empty string "token"`);
    if (typeof namespace !== 'string') throw fail(`${where} needs a string "namespace"`);
    if (typeof serviceAccount !== 'string') throw fail(`${where} needs a string "serviceAccount"`);
    const identity = validateIdentity(namespace, serviceAccount);
    if (!identity.ok) throw fail(`${where}: ${identity.error}`);
    let expiry: Date | undefined;
    if (expiresAt !== undefined) {
      expiry = expiresAt instanceof Date ? expiresAt : new Date(String(expiresAt));
      if (Number.isNaN(expiry.getTime())) throw fail(`${where} has an invalid "expiresAt" (expected RFC 3339)`);
    }
    const key = digest(token);
    if (entries.has(key)) throw fail(`${where} repeats the token of an earlier entry`);
    entries.set(key, { identity: identity.value, expiresAt: expiry });
  });
  return entries;
}

export interface TokenFileOptions {
  /** How often at most the file's modification time is checked; default 1000 ms. */
  readonly recheckMs?: number;
  readonly now?: () => Date;
  readonly log?: Logger;
}

export class TokenFileAuthenticator implements Authenticator {
  readonly kind = 'token-file';
  private entries: Map<string, Entry>;
  private stamp: string;
  private checkedAt = 0;

  /** Reads the file now; throws TsmeshError (TSMESH_ERR_TOKEN_FILE) when it is missing or invalid. */
  constructor(
    private readonly file: string,
    private readonly options: TokenFileOptions = {},
  ) {
    this.stamp = this.fileStamp();
    this.entries = parseTokenFile(this.read(), file);
  }

  async authenticate(token: string): Promise<Result<WorkloadIdentity, CaError>> {
    this.reloadIfChanged();
    const entry = this.entries.get(digest(token));
    if (entry === undefined) return err(new CaError('TOKEN_INVALID', 'token is not known to the CA'));
    const now = this.options.now?.() ?? new Date();
    if (entry.expiresAt !== undefined && entry.expiresAt.getTime() <= now.getTime()) {
      return err(new CaError('TOKEN_INVALID', `token expired at ${entry.expiresAt.toISOString()}`));
    }
    return ok(entry.identity);
  }

  private reloadIfChanged(): void {
    const now = Date.now();
    if (now - this.checkedAt < (this.options.recheckMs ?? 1000)) return;
    this.checkedAt = now;
    try {
      const stamp = this.fileStamp();
      if (stamp === this.stamp) return;
      this.entries = parseTokenFile(this.read(), this.file);
      this.stamp = stamp;
      this.options.log?.info({ file: this.file, tokens: this.entries.size }, 'token file reloaded');
    } catch (error) {
      this.options.log?.warn({ file: this.file, err: error }, 'token file change ignored; keeping the last good tokens');
    }
  }

  private read(): string {
    try {
      return readFileSync(this.file, 'utf8');
    } catch (cause) {
      throw new TsmeshError(CA_SETUP_ERRORS.TOKEN_FILE, `token file ${this.file}: ${(cause as Error).message}`, { cause });
    }
  }

  private fileStamp(): string {
    try {
      const s = statSync(this.file);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch (cause) {
      throw new TsmeshError(CA_SETUP_ERRORS.TOKEN_FILE, `token file ${this.file}: ${(cause as Error).message}`, { cause });
    }
  }
}
