// `tsmesh proxy` as a process: what it loads. A sidecar without an identity (no TSMESH_CA_ADDR)
// must not load the CA client nor any X.509 code (the ASN.1 schema packages, @peculiar/x509); one
// with an identity loads the client's lean CSR path (the schema packages) and never @peculiar/x509,
// whose dependency injection and CMS/PKCS#9 schemas are the CA's and the injector's. One with a
// JSON mesh file must not load the YAML parser, one without regex routes not RE2: each module
// loaded and never used is idle memory in every pod. A resolve hook in the child records every
// module it loads.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MAIN } from '../testing/run-cli.js';
import { startSidecar } from '../testing/sidecar.js';

/** The X.509 stack's packages: the schema library and its helpers, and @peculiar/x509 with its runtime. */
const X509_STACK = /\/node_modules\/(?:@peculiar\/|asn1js\/|pvtsutils\/|pvutils\/|tsyringe\/|reflect-metadata\/)/;
/** Only the CA and the injector load these. */
const X509_HEAVY = /\/node_modules\/(?:@peculiar\/x509\/|tsyringe\/|reflect-metadata\/|@peculiar\/asn1-(?:cms|pkcs9|ecc|rsa|x509-post-quantum)\/)/;

/** `tsmesh ca` on 127.0.0.1 in local mode (port picked by the kernel); resolves with its port once it listens. */
async function startCa(dir: string): Promise<{ child: ChildProcess; port: number }> {
  writeFileSync(join(dir, 'tokens.yaml'), '- { token: web-token, namespace: default, serviceAccount: web }\n');
  const child = spawn(process.execPath, [MAIN, 'ca', '--state-dir', join(dir, 'ca'), '--token-file', join(dir, 'tokens.yaml'), '--listen', '127.0.0.1:0', '--serving-san', '127.0.0.1'], {
    env: { PATH: process.env.PATH, TSMESH_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`CA not listening: ${out.slice(-500)}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"certificate authority listening"'));
      if (line === undefined) return;
      clearTimeout(timer);
      resolve(Number(/"port":(\d+)/.exec(line)?.[1] ?? /127\.0\.0\.1:(\d+)/.exec(line)?.[1]));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`CA exited ${code}: ${out.slice(-500)}`)));
  });
  return { child, port };
}


const HOOK = `import { registerHooks } from 'node:module';
import { writeSync } from 'node:fs';
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    writeSync(2, 'tsmesh-loaded ' + resolved.url + '\\n');
    return resolved;
  },
});
// Node's own built-in modules are not resolved through hooks: report the undici bundle (fetch,
// WebSocket) when it gets loaded, by polling the list of built-ins the process loaded.
const undici = setInterval(() => {
  if (!process.moduleLoadList.some((name) => name.includes('internal/deps/undici'))) return;
  writeSync(2, 'tsmesh-loaded node:internal/deps/undici\\n');
  clearInterval(undici);
}, 50);
undici.unref();
`;

const MESH = JSON.stringify({
  apiVersion: 'v1',
  kind: 'List',
  items: [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } },
  ],
});

const MESH_WITH_REGEX = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: 10.96.0.30
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: web, namespace: default }
spec:
  parentRefs: [{ group: '', kind: Service, name: web, port: 80 }]
  rules:
    - matches: [{ path: { type: RegularExpression, value: '/v[0-9]+/.*' } }]
      backendRefs: [{ name: web, port: 80 }]
`;

/** Starts the sidecar with `env`, waits for "sidecar ready", stops it; returns the module URLs it loaded. */
async function loadedBy(dir: string, meshFile: string, env: Record<string, string>): Promise<string[]> {
  const sidecar = await startSidecar(join(dir, meshFile), ['--concurrency', '1'], env, ['--import', pathToFileURL(join(dir, 'hook.mjs')).href]);
  // Let anything started after readiness (timers, first discovery pass) load too.
  await new Promise((resolve) => setTimeout(resolve, 500));
  sidecar.child.kill('SIGKILL');
  await sidecar.exited;
  return [...sidecar.stderr().matchAll(/^tsmesh-loaded (\S+)$/gm)].map((m) => m[1] ?? '');
}

describe('tsmesh proxy startup modules', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-modules-'));
    writeFileSync(join(dir, 'hook.mjs'), HOOK);
    writeFileSync(join(dir, 'mesh.json'), MESH);
    writeFileSync(join(dir, 'mesh.yaml'), MESH_WITH_REGEX);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads neither the CA client nor any X.509 package, nor yaml, nor re2js when nothing needs them', async () => {
    const loaded = await loadedBy(dir, 'mesh.json', {});
    // The hook works: the proxy package was seen.
    expect(loaded.some((url) => url.includes('/proxy/dist/'))).toBe(true);
    expect(loaded.filter((url) => /\/ca\/dist\/|\/yaml\/|re2js/.test(url) || X509_STACK.test(url))).toEqual([]);
  }, 30_000);

  it('makes its CSR with the lean ASN.1 schema path once it has an identity, never loading @peculiar/x509', async () => {
    const ca = await startCa(dir);
    try {
      writeFileSync(join(dir, 'token'), 'web-token');
      const loaded = await loadedBy(dir, 'mesh.json', {
        TSMESH_CA_ADDR: `127.0.0.1:${ca.port}`,
        TSMESH_CA_TOKEN_FILE: join(dir, 'token'),
        TSMESH_TRUST_BUNDLE_FILE: join(dir, 'ca', 'root-cert.pem'),
        TSMESH_POD_NAMESPACE: 'default',
        TSMESH_SERVICE_ACCOUNT: 'web',
      });
      // Ready means it holds a certificate: the client and the schema packages were loaded for its CSR.
      expect(loaded.filter((url) => /\/ca\/dist\/client\.js$/.test(url))).toHaveLength(1);
      expect(loaded.some((url) => url.includes('/node_modules/@peculiar/asn1-csr/'))).toBe(true);
      expect(loaded.filter((url) => X509_HEAVY.test(url) || /\/ca\/dist\/(?!client\.js|x509\/(?:csr-build|names|pem|signature)\.js|errors\.js)/.test(url))).toEqual([]);
    } finally {
      ca.child.kill('SIGKILL');
    }
  }, 60_000);

  it('does not load undici, node\'s fetch and WebSocket bundle (10 MiB of RSS), which the sidecar never uses', async () => {
    // An ES module import of node:http reads every export of the module, its lazy WebSocket and
    // MessageEvent getters too, and those load undici; the sidecar takes node:http by require.
    const loaded = await loadedBy(dir, 'mesh.json', {});
    expect(loaded.some((url) => url.includes('/proxy/dist/'))).toBe(true);
    expect(loaded.filter((url) => url.includes('undici'))).toEqual([]);
  }, 30_000);

  it('loads re2js once a regex route needs it (the hook sees modules loaded at first use)', async () => {
    // A YAML file is parsed in a worker thread (the hook watches the main thread only): yaml stays
    // out of the main thread even then.
    const loaded = await loadedBy(dir, 'mesh.yaml', {});
    expect(loaded.filter((url) => /\/yaml\/|re2js/.test(url))).toEqual([expect.stringContaining('/re2js/')]);
  }, 30_000);
});
