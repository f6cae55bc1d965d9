// `tsmesh analyze` (the built CLI, as a child process): from mesh files, and from the API-server
// stand-in with one mistake of each kind; output formats, namespaces, exit codes and usage errors.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { KubeObject } from '@tsmesh/common';
import { FakeApiServer } from '@tsmesh/control/testing';
import { authorizationPolicy, gateway, meshText, namespace, peerAuthentication, pod, rateLimitPolicy, route, service } from '../analyze/testing.js';
import { MAIN, runCli } from '../testing/run-cli.js';

interface Record_ {
  code: string;
  severity: string;
  object: { kind: string; namespace?: string; name: string };
  message: string;
}
const brief = (records: Record_[]): string[] => records.map((r) => `${r.code} ${r.object.kind} ${r.object.namespace === undefined ? r.object.name : `${r.object.namespace}/${r.object.name}`}`);

const INJECTED = { 'tsmesh-injection': 'enabled' };
const toWeb = { kind: 'Service', group: '', name: 'web' };

/** One mistake of each kind analyze knows, and objects that are fine. */
const MISTAKES: KubeObject[] = [
  namespace('tsmesh-system'),
  namespace('shop', INJECTED),
  namespace('edge', INJECTED),
  namespace('legacy', {}, { 'tsmesh.io/proxy-cpu': '100m' }),
  namespace('odd', { 'tsmesh-injection': 'true' }),
  peerAuthentication('tsmesh-system', 'default', 'STRICT'),
  peerAuthentication('shop', 'ns-a', 'STRICT'),
  peerAuthentication('shop', 'ns-b', 'PERMISSIVE'),
  peerAuthentication('shop', 'web-strict', 'STRICT', { app: 'web' }),
  peerAuthentication('shop', 'web-v1', 'STRICT', { app: 'web', version: 'v1' }),
  peerAuthentication('legacy', 'strict', 'STRICT'),
  service('shop', 'web', [80]),
  service('legacy', 'cron', [80]),
  pod('shop', 'web-0', { app: 'web', version: 'v1' }, { meshed: true }),
  pod('legacy', 'cron-0', { app: 'cron' }, { annotations: { 'tsmesh.io/exclude-outbound-port': '5432' } }),
  route('HTTPRoute', 'shop', 'fine', [toWeb], [{ name: 'web', port: 80 }]),
  route('HTTPRoute', 'shop', 'r-missing', [toWeb], [{ name: 'gone', port: 80 }]),
  route('HTTPRoute', 'shop', 'r-port', [toWeb], [{ name: 'web', port: 8080 }]),
  route('GRPCRoute', 'shop', 'r-parent', [{ kind: 'Service', group: '', name: 'nope' }], [{ name: 'web', port: 80 }]),
  route('HTTPRoute', 'shop', 'r-cross', [toWeb], [{ name: 'cron', namespace: 'legacy', port: 80 }]),
  gateway('edge', 'main'),
  route('HTTPRoute', 'edge', 'front', [{ name: 'main' }], [{ name: 'web', namespace: 'shop', port: 80 }]),
  authorizationPolicy('shop', 'deny-typo', { app: 'wbe' }),
  rateLimitPolicy('shop', 'limit-typo', { app: 'api' }),
];

const EXPECTED_ALL = [
  'TSM0101 HTTPRoute shop/r-missing',
  'TSM0102 HTTPRoute shop/r-port',
  'TSM0103 GRPCRoute shop/r-parent',
  'TSM0104 HTTPRoute edge/front',
  'TSM0201 PeerAuthentication shop/ns-b',
  'TSM0202 PeerAuthentication shop/web-v1',
  'TSM0301 Namespace legacy',
  'TSM0302 PeerAuthentication legacy/strict',
  'TSM0401 Namespace legacy',
  'TSM0401 Pod legacy/cron-0',
  'TSM0402 Namespace odd',
  'TSM0501 AuthorizationPolicy shop/deny-typo',
  'TSM0502 HTTPLocalRateLimitPolicy shop/limit-typo',
  'TSM0105 HTTPRoute shop/r-cross',
];

