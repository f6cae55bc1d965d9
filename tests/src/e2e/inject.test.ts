// End-to-end proof of the sidecar injector (issue: injector): Deployment manifests go through the
// real `tsmesh inject -f`, and the injected pod template is then run as a kubelet would run it, each
// pod a network namespace: the init container `tsmesh-init` as root, the sidecar `tsmesh-proxy` as
// uid 1337 with its injected environment and its postStart hook, then the application. A real CA
// issues the identities; a client calls a server Service through both sidecars over mutual TLS.
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { V1Container, V1Pod, V1PodSpec, V1Volume } from '@kubernetes/client-node';
import { CLI_MAIN, meshYaml, PROXY_UID, startWorkload, Topology, waitForLine, WORKLOAD_MAIN, type Pod } from 'tsmesh/demo';
import { parseAllDocuments, stringify } from 'yaml';
import { requireNetns } from './netns.js';

const enabled = await requireNetns();
const suite = enabled ? describe : describe.skip;
const run = promisify(execFile);

const NS = 'shop';
const TRUST_DOMAIN = 'example.org';
const WEB_SERVICE_IP = '10.96.0.20';
const EXCLUDED_PORT = 9090;
const CAPTURED_PORT = 7000;
// The injected addresses, resolved in the pods through /etc/netns/<netns>/hosts (see hostsFile).
const CA_HOST = 'tsmesh-ca.tsmesh-system.svc';
const ZIPKIN_HOST = 'zipkin.tsmesh-system';
const ZIPKIN_ENDPOINT = `http://${ZIPKIN_HOST}:9411/api/v2/spans`;
// Pod names as a Deployment's ReplicaSet makes them: the sidecar derives its workload name from them.
const WEB_POD = 'web-7c5d9f8b6-x2kqz';
const SHOPPER_POD = 'shopper-6b7d8c9f5-q4zxw';

const MANIFESTS = [
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' }, annotations: { 'tsmesh.io/exclude-inbound-ports': String(EXCLUDED_PORT) } },
        spec: {
          serviceAccountName: 'web',
          containers: [
            {
              name: 'web',
              image: 'registry.test/web:1',
              ports: [{ name: 'http', containerPort: 8080 }, { name: 'banner', containerPort: CAPTURED_PORT }, { name: 'direct', containerPort: EXCLUDED_PORT }],
              readinessProbe: { httpGet: { path: '/hello', port: 'http' }, periodSeconds: 5 },
            },
          ],
        },
      },
    },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'shopper', namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'shopper' } },
      template: {
        metadata: { labels: { app: 'shopper' }, annotations: { 'tsmesh.io/exclude-outbound-ports': String(EXCLUDED_PORT) } },
        spec: { serviceAccountName: 'shopper', containers: [{ name: 'shopper', image: 'registry.test/shopper:1' }] },
      },
    },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: NS },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  },
];

type Manifest = { kind: string; metadata: { name: string; namespace?: string }; spec?: { template?: V1Pod } & Record<string, unknown> };

/** `tsmesh inject -f FILE FLAGS`, the real CLI; its output parsed. */
async function inject(file: string, flags: readonly string[]): Promise<Manifest[]> {
  const { stdout } = await run(process.execPath, [CLI_MAIN, 'inject', '-f', file, ...flags], { maxBuffer: 16 << 20 });
  return parseAllDocuments(stdout).map((doc) => doc.toJS() as Manifest);
}

function template(manifests: readonly Manifest[], name: string): { metadata: NonNullable<V1Pod['metadata']>; spec: V1PodSpec } {
  const deployment = manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === name);
  const pod = deployment?.spec?.template;
  if (pod?.spec === undefined) throw new Error(`no pod template in Deployment ${name}`);
  return { metadata: pod.metadata ?? {}, spec: pod.spec };
}

function containerOf(spec: V1PodSpec, name: string): V1Container {
  const found = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === name);
  if (found === undefined) throw new Error(`no container ${name}`);
  return found;
}

/** A container's command line with the image's programs mapped to this machine's: `tsmesh` is the built CLI, `node` this Node. */
function commandLine(command: readonly string[]): string[] {
  const [program, ...args] = command;
  if (program === 'tsmesh') return [process.execPath, CLI_MAIN, ...args];
  if (program === 'node') return [process.execPath, ...args];
  throw new Error(`the image has no program ${program} here`);
}

