// `tsmesh gateway --config FILE` as a process: a Gateway with an HTTP listener and an HTTPS port of
// two hostnames (a certificate each), HTTPRoutes matching host, path, header and query parameter,
// weighted splits, a route from a namespace the listener does not admit, and a backend in another
// namespace without ReferenceGrant; a TLS Passthrough listener with a TLSRoute to a backend that
// terminates TLS itself. Backends are plain HTTP servers on 127.0.0.1 that answer their own name
// (and one HTTPS server); the certificates are checked with `openssl s_client -servername`.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MAIN } from '../testing/run-cli.js';

const BACKENDS = ['exact', 'prefix', 'v2', 'canary', 'default', 'a', 'b', 'major', 'minor', 'other-ns'] as const;

interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: http.Server;
}

function startBackend(name: string): Promise<Backend> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.setHeader('x-backend', name);
    res.end(`${name} ${req.url}`);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ name, port: (server.address() as net.AddressInfo).port, server })));
}

/** A port free now (the kernel picks it; the gateway binds it right after). */
function freePort(): Promise<number> {
  const server = net.createServer();
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    }),
  );
}

function certificate(dir: string, host: string): { cert: string; key: string } {
  const key = join(dir, `${host}.key`);
  const cert = join(dir, `${host}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`], { stdio: 'ignore' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

let ip = 1;
function serviceYaml(namespace: string, backend: Backend): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ${backend.name}, namespace: ${namespace} }
spec: { clusterIP: 10.96.7.${ip++}, ports: [{ name: http, port: 80, targetPort: ${backend.port} }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${backend.name}-1, namespace: ${namespace}, labels: { kubernetes.io/service-name: ${backend.name} } }
addressType: IPv4
ports: [{ name: http, port: ${backend.port}, protocol: TCP }]
endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }]
`;
}

function secretYaml(name: string, pair: { cert: string; key: string }): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Secret
metadata: { name: ${name}, namespace: edge }
type: kubernetes.io/tls
data: { tls.crt: ${b64(pair.cert)}, tls.key: ${b64(pair.key)} }
`;
}

/** An HTTPS server with its own certificate, for passthrough: answers `passthrough <url>`. */
function startTlsBackend(pair: { cert: string; key: string }): Promise<{ port: number; server: https.Server }> {
  const server = https.createServer({ cert: pair.cert, key: pair.key }, (req, res) => res.end(`passthrough ${req.url}`));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, server })));
}

interface Passthrough {
  readonly port: number;
  readonly backend: number;
  /** A TCP listener whose TCPRoute goes to the `exact` backend. */
  readonly tcp: number;
}

function passthroughYaml(pass: Passthrough): string {
  return `apiVersion: v1
kind: Service
metadata: { name: secure-app, namespace: edge }
spec: { clusterIP: 10.96.8.1, ports: [{ name: https, port: 443, targetPort: ${pass.backend} }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: secure-app-1, namespace: edge, labels: { kubernetes.io/service-name: secure-app } }
addressType: IPv4
ports: [{ name: https, port: ${pass.backend}, protocol: TCP }]
endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: { name: secure, namespace: edge }
spec:
  parentRefs: [{ name: gw, sectionName: pass }]
  hostnames: [pass.example.com]
  rules: [{ backendRefs: [{ name: secure-app, port: 443 }] }]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: raw, namespace: edge }
spec:
  parentRefs: [{ name: gw, sectionName: raw }]
  rules: [{ backendRefs: [{ name: exact, port: 80 }] }]
`;
}