describe('tsmesh analyze', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-analyze-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const file = (name: string, objects: readonly KubeObject[]): string => {
    const path = join(dir, name);
    writeFileSync(path, meshText(objects));
    return path;
  };

  describe('with -f', () => {
    it('finds every mistake in files, exits 1 for the errors, and gives every field in -o json', async () => {
      const run = await runCli(['analyze', '-f', file('mistakes.yaml', MISTAKES), '-o', 'json']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(1);
      const records = JSON.parse(run.stdout) as Record_[];
      expect(brief(records)).toEqual(EXPECTED_ALL);
      expect(records[0]).toEqual({
        code: 'TSM0101',
        type: 'BackendServiceNotFound',
        severity: 'Error',
        object: { kind: 'HTTPRoute', namespace: 'shop', name: 'r-missing' },
        message: 'rule 0 backendRef 0 names Service shop/gone, which does not exist: its share of requests fails with 500',
      });
    });

    it('prints a table with a count line; several files and a directory make one mesh', async () => {
      const services = file('services.yaml', [service('shop', 'web', [80])]);
      const routes = file('routes.yaml', [route('HTTPRoute', 'shop', 'r', [toWeb], [{ name: 'web', port: 8080 }])]);
      const run = await runCli(['analyze', '-f', services, routes]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe(
        [
          'CODE     SEVERITY  OBJECT            MESSAGE',
          'TSM0102  Error     HTTPRoute shop/r  rule 0 backendRef 0 names port 8080 of Service shop/web, which exposes 80: its share of requests fails with 500',
          '1 error, 0 warnings, 0 info.',
          '',
        ].join('\n'),
      );
      mkdirSync(join(dir, 'clean'));
      file('clean/services.yaml', [service('shop', 'web', [80])]);
      file('clean/routes.json', [route('HTTPRoute', 'shop', 'r', [toWeb], [{ name: 'web', port: 80 }])]);
      const clean = await runCli(['analyze', '-f', join(dir, 'clean')]);
      expect({ code: clean.code, stdout: clean.stdout, stderr: clean.stderr }).toEqual({ code: 0, stdout: 'No problems found.\n', stderr: '' });
    });

    it('exits 0 on warnings alone, 1 with --fail-on warning; -o yaml', async () => {
      const warnings = file('warnings.yaml', [pod('shop', 'web-0', { app: 'web' }, { meshed: true, annotations: { 'tsmesh.io/log-levl': 'debug' } })]);
      const run = await runCli(['analyze', '-f', warnings, '-o', 'yaml']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^- code: TSM0401\n {2}type: UnknownAnnotation\n {2}severity: Warning\n/);
      expect((await runCli(['analyze', '-f', warnings, '--fail-on', 'warning'])).code).toBe(1);
      expect((await runCli(['analyze', '-f', warnings, '--fail-on=error'])).code).toBe(0);
    });

    it('reads standard input with -f -', () => {
      const run = spawnSync(process.execPath, [MAIN, 'analyze', '-f', '-', '-o', 'json'], { input: meshText([route('HTTPRoute', 'shop', 'r', [toWeb], [{ name: 'web', port: 80 }])]), encoding: 'utf8' });
      expect(run.status).toBe(1);
      expect(brief(JSON.parse(run.stdout) as Record_[])).toEqual(['TSM0101 HTTPRoute shop/r', 'TSM0103 HTTPRoute shop/r']);
    });

    it('exits 1 with the parser\'s one-line reason for a file it refuses', async () => {
      const broken = join(dir, 'broken.yaml');
      writeFileSync(broken, 'apiVersion: v1\nkind: Servise\nmetadata: {name: web}\n');
      const run = await runCli(['analyze', '-f', broken]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(new RegExp(`^tsmesh analyze: ${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1: document 1 \\(Servise default/web\\): kind: unknown kind "Servise" \\(apiVersion v1\\); supported kinds: [^\\n]*\\n$`));
    });
  });

  it.each([
    [['-o', 'xml'], 'tsmesh analyze: -o: "xml" is not an output format (table, json or yaml)'],
    [['--fail-on', 'fatal'], 'tsmesh analyze: --fail-on: "fatal" is not a severity (error, warning or info)'],
    [['-n', 'shop', '-A'], 'tsmesh analyze: -n and --all-namespaces exclude each other: one namespace, or all'],
    [['-f', 'x.yaml', '-n', 'shop'], 'tsmesh analyze: -f analyzes the files as the whole mesh: -n, --all-namespaces and --kubeconfig are for a cluster'],
    [['-n', 'Not_A_Namespace'], 'tsmesh analyze: -n: "Not_A_Namespace" is not a namespace name'],
    [['stray.yaml'], 'tsmesh analyze: unexpected argument "stray.yaml": files to analyze follow -f (see tsmesh analyze --help)'],
    [['--frobnicate'], 'tsmesh analyze: unknown flag "--frobnicate" (see tsmesh analyze --help)'],
    [['-f', '/nonexistent/mesh.yaml'], 'tsmesh analyze: cannot read /nonexistent/mesh.yaml: no such file or directory'],
  ])('exits 2 with one line for bad arguments: %j', async (args, line) => {
    const run = await runCli(['analyze', ...args]);
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({ code: 2, stdout: '', stderr: `${line}\n` });
  });

  describe('against the API server', () => {
    let fake: FakeApiServer;
    let kubeconfig: string;

    const writeKubeconfig = (name: string, contextNamespace?: string): string => {
      const config = new KubeConfig();
      config.loadFromOptions({
        clusters: [{ name: 'fake', server: fake.url, skipTLSVerify: true }],
        users: [{ name: 'fake' }],
        contexts: [{ name: 'fake', cluster: 'fake', user: 'fake', ...(contextNamespace === undefined ? {} : { namespace: contextNamespace }) }],
        currentContext: 'fake',
      });
      const path = join(dir, name);
      writeFileSync(path, config.exportConfig());
      return path;
    };

    beforeEach(async () => {
      fake = await FakeApiServer.start();
      for (const object of MISTAKES) fake.create(object);
      // The API server takes what its schema allows; the mesh refuses it.
      fake.create({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'broken', namespace: 'shop' }, spec: { parentRefs: 'web' } });
      kubeconfig = writeKubeconfig('kubeconfig');
    });
    afterEach(() => fake.close());

    it('reports one finding per mistake in every namespace with -A, invalid objects included', async () => {
      const run = await runCli(['analyze', '-A', '--kubeconfig', kubeconfig, '-o', 'json']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(1);
      expect(brief(JSON.parse(run.stdout) as Record_[])).toEqual(['TSM0001 HTTPRoute shop/broken', ...EXPECTED_ALL]);
    });

    it('reports on one namespace with -n, and on the current context\'s by default', async () => {
      const expected = ['TSM0301 Namespace legacy', 'TSM0302 PeerAuthentication legacy/strict', 'TSM0401 Namespace legacy', 'TSM0401 Pod legacy/cron-0'];
      const run = await runCli(['analyze', '-n', 'legacy', '--kubeconfig', kubeconfig, '-o', 'json']);
      expect(run.code).toBe(0);
      expect(brief(JSON.parse(run.stdout) as Record_[])).toEqual(expected);
      const byContext = await runCli(['analyze', '--kubeconfig', writeKubeconfig('kubeconfig-legacy', 'legacy'), '-o', 'json', '--fail-on', 'warning']);
      expect(byContext.code).toBe(1);
      expect(brief(JSON.parse(byContext.stdout) as Record_[])).toEqual(expected);
      const defaultNamespace = await runCli(['analyze', '--kubeconfig', kubeconfig]);
      expect({ code: defaultNamespace.code, stdout: defaultNamespace.stdout }).toEqual({ code: 0, stdout: 'No problems found.\n' });
    });

    it('takes a missing CRD as no objects of that kind', async () => {
      fake.uninstall('referencegrants');
      fake.uninstall('gateways');
      const run = await runCli(['analyze', '-n', 'edge', '--kubeconfig', kubeconfig, '-o', 'json']);
      expect(run.stderr).toBe('');
      // The Gateway is gone with its CRD: the route's parent does not exist (and it is still a
      // Gateway route, whose cross-namespace backend needs a grant that cannot exist either).
      expect(brief(JSON.parse(run.stdout) as Record_[])).toEqual(['TSM0103 HTTPRoute edge/front', 'TSM0104 HTTPRoute edge/front']);
    });

    it('exits 1 with one line when the API server cannot be reached', async () => {
      await fake.close();
      const run = await runCli(['analyze', '-A', '--kubeconfig', kubeconfig]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/^tsmesh analyze: cannot list \w+ objects: cannot reach the API server at http:\/\/127\.0\.0\.1:\d+: [^\n]+\n$/);
    });
  });
});
