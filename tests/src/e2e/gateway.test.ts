// End-to-end proof of `tsmesh gateway` in network namespaces: an "outside" pod with curl and
// openssl; the gateway pod (no iptables, a mesh identity from the CA); Bookinfo-like meshed
// backends with sidecars (productpage in STRICT mode, reviews v1 and v2, and "secure", which
// terminates TLS itself behind a Passthrough listener); an unmeshed ratings pod in another
// namespace. The gateway's listeners: HTTP on 80, HTTPS on 443 for two hostnames, TLS Passthrough
// on 8443.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import { caEnv, CLI_MAIN, meshYaml, publishTrustBundle, startCa, startSidecar, startWorkload, Topology, waitForLine, writeCaTokens, type MeshPodSpec, type Pod } from 'tsmesh/demo';
import { accessLines, waitUntil } from './mtls-helpers.js';
import { requireNetns } from './netns.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;

const NS = 'bookinfo';
const GW = 'gateway.networking.k8s.io';
const GATEWAY_ID = `spiffe://cluster.local/ns/${NS}/sa/bookinfo-gateway`;

interface Pair {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

function certificate(dir: string, host: string): Pair {
  const keyFile = join(dir, `${host}.key`);
  const certFile = join(dir, `${host}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`], { stdio: 'ignore' });
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

const tlsSecret = (name: string, pair: Pair): object => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: NS },
  type: 'kubernetes.io/tls',
  data: { 'tls.crt': Buffer.from(pair.cert).toString('base64'), 'tls.key': Buffer.from(pair.key).toString('base64') },
});

const httpRoute = (namespace: string, name: string, spec: object): object => ({ apiVersion: `${GW}/v1`, kind: 'HTTPRoute', metadata: { name, namespace }, spec });
const to = (name: string, weight?: number, namespace?: string): object => ({ name, port: 9080, ...(weight === undefined ? {} : { weight }), ...(namespace ? { namespace } : {}) });

function gatewayObjects(certs: { bookinfo: Pair; reviews: Pair }): object[] {
  return [
    tlsSecret('cert-bookinfo', certs.bookinfo),
    tlsSecret('cert-reviews', certs.reviews),
    { apiVersion: `${GW}/v1`, kind: 'GatewayClass', metadata: { name: 'tsmesh' }, spec: { controllerName: 'tsmesh.io/gateway-controller' } },
    {
      apiVersion: `${GW}/v1`,
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: NS },
      spec: {
        gatewayClassName: 'tsmesh',
        listeners: [
          { name: 'web', port: 80, protocol: 'HTTP' },
          { name: 'bookinfo-https', port: 443, protocol: 'HTTPS', hostname: 'bookinfo.example.com', tls: { certificateRefs: [{ name: 'cert-bookinfo' }] } },
          { name: 'reviews-https', port: 443, protocol: 'HTTPS', hostname: 'reviews.example.com', tls: { certificateRefs: [{ name: 'cert-reviews' }] } },
          { name: 'pass', port: 8443, protocol: 'TLS', hostname: '*.example.com', tls: { mode: 'Passthrough' } },
        ],
      },
    },
    httpRoute(NS, 'bookinfo', {
      parentRefs: [{ name: 'gw', sectionName: 'web' }, { name: 'gw', sectionName: 'bookinfo-https' }],
      hostnames: ['bookinfo.example.com'],
      rules: [
        { matches: [{ path: { type: 'Exact', value: '/productpage' } }], backendRefs: [to('productpage')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/reviews' }, headers: [{ name: 'x-version', value: 'v2' }] }], backendRefs: [to('reviews-v2')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/reviews' }, queryParams: [{ name: 'version', value: 'v2' }] }], backendRefs: [to('reviews-v2')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/reviews' } }], backendRefs: [to('reviews-v1')] },
      ],
    }),
    httpRoute(NS, 'reviews-https', { parentRefs: [{ name: 'gw', sectionName: 'reviews-https' }], rules: [{ backendRefs: [to('reviews-v2')] }] }),
    httpRoute(NS, 'split', { parentRefs: [{ name: 'gw', sectionName: 'web' }], hostnames: ['split.example.com'], rules: [{ backendRefs: [to('reviews-v1', 50), to('reviews-v2', 50)] }] }),
    httpRoute(NS, 'split99', { parentRefs: [{ name: 'gw', sectionName: 'web' }], hostnames: ['split99.example.com'], rules: [{ backendRefs: [to('reviews-v1', 99), to('reviews-v2', 1)] }] }),
    httpRoute(NS, 'reach', { parentRefs: [{ name: 'gw', sectionName: 'web' }], hostnames: ['reach.example.com'], rules: [{ backendRefs: [to('ratings', undefined, 'other')] }] }),
    httpRoute('other', 'intruder', { parentRefs: [{ name: 'gw', namespace: NS }], hostnames: ['intruder.example.com'], rules: [{ backendRefs: [to('ratings')] }] }),
    {
      apiVersion: `${GW}/v1alpha2`,
      kind: 'TLSRoute',
      metadata: { name: 'secure', namespace: NS },
      spec: { parentRefs: [{ name: 'gw', sectionName: 'pass' }], hostnames: ['secure.example.com'], rules: [{ backendRefs: [{ name: 'secure', port: 443 }] }] },
    },
    {
      apiVersion: 'security.tsmesh.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'productpage-strict', namespace: NS },
      spec: { selector: { matchLabels: { app: 'productpage' } }, mtls: { mode: 'STRICT' } },
    },
  ];
}

