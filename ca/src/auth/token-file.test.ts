import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsmeshError } from '@tsmesh/common';
import { parseTokenFile, TokenFileAuthenticator } from './token-file.js';
import { captureLog, tempDir } from '../testing/fixtures.js';

const TOKENS = `
- token: web-token
  namespace: default
  serviceAccount: web
- token: old-token
  namespace: shop
  serviceAccount: cart
  expiresAt: 2020-01-01T00:00:00Z
`;

describe('TokenFileAuthenticator', () => {
  let dir: string;
  let cleanup: () => void;
  let file: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    file = join(dir, 'tokens.yaml');
    writeFileSync(file, TOKENS);
  });
  afterEach(() => cleanup());

  it('maps a known token to its namespace and service account', async () => {
    const auth = new TokenFileAuthenticator(file);
    expect(await auth.authenticate('web-token')).toEqual({ ok: true, value: { namespace: 'default', serviceAccount: 'web' } });
  });

  it('refuses an unknown token with 401', async () => {
    const result = await new TokenFileAuthenticator(file).authenticate('guess');
    expect(!result.ok && [result.error.code, result.error.status]).toEqual(['TSMESH_ERR_TOKEN_INVALID', 401]);
  });

  it('refuses a token past its expiresAt', async () => {
    const result = await new TokenFileAuthenticator(file).authenticate('old-token');
    expect(!result.ok && result.error.message).toBe('token expired at 2020-01-01T00:00:00.000Z');
  });

  it('accepts a token before its expiresAt', async () => {
    const auth = new TokenFileAuthenticator(file, { now: () => new Date('2019-12-31T00:00:00Z') });
    expect((await auth.authenticate('old-token')).ok).toBe(true);
  });

  it('picks up a changed file', async () => {
    const auth = new TokenFileAuthenticator(file, { recheckMs: 0 });
    writeFileSync(file, '- {token: new-token, namespace: default, serviceAccount: api}\n');
    expect(await auth.authenticate('new-token')).toEqual({ ok: true, value: { namespace: 'default', serviceAccount: 'api' } });
    expect((await auth.authenticate('web-token')).ok).toBe(false);
  });

  it('keeps the last good tokens when the file is broken by an edit', async () => {
    const { log, lines } = captureLog();
    const auth = new TokenFileAuthenticator(file, { recheckMs: 0, log });
    writeFileSync(file, '- token: [unclosed\n');
    expect((await auth.authenticate('web-token')).ok).toBe(true);
    expect(lines.some((l) => l.msg === 'token file change ignored; keeping the last good tokens')).toBe(true);
  });

  it('fails at start when the file is missing', () => {
    expect(() => new TokenFileAuthenticator(join(dir, 'none.yaml'))).toThrow(/token file .*none\.yaml: ENOENT/);
  });
});

describe('parseTokenFile', () => {
  const problem = (text: string): string => {
    try {
      parseTokenFile(text, 'tokens.yaml');
    } catch (error) {
      expect((error as TsmeshError).code).toBe('TSMESH_ERR_TOKEN_FILE');
      return (error as Error).message;
    }
    throw new Error('expected the file to be refused');
  };

  it('accepts an empty file as no tokens', () => {
    expect(parseTokenFile('', 'tokens.yaml').size).toBe(0);
  });

  it.each([
    ['a mapping instead of a list', 'token: x', 'expected a YAML list'],
    ['an entry without token', '- {namespace: a, serviceAccount: b}', 'entry 1 needs a non-empty string "token"'],
    ['an entry without namespace', '- {token: t, serviceAccount: b}', 'entry 1 needs a string "namespace"'],
    ['an invalid namespace', '- {token: t, namespace: Bad_NS, serviceAccount: b}', 'entry 1: namespace "Bad_NS"'],
    ['an invalid service account', '- {token: t, namespace: a, serviceAccount: "x:y"}', 'entry 1: service account "x:y"'],
    ['an unknown field', '- {token: t, namespace: a, serviceAccount: b, role: admin}', 'entry 1 has unknown field "role"'],
    ['a repeated token', '- {token: t, namespace: a, serviceAccount: b}\n- {token: t, namespace: a, serviceAccount: c}', 'entry 2 repeats the token'],
    ['a bad expiry', '- {token: t, namespace: a, serviceAccount: b, expiresAt: soon}', 'entry 1 has an invalid "expiresAt"'],
    ['broken YAML', '- [', 'not valid YAML'],
  ])('refuses %s, naming the file and the entry', (_what, text, expected) => {
    const message = problem(text);
    expect(message).toContain('token file tokens.yaml: ');
    expect(message).toContain(expected);
  });
});
