// `tsmesh proxy-config` against running sidecars: one with a workload certificate from a real
// `tsmesh ca` (local mode, token file) and an HTTPRoute, one without identity. Tables, -o json and
// yaml, `log --level`, and the exit codes of every bad argument.
import { createServer, type AddressInfo } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { MAIN, runCli } from '../testing/run-cli.js';
import { oneServiceMesh, startSidecar, type SidecarProcess } from '../testing/sidecar.js';

const ROUTE = `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: web-v2, namespace: default }
spec:
  parentRefs: [{ group: '', kind: Service, name: web, port: 80 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /v2 }, headers: [{ name: x-canary, value: 'yes' }] }]
      backendRefs: [{ name: web, port: 80, weight: 90 }, { name: web-canary, port: 80, weight: 10 }]
    - backendRefs: [{ name: web, port: 80 }]
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** `tsmesh ca` on 127.0.0.1 in local mode; resolves once it listens. */
async function startCa(dir: string, port: number): Promise<ChildProcess> {
  writeFileSync(join(dir, 'tokens.yaml'), '- { token: web-token, namespace: default, serviceAccount: web }\n');
  const child = spawn(process.execPath, [MAIN, 'ca', '--state-dir', join(dir, 'ca'), '--token-file', join(dir, 'tokens.yaml'), '--listen', `127.0.0.1:${port}`, '--serving-san', '127.0.0.1'], {
    env: { PATH: process.env.PATH, TSMESH_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`CA not listening: ${out.slice(-500)}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (out.includes('"certificate authority listening"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`CA exited ${code}: ${out.slice(-500)}`)));
  });
  return child;
}

function adminGet(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(JSON.parse(body)));
    }).on('error', reject);
  });
}