/** Where one pod of a template runs: what the API server and the kubelet would fill in. */
interface PodInstance {
  readonly pod: Pod;
  readonly name: string;
  readonly namespace: string;
  readonly spec: V1PodSpec;
  /** Host directories standing for the pod's volumes, by volume name. */
  readonly volumes: Map<string, string>;
}

/**
 * The container's environment as the kubelet gives it: literal values, and the downward API
 * (`fieldRef`) resolved by hand. The kubelet would also mount the container's volumes at their
 * mountPath; a process here shares the host's filesystem, so each variable naming a file under a
 * mountPath is pointed at the same file in the directory that stands for that volume.
 */
function environment(container: V1Container, instance: PodInstance): Record<string, string> {
  const fields: Record<string, string | undefined> = {
    'metadata.name': instance.name,
    'metadata.namespace': instance.namespace,
    'status.podIP': instance.pod.ip,
    'spec.serviceAccountName': instance.spec.serviceAccountName,
  };
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    const value = fieldPath === undefined ? variable.value : fields[fieldPath];
    if (value === undefined) throw new Error(`${container.name}: cannot resolve ${variable.name} (${JSON.stringify(variable.valueFrom)})`);
    const mount = (container.volumeMounts ?? []).find((m) => value.startsWith(`${m.mountPath}/`));
    const volumeDir = mount === undefined ? undefined : instance.volumes.get(mount.name);
    if (mount !== undefined && volumeDir === undefined) throw new Error(`${container.name}: ${variable.name} is in volume ${mount.name}, which this test does not provide`);
    env[variable.name] = mount === undefined || volumeDir === undefined ? value : join(volumeDir, value.slice(mount.mountPath.length + 1));
  }
  return env;
}

/** What the kubelet would put in each volume the sidecar mounts: the projected CA token and the trust-bundle ConfigMap. */
function provideVolumes(instance: PodInstance, dir: string, token: string, trustBundle: string): void {
  for (const volume of instance.spec.volumes ?? ([] as V1Volume[])) {
    const path = join(dir, instance.name, volume.name);
    mkdirSync(path, { recursive: true, mode: 0o755 });
    const tokenSource = volume.projected?.sources?.find((s) => s.serviceAccountToken !== undefined)?.serviceAccountToken;
    if (tokenSource !== undefined) {
      expect(tokenSource.audience).toBe('tsmesh-ca');
      writeFileSync(join(path, tokenSource.path), token, { mode: 0o644 });
    } else if (volume.configMap?.name === 'tsmesh-ca-root-cert') {
      copyFileSync(trustBundle, join(path, 'root-cert.pem'));
      chmodSync(join(path, 'root-cert.pem'), 0o644);
    } else {
      continue;
    }
    instance.volumes.set(volume.name, path);
  }
}

/** /etc/hosts of a pod: `ip netns exec` mounts /etc/netns/<netns>/hosts over it, standing in for cluster DNS. */
function hostsFile(pod: Pod, entries: Record<string, string>): string {
  const dir = join('/etc/netns', pod.netns);
  mkdirSync(dir, { recursive: true });
  const lines = ['127.0.0.1 localhost', '::1 localhost', ...Object.entries(entries).map(([name, ip]) => `${ip} ${name}`)];
  writeFileSync(join(dir, 'hosts'), `${lines.join('\n')}\n`);
  return dir;
}

/** A Zipkin stand-in: prints every span it is sent as one `SPAN <json>` line. */
const COLLECTOR = `
import { createServer } from 'node:http';
createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/api/v2/spans') for (const span of JSON.parse(body)) console.log('SPAN ' + JSON.stringify(span));
    res.writeHead(202).end();
  });
}).listen(9411, '0.0.0.0', () => console.log('ready'));
`;

interface SeenByServer {
  server: string;
  headers: Record<string, string>;
}

