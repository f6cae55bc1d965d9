// What the CA client costs a sidecar in modules. It builds CSRs, so it needs the ASN.1 schema
// library (asn1-schema, asn1-x509, asn1-csr and their helpers); @peculiar/x509 with its
// dependency-injection runtime (tsyringe, reflect-metadata) and its CMS, PKCS#9 and post-quantum
// schemas is the CA's and the injector's, and about twice the heap. A child process imports the
// built client under a resolve hook, makes a CSR and lists the packages it loaded.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

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

/** The npm packages (scope/name) a script loaded, sorted and without repeats. */
function packagesLoadedBy(dir: string, script: string): string[] {
  const out = execFileSync(process.execPath, ['--import', pathToFileURL(join(dir, 'hook.mjs')).href, '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  const names = [...out.matchAll(/^loaded \S*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)].map((m) => m[1] ?? '');
  return [...new Set(names)].sort();
}

describe('the CA client (sidecar side)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-ca-modules-'));
    writeFileSync(join(dir, 'hook.mjs'), HOOK);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('makes a CSR with the ASN.1 schema packages only, never loading @peculiar/x509', () => {
    const client = pathToFileURL(join(DIST, 'client.js')).href;
    const script = `const m = await import(${JSON.stringify(client)});
      const { csrPem } = m.generateWorkloadCsr('spiffe://cluster.local/ns/default/sa/web');
      if (!csrPem.startsWith('-----BEGIN CERTIFICATE REQUEST-----')) process.exit(3);`;
    const loaded = packagesLoadedBy(dir, script);
    // The hook works: the schema library was seen.
    expect(loaded).toContain('@peculiar/asn1-csr');
    expect(loaded.filter((name) => /^@peculiar\/x509$|tsyringe|reflect-metadata|node-forge/.test(name))).toEqual([]);
    expect(loaded.filter((name) => name.startsWith('@peculiar/'))).toEqual(['@peculiar/asn1-csr', '@peculiar/asn1-schema', '@peculiar/asn1-x509', '@peculiar/utils']);
  });

  it('loads @peculiar/x509 for the CA side (so the check above can see it)', () => {
    const x509 = pathToFileURL(join(DIST, 'x509/index.js')).href;
    expect(packagesLoadedBy(dir, `await import(${JSON.stringify(x509)});`)).toContain('@peculiar/x509');
  });
});
