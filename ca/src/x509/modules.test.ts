// What the CA client costs a sidecar in modules: it builds CSRs and reads PEM, so of node-forge it
// needs the ASN.1 codec, PEM and their helpers. `import 'node-forge'` loads all of forge (ciphers,
// TLS, PKCS#12, SSH...), ~4 MiB of every sidecar's RSS for code it never runs. A child process
// imports the built client under a resolve hook and lists the forge modules it loaded.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

const CLIENT = fileURLToPath(new URL('../../dist/client.js', import.meta.url));

const HOOK = `import { registerHooks } from 'node:module';
import { writeSync } from 'node:fs';
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    writeSync(1, 'loaded ' + resolved.url + '\\n');
    return resolved;
  },
});
`;

describe('the CA client (sidecar side)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-ca-modules-'));
    writeFileSync(join(dir, 'hook.mjs'), HOOK);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads only the node-forge modules it uses, not all of forge', () => {
    const script = `const m = await import(${JSON.stringify(pathToFileURL(CLIENT).href)}); if (typeof m.buildCsr !== 'function' && typeof m.requestCertificate !== 'function' && Object.keys(m).length === 0) process.exit(3);`;
    const out = execFileSync(process.execPath, ['--import', pathToFileURL(join(dir, 'hook.mjs')).href, '--input-type=module', '-e', script], { encoding: 'utf8' });
    const forge = [...out.matchAll(/^loaded \S*\/node-forge\/lib\/([\w.-]+?)(?:\.js)?$/gm)].map((m) => m[1]).sort();
    // The hook works: forge was seen at all.
    expect(forge.length).toBeGreaterThan(0);
    expect(forge.filter((name) => !['asn1', 'baseN', 'forge', 'oids', 'pem', 'util'].includes(name ?? ''))).toEqual([]);
  });
});