suite('tsmesh inject, run as a kubelet would run the injected pods', () => {
  let topology: Topology;
  let dir: string;
  const etcDirs: string[] = [];
  const hadEtcNetns = existsSync('/etc/netns');
  let injected: Manifest[];
  let shopper: PodInstance;
  let web: PodInstance;
  let caPod: Pod;
  let zipkinPod: Pod;
  let manifestFile: string;

  /** Runs tsmesh-init as root, then tsmesh-proxy as its user with --config, then its postStart hook; resolves once the hook returned. */
  async function startInjectedPod(instance: PodInstance, meshFile: string): Promise<void> {
    const init = containerOf(instance.spec, 'tsmesh-init');
    expect(init.securityContext?.runAsUser).toBe(0);
    await instance.pod.exec(...split(commandLine([...(init.command ?? []), ...(init.args ?? [])])));

    const proxy = containerOf(instance.spec, 'tsmesh-proxy');
    expect(proxy.securityContext?.runAsUser).toBe(PROXY_UID);
    const args = [...(proxy.args ?? [])];
    // The injected sidecar has no --config: in a cluster it streams the mesh from the control plane at
    // TSMESH_CONTROL_ADDR. This test runs no control plane, so the sidecar gets the mesh file that
    // SPEC's `tsmesh proxy --config FILE` reads instead (it then ignores TSMESH_CONTROL_ADDR); the
    // rest of its environment, the CA and the trust bundle included, is what the injector gave it.
    expect(args).not.toContain('--config');
    args.push('--config', meshFile);
    const env = environment(proxy, instance);
    const child = instance.pod.spawn(...split(commandLine([...(proxy.command ?? []), ...args])), { uid: PROXY_UID, env });
    // Regular containers: the kubelet starts the app only once the sidecar's postStart hook returned.
    const hook = proxy.lifecycle?.postStart?.exec?.command;
    if (hook === undefined) throw new Error('the injected sidecar has no postStart hook');
    const exited = new Promise<never>((_resolve, reject) => child.once('exit', (code) => reject(new Error(`tsmesh-proxy of ${instance.name} exited (${code}): ${instance.pod.logs.slice(-20).join('\n')}`))));
    await Promise.race([instance.pod.exec(...split(commandLine(hook)), { uid: PROXY_UID }), exited]);
    child.removeAllListeners('exit');
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-e2e-inject-'));
    chmodSync(dir, 0o755); // the sidecars run as uid 1337 and read the mesh file and their volumes here
    manifestFile = join(dir, 'deployments.yaml');
    writeFileSync(manifestFile, MANIFESTS.map((m) => stringify(m)).join('---\n'));
    injected = await inject(manifestFile, [
      '--native-sidecars', 'false',
      '--trust-domain', TRUST_DOMAIN,
      '--proxy-tracing', 'zipkin',
      '--proxy-tracing-endpoint', ZIPKIN_ENDPOINT,
      '--proxy-tracing-sample-rate', '1',
    ]);

    topology = await Topology.create('tsm-inj');
    caPod = await topology.addPod({ name: 'ca', hostId: 2 });
    zipkinPod = await topology.addPod({ name: 'zipkin', hostId: 3 });
    const shopperPod = await topology.addPod({ name: SHOPPER_POD, hostId: 10 });
    const webPod = await topology.addPod({ name: WEB_POD, hostId: 20 });
    for (const pod of [shopperPod, webPod]) etcDirs.push(hostsFile(pod, { [CA_HOST]: caPod.ip, [ZIPKIN_HOST]: zipkinPod.ip }));
    shopper = { pod: shopperPod, name: SHOPPER_POD, namespace: NS, spec: template(injected, 'shopper').spec, volumes: new Map() };
    web = { pod: webPod, name: WEB_POD, namespace: NS, spec: template(injected, 'web').spec, volumes: new Map() };

    // The CA, as `tsmesh ca` in local mode: each pod's projected token is one of its tokens.
    const tokens = [
      { token: 'token-shopper', namespace: NS, serviceAccount: 'shopper' },
      { token: 'token-web', namespace: NS, serviceAccount: 'web' },
    ];
    const tokenFile = join(dir, 'ca-tokens.yaml');
    writeFileSync(tokenFile, stringify(tokens), { mode: 0o600 });
    const stateDir = join(dir, 'ca-state');
    const ca = caPod.spawn(process.execPath, [CLI_MAIN, 'ca', '--state-dir', stateDir, '--token-file', tokenFile, '--trust-domain', TRUST_DOMAIN, '--listen', '0.0.0.0:15012']);
    await waitForLine(ca, (l) => l.includes('"certificate authority listening"'), 20_000, 'the CA');
    const collectorFile = join(dir, 'collector.mjs');
    writeFileSync(collectorFile, COLLECTOR);
    const collector = zipkinPod.spawn(process.execPath, [collectorFile]);
    await waitForLine(collector, (l) => l === 'ready', 10_000, 'the Zipkin stand-in');

    provideVolumes(shopper, dir, 'token-shopper', join(stateDir, 'root-cert.pem'));
    provideVolumes(web, dir, 'token-web', join(stateDir, 'root-cert.pem'));

    const meshFile = join(dir, 'mesh.yaml');
    const meshPod = (instance: PodInstance, app: string) => ({
      name: instance.name, namespace: NS, serviceAccount: instance.spec.serviceAccountName ?? 'default', ip: instance.pod.ip, labels: { app }, meshed: true,
    });
    writeFileSync(
      meshFile,
      meshYaml([meshPod(shopper, 'shopper'), meshPod(web, 'web')], [
        { name: 'web', namespace: NS, clusterIP: WEB_SERVICE_IP, ports: [{ name: 'http', port: 80, targetPort: 8080 }], backends: [{ pod: WEB_POD }] },
      ]),
    );
    await startInjectedPod(web, meshFile);
    await startWorkload(web.pod, 'http-server', ['--port', '8080', '--name', 'web']);
    await startWorkload(web.pod, 'banner-server', ['--port', String(CAPTURED_PORT), '--name', 'web-captured']);
    await startWorkload(web.pod, 'banner-server', ['--port', String(EXCLUDED_PORT), '--name', 'web-direct']);
    await startInjectedPod(shopper, meshFile);
  }, 180_000);

  afterAll(async () => {
    await topology?.destroy();
    for (const etc of etcDirs) rmSync(etc, { recursive: true, force: true });
    if (!hadEtcNetns && existsSync('/etc/netns') && readdirSync('/etc/netns').length === 0) rmdirSync('/etc/netns');
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('adds tsmesh-init (with the flags of the pod\'s annotations) and tsmesh-proxy (with the injector\'s settings), and passes the Service through', () => {
    const webInit = containerOf(web.spec, 'tsmesh-init');
    expect(webInit.args).toEqual(['iptables', '--proxy-uid', '1337', '--exclude-inbound-ports', String(EXCLUDED_PORT)]);
    expect(containerOf(shopper.spec, 'tsmesh-init').args).toEqual(['iptables', '--proxy-uid', '1337', '--exclude-outbound-ports', String(EXCLUDED_PORT)]);
    for (const instance of [web, shopper]) {
      expect(instance.spec.initContainers?.map((c) => c.name)).toEqual(['tsmesh-init']);
      expect(instance.spec.containers.map((c) => c.name)).toEqual(['tsmesh-proxy', instance === web ? 'web' : 'shopper']);
      const env = Object.fromEntries((containerOf(instance.spec, 'tsmesh-proxy').env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]));
      expect(env).toEqual(
        expect.objectContaining({
          TSMESH_POD_NAME: 'metadata.name',
          TSMESH_POD_IP: 'status.podIP',
          TSMESH_CA_ADDR: `${CA_HOST}:15012`,
          TSMESH_CONTROL_ADDR: 'tsmesh-control.tsmesh-system.svc:15010',
          TSMESH_TRUST_DOMAIN: TRUST_DOMAIN,
          TSMESH_TRACING: 'zipkin',
          TSMESH_TRACING_ENDPOINT: ZIPKIN_ENDPOINT,
          TSMESH_TRACING_SAMPLE_RATE: '1',
        }),
      );
    }
    expect(template(injected, 'web').metadata.annotations?.['tsmesh.io/status']).toBeDefined();
    expect(injected.find((m) => m.kind === 'Service')).toEqual(MANIFESTS[2]);
  });

  test('native sidecars: tsmesh-init, then tsmesh-proxy with restartPolicy Always and a startup probe, then the pod\'s own init containers', async () => {
    const file = join(dir, 'native.yaml');
    const withInit = structuredClone(MANIFESTS[0]) as (typeof MANIFESTS)[0] & { spec: { template: { spec: Record<string, unknown> } } };
    withInit.spec.template.spec['initContainers'] = [{ name: 'migrate', image: 'registry.test/migrate:1' }];
    writeFileSync(file, stringify(withInit));
    const spec = template(await inject(file, ['--native-sidecars', 'true']), 'web').spec;
    expect(spec.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([
      ['tsmesh-init', undefined],
      ['tsmesh-proxy', 'Always'],
      ['migrate', undefined],
    ]);
    expect(spec.containers.map((c) => c.name)).toEqual(['web']);
    const proxy = containerOf(spec, 'tsmesh-proxy');
    expect(proxy.startupProbe?.httpGet).toEqual({ path: '/healthz/ready', port: 15020, scheme: 'HTTP' });
    expect(proxy.lifecycle).toBeUndefined();
  });

  test('a request from the client pod reaches the server Service through both sidecars, over mutual TLS with the injected identities', async () => {
    const out = await shopper.pod.exec(process.execPath, ['-e', `fetch('http://${WEB_SERVICE_IP}/hello').then(async (r) => console.log(r.status, await r.text()))`]);
    const [status, ...body] = out.trim().split(' ');
    expect(status).toBe('200');
    const seen = JSON.parse(body.join(' ')) as SeenByServer;
    expect(seen.server).toBe('web');
    // The server's sidecar verified the client's certificate, issued by the CA for the injected identity.
    expect(seen.headers['x-forwarded-client-cert']).toBe(`By=spiffe://${TRUST_DOMAIN}/ns/${NS}/sa/web;URI=spiffe://${TRUST_DOMAIN}/ns/${NS}/sa/shopper`);
    expect(seen.headers['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  }, 30_000);

  test('the sidecars send their spans to the Zipkin endpoint the injector gave them', async () => {
    const out = await shopper.pod.exec(process.execPath, ['-e', `fetch('http://${WEB_SERVICE_IP}/traced').then(async (r) => console.log(await r.text()))`]);
    const traceId = /^00-([0-9a-f]{32})-/.exec((JSON.parse(out) as SeenByServer).headers['traceparent'] ?? '')?.[1];
    expect(traceId).toBeDefined();
    const deadline = Date.now() + 30_000;
    let spans: { traceId: string; kind?: string; localEndpoint?: { serviceName?: string } }[] = [];
    while (Date.now() < deadline) {
      spans = zipkinPod.logs.filter((l) => l.startsWith('SPAN ')).map((l) => JSON.parse(l.slice(5)) as (typeof spans)[0]).filter((s) => s.traceId === traceId);
      if (spans.some((s) => s.kind === 'CLIENT') && spans.some((s) => s.kind === 'SERVER')) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(spans.map((s) => [s.kind, s.localEndpoint?.serviceName]).sort()).toEqual([
      ['CLIENT', 'shopper'],
      ['SERVER', 'web'],
    ]);
  }, 45_000);

  test('the port excluded by the annotations bypasses both sidecars; another port of the pod is captured', async () => {
    const banner = async (port: number) =>
      JSON.parse((await shopper.pod.exec(process.execPath, [WORKLOAD_MAIN, 'banner-client', '--host', web.pod.ip, '--port', String(port)])).trim().split('\n').pop() ?? '') as {
        result: { banner: string; localPort: number };
      };
    const direct = (await banner(EXCLUDED_PORT)).result;
    // The server saw the client's own socket: nothing proxied the connection.
    expect(direct.banner).toBe(`hello from web-direct (you are ${shopper.pod.ip}:${direct.localPort})`);
    const captured = (await banner(CAPTURED_PORT)).result;
    expect(captured.banner).toMatch(/^hello from web-captured \(you are /);
    expect(captured.banner).not.toContain(`${shopper.pod.ip}:${captured.localPort})`);
  }, 30_000);

  test('the rewritten readiness probe answers on the sidecar\'s port, as the kubelet asks it from outside the pod', async () => {
    const probe = containerOf(web.spec, 'web').readinessProbe;
    expect(probe?.httpGet).toEqual({ path: '/app-health/web/readyz', port: 15020, scheme: 'HTTP' });
    const status = await caPod.exec(process.execPath, ['-e', `fetch('http://${web.pod.ip}:${String(probe?.httpGet?.port)}${probe?.httpGet?.path ?? ''}').then((r) => console.log(r.status))`]);
    expect(status.trim()).toBe('200');
  }, 30_000);
});

/** [program, args] for Pod.exec / Pod.spawn. */
function split(argv: string[]): [string, string[]] {
  const [program, ...args] = argv;
  if (program === undefined) throw new Error('empty command');
  return [program, args];
}