/** An HTTPS server with its own certificate (the passthrough backend): answers `secure <url>`. */
const HTTPS_SERVER = `
const https = require('node:https'); const fs = require('node:fs');
const [cert, key, port] = process.argv.slice(1);
https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => res.end('secure ' + req.url))
  .listen(Number(port), () => console.log('ready'));
`;

suite('tsmesh gateway in network namespaces (Bookinfo-like)', () => {
  let topology: Topology;
  let dir: string;
  let outside: Pod;
  let gatewayPod: Pod;
  let productpage: Pod;
  let gateway: ChildProcess;
  let certs: { bookinfo: Pair; reviews: Pair; secure: Pair };
  let gw: string;

  /** Runs a shell command line in the outside pod; resolves its stdout and exit code (never rejects). */
  const sh = async (pod: Pod, line: string): Promise<{ out: string; code: number }> => {
    const out = await pod.exec('sh', ['-c', `${line}; echo "EXIT=$?"`]);
    const at = out.lastIndexOf('EXIT=');
    return { out: out.slice(0, at), code: Number(out.slice(at + 5).trim()) };
  };
  /** The JSON body's `server` (the sample http-server names itself) of a plain HTTP GET through the gateway. */
  const served = async (host: string, path: string, headers: readonly string[] = []): Promise<string> => {
    const { out } = await sh(outside, `curl -s -m 5 -H 'Host: ${host}' ${headers.map((h) => `-H '${h}'`).join(' ')} 'http://${gw}${path}'`);
    return (JSON.parse(out) as { server: string }).server;
  };
  const status = async (host: string, path: string): Promise<string> => (await sh(outside, `curl -s -m 5 -o /dev/null -w '%{http_code}' -H 'Host: ${host}' 'http://${gw}${path}'`)).out;
  /** The certificate the server presents for `servername` (PEM), or undefined when the handshake failed. */
  const presented = async (port: number, servername: string): Promise<{ pem: string | undefined; code: number; out: string }> => {
    const { out, code } = await sh(outside, `openssl s_client -connect ${gw}:${port} -servername ${servername} </dev/null 2>&1`);
    return { pem: /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0], code, out };
  };
  const configDump = async (): Promise<{ gateway: { routes: { route: { namespace: string; name: string }; parents: { conditions: { type: string; status: string; reason: string }[] }[] }[] }; passthroughRefused: Record<string, number> }> =>
    JSON.parse((await sh(gatewayPod, 'curl -s http://127.0.0.1:15000/config_dump')).out);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-gateway-e2e-'));
    chmodSync(dir, 0o755); // sidecars (uid 1337) read the mesh file, their token and the trust bundle
    certs = { bookinfo: certificate(dir, 'bookinfo.example.com'), reviews: certificate(dir, 'reviews.example.com'), secure: certificate(dir, 'secure.example.com') };
    topology = await Topology.create('tsm-gw', '10.247.0');
    const caPod = await topology.addPod({ name: 'ca', hostId: 2 });
    gatewayPod = await topology.addPod({ name: 'gateway', hostId: 3 });
    outside = await topology.addPod({ name: 'outside', hostId: 4 });
    productpage = await topology.addPod({ name: 'productpage', hostId: 10 });
    const v1 = await topology.addPod({ name: 'reviews-v1', hostId: 11 });
    const v2 = await topology.addPod({ name: 'reviews-v2', hostId: 12 });
    const secure = await topology.addPod({ name: 'secure', hostId: 13 });
    const ratings = await topology.addPod({ name: 'ratings', hostId: 14 });
    gw = gatewayPod.ip;

    const pods: MeshPodSpec[] = [
      { name: 'productpage', namespace: NS, serviceAccount: 'productpage', ip: productpage.ip, labels: { app: 'productpage' }, meshed: true },
      { name: 'reviews-v1', namespace: NS, serviceAccount: 'reviews', ip: v1.ip, labels: { app: 'reviews', version: 'v1' }, meshed: true },
      { name: 'reviews-v2', namespace: NS, serviceAccount: 'reviews', ip: v2.ip, labels: { app: 'reviews', version: 'v2' }, meshed: true },
      { name: 'secure', namespace: NS, serviceAccount: 'secure', ip: secure.ip, labels: { app: 'secure' }, meshed: true },
      { name: 'ratings', namespace: 'other', serviceAccount: 'ratings', ip: ratings.ip, labels: { app: 'ratings' }, meshed: false },
    ];
    const web = [{ name: 'http', port: 9080, targetPort: 9080 }];
    const mesh = meshYaml(pods, [
      { name: 'productpage', namespace: NS, clusterIP: '10.96.47.10', ports: web, backends: [{ pod: 'productpage' }] },
      { name: 'reviews-v1', namespace: NS, clusterIP: '10.96.47.11', ports: web, backends: [{ pod: 'reviews-v1' }] },
      { name: 'reviews-v2', namespace: NS, clusterIP: '10.96.47.12', ports: web, backends: [{ pod: 'reviews-v2' }] },
      { name: 'secure', namespace: NS, clusterIP: '10.96.47.13', ports: [{ name: 'https', port: 443, targetPort: 8443 }], backends: [{ pod: 'secure' }] },
      { name: 'ratings', namespace: 'other', clusterIP: '10.96.47.14', ports: web, backends: [{ pod: 'ratings' }] },
    ]);
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(meshFile, [mesh, ...gatewayObjects(certs).map((o) => stringify(o))].join('---\n'));

    const tokens = writeCaTokens(dir, [
      { namespace: NS, serviceAccount: 'productpage' },
      { namespace: NS, serviceAccount: 'reviews' },
      { namespace: NS, serviceAccount: 'secure' },
      { namespace: NS, serviceAccount: 'bookinfo-gateway' },
    ]);
    const [productpageToken, reviewsToken, secureToken, gatewayToken] = tokens.sidecarTokenFiles as [string, string, string, string];
    const trustFile = join(dir, 'trust-bundle.pem');
    const stateDir = join(dir, 'ca');
    await startCa(caPod, { stateDir, tokenFile: tokens.tokenFile });
    publishTrustBundle(join(stateDir, 'root-cert.pem'), trustFile);

    const secureServer = secure.spawn(process.execPath, ['-e', HTTPS_SERVER, certs.secure.certFile, certs.secure.keyFile, '8443']);
    await Promise.all([
      startWorkload(productpage, 'http-server', ['--port', '9080', '--name', 'productpage']),
      startWorkload(v1, 'http-server', ['--port', '9080', '--name', 'reviews-v1']),
      startWorkload(v2, 'http-server', ['--port', '9080', '--name', 'reviews-v2']),
      startWorkload(ratings, 'http-server', ['--port', '9080', '--name', 'ratings']),
      waitForLine(secureServer, (l) => l === 'ready', 15_000, 'https server in secure'),
    ]);
    const env = (token: string): Record<string, string> => ({ ...caEnv(caPod, token, trustFile), TSMESH_ACCESS_LOG: 'on' });
    await Promise.all([
      startSidecar(productpage, { meshFile, namespace: NS, serviceAccount: 'productpage', env: env(productpageToken) }),
      startSidecar(v1, { meshFile, namespace: NS, serviceAccount: 'reviews', env: env(reviewsToken) }),
      startSidecar(v2, { meshFile, namespace: NS, serviceAccount: 'reviews', env: env(reviewsToken) }),
      startSidecar(secure, { meshFile, namespace: NS, serviceAccount: 'secure', env: env(secureToken) }),
    ]);
    // The gateway: no iptables; listens on 80, 443 and 8443 of its pod as root (Gateway ports as written).
    gateway = gatewayPod.spawn(process.execPath, [CLI_MAIN, 'gateway', '--config', meshFile, '--gateway', `${NS}/gw`, '--drain-duration', '0'], {
      env: { TSMESH_POD_NAME: 'gateway', TSMESH_POD_NAMESPACE: NS, TSMESH_SERVICE_ACCOUNT: 'bookinfo-gateway', TSMESH_LOG_LEVEL: 'info', ...caEnv(caPod, gatewayToken, trustFile) },
    });
    await waitForLine(gateway, (l) => l.includes('"gateway ready"'), 20_000, 'tsmesh gateway');
    await waitUntil(async () => ((await sh(gatewayPod, 'curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:15020/healthz/ready')).out === '200' ? true : undefined), 15_000, 'the gateway is ready (listeners bound, certificate held)');
  }, 90_000);

  afterAll(async () => {
    await topology?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  test.each([
    ['an Exact path', '/productpage', [], 'productpage'],
    ['a PathPrefix', '/reviews/1', [], 'reviews-v1'],
    ['a header', '/reviews/1', ['x-version: v2'], 'reviews-v2'],
    ['a query parameter', '/reviews/1?version=v2', [], 'reviews-v2'],
  ] as [string, string, string[], string][])('routes by host and %s, from outside', async (_name, path, headers, expected) => {
    expect(await served('bookinfo.example.com', path, headers)).toBe(expected);
  });

  test('answers 404 for a path or a host no route serves', async () => {
    expect(await status('bookinfo.example.com', '/details')).toBe('404');
    expect(await status('nobody.example.com', '/productpage')).toBe('404');
  });

  test.each([
    ['split.example.com', { 'reviews-v1': 500, 'reviews-v2': 500 }],
    ['split99.example.com', { 'reviews-v1': 990, 'reviews-v2': 10 }],
  ] as [string, Record<string, number>][])('splits 1,000 requests to %s by weight within 5 %%', async (host, expected) => {
    // One curl, 1,000 URLs over a kept-alive connection; each answer is the backend's JSON.
    const { out } = await sh(outside, `curl -s -m 60 -H 'Host: ${host}' 'http://${gw}/r[1-1000]'`);
    const counts: Record<string, number> = {};
    for (const m of out.matchAll(/"server":"([^"]+)"/g)) counts[m[1]!] = (counts[m[1]!] ?? 0) + 1;
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1000);
    for (const [name, want] of Object.entries(expected)) expect(Math.abs((counts[name] ?? 0) - want)).toBeLessThanOrEqual(50);
  }, 60_000);

  test.each(['bookinfo.example.com', 'reviews.example.com'] as const)('terminates HTTPS for %s with its own certificate (openssl s_client -servername)', async (host) => {
    const { pem } = await presented(443, host);
    expect(pem).toBeDefined();
    expect(new X509Certificate(pem!).subjectAltName).toBe(`DNS:${host}`);
    expect(pem!.replace(/\s/g, '')).toBe(certs[host === 'bookinfo.example.com' ? 'bookinfo' : 'reviews'].cert.trim().replace(/\s/g, ''));
  });

  test('routes HTTPS by hostname: each name verified against its certificate reaches its own routes', async () => {
    const get = (host: string, path: string, ca: string): Promise<{ out: string; code: number }> => sh(outside, `curl -s -m 5 --resolve ${host}:443:${gw} --cacert ${ca} https://${host}${path}`);
    expect((JSON.parse((await get('bookinfo.example.com', '/reviews/1', certs.bookinfo.certFile)).out) as { server: string }).server).toBe('reviews-v1');
    expect((JSON.parse((await get('reviews.example.com', '/anything', certs.reviews.certFile)).out) as { server: string }).server).toBe('reviews-v2');
  });

  test('reaches the STRICT productpage over mTLS with the gateway identity; plaintext from outside is refused', async () => {
    const { out } = await sh(outside, `curl -s -m 5 --resolve bookinfo.example.com:443:${gw} --cacert ${certs.bookinfo.certFile} https://bookinfo.example.com/productpage`);
    const body = JSON.parse(out) as { server: string; headers: Record<string, string> };
    expect(body.server).toBe('productpage');
    expect(body.headers['x-forwarded-client-cert']).toContain(`URI=${GATEWAY_ID}`);
    const line = await waitUntil(() => accessLines(productpage).find((l) => l.path === '/productpage' && l.reporter === 'destination'), 5000, 'productpage logs the request');
    expect(line).toMatchObject({ source_identity: GATEWAY_ID, mtls: true });
    const direct = await sh(outside, `curl -s -m 5 -o /dev/null -w '%{http_code}' http://${productpage.ip}:9080/productpage`);
    expect(direct.out === '000' || direct.code !== 0).toBe(true);
  });

  test("passes TLS through by SNI: the backend's own certificate reaches the client untouched, over the mesh", async () => {
    const { pem } = await presented(8443, 'secure.example.com');
    expect(pem?.replace(/\s/g, '')).toBe(certs.secure.cert.trim().replace(/\s/g, ''));
    const { out } = await sh(outside, `curl -s -m 5 --resolve secure.example.com:8443:${gw} --cacert ${certs.secure.certFile} https://secure.example.com:8443/inside`);
    expect(out).toBe('secure /inside');
  });

  test('refuses a passthrough connection with a wrong SNI (closed, counted)', async () => {
    const wrong = await presented(8443, 'wrong.example.com');
    expect(wrong.code).not.toBe(0);
    expect(wrong.pem).toBeUndefined();
    expect(wrong.out).toMatch(/unrecognized name/i);
    expect((await configDump()).passthroughRefused['8443/unknown_server_name']).toBeGreaterThanOrEqual(1);
  });

  test('rejects a route from a namespace the listener does not admit (NotAllowedByListeners) and serves none of it', async () => {
    const intruder = (await configDump()).gateway.routes.find((r) => r.route.namespace === 'other' && r.route.name === 'intruder');
    expect(intruder?.parents[0]?.conditions.find((c) => c.type === 'Accepted')).toMatchObject({ status: 'False', reason: 'NotAllowedByListeners' });
    expect(gatewayPod.logs.some((l) => l.includes('"reason":"NotAllowedByListeners"'))).toBe(true);
    expect(await status('intruder.example.com', '/')).toBe('404');
  });

  test('refuses a cross-namespace backend without ReferenceGrant (RefNotPermitted): 500, never forwarded', async () => {
    const reach = (await configDump()).gateway.routes.find((r) => r.route.name === 'reach');
    expect(reach?.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs')).toMatchObject({ status: 'False', reason: 'RefNotPermitted' });
    expect(await status('reach.example.com', '/')).toBe('500');
  });
});