function meshYaml(backends: ReadonlyMap<string, Backend>, httpPort: number, httpsPort: number, certs: { a: { cert: string; key: string }; b: { cert: string; key: string } }, pass?: Passthrough): string {
  const svc = (name: string, namespace = 'edge'): string => serviceYaml(namespace, backends.get(name)!);
  const docs = [
    ...(pass ? [passthroughYaml(pass)] : []),
    ...BACKENDS.filter((n) => n !== 'other-ns').map((n) => svc(n)),
    svc('other-ns', 'other'),
    secretYaml('cert-a', certs.a),
    secretYaml('cert-b', certs.b),
    `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: tsmesh }
spec: { controllerName: tsmesh.io/gateway-controller }
`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw, namespace: edge }
spec:
  gatewayClassName: tsmesh
  listeners:
    - { name: web, port: ${httpPort}, protocol: HTTP }
    - name: a
      port: ${httpsPort}
      protocol: HTTPS
      hostname: a.example.com
      tls: { certificateRefs: [{ name: cert-a }] }
    - name: b
      port: ${httpsPort}
      protocol: HTTPS
      hostname: b.example.com
      tls: { certificateRefs: [{ kind: Secret, name: cert-b }] }
${pass ? `    - { name: pass, port: ${pass.port}, protocol: TLS, hostname: "*.example.com", tls: { mode: Passthrough } }\n    - { name: raw, port: ${pass.tcp}, protocol: TCP }\n` : ''}`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: app, namespace: edge }
spec:
  parentRefs: [{ name: gw, sectionName: web }]
  hostnames: [app.example.com]
  rules:
    - matches: [{ path: { type: Exact, value: /exact } }]
      backendRefs: [{ name: exact, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /prefix } }]
      backendRefs: [{ name: prefix, port: 80 }]
    - matches: [{ headers: [{ name: x-version, value: v2 }] }]
      backendRefs: [{ name: v2, port: 80 }]
    - matches: [{ queryParams: [{ name: canary, value: "yes" }] }]
      backendRefs: [{ name: canary, port: 80 }]
    - backendRefs: [{ name: default, port: 80 }]
`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: split, namespace: edge }
spec:
  parentRefs: [{ name: gw, port: ${httpPort} }]
  hostnames: [split.example.com]
  rules: [{ backendRefs: [{ name: a, port: 80, weight: 50 }, { name: b, port: 80, weight: 50 }] }]
`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: split99, namespace: edge }
spec:
  parentRefs: [{ name: gw }]
  hostnames: [split99.example.com]
  rules: [{ backendRefs: [{ name: major, port: 80, weight: 99 }, { name: minor, port: 80, weight: 1 }] }]
`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: secure, namespace: edge }
spec:
  parentRefs: [{ name: gw, sectionName: a }, { name: gw, sectionName: b }]
  rules: [{ backendRefs: [{ name: default, port: 80 }] }]
`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: intruder, namespace: other }
spec:
  parentRefs: [{ name: gw, namespace: edge }]
  hostnames: [intruder.example.com]
  rules: [{ backendRefs: [{ name: other-ns, port: 80 }] }]
`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: reach, namespace: edge }
spec:
  parentRefs: [{ name: gw }]
  hostnames: [reach.example.com]
  rules: [{ backendRefs: [{ name: other-ns, namespace: other, port: 80 }] }]
`,
  ];
  return docs.join('---\n');
}

interface Answer {
  readonly status: number;
  readonly backend: string | undefined;
}

function get(agent: http.Agent, port: number, host: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, headers: { host, ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, backend: res.headers['x-backend'] as string | undefined }));
    });
    req.on('error', reject);
  });
}

function openssl(args: readonly string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', [...args], { timeout: 10_000 }, (error, stdout) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout }));
    child.stdin?.end();
  });
}

interface GatewayProcess {
  readonly child: ChildProcess;
  readonly admin: number;
  readonly exited: Promise<number | null>;
  output(): string;
}

async function startGateway(meshFile: string): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [MAIN, 'gateway', '--config', meshFile, '--gateway', 'edge/gw', '--bind', '127.0.0.1', '--admin-port', '0', '--health-port', '0'], {
    env: { PATH: process.env.PATH, TSMESH_LOG_LEVEL: 'info', TSMESH_POD_NAMESPACE: 'edge' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const admin = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway not ready: ${output.slice(-1000)}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find((l) => l.includes('"gateway ready"'));
      if (line === undefined) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { admin: number }).admin);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited ${code}: ${output.slice(-1000)}`));
    });
  });
  return { child, admin, exited, output: () => output };
}

async function adminJson(port: number, path: string): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return res.json();
}

interface Dump {
  readonly version: string;
  readonly gateway: { routes: { route: { namespace: string; name: string }; parents: { conditions: { type: string; status: string; reason: string }[] }[] }[] };
}