describe('tsmesh proxy-config', () => {
  let dir: string;
  let ca: ChildProcess;
  let sidecar: SidecarProcess;
  let plain: SidecarProcess;
  let admin: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-proxy-config-'));
    const mesh = oneServiceMesh('web', '10.96.0.30', 8080, 'http').replace('endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }]', 'endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }, { addresses: [127.0.0.2], conditions: { ready: true } }]');
    writeFileSync(join(dir, 'mesh.yaml'), mesh + ROUTE);
    const caPort = await freePort();
    ca = await startCa(dir, caPort);
    writeFileSync(join(dir, 'token'), 'web-token');
    sidecar = await startSidecar(join(dir, 'mesh.yaml'), ['--concurrency', '2'], {
      TSMESH_CA_ADDR: `127.0.0.1:${caPort}`,
      TSMESH_CA_TOKEN_FILE: join(dir, 'token'),
      TSMESH_TRUST_BUNDLE_FILE: join(dir, 'ca', 'root-cert.pem'),
      TSMESH_POD_NAMESPACE: 'default',
      TSMESH_SERVICE_ACCOUNT: 'web',
    });
    plain = await startSidecar(join(dir, 'mesh.yaml'), ['--concurrency', '1']);
    admin = `127.0.0.1:${sidecar.ports.admin}`;
  }, 60_000);

  afterAll(async () => {
    for (const child of [sidecar?.child, plain?.child, ca]) child?.kill('SIGKILL');
    await Promise.all([sidecar?.exited, plain?.exited]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('clusters: one line per cluster, summed over the event loops', async () => {
    expect(await runCli(['proxy-config', 'clusters', admin])).toEqual({
      code: 0,
      stderr: '',
      modules: [],
      stdout: ['CLUSTER         LOAD BALANCER  ENDPOINTS  EJECTED  IN FLIGHT', 'default/web:80  least-request  2          0        0', ''].join('\n'),
    });
  });

  it('endpoints: one line per endpoint', async () => {
    expect((await runCli(['proxy-config', 'endpoints', admin])).stdout).toBe(
      [
        'CLUSTER         ENDPOINT        STATUS   IN FLIGHT  HTTP/1.1  HTTP/2  TCP',
        'default/web:80  127.0.0.1:8080  HEALTHY  0          0         0       0',
        'default/web:80  127.0.0.2:8080  HEALTHY  0          0         0       0',
        '',
      ].join('\n'),
    );
  });

  it('routes: parents, matches and weighted backends; -o json is the route objects the sidecar holds', async () => {
    expect((await runCli(['proxy-config', 'routes', admin])).stdout).toBe(
      [
        'NAME            KIND       PARENTS         MATCHES                                BACKENDS',
        'default/web-v2  HTTPRoute  Service/web:80  PathPrefix /v2 header x-canary=yes, *  web:80 (weight 90), web-canary:80 (weight 10), web:80',
        '',
      ].join('\n'),
    );
    const json = await runCli(['proxy-config', 'routes', admin, '-o', 'json']);
    const dump = (await adminGet(sidecar.ports.admin, '/config_dump')) as { others: Array<{ kind: string }> };
    expect(JSON.parse(json.stdout)).toEqual(dump.others.filter((o) => o.kind === 'HTTPRoute'));
    const yaml = await runCli(['proxy-config', 'routes', admin, '--output=yaml']);
    expect(parseYaml(yaml.stdout)).toEqual(JSON.parse(json.stdout));
  });

  it('listeners: the Service addresses it routes, their protocol, and the inbound mTLS mode', async () => {
    expect((await runCli(['proxy-config', 'listeners', admin])).stdout).toBe(
      ['ADDRESS        SERVICE      PROTOCOL  LOAD BALANCER', '10.96.0.30:80  default/web  http      least-request', 'Inbound mTLS: PERMISSIVE', ''].join('\n'),
    );
  });

  it('certs: the workload certificate from the CA, its chain and root, and the renewal', async () => {
    const run = await runCli(['proxy-config', 'certs', admin]);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CERTIFICATE +SUBJECT +SERIAL +NOT BEFORE +NOT AFTER$/);
    expect(lines[1]).toMatch(/^workload +URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/web +[0-9A-F]+ +\S.* +\S/);
    expect(lines.filter((l) => l.startsWith('intermediate')).length).toBeGreaterThanOrEqual(1);
    expect(lines.filter((l) => l.startsWith('root')).length).toBeGreaterThanOrEqual(1);
    expect(lines.at(-1)).toMatch(/^Identity: spiffe:\/\/cluster\.local\/ns\/default\/sa\/web \(valid\); renewal at \d{4}-\d\d-\d\dT/);
    const json = JSON.parse((await runCli(['proxy-config', 'certs', admin, '-o', 'json'])).stdout) as { spiffeId: string; state: string };
    expect(json).toMatchObject({ spiffeId: 'spiffe://cluster.local/ns/default/sa/web', state: 'valid' });
  });

  it('certs of a sidecar without identity says so, exit 0', async () => {
    expect(await runCli(['proxy-config', 'certs', String(plain.ports.admin)])).toMatchObject({
      code: 0,
      stdout: 'No workload identity: no TSMESH_CA_ADDR: running without workload identity\n',
    });
  });

  it('log: prints the level, and --level changes it first', async () => {
    const port = String(plain.ports.admin);
    expect((await runCli(['proxy-config', 'log', port])).stdout).toBe('LEVEL\ninfo\n');
    expect((await runCli(['proxy-config', 'log', port, '--level', 'debug'])).stdout).toBe('LEVEL\ndebug\n');
    expect(JSON.parse((await runCli(['proxy-config', 'log', port, '-o', 'json'])).stdout)).toEqual({ level: 'debug' });
    expect(await adminGet(plain.ports.admin, '/logging')).toEqual({ level: 'debug' });
  });

  it('bad arguments are one line on stderr and exit 2', async () => {
    const cases: Array<[string[], string]> = [
      [['proxy-config'], 'which kind? one of clusters, endpoints, routes, listeners, certs, log'],
      [['proxy-config', 'secrets', admin], 'unknown kind "secrets"; the kinds are clusters, endpoints, routes, listeners, certs, log'],
      [['proxy-config', 'clusters'], 'which sidecar? give its admin address, HOST:PORT or PORT (127.0.0.1:15000 in its pod)'],
      [['proxy-config', 'clusters', 'web-6d4f.shop'], '"web-6d4f.shop" looks like a pod name: reaching a pod through the Kubernetes API is not available yet; port-forward its admin port and give HOST:PORT'],
      [['proxy-config', 'clusters', '127.0.0.1:99999'], 'ADDR: "127.0.0.1:99999" is not HOST:PORT or PORT (1-65535)'],
      [['proxy-config', 'clusters', admin, '-o', 'xml'], '-o: "xml" is not an output format (table, json or yaml)'],
      [['proxy-config', 'clusters', admin, '--level', 'debug'], '--level goes with the kind log'],
      [['proxy-config', 'log', admin, '--level', 'loud'], '--level: "loud" is not a log level (trace, debug, info, warn, error, fatal, silent)'],
      [['proxy-config', 'clusters', admin, '--timeout', '5m'], '--timeout: "5m" is not a duration from 1ms to 600s (e.g. 2s, 500ms)'],
      [['proxy-config', 'clusters', admin, 'extra'], 'unexpected argument "extra"'],
      [['proxy-config', 'clusters', admin, '--verbose'], 'unknown flag "--verbose" (see tsmesh proxy-config --help)'],
    ];
    for (const [args, message] of cases) {
      expect({ args, ...(await runCli(args)) }).toEqual({ args, code: 2, stdout: '', stderr: `tsmesh proxy-config: ${message}\n`, modules: [] });
    }
  });

  it('a sidecar that cannot be reached is one line on stderr, exit 1', async () => {
    const run = await runCli(['proxy-config', 'clusters', '127.0.0.1:1']);
    expect(run).toMatchObject({ code: 1, stdout: '' });
    expect(run.stderr).toBe("tsmesh proxy-config: cannot reach the sidecar's admin server at 127.0.0.1:1/clusters: connect ECONNREFUSED 127.0.0.1:1\n");
  });

  it('an address that answers but is not a sidecar admin server is one line, exit 1', async () => {
    // The health port answers 404 JSON for /clusters.
    const run = await runCli(['proxy-config', 'clusters', `127.0.0.1:${sidecar.ports.health}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`tsmesh proxy-config: 127.0.0.1:${sidecar.ports.health}/clusters answered 404: { "error": "no endpoint /clusters" }\n`);
  });
});