describe('tsmesh gateway (a real process, local mode)', () => {
  let dir: string;
  let meshFile: string;
  let backends: Map<string, Backend>;
  let gateway: GatewayProcess;
  let httpPort: number;
  let httpsPort: number;
  let certs: { a: { cert: string; key: string }; b: { cert: string; key: string } };
  let passCert: { cert: string; key: string };
  let tlsBackend: { port: number; server: https.Server };
  let pass: Passthrough;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

  const writeMesh = (text: string): void => {
    writeFileSync(`${meshFile}.tmp`, text);
    renameSync(`${meshFile}.tmp`, meshFile);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-gateway-test-'));
    meshFile = join(dir, 'mesh.yaml');
    backends = new Map((await Promise.all(BACKENDS.map(startBackend))).map((b) => [b.name, b]));
    [httpPort, httpsPort] = [await freePort(), await freePort()];
    certs = { a: certificate(dir, 'a.example.com'), b: certificate(dir, 'b.example.com') };
    passCert = certificate(dir, 'pass.example.com');
    tlsBackend = await startTlsBackend(passCert);
    pass = { port: await freePort(), backend: tlsBackend.port, tcp: await freePort() };
    writeMesh(meshYaml(backends, httpPort, httpsPort, certs, pass));
    gateway = await startGateway(meshFile);
  }, 30_000);

  afterAll(async () => {
    agent.destroy();
    if (gateway && gateway.child.exitCode === null) {
      gateway.child.kill('SIGINT');
      await gateway.exited;
    }
    for (const b of backends?.values() ?? []) b.server.close();
    tlsBackend?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['an Exact path', '/exact', {}, 'exact'],
    ['an Exact path is not a prefix', '/exact/more', {}, 'default'],
    ['a PathPrefix', '/prefix/x', {}, 'prefix'],
    ['a PathPrefix matches whole segments only', '/prefixed', {}, 'default'],
    ['a header', '/', { 'x-version': 'v2' }, 'v2'],
    ['a query parameter', '/?canary=yes', {}, 'canary'],
    ['another query value', '/?canary=no', {}, 'default'],
    ['the catch-all rule', '/anything', {}, 'default'],
  ] as [string, string, Record<string, string>, string][])('routes by host and %s', async (_name, path, headers, expected) => {
    const answer = await get(agent, httpPort, 'app.example.com', path, headers);
    expect(answer).toEqual({ status: 200, backend: expected });
  });

  it('answers 404 for a host no route of the listener serves', async () => {
    expect(await get(agent, httpPort, 'nobody.example.com', '/')).toEqual({ status: 404, backend: undefined });
  });

  it.each([
    ['split.example.com', { a: 500, b: 500 }],
    ['split99.example.com', { major: 990, minor: 10 }],
  ] as [string, Record<string, number>][])('splits 1,000 requests to %s by weight within 5 %%', async (host, expected) => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const { backend } = await get(agent, httpPort, host, '/');
      counts[backend ?? 'none'] = (counts[backend ?? 'none'] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, want] of Object.entries(expected)) expect(Math.abs((counts[name] ?? 0) - want)).toBeLessThanOrEqual(50);
  }, 30_000);

  it.each(['a.example.com', 'b.example.com'])('presents the certificate of %s to openssl s_client -servername, over TLS 1.3', async (host) => {
    const { stdout } = await openssl(['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', host]);
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(stdout)?.[0];
    expect(pem).toBeDefined();
    expect(new X509Certificate(pem!).subjectAltName).toBe(`DNS:${host}`);
    expect(pem!.replace(/\s/g, '')).toBe((host === 'a.example.com' ? certs.a : certs.b).cert.trim().replace(/\s/g, ''));
    expect(stdout).toMatch(/TLSv1\.3/);
  });

  it('refuses a TLS handshake for a server name no listener serves', async () => {
    const { code, stdout } = await openssl(['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', 'evil.example.org']);
    expect(code).not.toBe(0);
    expect(stdout).not.toContain('BEGIN CERTIFICATE');
  });

  it('routes HTTPS requests after terminating TLS, verified against the listener certificate', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port: httpsPort, servername: 'b.example.com', path: '/hello', headers: { host: 'b.example.com' }, ca: certs.b.cert, checkServerIdentity: () => undefined }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(`${res.statusCode} ${text}`));
      });
      req.on('error', reject);
    });
    expect(body).toBe('200 default /hello');
  });

  it('answers a client that offers h2 and http/1.1 by ALPN (curl) over HTTP/1.1, which the HTTPRoute backend speaks', async () => {
    const out = await new Promise<string>((resolve) =>
      execFile('curl', ['-s', '-m', '5', '-w', ' %{http_version}', '--resolve', `b.example.com:${httpsPort}:127.0.0.1`, '--cacert', join(dir, 'b.example.com.crt'), `https://b.example.com:${httpsPort}/alpn`], (_e, stdout) => resolve(stdout)),
    );
    expect(out).toBe('default /alpn 1.1');
  });

  it("passes TLS through by SNI: the backend's own certificate reaches openssl s_client untouched", async () => {
    const { stdout } = await openssl(['s_client', '-connect', `127.0.0.1:${pass.port}`, '-servername', 'pass.example.com']);
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(stdout)?.[0];
    expect(pem?.replace(/\s/g, '')).toBe(passCert.cert.trim().replace(/\s/g, ''));
  });

  it('carries a whole HTTPS exchange with the backend through a passthrough listener, verified against its certificate', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port: pass.port, servername: 'pass.example.com', path: '/inside', ca: passCert.cert, agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(`${res.statusCode} ${text}`));
      });
      req.on('error', reject);
    });
    expect(body).toBe('200 passthrough /inside');
  });

  it('refuses a passthrough connection whose SNI no TLSRoute serves, and counts it', async () => {
    const error = await new Promise<Error>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: pass.port, servername: 'other.example.com', rejectUnauthorized: false });
      socket.on('secureConnect', () => resolve(new Error('handshake completed')));
      socket.on('error', resolve);
    });
    expect(error.message).toMatch(/unrecognized name/i);
    const { code, stdout } = await openssl(['s_client', '-connect', `127.0.0.1:${pass.port}`, '-servername', 'example.com']);
    expect(code).not.toBe(0);
    expect(stdout).not.toContain('BEGIN CERTIFICATE');
    const dump = (await adminJson(gateway.admin, '/config_dump')) as { passthroughRefused: Record<string, number> };
    expect(dump.passthroughRefused[`${pass.port}/unknown_server_name`]).toBe(2);
  });

  it('relays a TCP listener to its TCPRoute backend, bytes as sent', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(pass.tcp, '127.0.0.1', () => socket.end('GET /raw HTTP/1.1\r\nHost: anything\r\nConnection: close\r\n\r\n'));
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain('x-backend: exact');
    expect(answer).toContain('exact /raw');
  });

  it('rejects a route from a namespace the listener does not admit (Accepted=False, NotAllowedByListeners) and serves none of it', async () => {
    const dump = (await adminJson(gateway.admin, '/config_dump')) as Dump;
    const intruder = dump.gateway.routes.find((r) => r.route.namespace === 'other' && r.route.name === 'intruder');
    expect(intruder?.parents[0]?.conditions.find((c) => c.type === 'Accepted')).toMatchObject({ status: 'False', reason: 'NotAllowedByListeners' });
    expect(await get(agent, httpPort, 'intruder.example.com', '/')).toEqual({ status: 404, backend: undefined });
  });

  it('refuses a backend in another namespace without ReferenceGrant (ResolvedRefs=False, RefNotPermitted): 500, never forwarded', async () => {
    const dump = (await adminJson(gateway.admin, '/config_dump')) as Dump;
    const reach = dump.gateway.routes.find((r) => r.route.name === 'reach');
    expect(reach?.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs')).toMatchObject({ status: 'False', reason: 'RefNotPermitted' });
    expect(await get(agent, httpPort, 'reach.example.com', '/')).toEqual({ status: 500, backend: undefined });
  });

  it('never shows Secret data or private keys in /config_dump', async () => {
    const text = JSON.stringify(await adminJson(gateway.admin, '/config_dump'));
    expect(text).toContain('"secret":"edge/cert-a"');
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).not.toContain(Buffer.from(certs.a.key).toString('base64').slice(0, 40));
  });

  it('keeps the last good configuration on a bad edit, and applies the next good one', async () => {
    const before = ((await adminJson(gateway.admin, '/config_dump')) as Dump).version;
    writeMesh(`${meshYaml(backends, httpPort, httpsPort, certs, pass)}---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: broken, namespace: edge }\nspec: { gatewayClassName: tsmesh, listeners: [{ name: x, port: 1, protocol: HTTPS }] }\n`);
    await waitFor(() => gateway.output().includes('spec.listeners[0].tls'), 'the bad edit to be refused');
    expect(((await adminJson(gateway.admin, '/config_dump')) as Dump).version).toBe(before);
    expect(await get(agent, httpPort, 'app.example.com', '/exact')).toEqual({ status: 200, backend: 'exact' });
    writeMesh(meshYaml(backends, httpPort, httpsPort, certs, pass).replace('value: /exact }', 'value: /exactly }'));
    await waitFor(async () => (await get(agent, httpPort, 'app.example.com', '/exactly')).backend === 'exact', 'the good edit to apply');
    expect(await get(agent, httpPort, 'app.example.com', '/exact')).toEqual({ status: 200, backend: 'default' });
  }, 20_000);

  it('stops on SIGTERM with exit 0', async () => {
    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
